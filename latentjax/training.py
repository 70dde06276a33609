"""Training the classifier and the GAN: pure jitted steps, on-device data, resumable runs.

Every train step is a pure function ``(state, batch, key) -> (state, metrics)``. A run executes
``log_every_steps`` of them between progress lines (the data set lives on the device and each
step gathers its batch by index), then prints progress, appends metrics to
``<workdir>/metrics.jsonl`` and saves an Orbax checkpoint every ``checkpoint_every_steps``.

Determinism: the batch order of epoch ``e`` is a permutation drawn from ``(seed, e)`` and the
key of step ``s`` is ``fold_in(key(seed), s)``, so a run resumed from any checkpoint replays
exactly the steps an uninterrupted run would take and ends with the same parameters.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from latentjax import checkpoints, data
from latentjax._progress import ProgressLog
from latentjax.errors import RunDirectoryError
from latentjax.images import save_image_grid
from latentjax.models import ModelSpec

State = dict[str, Any]


# ----------------------------------------------------------------------------- run directories


# Keys a resumed run may raise: the GAN's steps do not depend on its length (constant learning
# rates), so training it further gives exactly the parameters of a longer run from scratch. The
# classifier's cosine schedule does depend on its length, so it has no such key.
EXTENDABLE_KEYS = {"gan": ("gan_training", "epochs")}
NOT_READ_BY_TRAINING = ("analysis", "evaluation")


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


def prepare_run_directory(
    workdir: str | os.PathLike, config: ml_collections.ConfigDict, kind: str, resume: bool
) -> pathlib.Path:
    """Creates a fresh run directory, or checks that a resumed one belongs to the same run.

    A resumed GAN run may ask for more epochs than it was started with (see
    :data:`EXTENDABLE_KEYS`); its ``run.json`` is then updated to the longer config.
    """
    workdir = pathlib.Path(workdir)
    config_dict = config.to_dict()
    if kind in ("classifier", "gan"):
        # Training reads neither section; a run resumes whatever they say now.
        for section in NOT_READ_BY_TRAINING:
            config_dict.pop(section, None)
    record = json.loads(json.dumps({"kind": kind, "config": config_dict}))
    record_path = workdir / "run.json"
    if workdir.exists() and any(workdir.iterdir()):
        if not resume:
            raise RunDirectoryError(
                f"run directory {str(workdir)!r} exists and is not empty; pass --resume to "
                "continue that run, or choose a new --workdir."
            )
        if not record_path.is_file():
            raise RunDirectoryError(f"{str(workdir)!r} has no run.json: it is not a latentjax run.")
        saved = json.loads(record_path.read_text())
        for section in NOT_READ_BY_TRAINING if kind in ("classifier", "gan") else ():
            saved["config"].pop(section, None)
        if saved == record:
            return workdir
        if not _extended(saved, record):
            raise RunDirectoryError(
                f"cannot resume {str(workdir)!r}: it was started as a {saved.get('kind')!r} run "
                "with a different config; start a new --workdir instead."
            )
    else:
        workdir.mkdir(parents=True, exist_ok=True)
    tmp = record_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
    os.replace(tmp, record_path)
    return workdir


def batch_indices(
    seed: int, start_step: int, num_steps: int, num_examples: int, batch_size: int
) -> np.ndarray:
    """Example indices ``[num_steps, batch_size]`` for global steps ``start_step, ...``.

    Epoch ``e`` visits a permutation drawn from ``(seed, e)``; the last partial batch is dropped.
    """
    steps_per_epoch = num_examples // batch_size
    out = np.empty((num_steps, batch_size), np.int32)
    perms: dict[int, np.ndarray] = {}
    for i, step in enumerate(range(start_step, start_step + num_steps)):
        epoch, pos = divmod(step, steps_per_epoch)
        if epoch not in perms:
            perms[epoch] = np.random.default_rng([seed, epoch]).permutation(num_examples)
        out[i] = perms[epoch][pos * batch_size : (pos + 1) * batch_size]
    return out


def _training_data(config) -> tuple[np.ndarray, np.ndarray]:
    images, labels = data.load_from_config(config, "train")
    if config.train_examples:
        images, labels = images[: config.train_examples], labels[: config.train_examples]
    return images, labels


def _run_loop(
    *,
    name: str,
    workdir: pathlib.Path,
    state: State,
    chunk_fn: Callable,
    images: jax.Array,
    labels: jax.Array,
    seed: int,
    batch_size: int,
    epochs: int,
    log_every: int,
    checkpoint_every: int,
    metadata: dict,
    stop_after_steps: int | None,
    on_checkpoint: Callable[[State, int], None] | None = None,
) -> State:
    num_examples = images.shape[0]
    steps_per_epoch = num_examples // batch_size
    if steps_per_epoch < 1:
        raise ValueError(
            f"batch_size={batch_size} is larger than the {num_examples} training examples."
        )
    total = steps_per_epoch * epochs
    manager = checkpoints.open_manager(workdir / "checkpoints")
    step = 0
    if manager.latest_step() is not None:
        state, _ = checkpoints.restore(manager, state)
        step = int(manager.latest_step())
        print(f"[{name}] resuming {workdir} from step {step}", flush=True)
    progress = ProgressLog(name, total, step, workdir / "metrics.jsonl")
    root_key = jax.random.key(seed)
    while step < total:
        # Chunks end on log and checkpoint boundaries so every run cuts the same chunks.
        boundary = min(
            (step // log_every + 1) * log_every, (step // checkpoint_every + 1) * checkpoint_every
        )
        n = min(boundary, total) - step
        idx = batch_indices(seed, step, n, num_examples, batch_size)
        state, metrics = chunk_fn(state, images, labels, jnp.asarray(idx), root_key, step)
        step += n
        progress.update(step, {k: float(np.mean(v)) for k, v in metrics.items()})
        if step % checkpoint_every == 0 or step == total:
            checkpoints.save(manager, step, state, {**metadata, "step": step, "total_steps": total})
            if on_checkpoint is not None:
                on_checkpoint(state, step)
        if stop_after_steps is not None and step >= stop_after_steps and step < total:
            break
    manager.close()
    return state


def optimizer_update(optimizer: optax.GradientTransformation, grads, opt_state, params):
    """``optimizer.update`` under standard dtype promotion.

    optax mixes its int32 step count with floats (bias correction, schedules), which strict
    promotion (our test setting, and maybe a user's) rejects; the promotion there is harmless.
    """
    with jax.numpy_dtype_promotion("standard"):
        return optimizer.update(grads, opt_state, params)


def _jit_steps(step_fn: Callable) -> Callable:
    """Lifts ``step_fn(state, x, y, key) -> (state, metrics)`` to a chunk of jitted steps.

    Each step is one jitted call that gathers its batch from the device-resident data set by
    index; the host only enqueues calls (JAX dispatch is asynchronous) and reads the metrics
    once per chunk. We do not put the chunk in a ``lax.scan``: XLA:CPU runs convolutions inside
    a while loop about 30 times slower than the same step called on its own (measured here).
    """

    @functools.partial(jax.jit, donate_argnums=0)
    def one_step(state, images, labels, batch_idx, root_key, step):
        key = jax.random.fold_in(root_key, step)
        return step_fn(state, images[batch_idx], labels[batch_idx], key)

    def chunk(state, images, labels, idx, root_key, first_step):
        metrics = []
        for i in range(idx.shape[0]):
            state, m = one_step(state, images, labels, idx[i], root_key, first_step + i)
            metrics.append(m)
        return state, jax.tree.map(lambda *xs: np.stack(jax.device_get(xs)), *metrics)

    return chunk


# ----------------------------------------------------------------------------- classifier


def augment(images: jax.Array, key: jax.Array, max_shift: int = 2) -> jax.Array:
    """Random horizontal flips and shifts of up to ``max_shift`` pixels (background-filled)."""

    def one(image, key):
        flip_key, shift_key = jax.random.split(key)
        image = jnp.where(jax.random.bernoulli(flip_key), image[:, ::-1], image)
        padded = jnp.pad(
            image, ((max_shift, max_shift), (max_shift, max_shift), (0, 0)), constant_values=-1.0
        )
        offset = jax.random.randint(shift_key, (2,), 0, 2 * max_shift + 1)
        return jax.lax.dynamic_slice(padded, (offset[0], offset[1], 0), image.shape)

    return jax.vmap(one)(images, jax.random.split(key, images.shape[0]))


def classifier_optimizer(config) -> optax.GradientTransformation:
    tc = config.classifier_training
    steps = _num_train_examples(config) // tc.batch_size * tc.epochs
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, tc.learning_rate, warmup_steps=min(200, max(steps // 10, 1)), decay_steps=max(steps, 1)
    )
    return optax.adamw(schedule, weight_decay=tc.weight_decay)


def _num_train_examples(config) -> int:
    return len(_training_data(config)[1])


def init_classifier_state(config, key: jax.Array) -> State:
    spec = ModelSpec.from_config(config)
    shape = (1, config.image_size, config.image_size, config.channels)
    variables = spec.classifier().init({"params": key}, jnp.zeros(shape), train=False)
    return {
        "params": variables["params"],
        "batch_stats": variables["batch_stats"],
        "opt_state": classifier_optimizer(config).init(variables["params"]),
    }


def make_classifier_step(config) -> Callable:
    """``step(state, images, labels, key) -> (state, metrics)`` for cross-entropy training."""
    module = ModelSpec.from_config(config).classifier()
    optimizer = classifier_optimizer(config)
    use_augment = config.classifier_training.augment

    def step(state, images, labels, key):
        aug_key, dropout_key = jax.random.split(key)
        if use_augment:
            images = augment(images, aug_key)

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
        updates, opt_state = optimizer_update(optimizer, grads, state["opt_state"], state["params"])
        new_state = {
            "params": optax.apply_updates(state["params"], updates),
            "batch_stats": batch_stats,
            "opt_state": opt_state,
        }
        accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
        return new_state, {"loss": loss, "accuracy": accuracy}

    return step


def train_classifier(
    config: ml_collections.ConfigDict,
    workdir: str | os.PathLike,
    *,
    resume: bool = False,
    stop_after_steps: int | None = None,
) -> State:
    """Trains the classifier into ``workdir``; returns the final (or interrupted) state."""
    workdir = prepare_run_directory(workdir, config, "classifier", resume)
    images, labels = _training_data(config)
    tc = config.classifier_training
    state = init_classifier_state(config, jax.random.key(config.seed))
    return _run_loop(
        name="classifier",
        workdir=workdir,
        state=state,
        chunk_fn=_jit_steps(make_classifier_step(config)),
        images=jnp.asarray(images),
        labels=jnp.asarray(labels),
        seed=config.seed,
        batch_size=tc.batch_size,
        epochs=tc.epochs,
        log_every=tc.log_every_steps,
        checkpoint_every=tc.checkpoint_every_steps,
        metadata={"kind": "classifier"},
        stop_after_steps=stop_after_steps,
    )


# ----------------------------------------------------------------------------- GAN


def _gan_optimizer(learning_rate: float, beta1: float) -> optax.GradientTransformation:
    return optax.adam(learning_rate, b1=beta1)


def init_gan_state(config, key: jax.Array) -> State:
    spec = ModelSpec.from_config(config)
    g_key, d_key = jax.random.split(key)
    g_vars = spec.generator().init(g_key, jnp.zeros((1, config.latent_dim)), train=False)
    image = jnp.zeros((1, config.image_size, config.image_size, config.channels))
    d_vars = spec.discriminator().init(d_key, image)
    gt = config.gan_training
    return {
        "generator": {"params": g_vars["params"], "batch_stats": g_vars["batch_stats"]},
        "discriminator": {"params": d_vars["params"]},
        "generator_opt": _gan_optimizer(gt.generator_learning_rate, gt.beta1).init(
            g_vars["params"]
        ),
        "discriminator_opt": _gan_optimizer(gt.discriminator_learning_rate, gt.beta1).init(
            d_vars["params"]
        ),
    }


def make_gan_step(config) -> Callable:
    """One non-saturating GAN step: a discriminator update, then a generator update.

    ``L_D = softplus(-D(x)) + softplus(D(G(z)))``, ``L_G = softplus(-D(G(z')))``.
    """
    spec = ModelSpec.from_config(config)
    generator, discriminator = spec.generator(), spec.discriminator()
    gt = config.gan_training
    g_opt = _gan_optimizer(gt.generator_learning_rate, gt.beta1)
    d_opt = _gan_optimizer(gt.discriminator_learning_rate, gt.beta1)

    def step(state, real, labels, key):
        del labels  # unconditional GAN
        z_d, z_g = jax.random.normal(key, (2, real.shape[0], config.latent_dim))
        g_vars = state["generator"]
        fake, _ = generator.apply(g_vars, z_d, train=True, mutable=["batch_stats"])
        fake = jax.lax.stop_gradient(fake)

        def d_loss_fn(d_params):
            real_logits = discriminator.apply({"params": d_params}, real)
            fake_logits = discriminator.apply({"params": d_params}, fake)
            loss = jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))
            return loss, (real_logits, fake_logits)

        d_params = state["discriminator"]["params"]
        (d_loss, (real_logits, fake_logits)), d_grads = jax.value_and_grad(
            d_loss_fn, has_aux=True
        )(d_params)
        d_updates, d_opt_state = optimizer_update(d_opt, d_grads, state["discriminator_opt"], d_params)
        d_params = optax.apply_updates(d_params, d_updates)

        def g_loss_fn(g_params):
            images, updates = generator.apply(
                {"params": g_params, "batch_stats": g_vars["batch_stats"]},
                z_g,
                train=True,
                mutable=["batch_stats"],
            )
            logits = discriminator.apply({"params": d_params}, images)
            return jnp.mean(jax.nn.softplus(-logits)), updates["batch_stats"]

        (g_loss, batch_stats), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
            g_vars["params"]
        )
        g_updates, g_opt_state = optimizer_update(
            g_opt, g_grads, state["generator_opt"], g_vars["params"]
        )
        new_state = {
            "generator": {
                "params": optax.apply_updates(g_vars["params"], g_updates),
                "batch_stats": batch_stats,
            },
            "discriminator": {"params": d_params},
            "generator_opt": g_opt_state,
            "discriminator_opt": d_opt_state,
        }
        metrics = {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
            "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits)),
        }
        return new_state, metrics

    return step


def sample_grid_latents(config, n: int = 100) -> jax.Array:
    """Fixed latent codes for the sample grids of a run (the same at every checkpoint)."""
    return jax.random.normal(jax.random.key(config.seed + 1_000_003), (n, config.latent_dim))


def train_gan(
    config: ml_collections.ConfigDict,
    workdir: str | os.PathLike,
    *,
    resume: bool = False,
    stop_after_steps: int | None = None,
) -> State:
    """Trains the GAN into ``workdir``; writes a sample grid PNG at every checkpoint."""
    workdir = prepare_run_directory(workdir, config, "gan", resume)
    images, labels = _training_data(config)
    gt = config.gan_training
    state = init_gan_state(config, jax.random.key(config.seed))
    generator = ModelSpec.from_config(config).generator()
    grid_z = sample_grid_latents(config)

    def write_samples(state, step):
        path = workdir / f"samples_step{step:07d}.png"
        if not path.exists():
            samples = generator.apply(state["generator"], grid_z, train=False)
            save_image_grid(path, np.asarray(samples), ncols=10)

    return _run_loop(
        name="gan",
        workdir=workdir,
        state=state,
        chunk_fn=_jit_steps(make_gan_step(config)),
        images=jnp.asarray(images),
        labels=jnp.asarray(labels),
        seed=config.seed,
        batch_size=gt.batch_size,
        epochs=gt.epochs,
        log_every=gt.log_every_steps,
        checkpoint_every=gt.checkpoint_every_steps,
        metadata={"kind": "gan"},
        stop_after_steps=stop_after_steps,
        on_checkpoint=write_samples,
    )


def load_run_state(config, workdir: str | os.PathLike, kind: str) -> State:
    """The newest checkpointed state of a training run (``kind``: 'classifier' or 'gan')."""
    init = {"classifier": init_classifier_state, "gan": init_gan_state}[kind]
    like = init(config, jax.random.key(config.seed))
    manager = checkpoints.open_manager(pathlib.Path(workdir) / "checkpoints", read_only=True)
    try:
        state, _ = checkpoints.restore(manager, like)
    finally:
        manager.close()
    return state
