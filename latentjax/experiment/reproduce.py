"""The paper end to end: models -> latent sets -> Methods A and B -> Table 1 -> manipulation.

``reproduce(config, workdir)`` writes into a fresh run directory:

- ``artefacts/<stage>/``: an Orbax checkpoint of each stage's typed result (see
  :mod:`latentjax.experiment.stages`; every analysis seed stacked on a leading axis), so a
  notebook reloads them with :func:`load_artefact` instead of recomputing;
- ``results.json``: every number, with the config and the library version;
- the figures as PNG and ``report.md`` / ``report.html`` (see :mod:`latentjax.experiment.report`).

Each stage is saved when it finishes; a resumed run (``resume=True``) loads finished stages and
computes only the rest. This is where models, data and the analysis meet; the analysis modules
themselves know nothing of either.
"""

from __future__ import annotations

import json
import os
import pathlib
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

import latentjax
from latentjax import data
from latentjax._progress import stage_progress
from latentjax._storage import atomic_write_text, check_writable, set_aside
from latentjax.analysis.apcr import APCRResult
from latentjax.analysis.evaluation import DirectionEvaluation
from latentjax.analysis.finders import FINDERS
from latentjax.analysis.latents import ClassLatents
from latentjax.analysis.manipulation import ManipulationResult
from latentjax.analysis.sets import chance_level
from latentjax.analysis.statistics import mean_and_intervals
from latentjax.analysis.structure import knn_class_accuracy
from latentjax.errors import IntegrityError
from latentjax.experiment import directions_export, stable_sets, stages, workflows
from latentjax.experiment.provenance import provenance
from latentjax.models import checkpoints, make_generator_layer
from latentjax.models.pretrained import load_pretrained
from latentjax.runs import run_directory

#: The paper's Table 1 (Fashion-MNIST, classes 0..9).
PAPER_TABLE_1 = (0.7, 0.9, 0.7, 0.8, 0.4, 1.0, 0.7, 0.9, 0.7, 0.7)


def default_workdir(config) -> pathlib.Path:
    """``runs/reproduce-<dataset>-<UTC time>``: a new name for every run."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return pathlib.Path("runs") / f"reproduce-{config.dataset}-{stamp}"


def summary(results: dict) -> str:
    """A few lines for the terminal: Table 1 ours beside the paper's, and the manipulation."""
    paper = results["paper_table_1"]
    what, cells, mean = stable_sets.table1_cells(results)
    lines = [f"Table 1 (K={results['k']}, chance {results['chance_level']:.2f}): class, ours ({what}), paper"]
    for j, name in enumerate(results["class_names"]):
        theirs = f"{paper[j]:.1f}" if paper else "-"
        lines.append(f"  {j} {name:<12} {cells[j]}   {theirs}")
    lines.append(f"  mean           {mean}   {np.mean(paper):.2f}" if paper else
                 f"  mean           {mean}   - (the paper prints no numbers for this dataset)")
    if results.get("stability"):
        lines.extend(stable_sets.table_lines(results["stability"], results["class_names"]))
    same = results["manipulation"]["apcr_same"]
    lines.append("Same-class manipulation at alpha max (APCR sets): flip rate " + ", ".join(
        f"{name}-K {100 * same[name]['rate_at_alpha_max']:.0f}%" for name in ("top", "bottom", "random")))
    finders = results.get("finders")
    if finders:
        far = len(finders["distances"]) - 1
        lines.append(
            f"Finders at distance {finders['distances'][far]:g} (same-class flip rate, cross-class target share): "
            + ", ".join(
                f"{name} {100 * finders['same']['flip_rate'][name]['mean'][far]:.0f}/"
                f"{100 * finders['cross']['target_share'][name]['mean'][far]:.0f}%"
                for name in finders["names"]
            )
        )
    return "\n".join(lines)


#: The typed result each stage's artefact is restored as.
STAGE_TYPES = {
    "latents": ClassLatents,
    "apcr": APCRResult,
    "weights": stages.method_b_from_tree,
    "structure": stages.LatentStructure,
}


