"""Bootstrap intervals for results repeated over seeds (NumPy: small arrays, no device work).

A sweep repeats every cell over model seeds ``M`` and analysis seeds ``A``, giving values
``x[M, A, ...]``. Two sources of variance, two intervals for the grand mean
``mean_{m, a} x[m, a]``:

- over model seeds: resample the ``M`` models with replacement, keep each model's seeds;
- over analysis seeds: for every model, resample its ``A`` seeds with replacement.

Each interval is the percentile bootstrap: the ``(1 - confidence) / 2`` and
``(1 + confidence) / 2`` quantiles of the resampled grand means.
"""

from __future__ import annotations

import numpy as np

from latentjax.analysis.validation import number_problem

#: The axes of ``values[M, A, ...]`` that :func:`bootstrap_interval` can resample.
AXES = ("model", "analysis")


def bootstrap_interval(
    values,
    over: str,
    *,
    num_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of ``values.mean(axis=(0, 1))`` over one kind of seed.

    Args:
      values: ``[M, A, ...]``, one value per model seed and analysis seed (trailing axes, e.g.
        classes, are kept: each gets its own interval, from the same resamples).
      over: ``'model'`` (resample axis 0) or ``'analysis'`` (resample axis 1 within each model).
      num_resamples, confidence: the bootstrap. seed: its NumPy generator (same seed, same
        interval).

    Returns:
      ``(low, high)``, each of shape ``values.shape[2:]``. An axis of size 1 gives the point
      interval ``low = high = mean``: one seed says nothing about that variance.

    >>> low, high = bootstrap_interval(np.array([[0.0], [1.0]]), "model")
    >>> float(low), float(high)
    (0.0, 1.0)
    """
    values = np.asarray(values, np.float64)
    if values.ndim < 2:
        raise ValueError(f"values of shape {values.shape}: expected [model seeds, analysis seeds, ...].")
    if over not in AXES:
        raise ValueError(f"over={over!r}: expected one of {AXES}.")
    for name, value, bounds in (
        ("confidence", confidence, dict(low=0, high=1, low_open=True, high_open=True)),
        ("num_resamples", num_resamples, dict(integer=True, low=1)),
    ):
        expected = number_problem(value, **bounds)
        if expected:
            raise ValueError(f"{name}={value!r}: expected {expected}.")
    if not np.all(np.isfinite(values)):
        raise ValueError("values contain NaN or infinity: expected finite numbers.")
    rng = np.random.default_rng(seed)
    models, seeds = values.shape[:2]
    if over == "model":
        picks = rng.integers(0, models, (num_resamples, models))
        means = values[picks].mean(axis=(1, 2))  # [R, ...]
    else:
        picks = rng.integers(0, seeds, (num_resamples, models, seeds))
        rows = np.arange(models)[None, :, None]
        means = values[rows, picks].mean(axis=(1, 2))
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail], axis=0)
    return low, high


def mean_and_intervals(
    values,
    overs: tuple[str, ...] = AXES,
    *,
    num_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The grand mean of ``values[M, A, ...]`` and its :func:`bootstrap_interval` over each kind
    of seed in ``overs``, all from one generator seed.

    The resamples depend only on ``M``, ``A``, ``num_resamples`` and ``seed``, so a slice of the
    trailing axes (one finder, one class) gets the interval it would get on its own.

    >>> mean, intervals = mean_and_intervals(np.array([[[0.0, 2.0]], [[1.0, 2.0]]]), ("model",))
    >>> mean.tolist(), [x.tolist() for x in intervals["model"]]
    ([0.5, 2.0], [[0.0, 2.0], [1.0, 2.0]])
    """
    values = np.asarray(values, np.float64)
    boot = dict(num_resamples=num_resamples, confidence=confidence, seed=seed)
    intervals = {over: bootstrap_interval(values, over, **boot) for over in overs}
    return values.mean(axis=(0, 1)), intervals
