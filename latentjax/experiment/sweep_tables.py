"""A sweep's numbers as tables: per class and cell, per seed, per finder, with their intervals.

Reads the cell records a sweep wrote (``cells/*.json``) and writes nothing itself.
"""

from __future__ import annotations

import csv
import io
import os

import numpy as np

from latentjax import data
from latentjax.analysis.statistics import bootstrap_interval, mean_and_intervals
from latentjax.experiment import stages
from latentjax.experiment.summaries import FINDER_MEASURES

METHODS = ("apcr", "weights")
SET_NAMES = stages.SET_NAMES


def cell_name(index: int) -> str:
    return f"cell{index:03d}"


def to_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def summarize(config, records: list[dict]) -> tuple[list[dict], list[dict], list[dict]]:
    """The tidy table (cell x class), the per-seed rows and the per-cell class means."""
    sw = config.sweep
    names = data.dataset_spec(config.dataset).class_names
    boot = dict(num_resamples=sw.bootstrap_resamples, confidence=sw.confidence)
    table, seed_rows, cells = [], [], []
    for record in records:
        settings = {"cell": cell_name(record["index"]), **record["cell"]}
        ir = np.asarray(record["ir"], np.float64)  # [M, A, C]
        flips = {f"flip_{m}_{s}": np.asarray(record["flip"][m][s]) for m in METHODS for s in SET_NAMES}
        jac = {f"jaccard_{m}": np.asarray(record["jaccard"][m], np.float64) for m in METHODS}  # [M, C]
        # Stability selection's stable sets: sizes and overlap, [M, A, C] (absent without it).
        stable = {f"stable_{k}": np.asarray(v, np.float64) for k, v in record.get("stable", {}).items()}
        _, intervals = mean_and_intervals(ir, seed=record["index"], **boot)
        for j, name in enumerate(names):
            row = {**settings, "class": j, "class_name": name, "ir_mean": ir[..., j].mean()}
            for over, (low, high) in intervals.items():
                row[f"ir_{over}_low"], row[f"ir_{over}_high"] = low[j], high[j]
            row["ir_sd_analysis"] = ir[..., j].std(axis=1).mean()
            row.update({k: v[:, j].mean() for k, v in jac.items()})
            row.update({k: v[..., j].mean() for k, v in flips.items()})
            row.update({k: v[..., j].mean() for k, v in stable.items()})
            row["model_seeds"], row["analysis_seeds"] = ir.shape[:2]
            table.append(_rounded(row))
        for m, model in enumerate(record["models"]):
            for a, seed in enumerate(record["analysis_seeds"]):
                for j in range(ir.shape[2]):
                    seed_rows.append(_rounded({
                        **settings, "model": model, "analysis_seed": seed, "class": j,
                        "ir": ir[m, a, j], **{k: v[m, a, j] for k, v in flips.items()},
                    }))
        class_mean = ir.mean(axis=2)  # [M, A]
        mean, intervals = mean_and_intervals(class_mean, seed=record["index"], **boot)
        summary = {**settings, "ir_mean": mean}
        for over, (low, high) in intervals.items():
            summary[f"ir_{over}_low"], summary[f"ir_{over}_high"] = low, high
        # A percentile bootstrap over two or three seeds is their range; a Student t interval
        # says how little so few seeds pin down.
        summary["ir_analysis_t_low"], summary["ir_analysis_t_high"] = t_interval(
            class_mean.mean(axis=0), sw.confidence
        )
        # Variance decomposition of the class-mean IR: between models, and within a model.
        summary["ir_sd_between_models"] = class_mean.mean(axis=1).std() if ir.shape[0] > 1 else float("nan")
        summary["ir_sd_between_analysis_seeds"] = class_mean.std(axis=1).mean() if ir.shape[1] > 1 else float("nan")
        summary.update({k: v.mean() for k, v in jac.items()})  # NaN with one analysis seed
        for k, v in jac.items():
            low, high = _class_interval(v.mean(axis=0), record["index"], boot)
            summary[f"{k}_low"], summary[f"{k}_high"] = low, high
        summary.update({k: v.mean() for k, v in flips.items()})
        for k, v in stable.items():  # the class mean, with its intervals over each kind of seed
            mean, stable_intervals = mean_and_intervals(v.mean(axis=2), seed=record["index"], **boot)
            summary[k] = mean
            for over, (low, high) in stable_intervals.items():
                summary[f"{k}_{over}_low"], summary[f"{k}_{over}_high"] = low, high
        summary["minutes"] = record["group_seconds"] / 60.0
        cells.append(_rounded(summary))
    return table, seed_rows, cells


def summarize_finders(config, records: list[dict]) -> list[dict]:
    """``finders.csv``: per cell, finder and distance, each measure's class mean with its
    intervals over model seeds and over analysis seeds (empty when no cell compared finders)."""
    sw = config.sweep
    boot = dict(num_resamples=sw.bootstrap_resamples, confidence=sw.confidence)
    rows = []
    for record in records:
        finders = record.get("finders")
        if not finders:
            continue
        settings = {"cell": cell_name(record["index"]), **record["cell"]}
        means = {
            (mode, measure): np.asarray(finders[mode][measure], np.float64).mean(axis=3)  # [M, A, F, T]
            for mode, measures in FINDER_MEASURES.items() for measure in measures
        }
        summaries = {key: mean_and_intervals(v, seed=record["index"], **boot) for key, v in means.items()}
        for f, name in enumerate(finders["names"]):
            for t, distance in enumerate(finders["distances"]):
                row = {**settings, "finder": name, "distance": distance}
                for (mode, measure), (mean, intervals) in summaries.items():
                    column = f"{mode}_{measure}"
                    row[column] = mean[f, t]
                    for over, (low, high) in intervals.items():
                        row[f"{column}_{over}_low"], row[f"{column}_{over}_high"] = low[f, t], high[f, t]
                row["model_seeds"], row["analysis_seeds"] = means[("same", "flip_rate")].shape[:2]
                rows.append(_rounded(row))
    return rows


def t_interval(values, confidence: float = 0.95) -> tuple[float, float]:
    """Student t interval of the mean of ``values`` (NaNs for fewer than two).

    >>> [round(x, 3) for x in t_interval([0.5, 0.6], 0.95)]
    [-0.085, 1.185]
    """
    from scipy import stats  # scikit-learn's dependency: the report extra

    values = np.asarray(values, np.float64)
    n = values.size
    if n < 2:
        return float("nan"), float("nan")
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * values.std(ddof=1) / np.sqrt(n)
    return float(values.mean() - half), float(values.mean() + half)


def _class_interval(per_class: np.ndarray, seed: int, boot: dict) -> tuple[float, float]:
    """Interval of a class mean from resampling the classes (for the set-stability curves)."""
    if not np.all(np.isfinite(per_class)):
        return float("nan"), float("nan")
    low, high = bootstrap_interval(per_class[None, :, None], "analysis", seed=seed, **boot)
    return float(low[0]), float(high[0])


def _rounded(row: dict) -> dict:
    def value(v):
        if isinstance(v, (np.floating, float)):
            return round(float(v), 6)
        if isinstance(v, np.integer):
            return int(v)
        if isinstance(v, np.ndarray) and v.ndim == 0:
            return value(v.item())
        return v
    return {k: value(v) for k, v in row.items()}


def read_table(path: str | os.PathLike) -> list[dict]:
    """A sweep's ``table.csv`` (or ``cells.csv``, ``seeds.csv``) as a list of dicts of strings."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))