def _to_tree(result) -> Any:
    """A stage result as nested dicts of NumPy arrays (what Orbax saves)."""
    if isinstance(result, tuple) and hasattr(result, "_asdict"):
        return {k: _to_tree(v) for k, v in result._asdict().items() if v is not None}
    if isinstance(result, dict):
        return {k: _to_tree(v) for k, v in result.items()}
    return np.asarray(result)


def _from_tree(stage: str, tree: dict) -> Any:
    if stage == "finders":
        return stages.FinderComparison(**{
            k: DirectionEvaluation(**v) if k in ("same", "cross") else v for k, v in tree.items()
        })
    if stage == "manipulation":
        return {
            source: {mode: {name: ManipulationResult(**r) for name, r in sets.items()} for mode, sets in modes.items()}
            for source, modes in tree.items()
        }
    return STAGE_TYPES[stage](**tree)


def load_artefact(workdir: str | os.PathLike, stage: str) -> Any:
    """A finished stage's typed result, e.g. ``load_artefact(run, 'apcr').apcr[seed_index]``.

    Stages: ``latents`` (:class:`~latentjax.ClassLatents`), ``apcr``
    (:class:`~latentjax.APCRResult`), ``weights`` (:class:`~latentjax.experiment.stages.MethodB`), each
    stacked over the analysis seeds; ``manipulation`` (``[source][mode][set]`` of
    :class:`~latentjax.ManipulationResult`); ``structure``
    (:class:`~latentjax.experiment.stages.LatentStructure`); ``finders``
    (:class:`~latentjax.experiment.stages.FinderComparison`, when ``analysis.finders`` names any).
    """
    arrays, _ = checkpoints.load_final(pathlib.Path(workdir) / "artefacts" / stage)
    return _from_tree(stage, arrays)


def stored_stage(path: pathlib.Path, name: str, compute: Callable[[], Any], log, metadata=None):
    """``(arrays, loaded)``: the stage saved at ``path`` if it is intact, else computed and saved.

    A saved stage is used only when its checksums match; a damaged or half-written one is set
    aside (renamed ``<name>.damaged-<time>``) and computed again, so ``--resume`` gives the numbers
    of an uninterrupted run. The save itself is atomic (:func:`checkpoints.save_final`).
    """
    if path.exists():
        try:
            return checkpoints.load_final(path)[0], True
        except (IntegrityError, FileNotFoundError) as exc:  # damaged, or no step committed
            moved = set_aside(path)
            log(f"stage {name}: the saved result is unusable ({exc}); set aside as {moved.name}, computing it again")
    tree = _to_tree(compute())
    checkpoints.save_final(path, tree, metadata or {"stage": name})
    return tree, False


def _stage(workdir: pathlib.Path, name: str, compute: Callable[[], Any], log, seconds: dict | None = None) -> Any:
    """A stage's result, computed (its wall time goes into ``seconds``) or loaded from an earlier run."""
    start = time.perf_counter()
    tree, loaded = stored_stage(
        workdir / "artefacts" / name, name, compute, log, {"stage": name}
    )
    if loaded:
        log(f"stage {name}: finished earlier, loaded")
    else:
        elapsed = time.perf_counter() - start
        log(f"stage {name}: done in {elapsed:.1f} s")
        if seconds is not None:
            seconds[name] = round(elapsed, 1)
    return _from_tree(name, tree)


def reproduce(
    config: ml_collections.ConfigDict,
    workdir: str | os.PathLike,
    *,
    resume: bool = False,
    log: Callable[[str], Any] = print,
) -> dict:
    """Runs the whole reproduction into ``workdir`` and returns the ``results.json`` content.

    Everything that can fail without computing (config, models, data, the folder) is checked
    before the run directory is touched; the folder is locked while the run lasts.
    """
    a = config.analysis
    # Unwritable folder, missing models or data fail here, before the run directory exists.
    check_writable(workdir, "run directory")
    models = None
    if a.train_models:
        data.load_from_config(config, "train")
    else:
        models = load_pretrained(a.pretrained)
    data.load_from_config(config, "test")  # read by the last stage
    with run_directory(workdir, config, "reproduce", resume) as workdir:
        return _reproduce(config, workdir, models, log)


