"""Table 1 read on selection probabilities: both methods' stable sets, their sizes and overlap.

The paper's reading compares Method A's top ``K`` with Method B's top ``K`` (now the top ``K`` of
``pi``, ties by mean ``|w|``). The identifiable reading compares what each method singles out
whatever the subsample and the key: its stable set ``{i : pi_ji >= pi_thr}``, per class, with
bootstrap intervals over the complementary pairs
(:func:`latentjax.analysis.stability.stable_set_agreement`).
"""

from __future__ import annotations

import numpy as np

from latentjax.analysis.stability import Stability, stability_summary, stable_set_agreement
from latentjax.experiment import stages

#: The identifiable table's measures, in the order the report prints them.
MEASURES = ("size_first", "size_second", "overlap", "top_k_ratio", "stable_second_in_high")


def _seed(result: Stability, index: int) -> Stability:
    return Stability(*(np.asarray(x)[index] for x in result))


def summarize_stability(a, apcr, weights: stages.MethodB, high, class_names, *, confidence: float = 0.95) -> dict:
    """JSON-ready: settings, per seed and class both methods' stable sets and top ``K`` with
    ``pi``, and the identifiable table (per class, mean over seeds, interval of the first seed).

    ``high[seeds, C, N]``: Method A's top ``K`` on all codes (Table 1's ``H``).
    """
    selection = stages.stability_settings(a)
    apcr_result, weight_result = stages.apcr_stabilities(selection, a.seeds, apcr), weights.stability
    seeds = list(a.seeds)
    per_seed, tables = {}, []
    for index, seed in enumerate(seeds):
        first, second = _seed(apcr_result, index), _seed(weight_result, index)
        table = stable_set_agreement(
            first, second, k=a.k, high=np.asarray(high[index]), confidence=confidence, seed=seed
        )
        tables.append(table)
        per_seed[str(seed)] = {
            "apcr": stability_summary(first, class_names, limit=a.k),
            "weights": stability_summary(second, class_names, limit=a.k),
            **{name: {"value": np.asarray(v).tolist(), "low": np.asarray(lo).tolist(), "high": np.asarray(hi).tolist()}
               for name, (v, lo, hi) in table.items()},
        }
    fits = int(np.asarray(weight_result.fit_scores).shape[1])
    return {
        "pairs": fits // 2,
        "fits": fits,
        "q": selection.q,
        "threshold": float(selection.threshold),
        "error_bound": float(np.asarray(weight_result.error_bound).reshape(-1)[0]),
        "confidence": confidence,
        "per_seed": per_seed,
        "mean_per_class": {
            name: np.mean([table[name][0] for table in tables], axis=0).tolist() for name in MEASURES
        },
        "class_mean": {
            name: {"value": float(np.mean([t[f"{name}_class_mean"][0] for t in tables])),
                   "low": float(tables[0][f"{name}_class_mean"][1]), "high": float(tables[0][f"{name}_class_mean"][2])}
            for name in MEASURES
        },
    }


def table_lines(stability: dict, class_names) -> list[str]:
    """The identifiable table for the terminal: per class both stable sets' sizes and their
    overlap (first seed, with its interval), and Method B's stable dimensions with ``pi``."""
    seed = next(iter(stability["per_seed"]))
    row = stability["per_seed"][seed]
    lines = [
        f"Stable sets (pi >= {stability['threshold']:g} over {stability['fits']} half-sample fits, "
        f"q = {stability['q']}; E[false per class] <= {stability['error_bound']:.2f}; seed {seed}, "
        f"{round(100 * stability['confidence'])}% intervals over pairs): class, |A|, |B|, overlap, B's stable dims (pi)"
    ]
    interval = lambda name, j: f"{row[name]['value'][j]:.0f} [{row[name]['low'][j]:.0f}, {row[name]['high'][j]:.0f}]"
    for j, name in enumerate(class_names):
        dims = [d for d in row["weights"][j]["dimensions"] if d["stable"]]
        listed = " ".join(f"{d['dim']}({d['probability']:.2f})" for d in dims) or "-"
        lines.append(
            f"  {j} {name:<12} {interval('size_first', j):>10} {interval('size_second', j):>10} "
            f"{interval('overlap', j):>10}   {listed}"
        )
    return lines


def table1_cells(results: dict) -> tuple[str, list[str], str]:
    """Table 1's "ours" column as text: ``(what it shows, per class, the class mean)``.

    With stability selection: each class's ratio with its interval over the complementary pairs
    (first seed; the mean over seeds when there are several); else the mean ± sd over seeds.
    """
    ir, st = results["intersection_ratio"], results.get("stability")
    if st:
        seed = next(iter(st["per_seed"]))
        row, mean = st["per_seed"][seed]["top_k_ratio"], st["class_mean"]["top_k_ratio"]
        several = len(st["per_seed"]) > 1
        cells = [
            f"{ir['mean_per_class'][j]:.2f} [{row['low'][j]:.2f}, {row['high'][j]:.2f}]" for j in range(len(row["value"]))
        ]
        what = (f"{'mean over seeds, ' if several else ''}{round(100 * st['confidence'])}% interval over the "
                f"{st['pairs']} pairs{' of seed ' + seed if several else ''}")
        return what, cells, f"{ir['mean']:.2f} [{mean['low']:.2f}, {mean['high']:.2f}]"
    cells = [f"{m:.2f} ± {sd:.2f}" for m, sd in zip(ir["mean_per_class"], ir["std_per_class"])]
    return "mean ± sd over seeds", cells, f"{ir['mean']:.2f} ± {ir['std_of_seed_means']:.2f}"
