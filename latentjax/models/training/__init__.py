"""Training the classifier and the GAN (``loop``: the shared resumable loop; ``classifier``;
``gan``). Run folders and their records live in :mod:`latentjax.runs`."""

from __future__ import annotations

import os
import pathlib

from latentjax.errors import RunDirectoryError
from latentjax.models import checkpoints
from latentjax.models.training.classifier import (
    augment, classifier_optimizer, init_classifier_state, make_classifier_step, train_classifier,
)
from latentjax.models.training.gan import (
    ema_start_step, init_gan_state, make_gan_step, sample_grid_latents, train_gan,
)
from latentjax.models.training.loop import (
    STACKED_STEP, State, batch_indices, init_states, run_seeds, stacked_step_layout,
)
from latentjax.runs import read_run_record

__all__ = [
    "STACKED_STEP", "State", "augment", "batch_indices", "classifier_optimizer", "ema_start_step",
    "init_classifier_state", "init_gan_state", "init_states", "load_run_state", "make_classifier_step",
    "make_gan_step", "run_seeds", "sample_grid_latents", "stacked_step_layout", "train_classifier",
    "train_gan",
]


def load_run_state(config, workdir: str | os.PathLike, kind: str) -> State:
    """The newest checkpointed state of a training run (``kind``: 'classifier' or 'gan').

    A run of several ``config.model_seeds`` gives the stacked state (leading seed axis).
    """
    init = {"classifier": init_classifier_state, "gan": init_gan_state}[kind]
    found = read_run_record(workdir)["kind"]
    if found != kind:
        raise RunDirectoryError(
            f"{str(workdir)!r} is a {found!r} training run: expected a {kind!r} run here."
        )
    like = init_states(init, config)
    manager = checkpoints.open_manager(pathlib.Path(workdir) / "checkpoints", read_only=True)
    try:
        state, _ = checkpoints.restore(manager, like)
    finally:
        manager.close()
    return state