def _reproduce(config, workdir: pathlib.Path, models, log) -> dict:
    from latentjax.experiment import report  # figures need matplotlib; imported only when used

    a = config.analysis
    if a.train_models:
        source = str(workflows.train_and_export(config, workdir / "models", log=log))
        models = load_pretrained(source)
    else:
        source = a.pretrained
    generate, classify = models.generate, models.classify
    shapes = dict(latent_dim=config.latent_dim, num_classes=config.num_classes)
    names = ("latents", "apcr", "weights", "manipulation") + (("finders",) if a.finders else ()) + ("structure",)
    done = [0]
    seconds: dict[str, float] = {}  # stages computed by this process (loaded ones are absent)

    def stage(name, compute):
        prefix = f"[reproduce {done[0] + 1}/{len(names)}] "
        result = _stage(workdir, name, compute, lambda msg: log(prefix + msg), seconds)
        done[0] += 1
        return result

    latents = stage("latents", lambda: stages.class_latents(generate, classify, a, **shapes))
    apcr = stage("apcr", lambda: stages.correlation_scores(
        generate, classify, a, latents, progress=stage_progress("apcr: chunks of rows", log)))
    weights = stage("weights", lambda: stages.optimised_weights(
        generate, classify, a, latents, progress=stage_progress("weights: steps", log)))
    first = jax.tree.map(lambda x: x[0], (latents, apcr, weights))
    manip = stage(
        "manipulation",
        lambda: stages.manipulations(generate, classify, a, first[0].codes, first[1], first[2]),
    )

    comparison = None
    if a.finders:
        def finders():
            held_out = stages.held_out_latents(generate, classify, a, **shapes)
            layer = make_generator_layer(models.spec, models.generator_variables)
            return stages.compare_finders(
                generate, classify, a, latents, held_out, apcr, weights.weights, layer=layer
            )

        comparison = stage("finders", finders)

    def structure():
        images, labels = data.load_from_config(config, "test")
        return stages.latent_structure(
            generate, classify, a, images, labels, first[0].codes, **shapes
        )

    struct = stage("structure", structure)
    results = summarize(config, a, source, models.metadata, latents, apcr, weights, manip, struct)
    if comparison is not None:
        results["finders"] = finder_summary(a, comparison)
    results["provenance"] = provenance(seconds)
    report.write_report(workdir, results, first[1], manip, struct, comparison)
    if not (workdir / "directions").exists():  # a run finished before directions were files gains them
        found = directions_export.run_directions(
            a, apcr, weights.weights, None if comparison is None else comparison.directions
        )
        directions_export.write_directions_folder(workdir / "directions", config, found, generate)
    atomic_write_text(workdir / "results.json", json.dumps(results, indent=2))
    log(f"[reproduce] wrote {workdir / 'results.json'} and {workdir / 'report.md'}")
    return results


#: The measures of the finder comparison, by mode (see :class:`~latentjax.DirectionEvaluation`).
FINDER_MEASURES = {
    "same": ("probability_drop", "flip_rate", "off_target_change", "pixel_change"),
    "cross": ("target_share", "off_target_change", "pixel_change"),
}


def finder_summary(a, comparison: stages.FinderComparison, *, num_resamples: int = 2000, confidence: float = 0.95) -> dict:
    """The finder comparison as JSON: per mode, measure and finder, the class mean at every
    distance (mean over seeds, a bootstrap interval over the analysis seeds, each seed's value)."""
    out = {
        "names": list(a.finders),
        "sparse": [FINDERS[n].sparse for n in a.finders],
        "distances": np.asarray(comparison.same.distances).tolist(),
        "table_distances": list(a.finder_table_distances),
        "held_out_codes_per_class": a.finder_samples_per_class,
        "confidence": confidence,
    }
    for mode, measures in FINDER_MEASURES.items():
        evaluation = getattr(comparison, mode)
        out[mode] = {}
        for measure in measures:
            values = np.asarray(getattr(evaluation, measure), np.float64).mean(axis=2)  # [A, F, T]
            mean, intervals = mean_and_intervals(
                values[None], ("analysis",), num_resamples=num_resamples, confidence=confidence
            )
            low, high = intervals["analysis"]
            out[mode][measure] = {}
            for f, name in enumerate(a.finders):
                out[mode][measure][name] = {
                    "mean": mean[f].tolist(), "low": low[f].tolist(), "high": high[f].tolist(),
                    "per_seed": values[:, f].tolist(),
                    "per_class": np.asarray(getattr(evaluation, measure))[:, f].mean(0).tolist(),
                }
    return out


