"""Run folders: a ``run.json`` that names what a folder holds, and what may resume it.

A training run, a reproduction and a sweep each own one folder. Its ``run.json`` records the
kind of run and its config; resuming checks that the folder belongs to the same run, so nothing
written is ever overwritten by a different one. The folder is locked while a run writes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib

import ml_collections

from latentjax.storage import files as storage
from latentjax.errors import RunDirectoryError


# Keys a resumed run may raise: the GAN's steps do not depend on its length (constant learning
# rates), so training it further gives exactly the parameters of a longer run from scratch. The
# classifier's cosine schedule does depend on its length, so it has no such key.
EXTENDABLE_KEYS = {"gan": ("gan_training", "epochs")}
# Keys added after runs were already made, which a resumed run written before them may take on.
ADDED_KEYS = {
    # Classifiers trained before the key existed have two blocks, its default.
    "classifier": (("classifier", "blocks"), ("classifier_training", "augment_fill")),
    # A reproduction from before the finder comparison resumes and adds it as a new stage.
    "reproduce": (("classifier", "blocks"), ("classifier_training", "augment_fill")) + tuple(("analysis", name) for name in (
        "finders", "finder_distances", "finder_table_distances", "finder_samples_per_class",
        "finder_components", "finder_choice_distance", "finder_prior_samples",
    )),
}
# Config sections a training run of each kind never reads; a run resumes whatever they say now.
NOT_READ_BY_TRAINING = {
    "classifier": ("analysis", "evaluation", "gan_training", "generator", "discriminator"),
    "gan": ("analysis", "evaluation", "classifier_training", "classifier"),
}


def _with_added_keys(saved: dict, record: dict) -> dict:
    """``saved`` with the :data:`ADDED_KEYS` it predates taken from ``record``."""
    patched = json.loads(json.dumps(saved))
    for group, name in ADDED_KEYS.get(record["kind"], ()):
        old_group = patched["config"].get(group)
        if isinstance(old_group, dict) and name not in old_group and name in record["config"][group]:
            old_group[name] = record["config"][group][name]
    return patched


def _extended(saved: dict, record: dict) -> bool:
    """True when ``record`` differs from ``saved`` only by a larger extendable length."""
    key = EXTENDABLE_KEYS.get(record["kind"])
    if key is None or saved.get("kind") != record["kind"]:
        return False
    group, name = key
    old, new = saved["config"][group][name], record["config"][group][name]
    patched = json.loads(json.dumps(saved))
    patched["config"][group][name] = new
    return new > old and patched == record


def read_run_record(workdir: str | os.PathLike) -> dict:
    """A run's ``run.json`` (``{'kind': ..., 'config': ...}``); a clear error if it is not one."""
    record_path = pathlib.Path(workdir) / "run.json"
    if not record_path.is_file():
        raise RunDirectoryError(f"{str(workdir)!r} has no run.json: it is not a latentjax run.")
    try:
        record = json.loads(record_path.read_text())
        if not isinstance(record, dict) or "kind" not in record or "config" not in record:
            raise ValueError("expected an object with 'kind' and 'config'")
    except ValueError as exc:
        raise RunDirectoryError(
            f"{str(record_path)!r} is not a valid run record ({exc}); it was damaged or edited: "
            "restore it, or start a new --workdir."
        ) from None
    return record


def _is_empty(workdir: pathlib.Path) -> bool:
    return not any(p.name != storage.LOCK_FILE for p in workdir.iterdir())


def prepare_run_directory(
    workdir: str | os.PathLike, config: ml_collections.ConfigDict, kind: str, resume: bool
) -> pathlib.Path:
    """Creates a fresh run directory, or checks that a resumed one belongs to the same run.

    A resumed GAN run may ask for more epochs than it was started with (see
    :data:`EXTENDABLE_KEYS`), and one saved before the keys of :data:`ADDED_KEYS` existed takes
    them on; its ``run.json`` is then updated to the config it continues with. Callers hold the
    folder's lock (:func:`run_directory`).
    """
    workdir = pathlib.Path(workdir)
    config_dict = config.to_dict()
    for section in NOT_READ_BY_TRAINING.get(kind, ()):
        config_dict.pop(section, None)
    record = json.loads(json.dumps({"kind": kind, "config": config_dict}))
    if workdir.exists() and not _is_empty(workdir):
        if not resume:
            raise RunDirectoryError(
                f"run directory {str(workdir)!r} exists and is not empty; pass --resume to "
                "continue that run, or choose a new --workdir."
            )
        saved = read_run_record(workdir)
        for section in NOT_READ_BY_TRAINING.get(kind, ()):
            saved["config"].pop(section, None)
        if saved == record:
            return workdir
        saved = _with_added_keys(saved, record)
        if saved != record and not _extended(saved, record):
            raise RunDirectoryError(
                f"cannot resume {str(workdir)!r}: it was started as a {saved.get('kind')!r} run "
                "with a different config; start a new --workdir instead."
            )
    else:
        workdir.mkdir(parents=True, exist_ok=True)
    storage.atomic_write_text(workdir / "run.json", json.dumps(record, indent=2, sort_keys=True))
    return workdir


@contextlib.contextmanager
def run_directory(
    workdir: str | os.PathLike, config: ml_collections.ConfigDict, kind: str, resume: bool
):
    """:func:`prepare_run_directory` under the folder's exclusive lock, held for the block.

    A second process on the same folder gets a clear error at once instead of two runs writing
    one folder. The lock is released when the block ends or the process dies.
    """
    storage.check_writable(workdir, "run directory")
    with storage.FolderLock(workdir):
        yield prepare_run_directory(workdir, config, kind, resume)
