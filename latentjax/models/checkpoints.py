"""All checkpoint I/O goes through this module (Orbax ``CheckpointManager``).

A checkpoint directory holds numbered steps; each step holds two items: ``state`` (a pytree of
arrays) and ``metadata`` (JSON). Training runs save periodically and resume from the newest
step; exported models are the same layout with one step, so one reader serves both.

Integrity: Orbax writes each step to a temporary folder and renames it when complete; after that
every step gets a checksum file (SHA-256 of each of its files, see :mod:`latentjax.storage.files`),
and a step counts as saved only once that file exists. Every restore checks it first, so a
truncated or bit-flipped checkpoint is an :class:`~latentjax.errors.IntegrityError` that names
the file instead of silently different weights. :func:`save_final` writes its folder under a
``.partial`` name and renames it when complete.
"""

from __future__ import annotations

import logging
import os
import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp

from latentjax.storage import files as storage
from latentjax.errors import CheckpointMismatchError, IntegrityError


def open_manager(
    directory: str | os.PathLike, *, max_to_keep: int | None = 2, read_only: bool = False
) -> ocp.CheckpointManager:
    """A manager for ``directory`` (absolute paths are required by Orbax)."""
    directory = pathlib.Path(directory).resolve()
    if read_only:
        # Orbax warns that a read-only manager neither saves nor prunes: that is what we asked.
        max_to_keep = None
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep,
        create=not read_only,
        read_only=read_only,
        save_interval_steps=0 if read_only else 1,
    )
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    if read_only:
        absl_logger.setLevel(logging.ERROR)
    try:
        return ocp.CheckpointManager(directory, options=options, item_names=("state", "metadata"))
    finally:
        absl_logger.setLevel(level)


def save(
    manager: ocp.CheckpointManager, step: int, state: Any, metadata: dict | None = None
) -> None:
    """Saves ``state`` (and JSON ``metadata``) as ``step`` and waits until it is on disk."""
    manager.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), metadata=ocp.args.JsonSave(metadata or {})
        ),
        force=True,
    )
    manager.wait_until_finished()
    storage.write_checksums(step_directory(manager, step))


#: Adopts a checkpoint step folder written before checksums existed (once its content is trusted).
write_checksums = storage.write_checksums


def step_directory(manager: ocp.CheckpointManager, step: int) -> pathlib.Path:
    return pathlib.Path(manager.directory) / str(step)


def verify(manager: ocp.CheckpointManager, step: int) -> None:
    """Raises :class:`IntegrityError` (naming the file) unless ``step`` is complete and intact."""
    storage.verify_checksums(step_directory(manager, step))


def newest_intact_step(manager: ocp.CheckpointManager, log=print) -> int | None:
    """The newest step that passes :func:`verify`; damaged newer steps are set aside.

    A damaged step is renamed to ``<step>.damaged-<time>`` (Orbax then no longer sees it), so a
    resumed run continues from the newest intact checkpoint and, on the same schedule, writes
    the same step again.
    """
    for step in sorted(manager.all_steps(), reverse=True):
        try:
            verify(manager, step)
            return step
        except IntegrityError as exc:
            moved = storage.set_aside(step_directory(manager, step))
            log(f"checkpoint step {step} is damaged ({exc}); set aside as {moved.name}")
            manager.reload()
    return None


def latest_step(manager: ocp.CheckpointManager) -> int | None:
    return manager.latest_step()


def restore(
    manager: ocp.CheckpointManager, like: Any = None, step: int | None = None
) -> tuple[Any, dict]:
    """Restores ``(state, metadata)`` at ``step`` (default newest), shaped and typed like ``like``
    (``None``: as saved, with NumPy arrays)."""
    step = manager.latest_step() if step is None else step
    if step is None:
        raise FileNotFoundError(f"no checkpoint in {manager.directory}")
    verify(manager, step)
    abstract = None if like is None else jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    try:
        restored = manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract), metadata=ocp.args.JsonRestore()
            ),
        )
    except (ValueError, KeyError, TypeError) as exc:
        if like is None:
            raise
        # Orbax's own message suggests partial restores; the user's mistake is the wrong folder.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointMismatchError(
            f"{str(step_directory(manager, step))!r} holds other arrays than the model the config "
            f"describes ({first[:200]}); expected a checkpoint of that model: check the folder "
            "and the config."
        ) from exc
    return restored["state"], dict(restored["metadata"] or {})


def saved_keys(manager: ocp.CheckpointManager, step: int | None = None) -> set[str]:
    """The top-level keys of the state saved at ``step`` (default newest), without its arrays."""
    step = manager.latest_step() if step is None else step
    if step is None:
        raise FileNotFoundError(f"no checkpoint in {manager.directory}")
    tree = ocp.StandardCheckpointer().metadata(pathlib.Path(manager.directory) / str(step) / "state")
    return set(tree.item_metadata.keys())


def restore_metadata(directory: str | os.PathLike, step: int | None = None) -> dict:
    """Only the JSON metadata of a step (default newest), without touching the arrays."""
    manager = open_manager(directory, read_only=True)
    step = manager.latest_step() if step is None else step
    if step is None:
        raise FileNotFoundError(f"no checkpoint in {directory}")
    verify(manager, step)
    restored = manager.restore(step, args=ocp.args.Composite(metadata=ocp.args.JsonRestore()))
    return dict(restored["metadata"] or {})


def save_final(directory: str | os.PathLike, state: Any, metadata: dict) -> None:
    """Writes a one-step checkpoint to a new ``directory``, atomically; refuses an existing one.

    It is written as ``<directory>.partial`` and renamed when complete, so ``directory`` either
    does not exist or holds a whole, checksummed checkpoint.
    """
    with storage.committed_directory(directory, checksums=False) as staging:
        manager = open_manager(staging, max_to_keep=1)
        save(manager, 0, state, metadata)
        manager.close()


def load_final(directory: str | os.PathLike, like: Any = None) -> tuple[Any, dict]:
    """Reads what :func:`save_final` wrote."""
    manager = open_manager(directory, read_only=True)
    try:
        return restore(manager, like)
    finally:
        manager.close()