def summarize(
    config, a, source, metadata, latents: ClassLatents, apcr: APCRResult, weights: stages.MethodB,
    manip: stages.Manipulations, struct: stages.LatentStructure,
) -> dict:
    """Every number of the run, JSON-ready (what ``results.json`` holds)."""
    n_classes, latent_dim = config.num_classes, config.latent_dim
    ir_matrix, high, control = stages.intersection_ratios(a, apcr, weights.weights)
    struct_labels = np.asarray(struct.labels)
    prior_labels = np.repeat(np.arange(n_classes), a.samples_per_class)
    alphas = stages.alpha_grid(a)

    def effect(r: ManipulationResult):
        prob, rate = np.asarray(r.mean_probability), np.asarray(r.argmax_rate)
        return {
            "mean_probability_per_alpha": prob.mean(0).tolist(),
            "rate_per_alpha": rate.mean(0).tolist(),
            "probability_drop_at_alpha_max": float((prob[:, len(alphas) // 2] - prob[:, -1]).mean()),
            "rate_at_alpha_max": float(rate[:, -1].mean()),
            "rate_at_alpha_max_per_class": rate[:, -1].tolist(),
        }

    class_names = list(data.dataset_spec(config.dataset).class_names)
    stability = None
    if weights.stability is not None:
        stability = stable_sets.summarize_stability(a, apcr, weights, high, class_names)
    return {
        "latentjax_version": latentjax.__version__,
        "config": config.to_dict(),
        "models": {
            "pretrained": source,
            "trained_here": bool(a.train_models),
            "quality": metadata.get("quality", {}),
        },
        "class_names": class_names,
        "k": a.k,
        "chance_level": chance_level(a.k, latent_dim),
        "paper_table_1": list(PAPER_TABLE_1) if config.dataset == "fashion_mnist" else None,
        "intersection_ratio": {
            "per_seed": {str(s): row.tolist() for s, row in zip(a.seeds, ir_matrix)},
            "mean_per_class": ir_matrix.mean(0).tolist(),
            "std_per_class": ir_matrix.std(0).tolist(),
            "mean": float(ir_matrix.mean()),
            "std_of_seed_means": float(ir_matrix.mean(1).std()),
        },
        "stability": stability,
        "sets_seed0": {
            "high_correlated": [np.flatnonzero(row).tolist() for row in np.asarray(high[0])],
            "controlling": [np.flatnonzero(row).tolist() for row in np.asarray(control[0])],
        },
        "latent_sets": {
            str(s): {"draws": int(draws), "counts": np.asarray(counts).tolist()}
            for s, draws, counts in zip(a.seeds, np.asarray(latents.draws), np.asarray(latents.counts))
        },
        "alphas": alphas.tolist(),
        "manipulation": {
            f"{source}_{mode}": {name: effect(manip[source][mode][name]) for name in stages.SET_NAMES}
            for source in stages.SOURCES
            for mode in stages.MODES
        },
        "structure": {
            "inverted_images": int(len(struct_labels)),
            "reconstruction_mse_mean": float(np.mean(struct.reconstruction_error)),
            "classifier_agrees_with_label": float(np.mean(np.asarray(struct.predicted) == struct_labels)),
            "knn_accuracy_inverted": knn_class_accuracy(jnp.asarray(struct.codes), jnp.asarray(struct_labels), a.knn_k),
            "knn_accuracy_prior_samples": knn_class_accuracy(jnp.asarray(struct.prior_codes), jnp.asarray(prior_labels), a.knn_k),
            "knn_chance": float(np.max(np.bincount(struct_labels)) / len(struct_labels)),
        },
    }
