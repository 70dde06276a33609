"""A grid of analysis settings over model seeds and analysis seeds: Table 1 with intervals.

``run_sweep(config, workdir)`` reads ``config.sweep``:

- ``models``: shipped names or exported folders, one per model seed (independently trained
  GANs; see ``configs/gan_seeds.py``);
- ``analysis_seeds``: the seeds of the latent sets and of Method B (``analysis.seeds``);
- ``grid``: ``{setting: values}`` over :data:`latentjax.config.sweep_grid.SWEEP_KEYS`; a cell is one
  combination (last key fastest), every other setting comes from ``config.analysis``.

Every cell runs all its model and analysis seeds: the analysis seeds as one program per stage
(see :mod:`latentjax.experiment.stages`), the model seeds stacked and ``vmap``-ped
(``model_layout='vmap'``) or one after another (``'loop'``; ``'auto'`` picks the loop on CPU,
where ``vmap`` over model weights is the slow layout, docs/results.md). Stage results are
shared between cells that read the same settings (Method A does not depend on Method B's
settings), and Method B runs once per group of cells that differ only in ``method_b.steps``: the
longest run's snapshots are the shorter runs (``optimize_weights(snapshot_steps=...)``; not for
Adam on a decaying schedule, whose step t is not a run of t steps).

Written into ``workdir`` (never overwritten; ``resume=True`` continues a killed sweep and
recomputes nothing that finished):

- ``stages/<stage>-<hash>/``: Orbax artefacts of the shared stages, stacked over models, one per
  analysis seed (``sweep.stages_dir`` puts them in a folder that several sweeps share: a stage
  whose settings, models and seed match is loaded, whichever sweep computed it);
- ``cells/<cell>.json``: every cell's per-seed numbers, written when the cell finishes;
- ``directions/<cell>/model<m>/<finder>-seed<s>.npz``: every finder's directions of that cell,
  model seed and analysis seed, as files for :func:`latentjax.load_directions` and
  ``latentjax edit`` (with a JSON record beside each);
- ``table.csv``: the tidy table, one row per cell and class: mean IR, 95% bootstrap intervals
  over model seeds and over analysis seeds, Jaccard overlap of each method's set between
  analysis seeds, same-class flip rates of the top-, bottom- and random-K sets;
- ``seeds.csv``: one row per cell, model, analysis seed and class (what the intervals resample);
- ``cells.csv``: one row per cell, the class means; ``report.md`` and the convergence figures;
- ``finders.csv`` (when ``analysis.finders`` names any): one row per cell, finder and distance,
  each measure of :func:`latentjax.evaluate_directions` (class mean) with its intervals over
  model seeds and over analysis seeds. The finders are found on each model's latent sets and
  scored on held-out codes (a separate draw, ``stages/held_out-<hash>``), as in ``reproduce``.
"""

from __future__ import annotations

import json
import os
import pathlib
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from latentjax import config as config_lib
from latentjax.progress import ProgressLog
from latentjax.analysis.apcr import APCRResult
from latentjax.analysis.latents import ClassLatents
from latentjax.analysis.manipulation import compare_sets
from latentjax.analysis.sets import pairwise_jaccard
from latentjax.experiment import directions_export, orchestrator, stages
from latentjax.experiment.sweep_tables import (  # noqa: F401 (read_table: the tables' reader)
    METHODS, SET_NAMES, cell_name, read_table, summarize, summarize_finders, to_csv,
)
from latentjax.storage.files import atomic_write_text, check_writable
from latentjax.experiment.summaries import FINDER_MEASURES
from latentjax.models import make_generator_layer
from latentjax.models.pretrained import load_pretrained
from latentjax.storage.runs import run_directory

class SweepResult(NamedTuple):
    """What :func:`run_sweep` returns: the tidy table rows, the per-cell summaries, the folder."""

    table: list[dict]
    cells: list[dict]
    workdir: pathlib.Path


def default_workdir(config) -> pathlib.Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return pathlib.Path("runs") / f"sweep-{config.dataset}-{stamp}"


