"""The classifier: its state, optimiser, augmentation and train step, and :func:`train_classifier_steps`."""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from latentjax.analysis.optax_calls import optax_update
from latentjax.models.networks import ModelSpec
from latentjax.models.training.loop import State, train_steps


def augment(
    images: jax.Array, key: jax.Array, max_shift: int = 2, fill: float = -1.0
) -> jax.Array:
    """Random horizontal flips and shifts of up to ``max_shift`` pixels.

    The uncovered border takes the value ``fill``: the background of the data set (-1, black,
    for Fashion-MNIST; +1, white, for catalog photos such as UT Zappos50K).
    """

    def one(image, key):
        flip_key, shift_key = jax.random.split(key)
        image = jnp.where(jax.random.bernoulli(flip_key), image[:, ::-1], image)
        padded = jnp.pad(
            image, ((max_shift, max_shift), (max_shift, max_shift), (0, 0)), constant_values=fill
        )
        offset = jax.random.randint(shift_key, (2,), 0, 2 * max_shift + 1)
        return jax.lax.dynamic_slice(padded, (offset[0], offset[1], 0), image.shape)

    return jax.vmap(one)(images, jax.random.split(key, images.shape[0]))


def classifier_optimizer(config, num_examples: int) -> optax.GradientTransformation:
    """AdamW with a warm-up and a cosine decay over the run's steps (``num_examples`` per epoch)."""
    tc = config.classifier_training
    steps = num_examples // tc.batch_size * tc.epochs
    warmup = min(200, max(steps // 10, 1))
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, tc.learning_rate, warmup_steps=warmup, decay_steps=max(steps, warmup + 1)
    )
    return optax.adamw(schedule, weight_decay=tc.weight_decay)


def init_classifier_state(config, key: jax.Array) -> State:
    spec = ModelSpec.from_config(config)
    shape = (1, config.image_size, config.image_size, config.channels)
    variables = spec.classifier().init({"params": key}, jnp.zeros(shape), train=False)
    return {
        "params": variables["params"],
        "batch_stats": variables["batch_stats"],
        # AdamW's state holds a step count and moments, not its schedule's values.
        "opt_state": classifier_optimizer(config, num_examples=0).init(variables["params"]),
    }


def make_classifier_step(config, num_examples: int) -> Callable:
    """``step(state, images, labels, key, step) -> (state, metrics)`` for cross-entropy training
    on a training set of ``num_examples``."""
    module = ModelSpec.from_config(config).classifier()
    optimizer = classifier_optimizer(config, num_examples)
    use_augment = config.classifier_training.augment
    background = float(config.classifier_training.get("augment_fill", -1.0))

    def step(state, images, labels, key, step):
        del step  # the schedule counts steps in the optimizer state
        aug_key, dropout_key = jax.random.split(key)
        if use_augment:
            images = augment(images, aug_key, fill=background)

        def loss_fn(params):
            logits, updates = module.apply(
                {"params": params, "batch_stats": state["batch_stats"]},
                images,
                train=True,
                mutable=["batch_stats"],
                rngs={"dropout": dropout_key},
            )
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
            return loss, (logits, updates["batch_stats"])

        (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state["params"]
        )
        updates, opt_state = optax_update(optimizer, grads, state["opt_state"], state["params"])
        new_state = {
            "params": optax.apply_updates(state["params"], updates),
            "batch_stats": batch_stats,
            "opt_state": opt_state,
        }
        accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
        return new_state, {"loss": loss, "accuracy": accuracy}

    return step


def train_classifier_steps(config, workdir: pathlib.Path, images, labels, *, stop_after_steps: int | None = None) -> State:
    """Trains the classifier on ``images``/``labels``, checkpointing into the run folder
    ``workdir``; returns the final (or interrupted) state. With ``config.model_seeds``, one
    classifier per seed as one jitted program, their states stacked."""
    return train_steps(
        "classifier", config, workdir, images, labels, init_classifier_state, make_classifier_step,
        config.classifier_training, stop_after_steps=stop_after_steps,
    )
