"""Stability selection: the dimensions a method singles out whatever the subsample and the key.

One run of Method B is one optimiser path: on the shipped models two runs that differ only in
their PRNG key share about a fifth of their top-10 sets (docs/results.md, "Stability
selection"). Stability selection (Meinshausen and Bühlmann, JRSS-B 2010) in its
complementary-pairs form (Shah and Samworth, JRSS-B 2013) turns many such answers into one that
does not depend on the path. For each class ``j`` with ``S`` codes::

    for p = 1..P:  split the codes at random into two disjoint halves A_p, B_p of floor(S/2)
    fit the method on every half (F = 2P fits), each with its own key:  scores s_f[C, N]
    selected_f  = the q highest-scoring dimensions of s_f               (q per fit and class)
    pi_ji       = (1/F) sum_f 1[i in selected_f,j]                      (selection probability)
    stable_j    = { i : pi_ji >= pi_thr }                               (1/2 < pi_thr <= 1)
    E[V]       <= q^2 / ((2 pi_thr - 1) N)                              (error_bound)

``V`` counts the stable dimensions that a fit on half the codes selects with probability at most
``q / N``, no more often than a random set of ``q`` would: Shah and Samworth's Theorem 1, which
for complementary pairs holds without Meinshausen and Bühlmann's assumptions (exchangeable noise
dimensions, a selection better than random). The bound is per class.

The ``P`` pairs are independent draws; the two halves of one pair are not. The Monte Carlo
standard error of ``pi`` is therefore the spread of the pair means::

    x_pji = (1[i in selected_{2p}] + 1[i in selected_{2p+1}]) / 2
    se_ji = sd_p(x_pji) / sqrt(P)

Method B (:func:`weight_stability`) fits ``w*`` on every half; Method A
(:func:`apcr_stability`) averages each code's own APCR over every half, at no further model
evaluation. With the same key both use the same halves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from latentjax.analysis import validation
from latentjax.analysis.parallel import as_pytree, auto_mesh, replicate, shard_leading_axis
from latentjax.analysis.sets import top_k_mask
from latentjax.analysis.weights import WeightResult, optimize_weights

#: Key streams: the halves and the fits draw from independent keys.
_HALVES_STREAM, _FITS_STREAM = 0, 1


class Stability(NamedTuple):
    """Selection probabilities of every class and dimension over ``F = 2P`` half-sample fits.

    Attributes:
      probability: ``[C, N]``, ``pi``: the share of fits whose top ``q`` holds the dimension.
      standard_error: ``[C, N]``, the Monte Carlo standard error of ``pi`` over the ``P`` pairs
        (NaN with one pair).
      mean_score: ``[C, N]``, the fits' mean score (``|w|`` for Method B, APCR for Method A):
        the tie-break between equal ``pi``.
      sign: ``[C, N]`` in {-1, 0, 1}: the direction along ``e_i`` that raises ``Q_j``, the
        majority over the fits.
      sign_agreement: ``[C, N]``: the share of fits whose sign is the majority's, in [1/2, 1]
        (NaN where the fits carry no sign of their own, as for Method A).
      stable: ``[C, N]`` boolean, ``pi >= threshold``.
      error_bound: ``[]``, ``q^2 / ((2 threshold - 1) N)``: the bound on the expected number of
        stable dimensions per class that are selected no better than at random.
      fit_scores: ``[F, C, N]``: every fit's signed scores (fits ``2p`` and ``2p + 1`` are the
        two halves of pair ``p``).
      selected: ``[F, C, N]`` boolean: every fit's top ``q``.
      threshold: ``[]``, ``pi_thr``.
    """

    probability: jax.Array
    standard_error: jax.Array
    mean_score: jax.Array
    sign: jax.Array
    sign_agreement: jax.Array
    stable: jax.Array
    error_bound: jax.Array
    fit_scores: jax.Array
    selected: jax.Array
    threshold: jax.Array


def check_stability_options(
    *, num_dims: int, pairs: int | None = None, q: int | None = None, threshold: float | None = None,
    num_codes: int | None = None,
) -> None:
    """Raises ``ValueError`` naming the bad setting, before any model is evaluated (a setting
    left ``None`` is not checked)."""
    for name, value, bounds in (
        ("pairs", pairs, dict(integer=True, low=1)),
        ("q", q, dict(integer=True, low=1, high=num_dims)),
        ("threshold", threshold, dict(low=0.5, high=1, low_open=True)),
    ):
        expected = None if value is None else validation.number_problem(value, **bounds)
        if expected:
            raise ValueError(f"{name}={value!r}: expected {expected}.")
    if num_codes is not None and num_codes < 2:
        raise ValueError(f"{num_codes} codes per class: expected at least 2 (two halves of at least one code).")


def _stable(share, threshold, num_fits):
    """``share >= threshold`` for a share of ``num_fits`` fits, compared as counts: ``pi = k/F``
    must not miss the threshold by a rounding (NumPy or jax arrays)."""
    return share * num_fits >= threshold * num_fits - 1e-4


def _ranking(probability, mean_score, num_fits, xp):
    """``pi`` plus the mean score scaled into ``[0, 1/(2F)]`` per class (``xp``: numpy or
    jax.numpy): orders by ``pi``, ties by the mean score."""
    scale = mean_score.max(axis=-1, keepdims=True)
    tie_break = xp.where(scale > 0, mean_score / xp.where(scale > 0, scale, 1.0), 0.0)
    return probability + tie_break / (2.0 * num_fits)


def stability_bound(q: int, num_dims: int, threshold: float) -> float:
    """The bound on ``E[V]``, stable dimensions selected no better than at random, per class.

    ``E[V] <= q^2 / ((2 pi_thr - 1) N)`` (Shah and Samworth 2013, Theorem 1, with the
    low-probability set at ``q / N``).

    >>> stability_bound(10, 100, 0.75)
    2.0
    >>> round(stability_bound(5, 100, 0.9), 4)
    0.3125
    """
    check_stability_options(q=q, threshold=threshold, num_dims=num_dims)
    return q * q / ((2.0 * threshold - 1.0) * num_dims)


def complementary_halves(key: jax.Array, num_codes: int, pairs: int) -> jax.Array:
    """``[2P, floor(S/2)]`` code indices: rows ``2p`` and ``2p + 1`` split a random permutation
    of the ``S`` codes into two disjoint halves (an odd ``S`` leaves one code out of each pair).

    >>> halves = complementary_halves(jax.random.key(0), 5, 3)
    >>> halves.shape
    (6, 2)
    >>> bool(jnp.all(jnp.sort(jnp.concatenate([halves[0], halves[1]])) != -1))
    True
    >>> len(set(halves[0].tolist()) & set(halves[1].tolist()))
    0
    """
    half = num_codes // 2

    def one_pair(p):
        order = jax.random.permutation(jax.random.fold_in(key, p), num_codes)
        return jnp.stack([order[:half], order[half : 2 * half]])

    return jax.vmap(one_pair)(jnp.arange(pairs)).reshape(2 * pairs, half).astype(jnp.int32)


def class_halves(key: jax.Array, num_classes: int, num_codes: int, pairs: int) -> jax.Array:
    """``[C, 2P, floor(S/2)]``: every class's :func:`complementary_halves`, from
    ``fold_in(key, c)``. :func:`weight_stability` and :func:`apcr_stability` with the same key
    use these halves."""
    halves_key = jax.random.fold_in(key, _HALVES_STREAM)
    return jax.vmap(lambda c: complementary_halves(jax.random.fold_in(halves_key, c), num_codes, pairs))(
        jnp.arange(num_classes)
    )


def selection_stability(
    fit_scores: jax.Array, *, q: int, threshold: float, signed: bool = True,
) -> Stability:
    """Selection probabilities from ``F = 2P`` fits' scores ``[F, C, N]`` (fits ``2p`` and
    ``2p + 1`` the two halves of pair ``p``).

    Each fit selects its ``q`` dimensions of highest ``|score|``; ``pi`` is the share of fits
    that select a dimension (module docstring). ``signed=False``: the scores carry no direction
    (``sign`` 0, ``sign_agreement`` NaN).

    >>> scores = jnp.array([[[0.9, 0.5, 0.1]], [[0.8, 0.1, 0.6]], [[0.7, 0.6, 0.0]], [[-0.9, 0.4, 0.2]]])
    >>> result = selection_stability(scores, q=2, threshold=0.7)
    >>> result.probability.tolist(), result.stable.tolist()
    ([[1.0, 0.75, 0.25]], [[True, True, False]])
    >>> result.sign.tolist(), result.sign_agreement.tolist()
    ([[1.0, 1.0, 1.0]], [[0.75, 1.0, 0.75]])
    """
    fit_scores = jnp.asarray(fit_scores)
    if fit_scores.ndim != 3 or fit_scores.shape[0] < 2 or fit_scores.shape[0] % 2:
        raise ValueError(
            f"fit scores of shape {fit_scores.shape}: expected [F, C, N] with F = 2P >= 2 "
            "(two complementary halves per pair)."
        )
    num_fits, num_classes, num_dims = fit_scores.shape
    check_stability_options(pairs=num_fits // 2, q=q, threshold=threshold, num_dims=num_dims)
    magnitude = jnp.abs(fit_scores)
    selected = jax.vmap(lambda s: top_k_mask(s, q))(magnitude)  # [F, C, N]
    counts = jnp.sum(selected, axis=0)
    probability = counts.astype(jnp.float32) / num_fits
    pair_means = jnp.mean(selected.reshape(num_fits // 2, 2, num_classes, num_dims).astype(jnp.float32), axis=1)
    standard_error = jnp.std(pair_means, axis=0, ddof=1) / jnp.sqrt(num_fits // 2)
    if signed:
        positive = jnp.sum(fit_scores > 0, axis=0)
        negative = jnp.sum(fit_scores < 0, axis=0)
        sign = jnp.sign(positive - negative).astype(jnp.float32)
        sign_agreement = jnp.maximum(positive, negative).astype(jnp.float32) / num_fits
    else:
        sign = jnp.zeros_like(probability)
        sign_agreement = jnp.full_like(probability, jnp.nan)
    stable = _stable(probability, threshold, num_fits)
    return Stability(
        probability=probability,
        standard_error=standard_error,
        mean_score=jnp.mean(magnitude, axis=0),
        sign=sign,
        sign_agreement=sign_agreement,
        stable=stable,
        error_bound=jnp.float32(q * q / ((2.0 * threshold - 1.0) * num_dims)),
        fit_scores=fit_scores,
        selected=selected,
        threshold=jnp.float32(threshold),
    )


def stable_ranking(result: Stability) -> jax.Array:
    """``[C, N]`` scores that order dimensions by ``pi``, ties by the mean score.

    ``pi`` moves in steps of ``1/F``; the mean score, scaled into ``[0, 1/(2F)]`` per class, only
    breaks ties: ``top_k_mask(stable_ranking(r), k)`` is the top ``k`` of ``pi``.

    >>> r = selection_stability(jnp.array([[[0.9, 0.5, 0.1]], [[0.8, 0.1, 0.6]]]), q=2, threshold=1.0)
    >>> r.probability.tolist(), top_k_mask(stable_ranking(r), 2).tolist()
    ([[1.0, 0.5, 0.5]], [[True, False, True]])
    """
    return _ranking(result.probability, result.mean_score, result.fit_scores.shape[0], jnp)


def signed_ranking(result: Stability) -> jax.Array:
    """``[C, N]`` :func:`stable_ranking` with each dimension's ``sign``, scaled into [-1, 1]:
    a vector that reads like Method B's ``w*`` (``|.|`` ranks, the sign gives the direction), so
    every function that takes ``w*`` takes the stable reading."""
    num_fits = result.fit_scores.shape[0]
    sign = jnp.where(result.sign == 0, 1.0, result.sign)
    return sign * stable_ranking(result) / (1.0 + 1.0 / (2.0 * num_fits))


def half_codes(codes: jax.Array, halves: jax.Array) -> jax.Array:
    """``codes[C, S, N]`` taken at ``halves[C, F, h]``: ``[C * F, h, N]``, class-major (row
    ``c * F + f`` is class ``c``'s half ``f``), the code sets of one Method B call."""
    picked = jax.vmap(lambda c, idx: c[idx])(codes, halves)
    return picked.reshape(-1, *picked.shape[2:])


def fit_inputs(codes: jax.Array, key: jax.Array, pairs: int, classes: jax.Array | None = None):
    """``(code_sets[C * F, h, N], keys[C * F], classes[C * F])``: the half-sample fits as the
    code sets of one :func:`latentjax.optimize_weights` call (row ``c * F + f``: class ``c``, fit
    ``f``). Pure and shape-static, so a stack of code sets and keys can be ``vmap``-ped."""
    num_classes, num_codes = codes.shape[:2]
    classes = jnp.arange(num_classes) if classes is None else jnp.asarray(classes, jnp.int32)
    fits = 2 * pairs
    halves = class_halves(key, num_classes, num_codes, pairs)
    fits_key = jax.random.fold_in(key, _FITS_STREAM)
    keys = jax.vmap(lambda r: jax.random.fold_in(fits_key, r))(jnp.arange(num_classes * fits))
    return half_codes(jnp.asarray(codes), halves), keys, jnp.repeat(classes, fits)


def weight_fits(
    generate: Callable[[jax.Array], jax.Array],
    classify: Callable[[jax.Array], jax.Array],
    codes: jax.Array,
    key: jax.Array,
    *,
    pairs: int = 8,
    classes: jax.Array | None = None,
    **method_b,
) -> WeightResult:
    """The ``F = 2P`` half-sample fits of Method B behind :func:`weight_stability`.

    ``codes[C, S, N]`` with one ``key``, or a stack ``codes[A, C, S, N]`` with one key per
    analysis (``key[A]``, e.g. one per analysis seed): every analysis's fits are the same as
    alone, and all of them are the rows of one program.

    With the device loop (``loop='device'``, or ``'auto'`` off CPU) and several local devices,
    the fits are split over them (each device runs its share of the rows; the numbers are those
    of one device). On CPU the host loop deals groups of fits to the cores instead.

    Returns :class:`latentjax.WeightResult` with the fits on an axis after the stack's:
    ``weights[(A,) F, C, N]``, ``losses[(A,) F, C, steps]`` and, with ``snapshot_steps``,
    ``snapshots[(A,) F, C, T, N]`` (each snapshot's :func:`selection_stability` is that of a run
    of that many steps).

    >>> import jax, jax.numpy as jnp
    >>> codes = jax.random.normal(jax.random.key(0), (2, 6, 3))
    >>> classify = lambda x: jax.nn.softmax(jnp.stack([x[:, 0], -x[:, 0]], -1))
    >>> weight_fits(lambda z: z, classify, codes, jax.random.key(1), pairs=2, steps=3, loop="device").weights.shape
    (4, 2, 3)
    """
    validation.check_codes(codes)
    stacked = jnp.ndim(codes) == 4
    if jnp.ndim(codes) not in (3, 4):
        raise ValueError(f"codes of shape {jnp.shape(codes)}: expected [C, S, N], or [A, C, S, N] with keys [A].")
    num_classes, num_codes, num_dims = jnp.shape(codes)[-3:]
    check_stability_options(pairs=pairs, num_dims=num_dims, num_codes=num_codes)
    codes = jnp.asarray(codes) if stacked else jnp.asarray(codes)[None]
    keys_in = key if stacked else jnp.asarray(key)[None]
    if jnp.shape(keys_in)[0] != codes.shape[0]:
        raise ValueError(f"key of shape {jnp.shape(key)}: expected one key per analysis ({codes.shape[0]}).")
    fits = 2 * pairs
    flat = lambda x: x.reshape(-1, *x.shape[2:])
    code_sets, keys, fit_classes = (
        flat(x) for x in jax.vmap(lambda c, k: fit_inputs(c, k, pairs, classes))(codes, keys_in)
    )
    device_loop = method_b.get("loop", "auto") == "device" or (
        method_b.get("loop", "auto") == "auto" and jax.default_backend() != "cpu"
    )
    mesh = auto_mesh(generate, classify, code_sets, keys) if device_loop else None
    if mesh is not None and code_sets.shape[0] % mesh.size == 0:
        # The fits are independent rows of one vmapped program: each device runs its share.
        generate, classify = replicate(mesh, as_pytree(generate), as_pytree(classify))
        code_sets, keys, fit_classes = shard_leading_axis((code_sets, keys, fit_classes), mesh)
    result = optimize_weights(generate, classify, code_sets, keys, classes=fit_classes, **method_b)
    # Rows [A * C * F, ...] -> [A, F, C, ...] (without the stack: [F, C, ...]).
    fits_first = lambda x: jnp.swapaxes(x.reshape(codes.shape[0], num_classes, fits, *x.shape[1:]), 1, 2)
    unstack = (lambda x: x) if stacked else (lambda x: x[0])
    return WeightResult(*(None if x is None else unstack(fits_first(x)) for x in result))


def weight_stability(
    generate: Callable[[jax.Array], jax.Array],
    classify: Callable[[jax.Array], jax.Array],
    codes: jax.Array,
    key: jax.Array,
    *,
    pairs: int = 8,
    q: int = 10,
    threshold: float = 0.8,
    classes: jax.Array | None = None,
    **method_b,
) -> Stability:
    """Method B as stability selection: ``2P`` fits of ``w*`` per class, each on half the codes.

    All ``C * 2P`` fits are the code sets of one :func:`latentjax.optimize_weights` call
    (:func:`weight_fits`), so they are one batch axis of one compiled program (``vmap``; on
    CPU, groups dealt to the cores).

    Args:
      generate, classify: as in :func:`latentjax.optimize_weights`.
      codes: ``[C, S, N]``, the code sets ``Z_j``.
      key: PRNG key: the halves come from one stream of it (the same halves as
        :func:`apcr_stability` with this key), each fit's key from another.
      pairs: ``P``, complementary pairs (``F = 2P`` fits per class).
      q: dimensions each fit selects (its top ``q`` by ``|w|``).
      threshold: ``pi_thr`` in (1/2, 1].
      classes: ``[C]`` class of each code set (default ``arange(C)``).
      **method_b: every other option of :func:`latentjax.optimize_weights` (``steps``,
        ``batch_size``, ``learning_rate``, ...), for each fit.

    Returns:
      :class:`Stability`; ``fit_scores[F, C, N]`` are the fits' ``w*``.

    >>> import jax, jax.numpy as jnp
    >>> generate = lambda z: z
    >>> classify = lambda x: jax.nn.softmax(jnp.stack([4 * x[:, 1], -4 * x[:, 1]], -1))
    >>> codes = jax.random.normal(jax.random.key(0), (2, 16, 3))
    >>> result = weight_stability(generate, classify, codes, jax.random.key(1), pairs=2, q=1,
    ...                           threshold=0.9, steps=40, batch_size=4, learning_rate=0.05,
    ...                           loop="device")  # one compiled scan: the quicker compile for a toy
    >>> result.probability.tolist(), result.stable.tolist()
    ([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]], [[False, True, False], [False, True, False]])
    """
    num_dims = jnp.shape(codes)[-1] if jnp.ndim(codes) else 0
    check_stability_options(pairs=pairs, q=q, threshold=threshold, num_dims=num_dims)
    if method_b.get("snapshot_steps"):
        raise ValueError("snapshot_steps: not with weight_stability (one answer per class); use weight_fits.")
    fits = weight_fits(generate, classify, codes, key, pairs=pairs, classes=classes, **method_b)
    return selection_stability(fits.weights, q=q, threshold=threshold)


def apcr_stability(
    per_code: jax.Array, key: jax.Array, *, pairs: int = 8, q: int = 10, threshold: float = 0.8,
    directions: jax.Array | None = None,
) -> Stability:
    """Method A as stability selection: APCR averaged over each half of the codes, no model call.

    Args:
      per_code: ``[S, N, C]``, every code's own APCR (:attr:`latentjax.APCRResult.per_code`).
      key: the halves' key (the same halves as :func:`weight_stability` with this key).
      pairs, q, threshold: as in :func:`weight_stability`.
      directions: ``[N, C]``, Method A's directions on all codes
        (:attr:`latentjax.APCRResult.directions`); they become ``sign`` (APCR per half carries
        no sign, so ``sign_agreement`` is NaN).

    Every code moves its class through dimension 2, one code through dimension 0 six times as
    much: the half that holds that code ranks dimension 0 first, its complement dimension 2.

    >>> per_code = jnp.zeros((8, 3, 1)).at[:, 2, 0].set(1.0).at[0, 0, 0].set(6.0)
    >>> apcr_stability(per_code, jax.random.key(0), pairs=4, q=1, threshold=0.9).probability.tolist()
    [[0.5, 0.0, 0.5]]
    """
    per_code = jnp.asarray(per_code)
    if per_code.ndim != 3:
        raise ValueError(f"per_code of shape {per_code.shape}: expected [S, N, C] (APCRResult.per_code).")
    num_codes, num_dims, num_classes = per_code.shape
    check_stability_options(pairs=pairs, q=q, threshold=threshold, num_dims=num_dims, num_codes=num_codes)
    halves = class_halves(key, num_classes, num_codes, pairs)  # [C, F, h]
    by_class = jnp.transpose(per_code, (2, 0, 1))  # [C, S, N]
    means = jax.vmap(lambda c, idx: jnp.mean(c[idx], axis=1))(by_class, halves)  # [C, F, N]
    result = selection_stability(jnp.swapaxes(means, 0, 1), q=q, threshold=threshold, signed=False)
    if directions is not None:
        result = result._replace(sign=jnp.asarray(directions, jnp.float32).T)
    return result


def stability_summary(result: Stability, class_names=None, *, limit: int | None = None) -> list[dict]:
    """Per class, the dimensions by :func:`stable_ranking` with their ``pi``, standard error,
    sign and whether they are stable: JSON-ready (``limit``: the first ``limit`` of each)."""
    probability, error = np.asarray(result.probability), np.asarray(result.standard_error)
    sign, agreement, stable = np.asarray(result.sign), np.asarray(result.sign_agreement), np.asarray(result.stable)
    order = np.argsort(-np.asarray(stable_ranking(result)), axis=-1, kind="stable")
    rows = []
    for j, dims in enumerate(order):
        dims = dims[:limit] if limit else dims
        rows.append({
            "class": j if class_names is None else class_names[j],
            "stable": np.flatnonzero(stable[j]).tolist(),
            "dimensions": [
                {
                    "dim": int(i), "probability": float(probability[j, i]),
                    "standard_error": None if np.isnan(error[j, i]) else float(error[j, i]),
                    "sign": int(sign[j, i]),
                    "sign_agreement": None if np.isnan(agreement[j, i]) else float(agreement[j, i]),
                    "stable": bool(stable[j, i]),
                }
                for i in dims
            ],
        })
    return rows


def _pair_means(result: Stability) -> tuple[np.ndarray, np.ndarray]:
    """Per pair, the share of its two fits selecting each dimension and their mean ``|score|``."""
    selected = np.asarray(result.selected, np.float64)
    magnitude = np.abs(np.asarray(result.fit_scores, np.float64))
    pairs = selected.shape[0] // 2
    halve = lambda x: x.reshape(pairs, 2, *x.shape[1:]).mean(axis=1)
    return halve(selected), halve(magnitude)


def _sets(probability, mean_score, threshold, num_fits, k):
    """``(stable, top_k)`` masks from ``pi`` and mean scores (leading axes kept), by the rules
    of :func:`selection_stability` and :func:`stable_ranking`."""
    ranking = _ranking(probability, mean_score, num_fits, np)
    order = np.argsort(-ranking, axis=-1, kind="stable")[..., :k]
    top = np.zeros(probability.shape, bool)
    np.put_along_axis(top, order, True, axis=-1)
    return _stable(probability, float(threshold), num_fits), top


def stable_set_agreement(
    first: Stability, second: Stability, *, k: int, high: np.ndarray | None = None,
    num_resamples: int = 1000, confidence: float = 0.95, seed: int = 0,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """How two methods' stability selections agree, per class, with bootstrap intervals.

    Measures (each ``(value[C], low[C], high[C])``):

    - ``size_first``, ``size_second``: ``|S_1|``, ``|S_2|``, the stable sets' sizes;
    - ``overlap``: ``|S_1 ∩ S_2|``;
    - ``top_k_ratio``: ``|H ∩ top_k(pi_2)| / k`` (Table 1 read on ``pi``), ``H`` = ``high`` when
      given (a fixed ``[C, N]`` mask, e.g. Method A's top ``k`` on all codes), else
      ``top_k(pi_1)``.

    The interval resamples the ``P`` pairs with replacement, the same pairs for both (with one
    key the two methods' pair ``p`` saw the same halves), and takes percentiles: the Monte Carlo
    and half-sample variability of the answer for these codes, not that of another draw of codes.

    >>> r = selection_stability(jnp.array([[[0.9, 0.5, 0.1]], [[0.8, 0.1, 0.6]]] * 2), q=1, threshold=0.9)
    >>> table = stable_set_agreement(r, r, k=1)
    >>> {name: table[name][0].tolist() for name in ("size_first", "size_second", "overlap", "top_k_ratio")}
    {'size_first': [1.0], 'size_second': [1.0], 'overlap': [1.0], 'top_k_ratio': [1.0]}
    """
    if first.selected.shape != second.selected.shape:
        raise ValueError(
            f"fits of shapes {first.selected.shape} and {second.selected.shape}: expected the same [F, C, N]."
        )
    expected = validation.number_problem(num_resamples, integer=True, low=1) or validation.number_problem(
        confidence, low=0, high=1, low_open=True, high_open=True
    )
    if expected:
        raise ValueError(f"num_resamples={num_resamples!r}, confidence={confidence!r}: expected {expected}.")
    num_fits = first.selected.shape[0]
    pairs = num_fits // 2
    rng = np.random.default_rng(seed)
    picks = np.concatenate([np.arange(pairs)[None], rng.integers(0, pairs, (num_resamples, pairs))])
    sets = []
    for result in (first, second):
        share, magnitude = _pair_means(result)
        sets.append(_sets(share[picks].mean(axis=1), magnitude[picks].mean(axis=1), result.threshold, num_fits, k))
    (stable_1, top_1), (stable_2, top_2) = sets
    reference = top_1 if high is None else np.broadcast_to(np.asarray(high, bool), top_1.shape)
    values = {
        "size_first": stable_1.sum(-1), "size_second": stable_2.sum(-1),
        "overlap": (stable_1 & stable_2).sum(-1), "top_k_ratio": (reference & top_2).sum(-1) / k,
        "stable_second_in_high": (reference & stable_2).sum(-1),
    }
    # The class mean of each measure, from the same resamples: its interval, not a mean of intervals.
    values.update({f"{name}_class_mean": x.mean(axis=-1) for name, x in list(values.items())})
    tail = (1.0 - confidence) / 2.0
    return {
        name: (x[0].astype(float), *np.quantile(x[1:].astype(float), [tail, 1.0 - tail], axis=0))
        for name, x in values.items()
    }
