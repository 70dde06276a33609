"""The paper end to end: models -> latent sets -> Methods A and B -> Table 1 -> manipulation.

``reproduce(config, workdir)`` writes into a fresh run directory:

- ``artefacts/<stage>/``: an Orbax checkpoint of each stage's typed result (see
  :mod:`latentjax.experiment.stages`; every analysis seed stacked on a leading axis), so a
  notebook reloads them with :func:`~latentjax.experiment.artefacts.load_artefact` instead of recomputing;
- ``results.json``: every number, with the config and the library version;
- the figures as PNG and ``report.md`` / ``report.html`` (see :mod:`latentjax.experiment.report`).

Each stage is saved when it finishes; a resumed run (``resume=True``) loads finished stages and
computes only the rest. This is where models, data and the analysis meet; the analysis modules
themselves know nothing of either. The stages a sweep shares (latent sets, Methods A and B, the
held-out codes) run through the same driver as a sweep's, :mod:`latentjax.experiment.orchestrator`;
saving and loading stages lives in :mod:`latentjax.experiment.artefacts`, the numbers in
:mod:`latentjax.experiment.summaries`.
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
from latentjax.experiment import artefacts, directions_export, orchestrator, stages, summaries, workflows
from latentjax.experiment.provenance import provenance
from latentjax.models import make_generator_layer
from latentjax.models.pretrained import load_pretrained
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
    names = ("latents", "apcr", "weights") + (("held_out",) if a.finders else ()) + ("manipulation", "dose_response")
    names += (("finders",) if a.finders else ()) + ("structure",)
    seconds: dict[str, float] = {}  # stages computed by this process (loaded ones are absent)

    def numbered_log(name):
        number = names.index(name) + 1
        return lambda msg: log(f"[reproduce {number}/{len(names)}] {msg}")

    # The stages a sweep cell shares, by the same driver, for this one model (axis 0 dropped).
    seeds = tuple(a.seeds)
    store = orchestrator.RunStore(workdir, seeds, numbered_log, seconds)
    shared = orchestrator.shared_stages(store, [models], "loop", a, seeds, log=log, **shapes)
    latents, apcr, weights, held_out = (None if x is None else jax.tree.map(lambda v: v[0], x) for x in shared)

    def stage(name, compute):
        return artefacts.run_stage(workdir, name, compute, numbered_log(name), seconds)

    first = jax.tree.map(lambda x: x[0], (latents, apcr, weights))
    manip = stage("manipulation", lambda: stages.manipulations(
        generate, classify, stages.manipulation_settings(a), seeds[0], a.cross_targets, first[0].codes,
        first[1], first[2], chunk_size=stages.apcr_settings(a).chunk_size,
    ))
    dose = stage("dose_response", lambda: stages.dose_probabilities(
        generate, classify, stages.manipulation_settings(a), seeds, a.cross_targets, latents, apcr, weights,
        chunk_size=stages.apcr_settings(a).chunk_size,
    ))

    comparison = None
    if a.finders:
        def finders():
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
    results["dose_response"] = summaries.dose_summary(a, dose)
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
