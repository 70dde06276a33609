"""A reproduction's directions as files (:func:`latentjax.save_directions`), one per finder and
analysis seed: what ``reproduce`` writes into ``<run>/directions/`` and what
``latentjax directions --run <run>`` exports from a finished run."""

from __future__ import annotations

import os
import pathlib

import ml_collections
import numpy as np

from latentjax import data
from latentjax.storage import files as storage
from latentjax.analysis.sets import method_directions
from latentjax.directions import save_directions
from latentjax.errors import RunDirectoryError
from latentjax.experiment import stages
from latentjax.experiment.artefacts import load_artefact
from latentjax.models.pretrained import load_pretrained
from latentjax.storage.runs import read_run_record


def run_directions(a, apcr, weights, finder_directions=None) -> dict[str, np.ndarray]:
    """``{finder: directions[seeds, C, N]}``: Methods A and B's signed K-sets, Method B's raw
    ``weights[seeds, C, N]`` (``weights_raw``: one run's ``w*``, or with stability selection
    the signed ranking by selection probability) and, when the run compared finders
    (``finder_directions[seeds, F, C, N]``), every finder's directions."""
    high, control = stages.analysis_sets(a, apcr, weights)
    by_apcr, by_weights = method_directions(high, apcr.directions, control, weights)
    found = {"apcr": np.asarray(by_apcr), "weights": np.asarray(by_weights), "weights_raw": np.asarray(weights)}
    if finder_directions is not None:
        for index, name in enumerate(a.finders):
            found[name] = np.asarray(finder_directions)[:, index]
    return found


def write_directions(folder: pathlib.Path, config, found: dict[str, np.ndarray], generator=None) -> list[pathlib.Path]:
    """One file per finder and analysis seed, ``<folder>/<finder>-seed<s>.npz`` (and its JSON)."""
    a = config.analysis
    names = list(data.dataset_spec(config.dataset).class_names)
    settings = {
        "k": a.k, "latents": stages.latent_settings(a).record(), "apcr": stages.apcr_settings(a).record(),
        "method_b": stages.method_b_settings(a).record(),
    }
    paths = []
    for finder, stacked in found.items():
        for index, seed in enumerate(a.seeds):
            paths.append(save_directions(
                folder / f"{finder}-seed{seed}.npz", stacked[index], finder=finder, names=names,
                generator=generator, settings=settings, analysis_seed=int(seed),
                dataset=config.dataset, pretrained=a.pretrained,
            ))
    return paths


def export_directions(run: str | os.PathLike, output: str | os.PathLike | None = None) -> list[pathlib.Path]:
    """Writes the directions of a finished reproduction ``run`` into ``output`` (a new folder;
    default ``<run>/directions``) and returns the files."""

    run = pathlib.Path(run)
    record = read_run_record(run)
    if record["kind"] != "reproduce":
        raise RunDirectoryError(f"{str(run)!r} is a {record['kind']!r} run: expected a reproduction (latentjax reproduce).")
    folder = pathlib.Path(output) if output is not None else run / "directions"
    if folder.exists():
        raise FileExistsError(f"{folder} exists; refusing to overwrite it (choose a new --output).")
    config = ml_collections.ConfigDict(record["config"])
    a = config.analysis
    for stage in ("apcr", "weights") + (("finders",) if a.finders else ()):
        if not (run / "artefacts" / stage).exists():
            raise RunDirectoryError(f"{str(run)!r} has no finished {stage!r} stage: finish it with --resume first.")
    finder_directions = load_artefact(run, "finders").directions if a.finders else None
    found = run_directions(a, load_artefact(run, "apcr"), load_artefact(run, "weights").weights, finder_directions)
    source = str(run / "models") if a.train_models else a.pretrained
    generator = load_pretrained(source).generate
    return write_directions_folder(folder, config, found, generator)


def write_directions_folder(folder: pathlib.Path, config, found, generator=None) -> list[pathlib.Path]:
    """:func:`write_directions` into a new ``folder`` that appears whole or not at all."""
    with storage.committed_directory(folder, checksums=False) as staging:
        write_directions(staging, config, found, generator)
        (staging / "README.txt").write_text(
            "One file per finder and analysis seed: <finder>-seed<s>.npz with its record in <finder>-seed<s>.json.\n"
            "Load one with latentjax.load_directions(path); numpy.load(path)['directions'] also works.\n"
        )
    return sorted(folder.glob("*.npz"))