def _groups(config) -> list[list[tuple[int, dict]]]:
    """Cells that differ only in ``method_b.steps`` share one Method B run when its step ``t`` is a
    run of ``t`` steps (not so for Adam on a decaying schedule): ``[[(index, cell)]]``."""
    groups: dict[str, list] = {}
    for index, cell in enumerate(config_lib.sweep_cells(config)):
        method_b = stages.method_b_settings(config_lib.cell_config(config, cell).analysis)
        shared = ("method_b.steps",) if orchestrator.snapshots_are_runs(method_b) else ()
        key = json.dumps({k: v for k, v in cell.items() if k not in shared}, sort_keys=True, default=str)
        groups.setdefault(key, []).append((index, cell))
    return list(groups.values())


def compare_cell_finders(
    models, a, latents: ClassLatents, apcr: APCRResult, weights: jax.Array, held_out: ClassLatents
) -> list[stages.FinderComparison]:
    """Per model, ``a.finders``' directions found on ``latents`` and scored on ``held_out``."""
    return [
        stages.compare_finders(
            model.generate, model.classify, a, jax.tree.map(lambda x: x[index], latents),
            jax.tree.map(lambda x: x[index], held_out), jax.tree.map(lambda x: x[index], apcr),
            jnp.asarray(weights[index]), layer=make_generator_layer(model.spec, model.generator_variables),
        )
        for index, model in enumerate(models)
    ]


