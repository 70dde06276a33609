"""The sweep's report: Table 1 per cell with its two intervals, and the convergence figures."""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from latentjax.storage.files import atomic_write_text  # noqa: E402
from latentjax.experiment.report import _save  # noqa: E402  (one way to write a figure)
from latentjax.experiment.summaries import PAPER_TABLE_1  # noqa: E402
from latentjax.config.sweep_grid import grid_axes  # noqa: E402


def _interval(row: dict, prefix: str) -> str:
    low, high = row[f"{prefix}_low"], row[f"{prefix}_high"]
    return "–" if low == high else f"[{low:.2f}, {high:.2f}]"


def swept_axes(config) -> list[str]:
    """Grid keys with at least two numeric values: the x axes of the convergence figures."""
    grid = grid_axes(config.sweep.grid)
    return [
        k for k in grid
        if len(grid[k]) > 1 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in grid[k])
    ]


def figure_convergence(path: pathlib.Path, config, cells: list[dict], axis: str) -> None:
    """IR (class mean) and set stability (Jaccard between analysis seeds) against one setting.

    One line per combination of the other swept settings; bars: 95% bootstrap intervals, IR over
    analysis seeds (and a band over model seeds when there are several), Jaccard over classes.
    """
    others = [k for k in grid_axes(config.sweep.grid) if k != axis]
    lines: dict[tuple, list[dict]] = {}
    for row in cells:
        lines.setdefault(tuple((k, row[k]) for k in others), []).append(row)
    fig, (ax_ir, ax_j) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (label, rows) in enumerate(lines.items()):
        rows = sorted(rows, key=lambda r: r[axis])
        x = np.array([r[axis] for r in rows], float)
        color = plt.get_cmap("tab10")(i % 10)
        name = ", ".join(f"{k}={v}" for k, v in label) or "all"
        ir = np.array([r["ir_mean"] for r in rows])
        err = np.array([[r["ir_mean"] - r["ir_analysis_low"], r["ir_analysis_high"] - r["ir_mean"]] for r in rows]).T
        ax_ir.errorbar(x, ir, yerr=np.maximum(err, 0), color=color, marker="o", capsize=3, label=name)
        if any(r["ir_model_low"] != r["ir_model_high"] for r in rows):
            ax_ir.fill_between(x, [r["ir_model_low"] for r in rows], [r["ir_model_high"] for r in rows],
                               color=color, alpha=0.15)
        for method, style in (("apcr", "-"), ("weights", "--")):
            y = np.array([r[f"jaccard_{method}"] for r in rows], float)
            if np.all(np.isnan(y)):
                continue
            err = np.array([[r[f"jaccard_{method}"] - r[f"jaccard_{method}_low"],
                             r[f"jaccard_{method}_high"] - r[f"jaccard_{method}"]] for r in rows]).T
            ax_j.errorbar(x, y, yerr=np.maximum(np.nan_to_num(err), 0), color=color, linestyle=style,
                          marker="o", capsize=3,
                          label=f"{'Method A (H)' if method == 'apcr' else 'Method B (C)'}, {name}")
    for ax in (ax_ir, ax_j):
        ax.set_xscale("log", base=2)
        ax.set_xlabel(axis)
        ax.grid(alpha=0.3)
    ax_ir.axhline(np.mean(PAPER_TABLE_1), color="gray", linestyle=":", label="paper mean 0.75")
    ax_ir.set_ylabel("Table 1 mean IR")
    ax_ir.set_title("IR (bars: over analysis seeds; band: over model seeds)", fontsize=9)
    ax_j.set_ylabel("Jaccard overlap between analysis seeds")
    ax_j.set_title("set stability (bars: over classes)", fontsize=9)
    ax_j.set_ylim(0, 1.02)
    for ax in (ax_ir, ax_j):
        ax.legend(fontsize=6)
    _save(fig, path)


