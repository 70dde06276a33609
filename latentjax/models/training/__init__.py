"""Training the classifier and the GAN on arrays (``loop``: the shared resumable loop;
``classifier``; ``gan``). Loading a config's data and holding a run folder around the training
is :mod:`latentjax.experiment.training_runs`'s job."""

from __future__ import annotations

from latentjax.models.training.classifier import (
    augment, classifier_optimizer, init_classifier_state, make_classifier_step, train_classifier_steps,
)
from latentjax.models.training.gan import (
    ema_start_step, init_gan_state, make_gan_step, sample_grid_latents, train_gan_steps,
)
from latentjax.models.training.loop import (
    STACKED_STEP, State, batch_indices, init_states, run_seeds, stacked_step_layout, train_steps,
)

__all__ = [
    "STACKED_STEP", "State", "augment", "batch_indices", "classifier_optimizer", "ema_start_step",
    "init_classifier_state", "init_gan_state", "init_states", "make_classifier_step",
    "make_gan_step", "run_seeds", "sample_grid_latents", "stacked_step_layout", "train_classifier_steps",
    "train_gan_steps", "train_steps",
]