def cell_stable_sets(a, apcr: APCRResult, weights: stages.MethodB, steps: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """Both methods' stable sets ``[M, A, C, N]`` for a cell of ``a.method_b.steps`` (Method B's
    from the group's run or its snapshot at that step), or ``None`` without stability selection."""
    if weights.stability is None:
        return None
    if weights.snapshot_stable is not None:
        stable_b = np.asarray(weights.snapshot_stable)[:, :, :, steps.index(a.method_b.steps)]
    else:
        stable_b = np.asarray(weights.stability.stable)
    stable_a = np.stack([
        np.asarray(stages.apcr_stabilities(stages.stability_settings(a), a.seeds, jax.tree.map(lambda x, i=index: x[i], apcr)).stable)
        for index in range(stable_b.shape[0])
    ])
    return stable_a, stable_b


def evaluate_cell(
    models, a, latents: ClassLatents, apcr: APCRResult, weights: jax.Array, held_out: ClassLatents | None = None,
    comparisons: list[stages.FinderComparison] | None = None, stable: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict:
    """One cell's numbers from stage results stacked over models (``weights[M, A, C, N]``).

    Returns ``ir[M][A][C]``, ``flip[method][set][M][A][C]`` (same-class flip rate at
    ``alpha = alpha_max``), ``jaccard[method][M][C]`` (mean over pairs of analysis seeds) and,
    when ``a.finders`` names any (scored on ``held_out``, or given as ``comparisons``, what
    :func:`compare_cell_finders` returns), ``finders[mode][measure][M][A][F][C][T]``; with
    ``stable`` (:func:`cell_stable_sets`), ``stable[apcr|weights|overlap][M][A][C]``: the stable
    sets' sizes and their overlap.
    """
    alphas = stages.alpha_grid(a)
    ir, jaccard = [], {m: [] for m in METHODS}
    flip = {m: {s: [] for s in SET_NAMES} for m in METHODS}
    for index, model in enumerate(models):
        scores = jnp.swapaxes(jnp.asarray(apcr.apcr[index]), -1, -2)  # [A, C, N]
        signs_a = jnp.swapaxes(jnp.asarray(apcr.directions[index]), -1, -2)
        w = jnp.asarray(weights[index])  # [A, C, N]
        seed_ir, high, control = stages.intersection_ratios(a, jax.tree.map(lambda x: x[index], apcr), w)
        ir.append(seed_ir)
        jaccard["apcr"].append(np.asarray(pairwise_jaccard(high)))
        jaccard["weights"].append(np.asarray(pairwise_jaccard(control)))
        codes = jnp.asarray(latents.codes[index])[:, :, : stages.manipulation_settings(a).samples]
        keys = stages.seed_keys(a.seeds, 2)
        for method, (rank, signs) in {"apcr": (scores, signs_a), "weights": (jnp.abs(w), w)}.items():
            per_seed = [
                compare_sets(
                    model.generate, model.classify, codes[s], rank[s], signs[s], a.k, keys[s],
                    alphas=alphas, num_images=1, chunk_size=stages.apcr_settings(a).chunk_size,
                )
                for s in range(len(a.seeds))
            ]
            for name in SET_NAMES:
                flip[method][name].append(
                    np.stack([np.asarray(r[name].argmax_rate[:, -1]) for r in per_seed])
                )
    as_list = lambda x: np.asarray(x).tolist()
    record = {
        "ir": as_list(ir),
        "jaccard": {m: as_list(v) for m, v in jaccard.items()},
        "flip": {m: {s: as_list(v) for s, v in sets.items()} for m, sets in flip.items()},
    }
    if stable is not None:
        stable_a, stable_b = (np.asarray(x, bool) for x in stable)
        record["stable"] = {
            "apcr": as_list(stable_a.sum(-1)), "weights": as_list(stable_b.sum(-1)),
            "overlap": as_list((stable_a & stable_b).sum(-1)),
        }
    if a.finders and comparisons is None and held_out is not None:
        comparisons = compare_cell_finders(models, a, latents, apcr, weights, held_out)
    if a.finders and comparisons is not None:
        record["finders"] = {
            "names": list(a.finders),
            "distances": [float(d) for d in a.finder_distances],
            **{
                mode: {
                    measure: as_list([getattr(getattr(c, mode), measure) for c in comparisons])
                    for measure in measures
                }
                for mode, measures in FINDER_MEASURES.items()
            },
        }
    return record


def run_sweep(
    config: ml_collections.ConfigDict,
    workdir: str | os.PathLike,
    *,
    resume: bool = False,
    log: Callable[[str], Any] = print,
) -> SweepResult:
    """Runs every cell of ``config.sweep`` into ``workdir`` and writes the tables and report.

    From Python (what ``latentjax sweep`` does)::

        from latentjax import config as C
        from latentjax.experiment.sweep import run_sweep

        config = C.apply_overrides(C.load_config("configs/sweep.py"), {"sweep.analysis_seeds": (0, 1, 2)})
        result = run_sweep(config, "runs/my-sweep")
        result.cells[0]["ir_mean"], result.cells[0]["ir_analysis_low"]  # class-mean IR, interval
        result.table[0]["jaccard_weights"]  # Method B's set stability, cell 0, class 0
    """
    if "sweep" not in config:
        raise config_lib.ConfigError("the config has no sweep section: use configs/sweep.py.")
    config_lib.validate_config(config)
    sw = config.sweep
    # An unwritable folder, missing or mismatched models fail here, before the sweep folder exists.
    check_writable(workdir, "sweep directory")
    models = [load_pretrained(m) for m in sw.models]
    model_dims = {(m.spec.latent_dim, m.spec.num_classes) for m in models}
    if model_dims != {(config.latent_dim, config.num_classes)}:
        raise ValueError(
            f"config.sweep.models={tuple(sw.models)!r} have (latent_dim, num_classes) {sorted(model_dims)}: "
            f"expected all ({config.latent_dim}, {config.num_classes})."
        )
    layout = orchestrator.resolve_layout(sw.model_layout, models)
    with run_directory(workdir, config, "sweep", resume) as workdir:
        return _run_sweep(config, workdir, models, layout, log)


def _run_sweep(config, workdir: pathlib.Path, models, layout: str, log) -> SweepResult:
    from latentjax.experiment import sweep_report  # matplotlib only when a sweep runs

    sw = config.sweep
    (workdir / "cells").mkdir(exist_ok=True)
    root = pathlib.Path(sw.stages_dir) if sw.get("stages_dir") else workdir / "stages"
    store = orchestrator.SeedStore(root, list(sw.models), list(sw.analysis_seeds), log)
    groups = _groups(config)
    total = sum(len(g) for g in groups)
    log(
        f"[sweep] {total} cells x {len(models)} model seeds x {len(sw.analysis_seeds)} analysis "
        f"seeds, models {layout}ed, into {workdir}"
    )
    progress = ProgressLog("sweep", total, unit="cells", stream=_LogStream(log))
    done = 0
    for group in groups:
        pending = [(i, c) for i, c in group if not (workdir / "cells" / f"{cell_name(i)}.json").exists()]
        if not pending:
            done += len(group)
            progress.start_step = done  # the rate counts only cells computed in this process
            progress.update(done)
            continue
        start = time.perf_counter()
        steps = sorted({config_lib.cell_config(config, c).analysis.method_b.steps for _, c in group})
        a = config_lib.cell_config(config, group[0][1]).analysis
        a.method_b.steps = steps[-1]
        latents, apcr, weights, held_out = orchestrator.shared_stages(
            store, models, layout, a, sw.analysis_seeds, latent_dim=config.latent_dim,
            num_classes=config.num_classes, method_b_steps=tuple(steps), log=log, labels=list(sw.models),
        )
        snapshots = orchestrator.snapshots_are_runs(stages.method_b_settings(a))
        for index, cell in pending:
            cell_a = config_lib.cell_config(config, cell).analysis
            if snapshots:
                final = np.asarray(weights.snapshots)[:, :, :, steps.index(cell_a.method_b.steps)]
            else:
                final = np.asarray(weights.weights)
            comparisons = compare_cell_finders(models, cell_a, latents, apcr, final, held_out) if held_out is not None else None
            numbers = evaluate_cell(models, cell_a, latents, apcr, final, comparisons=comparisons,
                                    stable=cell_stable_sets(cell_a, apcr, weights, tuple(steps)))
            write_cell_directions(workdir / "directions" / cell_name(index), config, cell, models, apcr, final, comparisons)
            record = {
                "index": index, "cell": cell, "models": list(sw.models),
                "analysis_seeds": list(sw.analysis_seeds), **numbers,
                "latent_draws": np.asarray(latents.draws).tolist(),
                "group_seconds": time.perf_counter() - start,
            }
            atomic_write_text(workdir / "cells" / f"{cell_name(index)}.json", json.dumps(record))
        done += len(group)
        progress.update(done)
    records = [
        json.loads((workdir / "cells" / f"{cell_name(i)}.json").read_text())
        for i, c in enumerate(config_lib.sweep_cells(config))
    ]
    table, seed_rows, cells = summarize(config, records)
    finder_rows = summarize_finders(config, records)
    outputs = (("table", table), ("seeds", seed_rows), ("cells", cells), ("finders", finder_rows))
    for name, rows in outputs:
        if rows:
            atomic_write_text(workdir / f"{name}.csv", to_csv(rows))
    sweep_report.write_report(workdir, config, cells, table, models, finder_rows)
    log(f"[sweep] wrote {workdir / 'table.csv'} and {workdir / 'report.md'}")
    return SweepResult(table, cells, workdir)


def write_cell_directions(folder: pathlib.Path, config, cell: dict, models, apcr: APCRResult, weights, comparisons=None) -> None:
    """Every finder's directions of one cell as files (:func:`latentjax.save_directions`), one
    folder per model seed, ``<folder>/model<m>/<finder>-seed<s>.npz``: each folder appears whole
    or not at all, and one already there (an interrupted sweep, resumed) is kept."""
    for index, model in enumerate(models):
        target = folder / f"model{index}"
        if target.exists():
            continue
        cell_config = config_lib.cell_config(config, cell)
        cell_config.analysis.seeds = tuple(config.sweep.analysis_seeds)
        cell_config.analysis.pretrained = str(config.sweep.models[index])
        found = directions_export.run_directions(
            cell_config.analysis, jax.tree.map(lambda x: x[index], apcr), np.asarray(weights[index]),
            None if comparisons is None else comparisons[index].directions,
        )
        directions_export.write_directions_folder(target, cell_config, found, model.generate)


class _LogStream:
    """A file-like object that sends whole lines to ``log``."""

    def __init__(self, log):
        self.log = log

    def write(self, text: str) -> None:
        if text.strip():
            self.log(text.rstrip("\n"))

    def flush(self) -> None:
        pass


def summary(result: SweepResult) -> str:
    """A few lines for the terminal: each cell's mean IR with its intervals and set stability."""
    lines = ["cell: settings | mean IR [over model seeds] [over analysis seeds] | Jaccard A, B"]
    for c in result.cells:
        settings = ", ".join(f"{k}={v}" for k, v in c.items() if k not in _SUMMARY_FIELDS and not k.startswith(("ir_", "jaccard_", "flip_")))
        lines.append(
            f"  {settings} | {c['ir_mean']:.2f} [{c['ir_model_low']:.2f}, {c['ir_model_high']:.2f}] "
            f"[{c['ir_analysis_low']:.2f}, {c['ir_analysis_high']:.2f}] | "
            f"{c['jaccard_apcr']:.2f}, {c['jaccard_weights']:.2f}"
        )
    lines.append(f"table: {result.workdir / 'table.csv'}, report: {result.workdir / 'report.md'}")
    return "\n".join(lines)


_SUMMARY_FIELDS = ("minutes",)


__all__ = ["SweepResult", "run_sweep", "summarize", "summarize_finders", "evaluate_cell", "read_table"]