def figure_per_class(path: pathlib.Path, config, table: list[dict], axis: str, paper) -> None:
    """IR of each class against one setting (bars: over analysis seeds), the paper's value dashed.

    With other swept settings, one line per combination of them.
    """
    others = [k for k in grid_axes(config.sweep.grid) if k != axis]
    classes = sorted({(r["class"], r["class_name"]) for r in table})
    columns = 5
    rows_n = -(-len(classes) // columns)
    fig, axes = plt.subplots(rows_n, columns, figsize=(3.0 * columns, 2.6 * rows_n), squeeze=False)
    for (j, name), ax in zip(classes, axes.flat):
        lines: dict[tuple, list[dict]] = {}
        for r in table:
            if r["class"] == j:
                lines.setdefault(tuple((k, r[k]) for k in others), []).append(r)
        for i, (label, rows) in enumerate(lines.items()):
            rows = sorted(rows, key=lambda r: r[axis])
            x = np.array([r[axis] for r in rows], float)
            y = np.array([r["ir_mean"] for r in rows])
            err = np.array([[r["ir_mean"] - r["ir_analysis_low"], r["ir_analysis_high"] - r["ir_mean"]] for r in rows]).T
            ax.errorbar(x, y, yerr=np.maximum(err, 0), marker="o", capsize=3, color=plt.get_cmap("tab10")(i % 10),
                        label=", ".join(f"{k}={v}" for k, v in label) or None)
        if paper:
            ax.axhline(paper[j], color="gray", linestyle="--")
        ax.axhline(config.analysis.k / config.latent_dim, color="gray", linestyle=":", linewidth=0.8)
        ax.set_title(f"{j} {name}", fontsize=9)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xscale("log", base=2)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(classes):]:
        ax.axis("off")
    fig.supxlabel(axis)
    fig.supylabel("IR (dashed: paper; dotted: chance)")
    _save(fig, path)


