"""The paper end to end: models -> latent sets -> Methods A and B -> Table 1 -> manipulation.

``reproduce(config, workdir)`` writes into a fresh run directory:

- ``artefacts/<stage>/``: an Orbax checkpoint of each stage's typed result (see
  :mod:`latentjax.experiment.stages`; every analysis seed stacked on a leading axis), so a
  notebook reloads them with :func:`~latentjax.experiment.artefacts.load_artefact` instead of recomputing;
- ``results.json``: every number, with the config and the library version;
- the figures as PNG and ``report.md`` / ``report.html`` (see :mod:`latentjax.experiment.report`).

Each stage is saved when it finishes; a resumed run (``resume=True``) loads finished stages and
computes only the rest. This is where models, data and the analysis meet; the analysis modules
themselves know nothing of either. Saving and loading stages lives in
:mod:`latentjax.experiment.artefacts`, the numbers in :mod:`latentjax.experiment.summaries`.
"""

from __future__ import annotations

import json
import os
import pathlib
import time
from collections.abc import Callable
from typing import Any

import jax
import ml_collections

from latentjax import data
from latentjax.experiment import artefacts, directions_export, stages, summaries, workflows
from latentjax.experiment.provenance import provenance
from latentjax.models import make_generator_layer
from latentjax.models.pretrained import load_pretrained
from latentjax.progress import stage_progress
from latentjax.storage.files import atomic_write_text, check_writable
from latentjax.storage.runs import run_directory


def default_workdir(config) -> pathlib.Path:
    """``runs/reproduce-<dataset>-<UTC time>``: a new name for every run."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return pathlib.Path("runs") / f"reproduce-{config.dataset}-{stamp}"


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
        result = artefacts.run_stage(workdir, name, compute, lambda msg: log(prefix + msg), seconds)
        done[0] += 1
        return result

    # The config stops here: each stage receives its typed settings.
    seeds = tuple(a.seeds)
    latent, method_a, method_b = stages.latent_settings(a), stages.apcr_settings(a), stages.method_b_settings(a)
    latents = stage("latents", lambda: stages.class_latents(generate, classify, latent, seeds, **shapes))
    apcr = stage("apcr", lambda: stages.correlation_scores(
        generate, classify, method_a, latents, progress=stage_progress("apcr: chunks of rows", log)))
    weights = stage("weights", lambda: stages.optimised_weights(
        generate, classify, method_b, stages.stability_settings(a), seeds, latents,
        progress=stage_progress("weights: steps", log)))
    first = jax.tree.map(lambda x: x[0], (latents, apcr, weights))
    manip = stage("manipulation", lambda: stages.manipulations(
        generate, classify, stages.manipulation_settings(a), seeds[0], a.cross_targets, first[0].codes,
        first[1], first[2], chunk_size=method_a.chunk_size,
    ))

    comparison = None
    if a.finders:
        def finders():
            held_out = stages.held_out_latents(generate, classify, latent, seeds, a.finder_samples_per_class, **shapes)
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
    results = summaries.summarize(config, a, source, models.metadata, latents, apcr, weights, manip, struct)
    if comparison is not None:
        results["finders"] = summaries.finder_summary(a, comparison)
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
