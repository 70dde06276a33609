"""One seed's whole analysis as one pure function of ``(key, models, settings)``.

:func:`analyse_seed` draws the latent sets, runs Method A and Method B (by stability selection,
or one run), reads both methods' sets and Table 1's intersection ratio, and scores both methods'
directions on held-out codes (:func:`~latentjax.evaluate_directions`, same class and cross class)::

    Z_j       = S codes with Q_j(G(z)) >= threshold              key stream 0
    APCR_ij   = Method A on Z_j;  H_j = top K of APCR_j
    w*_j      = Method B on Z_j (or pi_j over 2P half fits)     key stream 1
    C_j       = top K of |w*_j|;  IR_j = |H_j n C_j| / K
    held-out  = S' codes per class                               key stream 3

Nothing in it reads a file, a clock or Python state, so PureJaxRL's shape holds: ``jax.vmap``
over keys runs many analysis seeds as one program, over a stack of models
(:func:`~latentjax.stack_pytrees`) many model seeds, and ``jax.jit`` compiles it once for any
key, model weights or float setting. The key streams are those of ``latentjax reproduce``'s stages,
so a seed's latent sets are the same draws there and here; Method B here runs as one ``lax.scan``
(the device loop), whose rounding differs from the CPU's host-driven loop at the last bits.

(:func:`analyse_seed` shows a run; tests/test_pipeline.py vmaps it over seeds and models.)
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from latentjax.analysis.apcr import APCRResult, compute_apcr
from latentjax.analysis.evaluation import DirectionEvaluation, evaluate_directions
from latentjax.analysis.latents import ClassLatents, sample_class_latents
from latentjax.analysis.sets import controlling_set, intersection_ratio, method_directions, top_k_mask
from latentjax.analysis.settings import (
    APCRSettings, LatentSettings, MethodBSettings, StabilitySettings, _pytree,
)
from latentjax.analysis.stability import Stability, selection_stability, signed_ranking, weight_fits
from latentjax.analysis.weights import optimize_weights

#: Independent key streams of one analysis seed (the pipeline's stages use the same numbers).
LATENT_STREAM, METHOD_B_STREAM, HELD_OUT_STREAM = 0, 1, 3


@dataclasses.dataclass(frozen=True)
class AnalysisSettings:
    """Every setting of one seed's analysis: each step's settings object, the set size ``k``, and
    the held-out evaluation (``held_out_per_class`` codes per class moved by ``distances``;
    ``cross_targets[j]``: the class that class ``j``'s codes are moved towards, or ``None``).
    ``stability=None`` reads Method B from one run instead of stability selection.

    >>> AnalysisSettings(k=5).validate().method_b.steps
    500
    """

    latents: LatentSettings = LatentSettings()
    apcr: APCRSettings = APCRSettings()
    method_b: MethodBSettings = MethodBSettings()
    stability: StabilitySettings | None = StabilitySettings()
    k: int = 10
    held_out_per_class: int = 8
    distances: tuple[float, ...] = (4.5, 9.0)
    cross_targets: tuple[int, ...] | None = None

    def validate(self) -> AnalysisSettings:
        for part in (self.latents, self.apcr, self.method_b):
            part.validate()
        if self.stability is not None:
            self.stability.validate(num_codes=self.latents.samples_per_class)
        return self


_pytree(AnalysisSettings, ("latents", "apcr", "method_b", "stability", "distances"))


class SeedAnalysis(NamedTuple):
    """One seed's analysis (with a leading axis per ``vmap``-ped seed or model).

    ``latents``: the latent sets; ``apcr``: Method A; ``weights[C, N]``: Method B read like
    ``w*`` (with stability selection, the signed ranking by ``pi``); ``stability``: its
    :class:`~latentjax.Stability` (``None`` for one run); ``high`` and ``control[C, N]``: the two
    methods' top-K sets; ``intersection_ratio[C]``: Table 1; ``directions[2, C, N]``: Method A's
    and Method B's signed set directions; ``same`` and ``cross``: their evaluation on the held-out
    codes at ``distances`` (``cross`` is ``None`` without ``cross_targets``).
    """

    latents: ClassLatents
    apcr: APCRResult
    weights: jax.Array
    stability: Stability | None
    high: jax.Array
    control: jax.Array
    intersection_ratio: jax.Array
    directions: jax.Array
    same: DirectionEvaluation
    cross: DirectionEvaluation | None


def analyse_seed(
    key: jax.Array, generate, classify, settings: AnalysisSettings, *, latent_dim: int, num_classes: int,
) -> SeedAnalysis:
    """One analysis seed, end to end (module docstring); pure, so ``jit`` and ``vmap`` apply.

    Under a transform the latent sets cannot be checked for shortfall: ``latents.counts[C]``
    says how many confident codes each class found (``< samples_per_class`` means the draws ran
    out; raise ``settings.latents.max_draws``).

    >>> import jax, jax.numpy as jnp
    >>> from latentjax import as_pytree
    >>> classify = as_pytree(lambda x: jax.nn.softmax(jnp.stack([4 * x[:, 2], -4 * x[:, 2]], -1)))
    >>> settings = AnalysisSettings(latents=LatentSettings(samples_per_class=8, batch_size=64), k=1,
    ...                             stability=None, method_b=MethodBSettings(steps=20, batch_size=4))
    >>> result = analyse_seed(jax.random.key(1), as_pytree(lambda z: z), classify, settings, latent_dim=3, num_classes=2)
    >>> result.high.tolist(), result.intersection_ratio.tolist()
    ([[False, False, True], [False, False, True]], [1.0, 1.0])
    """
    stream = lambda s: jax.random.fold_in(key, s)
    latents = sample_class_latents(
        generate, classify, stream(LATENT_STREAM), latent_dim=latent_dim, num_classes=num_classes,
        require_full=False, **settings.latents.keywords(),
    )
    apcr = compute_apcr(generate, classify, latents.codes, **settings.apcr.keywords())
    selection = settings.stability
    stability = None
    if selection is not None:
        fits = weight_fits(
            generate, classify, latents.codes, stream(METHOD_B_STREAM), pairs=selection.pairs,
            settings=settings.method_b, loop="device",
        )
        stability = selection_stability(fits.weights, q=selection.q, threshold=selection.threshold)
        weights = signed_ranking(stability)
    else:
        weights = optimize_weights(
            generate, classify, latents.codes, stream(METHOD_B_STREAM), settings=settings.method_b, loop="device",
        ).weights
    high = top_k_mask(apcr.apcr.T, settings.k)
    control = controlling_set(weights, k=settings.k)
    ratio = intersection_ratio(high, control, settings.k)
    held_out = sample_class_latents(
        generate, classify, stream(HELD_OUT_STREAM), latent_dim=latent_dim, num_classes=num_classes,
        require_full=False, **settings.latents.replace(samples_per_class=settings.held_out_per_class).keywords(),
    ).codes
    directions = jnp.stack(method_directions(high, apcr.directions, control, weights))
    distances = jnp.asarray(settings.distances)
    threshold = settings.latents.threshold  # a clean flip: as confident as a class's own codes
    same = evaluate_directions(generate, classify, held_out, directions, distances, threshold=threshold)
    cross = None
    if settings.cross_targets is not None:
        cross = evaluate_directions(
            generate, classify, held_out, directions, distances, mode="cross",
            targets=jnp.asarray(settings.cross_targets), threshold=threshold,
        )
    return SeedAnalysis(latents, apcr, weights, stability, high, control, ratio, directions, same, cross)
