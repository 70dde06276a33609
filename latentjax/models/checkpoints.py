"""All checkpoint I/O goes through this module (Orbax ``CheckpointManager``).

A checkpoint directory holds numbered steps; each step holds two items: ``state`` (a pytree of
arrays) and ``metadata`` (JSON). Training runs save periodically and resume from the newest
step; exported models are the same layout with one step, so one reader serves both. Orbax writes
each step to a temporary folder and renames it when complete, so an interrupted save never leaves
a step that looks finished.
"""

from __future__ import annotations

import logging
import os
import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp


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
    abstract = None if like is None else jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    restored = manager.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), metadata=ocp.args.JsonRestore()
        ),
    )
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
    restored = manager.restore(step, args=ocp.args.Composite(metadata=ocp.args.JsonRestore()))
    return dict(restored["metadata"] or {})


def save_final(directory: str | os.PathLike, state: Any, metadata: dict) -> None:
    """Writes a one-step checkpoint to a new ``directory``; refuses an existing one."""
    directory = pathlib.Path(directory)
    if directory.exists():
        raise FileExistsError(f"{directory} exists; refusing to overwrite it.")
    manager = open_manager(directory, max_to_keep=1)
    save(manager, 0, state, metadata)
    manager.close()


def load_final(directory: str | os.PathLike, like: Any = None) -> tuple[Any, dict]:
    """Reads what :func:`save_final` wrote."""
    manager = open_manager(directory, read_only=True)
    try:
        return restore(manager, like)
    finally:
        manager.close()
