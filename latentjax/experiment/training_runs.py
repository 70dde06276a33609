"""Training runs: a model trained on its config's data inside a run folder that records what it
holds, resumable from the folder's newest intact checkpoint.

Here the training loop of :mod:`latentjax.models.training` meets the data and the run folders,
which the models layer does not know about.
"""

from __future__ import annotations

import os
import pathlib

import ml_collections
import numpy as np

from latentjax import data
from latentjax.errors import RunDirectoryError
from latentjax.models import checkpoints, training
from latentjax.storage.files import check_writable
from latentjax.storage.runs import read_run_record, run_directory


def training_data(config: ml_collections.ConfigDict) -> tuple[np.ndarray, np.ndarray]:
    """The train split's images and labels, cut to the first ``config.train_examples`` (0: all)."""
    images, labels = data.load_from_config(config, "train")
    if config.train_examples:
        images, labels = images[: config.train_examples], labels[: config.train_examples]
    return images, labels


def _train_in_run(kind: str, config, workdir, resume: bool, train) -> training.State:
    check_writable(workdir, "run directory")  # the cheapest check first
    images, labels = training_data(config)  # missing data fails before the folder is touched
    with run_directory(workdir, config, kind, resume) as folder:
        return train(config, folder, images, labels)


def train_classifier(
    config: ml_collections.ConfigDict, workdir: str | os.PathLike, *, resume: bool = False,
    stop_after_steps: int | None = None,
) -> training.State:
    """Trains the classifier into the run folder ``workdir``; returns the final (or interrupted)
    state. With ``config.model_seeds`` it trains one classifier per seed as one jitted program
    and returns their stacked state."""
    return _train_in_run("classifier", config, workdir, resume, lambda *args: training.train_classifier_steps(
        *args, stop_after_steps=stop_after_steps))


def train_gan(
    config: ml_collections.ConfigDict, workdir: str | os.PathLike, *, resume: bool = False,
    stop_after_steps: int | None = None,
) -> training.State:
    """Trains the GAN into the run folder ``workdir``, with a sample grid PNG at every checkpoint.
    With ``config.model_seeds`` it trains one GAN per seed as one jitted program (stacked state,
    one checkpoint, a sample grid per seed) and returns the stacked state."""
    return _train_in_run("gan", config, workdir, resume, lambda *args: training.train_gan_steps(
        *args, stop_after_steps=stop_after_steps))


def load_run_state(config, workdir: str | os.PathLike, kind: str) -> training.State:
    """The newest checkpointed state of a training run (``kind``: 'classifier' or 'gan').

    A run of several ``config.model_seeds`` gives the stacked state (leading seed axis).
    """
    init = {"classifier": training.init_classifier_state, "gan": training.init_gan_state}[kind]
    found = read_run_record(workdir)["kind"]
    if found != kind:
        raise RunDirectoryError(
            f"{str(workdir)!r} is a {found!r} training run: expected a {kind!r} run here."
        )
    like = training.init_states(init, config)
    manager = checkpoints.open_manager(pathlib.Path(workdir) / "checkpoints", read_only=True)
    try:
        state, _ = checkpoints.restore(manager, like)
    finally:
        manager.close()
    return state
