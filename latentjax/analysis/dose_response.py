"""The manipulation claim as a dose–response: how many codes change class, and how cleanly, as
the shift grows.

A flip rate at one strength cannot tell a concept change from a broken image: an image smeared
into noise also leaves its class. So for codes moved by strengths ``alpha`` (or L2 distances)
along a set's direction, each moved code is scored twice (:func:`flip_outcomes`):

- **flip** (same class ``j``): the decision leaves ``j``; (cross, towards ``t``): it becomes
  ``t``;
- **clean flip**: a flip that lands with confidence: the class reached (the argmax; in the cross
  mode ``t``) has probability ``>= tau``, the confidence the latent sets demand of a class's own
  codes (attributes: ``Q_j <= 1 - tau`` for a same-class flip, ``Q_t >= tau`` for a cross one).

and the curves over ``alpha`` are summarised (:func:`dose_response`) by their mean, a percentile
bootstrap interval over analysis seeds and codes (both resampled: seeds with replacement, then
each seed's codes with replacement, every code keeping its whole curve), and ``alpha_50``, the
strength at which half the codes have flipped (:func:`half_point`; linear between grid points,
``inf`` when the largest strength does not reach half).

>>> import numpy as np
>>> alphas = np.array([0.0, 1.0, 2.0, 3.0])
>>> half_point(alphas, np.array([0.0, 0.25, 0.75, 1.0]))
1.5
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from latentjax.analysis.outputs import decisions


def flip_outcomes(
    probabilities: jax.Array, classes: jax.Array, *, mode: str = "same", threshold: float = 0.9,
    independent: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """``(flip, clean)``, ``bool[..., M]`` each, for moved codes' ``probabilities[..., M, K]``.

    ``classes[...]`` (broadcast against the leading axes): the source class ``j`` (``mode='same'``:
    a flip leaves it) or the target ``t`` (``mode='cross'``: a flip reaches it). A clean flip also
    lands with probability ``>= threshold`` (attributes: ``Q_j <= 1 - threshold`` for
    ``'same'``). ``independent``: the outputs are attributes
    (:func:`~latentjax.analysis.outputs.attribute_classifier`).

    >>> import jax.numpy as jnp
    >>> p = jnp.array([[0.05, 0.95], [0.4, 0.6], [0.9, 0.1]])  # three codes of class 0, moved
    >>> flip, clean = flip_outcomes(p, jnp.int32(0))
    >>> flip.tolist(), clean.tolist()
    ([True, True, False], [True, False, False])
    """
    if mode not in ("same", "cross"):
        raise ValueError(f"mode={mode!r}: expected 'same' or 'cross'.")
    probabilities = jnp.asarray(probabilities)
    index = jnp.broadcast_to(jnp.asarray(classes, jnp.int32)[..., None, None], probabilities.shape[:-1] + (1,))
    q = jnp.take_along_axis(probabilities, index, axis=-1)[..., 0]  # [..., M]: Q of the class
    decided = jnp.take_along_axis(decisions(probabilities, independent), index, axis=-1)[..., 0]
    if mode == "cross":
        return decided, decided & (q >= threshold)
    flip = ~decided
    if independent:
        return flip, q <= 1.0 - threshold
    return flip, flip & (jnp.max(probabilities, axis=-1) >= threshold)


def half_point(alphas, rate) -> float:
    """The smallest ``alpha >= 0`` at which ``rate`` reaches 0.5, linear between grid points
    (``inf`` when it never does): ``alpha_50``.

    ``alphas[A]`` ascending; ``rate[A]``. Only ``alpha >= 0`` counts (the manipulation's grid is
    symmetric; negative strengths move the other way).

    >>> half_point([-1.0, 0.0, 1.0], [0.9, 0.0, 0.4])
    inf
    >>> half_point([0.0, 2.0], [0.0, 1.0])
    1.0
    """
    alphas, rate = np.asarray(alphas, np.float64), np.asarray(rate, np.float64)
    keep = alphas >= 0
    alphas, rate = alphas[keep], rate[keep]
    above = np.flatnonzero(rate >= 0.5)
    if not above.size:
        return float("inf")
    i = int(above[0])
    if i == 0:
        return float(alphas[0])
    a0, a1, r0, r1 = alphas[i - 1], alphas[i], rate[i - 1], rate[i]
    return float(a0 + (0.5 - r0) / (r1 - r0) * (a1 - a0))


class DoseResponse(NamedTuple):
    """A flip-rate curve over strengths with its uncertainty (module docstring).

    Attributes:
      alphas: ``[A]``. rate: ``[A]``, the share of codes (over seeds, classes and codes) that
        flipped. low, high: ``[A]``, its bootstrap interval. alpha_50: the strength at which
        ``rate`` reaches one half (``inf``: not within the grid); alpha_50_low, alpha_50_high:
        its interval (a bound at ``inf`` means that many resamples do not reach one half).
    """

    alphas: np.ndarray
    rate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    alpha_50: float
    alpha_50_low: float
    alpha_50_high: float


def dose_response(
    hits, alphas, *, num_resamples: int = 2000, confidence: float = 0.95, seed: int = 0,
) -> DoseResponse:
    """The pooled curve of ``hits[S, C, A, M]`` (analysis seeds, classes, strengths, codes; bool
    or 0/1) over ``alphas[A]``, with percentile bootstrap intervals over seeds and codes.

    Each resample draws ``S`` seeds with replacement and, for each drawn seed and class, ``M``
    codes with replacement; a code keeps its whole curve, so the interval of ``alpha_50`` comes
    from the same resamples as the curve's. With one seed only the codes are resampled.

    >>> import numpy as np
    >>> hits = np.zeros((2, 1, 3, 4), bool)
    >>> hits[:, :, 2] = True                     # every code flips at the largest strength
    >>> hits[:, :, 1, :2] = True                 # half of them already at the middle one
    >>> r = dose_response(hits, [0.0, 1.0, 2.0])
    >>> r.rate.tolist(), r.alpha_50
    ([0.0, 0.5, 1.0], 1.0)
    """
    hits = np.asarray(hits, np.float64)
    alphas = np.asarray(alphas, np.float64)
    if hits.ndim != 4 or hits.shape[2] != alphas.shape[0]:
        raise ValueError(
            f"hits of shape {hits.shape} and {alphas.shape[0]} alphas: expected [seeds, classes, "
            f"{alphas.shape[0]} strengths, codes]."
        )
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence!r}: expected a number in (0, 1).")
    seeds, classes, _, codes = hits.shape
    rng = np.random.default_rng(seed)
    picked_seeds = rng.integers(0, seeds, (num_resamples, seeds))  # [R, S]
    picked_codes = rng.integers(0, codes, (num_resamples, seeds, classes, codes))  # [R, S, C, M]
    per_code = np.moveaxis(hits, 2, -1)  # [S, C, M, A]
    drawn = per_code[
        picked_seeds[:, :, None, None], np.arange(classes)[None, None, :, None], picked_codes
    ]  # [R, S, C, M, A]
    curves = drawn.mean(axis=(1, 2, 3))  # [R, A]
    rate = hits.mean(axis=(0, 1, 3))
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(curves, [tail, 1.0 - tail], axis=0)
    halves = np.array([half_point(alphas, c) for c in curves])
    # inf sorts last, so a bound is inf exactly when that share of resamples never reaches half.
    half_low, half_high = np.quantile(halves, [tail, 1.0 - tail], method="inverted_cdf")
    return DoseResponse(alphas, rate, low, high, half_point(alphas, rate), float(half_low), float(half_high))
