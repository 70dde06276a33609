"""The pipeline's stages: one function each, models and settings in, a typed result out.

Every stage runs all analysis seeds of a run as one program (stacked on a leading seed axis):

1. :func:`class_latents`: the latent sets ``Z_j`` of every seed (``vmap`` over PRNG keys);
2. :func:`correlation_scores`: Method A for every seed at once (the seeds' code sets are one
   APCR sweep whose rows are spread over all local devices);
3. :func:`optimised_weights`: Method B for every seed (``vmap`` over code sets and keys), as
   stability selection over half-sample fits (:mod:`latentjax.analysis.stability`) or one run;
4. :func:`manipulations`: top-, bottom- and random-K sets of both methods, same and cross class;
5. :func:`latent_structure`: inverted real images, t-SNE and the kNN numbers' inputs;
6. :func:`compare_finders`: every finder of ``a.finders`` (the paper's two methods, GANSpace,
   SeFa, InterFaceGAN, the random baselines) scored by one evaluation at equal distances.

:mod:`latentjax.experiment.reproduce` saves each result as an Orbax artefact and assembles the
report; a notebook can call the stages directly.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from latentjax.analysis.apcr import APCRResult, compute_apcr
from latentjax.analysis.evaluation import DirectionEvaluation, evaluate_directions
from latentjax.analysis.finders import find_directions
from latentjax.analysis.latents import ClassLatents, invert_images, sample_class_latents
from latentjax.analysis.manipulation import ManipulationResult, compare_sets
from latentjax.analysis.parallel import stack_pytrees
from latentjax.analysis.settings import (
    APCRSettings, LatentSettings, ManipulationSettings, MethodBSettings, StabilitySettings,
)
from latentjax.analysis.sets import controlling_set, intersection_ratio, method_directions, top_k_mask
from latentjax.analysis.structure import tsne_embedding
from latentjax.analysis import stability
from latentjax.analysis.stability import Stability
from latentjax.analysis.weights import optimize_weights

#: Manipulation results by method, mode and set: ``result[source][mode][set_name]``.
SOURCES = ("apcr", "weights")
MODES = ("same", "cross")
SET_NAMES = ("top", "bottom", "random")
Manipulations = dict[str, dict[str, dict[str, ManipulationResult]]]


class LatentStructure(NamedTuple):
    """Figure 1's inputs: inverted real test images and the first seed's prior codes.

    ``codes[n, N]`` (``z*``), ``labels[n]`` (true classes), ``reconstruction_error[n]``,
    ``predicted[n]`` (the classifier's label of ``G(z*)``), ``tsne[n, 2]``, ``prior_codes[C*S, N]``.
    """

    codes: jax.Array
    labels: jax.Array
    reconstruction_error: jax.Array
    predicted: jax.Array
    tsne: jax.Array
    prior_codes: jax.Array


def seed_keys(seeds, stream: int) -> jax.Array:
    """``fold_in(key(seed), stream)`` for every analysis seed: one independent stream per use."""
    return jax.vmap(lambda s: jax.random.fold_in(jax.random.key(s), stream))(jnp.asarray(seeds))


def latent_settings(a) -> LatentSettings:
    """The latent sets' settings a config section holds."""
    return LatentSettings.from_config(a)


def apcr_settings(a) -> APCRSettings:
    """Method A's settings a config section holds."""
    return APCRSettings.from_config(a)


def method_b_settings(a) -> MethodBSettings:
    """Method B's settings a config section holds."""
    return MethodBSettings.from_config(a)


def stability_settings(a) -> StabilitySettings | None:
    """Stability selection's settings, or ``None`` for one run of Method B (``stability.pairs = 0``);
    ``q = stability.q``, or ``k`` when that is 0."""
    if not a.stability.pairs:
        return None
    return StabilitySettings.from_config(a, q=int(a.stability.q or a.k))


def manipulation_settings(a) -> ManipulationSettings:
    """The manipulation's settings a config section holds."""
    return ManipulationSettings.from_config(a)


def stage_identity(name: str, a, **extra) -> dict:
    """What a stage's result depends on, from the settings objects it reads: a saved stage is
    keyed by this, so a setting added to those objects can never leave a stale result in use."""
    reads = {
        "latents": lambda: {"latents": latent_settings(a).record()},
        "held_out": lambda: {"latents": latent_settings(a).record(), "samples_per_class": a.finder_samples_per_class},
        "apcr": lambda: {"latents": latent_settings(a).record(), "apcr": apcr_settings(a).record()},
        "weights": lambda: {
            "latents": latent_settings(a).record(), "method_b": method_b_settings(a).record(),
            "stability": None if stability_settings(a) is None else stability_settings(a).record(),
        },
    }
    return {**reads[name](), **extra}


def class_latents(
    generate, classify, settings: LatentSettings, seeds, *, latent_dim: int, num_classes: int, stream: int = 0,
) -> ClassLatents:
    """``S = settings.samples_per_class`` confident prior codes per class for every analysis seed:
    ``codes[seeds, C, S, N]``. ``stream`` picks an independent draw (see :func:`held_out_latents`).
    Raises ``RuntimeError`` naming the seed and classes that stayed short of ``S`` codes.
    """

    def one_seed(key):
        return sample_class_latents(
            generate, classify, key, latent_dim=latent_dim, num_classes=num_classes,
            require_full=False, **settings.keywords(),
        )

    result = jax.vmap(one_seed)(seed_keys(seeds, stream))
    if isinstance(result.counts, jax.core.Tracer):
        return result  # under a caller's vmap (a stack of models): it checks the stacked result
    check_latent_counts(result, settings, seeds)
    return result


def held_out_latents(
    generate, classify, settings: LatentSettings, seeds, samples_per_class: int, *, latent_dim: int, num_classes: int,
) -> ClassLatents:
    """The finders' held-out codes: ``samples_per_class`` per class and seed, drawn independently
    of the latent sets (stream 3)."""
    return class_latents(
        generate, classify, settings.replace(samples_per_class=samples_per_class), seeds,
        latent_dim=latent_dim, num_classes=num_classes, stream=3,
    )


def check_latent_counts(result: ClassLatents, settings: LatentSettings, seeds, label: str = "") -> None:
    """Raises ``RuntimeError`` naming the seed and classes that stayed short of ``S`` codes."""
    wanted = settings.samples_per_class
    counts = np.asarray(result.counts)
    for seed, row, draws in zip(seeds, counts, np.asarray(result.draws)):
        short = [j for j, c in enumerate(row.tolist()) if c < wanted]
        if short:
            raise RuntimeError(
                f"{label}seed {seed}: after {int(draws)} prior samples, classes {short} have only "
                f"{row[short].tolist()} codes with confidence >= {settings.threshold} (wanted "
                f"{wanted}); raise analysis.latents.max_draws or lower analysis.latents.threshold."
            )


def correlation_scores(generate, classify, settings: APCRSettings, latents: ClassLatents, progress=None) -> APCRResult:
    """Method A for every seed: ``apcr[seeds, N, C]``, ``curves[seeds, N, 2m+1, C]``, ...

    The seeds' code sets are stacked into one sweep (set ``s * C + j`` is seed ``s``, class
    ``j``), so all seeds share one compiled program and its rows fill every local device.
    """
    codes = jnp.asarray(latents.codes)
    num_seeds, num_classes = codes.shape[:2]
    result = compute_apcr(
        generate, classify, codes.reshape(num_seeds * num_classes, *codes.shape[2:]),
        classes=jnp.tile(jnp.arange(num_classes), num_seeds), progress=progress,
        **settings.keywords(),
    )
    per_seed = lambda x: jnp.moveaxis(x.reshape(*x.shape[:-1], num_seeds, num_classes), -2, 0)
    return APCRResult(
        per_seed(result.apcr), per_seed(result.curves), per_seed(result.directions),
        jnp.broadcast_to(result.offsets, (num_seeds, *result.offsets.shape)), per_seed(result.per_code),
    )


class MethodB(NamedTuple):
    """Method B's stage, stacked over the analysis seeds.

    ``weights[seeds, C, N]`` read like ``w*``: ``|.|`` ranks the dimensions, the sign is the
    direction that raises ``Q_j``. With ``a.stability.pairs > 0`` (stability selection) they are
    :func:`~latentjax.analysis.stability.signed_ranking` of ``stability`` (the top ``K`` of
    ``pi``, ties by mean ``|w|``), ``losses[seeds, C, steps]`` the fits' mean, and
    ``snapshots[seeds, C, T, N]`` the same reading after each snapshot step, with its stable sets
    ``snapshot_stable[seeds, C, T, N]``; with ``a.stability.pairs = 0`` they are one run's ``w*``
    and ``stability`` is ``None``.
    """

    weights: jax.Array
    losses: jax.Array
    snapshots: jax.Array | None = None
    stability: Stability | None = None
    snapshot_stable: jax.Array | None = None


def method_b_from_tree(**tree) -> MethodB:
    """A saved Method B stage (nested dicts of arrays) as :class:`MethodB`."""
    stability = tree.pop("stability", None)
    return MethodB(**tree, stability=None if stability is None else Stability(**stability))


def optimised_weights(
    generate, classify, settings: MethodBSettings, selection: StabilitySettings | None, seeds,
    latents: ClassLatents, snapshot_steps=(), progress=None,
) -> MethodB:
    """Method B for every seed: ``weights[seeds, C, N]`` and ``losses[seeds, C, steps]``.

    With ``selection`` (``P = selection.pairs``), stability selection: every seed's ``2P`` half-sample fits
    per class (:func:`~latentjax.analysis.stability.weight_fits`, key ``seed_keys(seeds, 1)``,
    so Method A's :func:`apcr_stabilities` uses the same halves), all seeds' fits one batch of
    code sets. With ``selection=None``, one run per seed and class, as the paper reads it.
    ``snapshot_steps``: also the reading after each of these steps, ``snapshots[seeds, C, T, N]``.
    """
    codes = jnp.asarray(latents.codes)
    num_seeds, num_classes = codes.shape[:2]
    options = dict(settings=settings, snapshot_steps=tuple(snapshot_steps), progress=progress)
    if selection is not None:
        fits = stability.weight_fits(generate, classify, codes, seed_keys(seeds, 1), pairs=selection.pairs, **options)
        select = jax.vmap(lambda w: stability.selection_stability(w, q=selection.q, threshold=selection.threshold))
        found = select(fits.weights)  # weights [seeds, F, C, N]
        snapshots = snapshot_stable = None
        if fits.snapshots is not None:
            at_steps = [select(w) for w in jnp.moveaxis(fits.snapshots, 3, 0)]  # each [seeds, F, C, N]
            snapshots = jnp.stack([jax.vmap(stability.signed_ranking)(r) for r in at_steps], axis=2)
            snapshot_stable = jnp.stack([r.stable for r in at_steps], axis=2)
        return MethodB(
            jax.vmap(stability.signed_ranking)(found), jnp.mean(fits.losses, axis=1), snapshots, found,
            snapshot_stable,
        )
    # Every seed's classes as one batch of code sets, each with the key a per-seed call would
    # give it (fold_in(seed key, class)): one program, the same numbers as seed by seed.
    keys = jax.vmap(lambda k: jax.vmap(lambda c: jax.random.fold_in(k, c))(jnp.arange(num_classes)))(
        seed_keys(seeds, 1)
    )
    result = optimize_weights(
        generate, classify, codes.reshape(num_seeds * num_classes, *codes.shape[2:]),
        keys.reshape(-1), classes=jnp.tile(jnp.arange(num_classes), num_seeds), **options,
    )
    per_seed = lambda x: None if x is None else x.reshape(num_seeds, num_classes, *x.shape[1:])
    return MethodB(*(per_seed(x) for x in result))


def apcr_stabilities(selection: StabilitySettings, seeds, apcr: APCRResult) -> Stability:
    """Method A's stability selection for every seed (``apcr`` stacked over seeds): the same
    halves as Method B's (:func:`optimised_weights`), APCR averaged over each, no model call."""
    if apcr.per_code is None:
        raise ValueError("this APCR artefact holds no per-code APCR (written before it was kept): run the apcr stage again.")
    one = lambda per_code, directions, key: stability.apcr_stability(
        per_code, key, pairs=selection.pairs, q=selection.q, threshold=selection.threshold, directions=directions
    )
    return jax.vmap(one)(jnp.asarray(apcr.per_code), jnp.asarray(apcr.directions), seed_keys(seeds, 1))


def manipulations(
    generate, classify, settings: ManipulationSettings, seed: int, cross_targets, codes: jax.Array,
    apcr: APCRResult, weights: MethodB, *, chunk_size: int | None = None, alphas=None, num_images: int = 4,
) -> Manipulations:
    """Figures 5 and 6 for one analysis ``seed``: ``codes[C, S, N]`` moved along each method's
    top-, bottom- and random-K sets, against their own class (same) and towards ``cross_targets``
    (cross), by ``alphas`` (default ``settings.alphas()``), drawing ``num_images`` codes each."""
    alphas = settings.alphas() if alphas is None else alphas
    rankings = {
        "apcr": (jnp.asarray(apcr.apcr).T, jnp.asarray(apcr.directions).T),
        "weights": (jnp.abs(jnp.asarray(weights.weights)), jnp.asarray(weights.weights)),
    }
    out: Manipulations = {}
    for source, (scores, signs) in rankings.items():
        out[source] = {}
        for mode in MODES:
            targets = None if mode == "same" else jnp.asarray(cross_targets)
            out[source][mode] = compare_sets(
                generate, classify, codes[:, : settings.samples], scores, signs, settings.k,
                jax.random.key(seed + 7), mode=mode, targets=targets, alphas=alphas,
                num_images=num_images, chunk_size=chunk_size,
            )
    return out


#: Per method, mode and set: ``probabilities[seeds, C, A, M, K]`` of the moved codes.
DoseProbabilities = dict[str, dict[str, dict[str, jax.Array]]]


def dose_probabilities(
    generate, classify, settings: ManipulationSettings, seeds, cross_targets, latents: ClassLatents,
    apcr: APCRResult, weights: MethodB, *, chunk_size: int | None = None,
) -> DoseProbabilities:
    """The dose–response's raw material for every analysis seed: the first ``settings.samples``
    codes of each class moved by ``settings.dose_alphas()`` along each method's top-, bottom- and
    random-K sets (the random sets drawn as for :func:`manipulations`), same and cross class;
    every class's probabilities kept, so flips and clean flips can be read at any confidence."""
    per_seed = [
        manipulations(
            generate, classify, settings, seed, cross_targets, jnp.asarray(latents.codes[index]),
            jax.tree.map(lambda x: x[index], apcr), jax.tree.map(lambda x: x[index], weights),
            chunk_size=chunk_size, alphas=settings.dose_alphas(), num_images=0,
        )
        for index, seed in enumerate(seeds)
    ]
    return {source: {mode: {name: jnp.stack([m[source][mode][name].probabilities for m in per_seed]) for name in SET_NAMES}
                     for mode in MODES} for source in SOURCES}


def latent_structure(
    generate, classify, a, images: np.ndarray, labels: np.ndarray, prior_codes: jax.Array,
    *, latent_dim: int, num_classes: int,
) -> LatentStructure:
    """Inverts ``a.inversion_per_class`` real test images per class and embeds their codes."""
    first = a.seeds[0]
    rng = np.random.default_rng(first)
    picks = np.concatenate([
        rng.choice(np.flatnonzero(labels == j), a.inversion_per_class, replace=False)
        for j in range(num_classes)
    ])
    inv = invert_images(
        generate, jnp.asarray(images[picks]), jax.random.key(first + 11), latent_dim=latent_dim,
        beta=a.inversion_beta, steps=a.inversion_steps,
        learning_rate=a.inversion_learning_rate, classify=classify,
    )
    perplexity = min(a.tsne_perplexity, (len(picks) - 1) / 3)
    return LatentStructure(
        codes=inv.codes,
        labels=jnp.asarray(labels[picks]),
        reconstruction_error=inv.reconstruction_error,
        predicted=inv.predicted,
        tsne=jnp.asarray(tsne_embedding(inv.codes, seed=first, perplexity=perplexity)),
        prior_codes=jnp.asarray(prior_codes).reshape(-1, latent_dim),
    )


class FinderComparison(NamedTuple):
    """Every finder of ``a.finders`` scored the same way (:func:`compare_finders`).

    ``directions[seeds, F, C, N]`` (row ``j`` raises ``Q_j``); ``held_out_codes[seeds, C, S', N]``
    (a draw independent of the latent sets the finders saw); ``same`` and ``cross``: one
    :class:`~latentjax.DirectionEvaluation` each, measures ``[seeds, F, C, T]`` at
    ``a.finder_distances``, on the held-out codes; ``original_images[C, ...]`` (the first seed's
    first held-out code of each class) and ``same_images`` / ``cross_images[F, C, ...]``: those
    codes moved by each finder by the largest distance.
    """

    directions: jax.Array
    held_out_codes: jax.Array
    same: DirectionEvaluation
    cross: DirectionEvaluation
    original_images: jax.Array
    same_images: jax.Array
    cross_images: jax.Array


def analysis_sets(a, apcr: APCRResult, weights: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Every seed's high-correlated sets ``H`` and controlling sets ``C``, ``[seeds, C, N]``,
    from Method A's ``apcr`` and Method B's ``w*[seeds, C, N]`` (both stacked over seeds)."""
    threshold = a.control_threshold if a.control_threshold >= 0 else None
    high = jax.vmap(lambda scores: top_k_mask(scores.T, a.k))(jnp.asarray(apcr.apcr))
    control = jax.vmap(lambda w: controlling_set(w, k=a.k, threshold=threshold))(jnp.asarray(weights))
    return high, control


def intersection_ratios(a, apcr: APCRResult, weights: jax.Array) -> tuple[np.ndarray, jax.Array, jax.Array]:
    """``(ir[seeds, C], high, control)``: Table 1 for every analysis seed, with the sets it
    compares (:func:`analysis_sets`). With an absolute ``control_threshold`` a controlling set may
    hold more or fewer than K, so the ratio divides by K only when the sets have K each."""
    high, control = analysis_sets(a, apcr, weights)
    exact = a.control_threshold < 0
    ir = jax.vmap(lambda h, c: intersection_ratio(h, c, a.k, exact_control_size=exact))(high, control)
    return np.asarray(ir), high, control


def finder_directions(
    generate, classify, a, codes: jax.Array, key: jax.Array, *, known: dict[str, jax.Array], layer=None,
) -> jax.Array:
    """``directions[F, C, N]`` of every finder in ``a.finders`` for one analysis seed.

    ``known``: directions already found, by finder name (Methods A and B from their stages'
    sets, so they are not run again); every other finder runs on ``codes[C, S, N]``.
    ``layer``: GANSpace's early layer.
    """
    options = {
        "sefa": dict(components=a.finder_components, distance=a.finder_choice_distance),
        "ganspace": dict(
            layer=layer, samples=a.finder_prior_samples, components=a.finder_components,
            distance=a.finder_choice_distance,
        ),
        "interfacegan": dict(samples=a.finder_prior_samples),
    }
    return jnp.stack([
        known[name] if name in known else find_directions(
            name, generate, classify, codes, jax.random.fold_in(key, index), k=a.k, **options.get(name, {})
        )
        for index, name in enumerate(a.finders)
    ])


def compare_finders(
    generate, classify, a, latents: ClassLatents, held_out: ClassLatents, apcr: APCRResult,
    weights: jax.Array, *, layer=None,
) -> FinderComparison:
    """The finders side by side: found on ``latents``, scored on the ``held_out`` codes.

    Per seed, each finder's directions come from that seed's latent sets (and Method A/B
    results; ``weights``: ``w*[seeds, C, N]``); :func:`~latentjax.evaluate_directions` then moves the seed's held-out codes by
    ``a.finder_distances`` against each class's own direction (same) and along its target's
    (cross, ``a.cross_targets``), all finders in one program.
    """
    distances = np.asarray(a.finder_distances, np.float32)
    keys = seed_keys(a.seeds, 4)
    chunk = apcr_settings(a).chunk_size
    # What find_directions('apcr' / 'weights') would return with the run's settings, every seed.
    high, control = analysis_sets(a, apcr, weights)
    known = dict(zip(("apcr", "weights"), method_directions(high, apcr.directions, control, weights)))
    directions, same, cross = [], [], []
    for s in range(len(a.seeds)):
        found = finder_directions(
            generate, classify, a, jnp.asarray(latents.codes[s]), keys[s],
            known={name: rows[s] for name, rows in known.items()}, layer=layer,
        )
        codes = jnp.asarray(held_out.codes[s])
        directions.append(found)
        # A clean flip lands with the confidence the latent sets demand of a class's codes.
        threshold = latent_settings(a).threshold
        same.append(evaluate_directions(generate, classify, codes, found, distances, chunk_size=chunk, threshold=threshold))
        cross.append(evaluate_directions(
            generate, classify, codes, found, distances, mode="cross",
            targets=jnp.asarray(a.cross_targets), chunk_size=chunk, threshold=threshold,
        ))
    stack = lambda results: stack_pytrees(results)._replace(distances=jnp.asarray(distances))
    # Pictures: the first seed's first held-out code per class, moved by the largest distance.
    first, units = jnp.asarray(held_out.codes[0][:, 0]), directions[0]
    units = units / jnp.linalg.norm(units, axis=-1, keepdims=True)
    targets = jnp.asarray(a.cross_targets)
    largest = float(distances[-1])
    return FinderComparison(
        directions=jnp.stack(directions),
        held_out_codes=jnp.asarray(held_out.codes),
        same=stack(same),
        cross=stack(cross),
        original_images=generate(first),
        same_images=jax.vmap(lambda u: generate(first - largest * u))(units),
        cross_images=jax.vmap(lambda u: generate(first + largest * u[targets]))(units),
    )


def alpha_grid(a) -> np.ndarray:
    """The manipulation strengths ``alpha``: ``num_alphas`` values from ``-alpha_max`` to it."""
    return manipulation_settings(a).alphas()