def finder_lines(config, finder_rows: list[dict]) -> list[str]:
    """Per cell, the finders at the config's two table distances: the report's comparison."""
    from latentjax.experiment.report import FINDER_LABELS

    distances = [float(d) for d in config.analysis.finder_table_distances]
    lines = [
        "", "## Direction finders per cell", "",
        "Class means over model and analysis seeds; brackets: interval over model seeds, then over "
        "analysis seeds (a dash: one seed of that kind). Held-out codes, equal L2 distances; see the "
        "reproduction report for what each measure is.",
    ]
    by_cell: dict[str, list[dict]] = {}
    for row in finder_rows:
        by_cell.setdefault(row["cell"], []).append(row)
    for cell, rows in by_cell.items():
        header = ["finder"] + [
            f"{mode}: {label} @ {d:g}" for (mode, _), label in FINDER_LABELS.items() for d in distances
        ]
        lines += ["", f"### {cell}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for name in dict.fromkeys(r["finder"] for r in rows):
            at = {r["distance"]: r for r in rows if r["finder"] == name}
            cells_text = []
            for mode, measure in FINDER_LABELS:
                column = f"{mode}_{measure}"
                for d in distances:
                    r = at[d]
                    cells_text.append(
                        f"{r[column]:.2f} {_interval(r, column + '_model')} {_interval(r, column + '_analysis')}"
                    )
            lines.append(f"| `{name}` | " + " | ".join(cells_text) + " |")
    return lines


def write_report(
    workdir: pathlib.Path, config, cells: list[dict], table: list[dict], models, finder_rows=()
) -> None:
    sw = config.sweep
    grid_keys = list(grid_axes(sw.grid))
    paper = PAPER_TABLE_1 if config.dataset == "fashion_mnist" else None
    few = len(sw.analysis_seeds) <= 3
    analysis_label = "range over analysis seeds" if few else "over analysis seeds"
    lines = [
        "# latentjax sweep",
        "",
        f"{len(cells)} cells; model seeds: {', '.join(sw.models)}; analysis seeds: "
        f"{list(sw.analysis_seeds)}; {int(sw.confidence * 100)}% percentile bootstrap intervals "
        f"({sw.bootstrap_resamples} resamples) over model seeds and over analysis seeds. "
        "Every other setting as in the config's `analysis` section (`run.json`).",
        "",
        "## Models",
        "",
        "| model seed | confident share | class shares | Fréchet distance |",
        "|---|---|---|---|",
    ]
    for label, m in zip(sw.models, models):
        gan = m.metadata.get("quality", {}).get("gan", {})
        if gan:
            hist = gan["class_histogram"]
            lines.append(
                f"| {label} | {100 * gan['confident_share']:.1f}% | {100 * min(hist):.1f}%..{100 * max(hist):.1f}% "
                f"| {gan['frechet_distance_samples_vs_test']:.1f} |"
            )
        else:
            lines.append(f"| {label} | – | – | – |")
    lines += [
        "",
        "## Table 1 per cell (class-mean IR)",
        "",
        "| cell | " + " | ".join(grid_keys) + f" | mean IR | over model seeds | {analysis_label} "
        f"| t interval over analysis seeds | sd between models | sd between analysis seeds | Jaccard A | Jaccard B | flip A top/bottom/random | flip B top/bottom/random | minutes (its group) |",
        "|" + "---|" * (len(grid_keys) + 12),
    ]
    fmt = lambda v: "–" if v != v else f"{v:.2f}"
    for c in cells:
        lines.append(
            f"| {c['cell']} | " + " | ".join(str(c[k]) for k in grid_keys)
            + f" | **{c['ir_mean']:.2f}** | {_interval(c, 'ir_model')} | {_interval(c, 'ir_analysis')} "
            f"| {_interval(c, 'ir_analysis_t') if c['ir_analysis_t_low'] == c['ir_analysis_t_low'] else '–'} "
            f"| {fmt(c['ir_sd_between_models'])} | {fmt(c['ir_sd_between_analysis_seeds'])} "
            f"| {fmt(c['jaccard_apcr'])} | {fmt(c['jaccard_weights'])} "
            + "| " + "/".join(f"{100 * c[f'flip_apcr_{s}']:.0f}" for s in ("top", "bottom", "random"))
            + " | " + "/".join(f"{100 * c[f'flip_weights_{s}']:.0f}" for s in ("top", "bottom", "random"))
            + f" | {c['minutes']:.1f} |"
        )
    lines += [
        "",
        ("With three or fewer analysis seeds the percentile bootstrap interval is the range of "
         "the seeds, and is labelled so; the t interval (Student t, its confidence as above) says "
         "how little so few seeds pin the mean down. " if few else "")
        + "A dash: one seed of that kind, so no interval. Which variance dominates: compare the two "
        "sd columns (between model seeds: sd of each model's seed-mean IR; between analysis "
        "seeds: mean over models of the sd over its seeds).",
        "",
        "## Table 1 per class",
    ]
    by_cell: dict[str, list[dict]] = {}
    for row in table:
        by_cell.setdefault(row["cell"], []).append(row)
    for c in cells:
        settings = ", ".join(f"{k}={c[k]}" for k in grid_keys)
        lines += [
            "",
            f"### {c['cell']}: {settings}",
            "",
            f"| class | IR | over model seeds | {analysis_label} | Jaccard A | Jaccard B | flip A top | flip B top | paper |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in by_cell[c["cell"]]:
            lines.append(
                f"| {r['class']} {r['class_name']} | {r['ir_mean']:.2f} | {_interval(r, 'ir_model')} "
                f"| {_interval(r, 'ir_analysis')} | {fmt(r['jaccard_apcr'])} | {fmt(r['jaccard_weights'])} "
                f"| {100 * r['flip_apcr_top']:.0f}% | {100 * r['flip_weights_top']:.0f}% "
                f"| {paper[r['class']] if paper else '–'} |"
            )
    if finder_rows:
        lines += finder_lines(config, list(finder_rows))
    figures = []
    for axis in swept_axes(config):
        name = f"convergence_{axis.replace('.', '_')}.png"
        figure_convergence(workdir / name, config, cells, axis)
        figures.append((name, f"IR and set stability against {axis}"))
        name = f"per_class_{axis.replace('.', '_')}.png"
        figure_per_class(workdir / name, config, table, axis, paper)
        figures.append((name, f"IR per class against {axis}, the paper's Table 1 dashed"))
    if figures:
        lines += ["", "## Convergence", ""]
        for name, caption in figures:
            lines += [f"![{caption}]({name})", "", f"*{caption}*", ""]
    atomic_write_text(workdir / "report.md", "\n".join(lines) + "\n")


__all__ = ["write_report", "figure_convergence", "figure_per_class", "swept_axes"]
