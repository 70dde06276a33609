"""Stage results on disk: each stage's typed result saved as an Orbax artefact, loaded back as
the same type, and computed again only when its saved copy is missing or damaged.

``<run>/artefacts/<stage>/`` holds one stage (every analysis seed stacked on a leading axis);
a notebook reloads it with :func:`load_artefact` instead of recomputing.
"""

from __future__ import annotations

import os
import pathlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from latentjax.analysis.apcr import APCRResult
from latentjax.analysis.evaluation import DirectionEvaluation
from latentjax.analysis.latents import ClassLatents
from latentjax.analysis.manipulation import ManipulationResult
from latentjax.errors import IntegrityError
from latentjax.experiment import stages
from latentjax.models import checkpoints
from latentjax.storage.files import set_aside


#: The typed result each stage's artefact is restored as.
STAGE_TYPES = {
    "latents": ClassLatents,
    "held_out": ClassLatents,
    "apcr": APCRResult,
    "weights": stages.method_b_from_tree,
    "structure": stages.LatentStructure,
}


def to_tree(result) -> Any:
    """A stage result as nested dicts of NumPy arrays (what Orbax saves)."""
    if isinstance(result, tuple) and hasattr(result, "_asdict"):
        return {k: to_tree(v) for k, v in result._asdict().items() if v is not None}
    if isinstance(result, dict):
        return {k: to_tree(v) for k, v in result.items()}
    return np.asarray(result)


def from_tree(stage: str, tree: dict) -> Any:
    if stage == "finders":
        return stages.FinderComparison(**{
            k: DirectionEvaluation(**v) if k in ("same", "cross") else v for k, v in tree.items()
        })
    if stage == "dose_response":  # [source][mode][set]: probabilities[seeds, C, A, M, K]
        return tree
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
    (:class:`~latentjax.experiment.stages.FinderComparison`) and ``held_out`` (the codes the finders
    are scored on, a :class:`~latentjax.ClassLatents`), when ``analysis.finders`` names any.
    """
    arrays, _ = checkpoints.load_final(pathlib.Path(workdir) / "artefacts" / stage)
    return from_tree(stage, arrays)


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
    tree = to_tree(compute())
    checkpoints.save_final(path, tree, metadata or {"stage": name})
    return tree, False


def run_stage(workdir: pathlib.Path, name: str, compute: Callable[[], Any], log, seconds: dict | None = None) -> Any:
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
    return from_tree(name, tree)
