"""Training the classifier and the GAN: pure jitted steps, on-device data, resumable runs.

Every train step is a pure function ``(state, batch, key) -> (state, metrics)``. A run executes
``log_every_steps`` of them between progress lines (the data set lives on the device and each
step gathers its batch by index), then prints progress, appends metrics to
``<workdir>/metrics.jsonl`` and saves an Orbax checkpoint every ``checkpoint_every_steps``.

Determinism: the batch order of epoch ``e`` is a permutation drawn from ``(seed, e)`` and the
key of step ``s`` is ``fold_in(key(seed), s)``, so a run resumed from any checkpoint replays
exactly the steps an uninterrupted run would take and ends with the same parameters.

Many seeds in one program (``config.model_seeds``, as PureJaxRL trains many agents): the
per-seed states are stacked on a leading axis and one jitted step advances them all, each with
its own initialisation, batch order and step keys, so seed ``s`` of a stack follows the same
steps as a single run with ``config.seed = s`` (equal to float32 rounding where batched kernels
round differently). The step batches the seeds with ``jax.vmap`` on GPUs and TPUs and unrolls
them on CPUs, whichever is faster there (:data:`STACKED_STEP`). The stack is checkpointed by Orbax as one state, resumes
exactly, and its seed axis is split over the local devices when their number divides it.
"""

from __future__ import annotations

import contextlib
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

from latentjax import _storage, data
from latentjax.models import checkpoints
from latentjax._progress import ProgressLog
from latentjax.errors import RunDirectoryError
from latentjax.images import save_image_grid
from latentjax.models.networks import ModelSpec

State = dict[str, Any]


# ----------------------------------------------------------------------------- run directories


# Keys a resumed run may raise: the GAN's steps do not depend on its length (constant learning
# rates), so training it further gives exactly the parameters of a longer run from scratch. The
# classifier's cosine schedule does depend on its length, so it has no such key.
EXTENDABLE_KEYS = {"gan": ("gan_training", "epochs")}
# Keys added after runs were already made, which a resumed run written before them may take on:
# the generator's moving average is only read from the weights, never fed back into training.
# (Whether the average can still start where the config says is checked when the state loads.)
ADDED_KEYS = {
    "gan": (("gan_training", "ema_decay"), ("gan_training", "ema_start_epoch")),
    # Classifiers trained before the key existed have two blocks, its default.
    "classifier": (("classifier", "blocks"), ("classifier_training", "augment_fill")),
    # A reproduction from before the finder comparison resumes and adds it as a new stage.
    # Method B's reading keys: their defaults are the (sampled) reading older runs used.
    "reproduce": (("classifier", "blocks"), ("classifier_training", "augment_fill")) + tuple(("analysis", name) for name in (
        "finders", "finder_distances", "finder_table_distances", "finder_samples_per_class",
        "finder_components", "finder_choice_distance", "finder_prior_samples",
        "weight_solver", "weight_xi_nodes", "weight_smoothing", "weight_schedule", "weight_penalty",
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
    return not any(p.name != _storage.LOCK_FILE for p in workdir.iterdir())


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
    _storage.atomic_write_text(workdir / "run.json", json.dumps(record, indent=2, sort_keys=True))
    return workdir


@contextlib.contextmanager
def run_directory(
    workdir: str | os.PathLike, config: ml_collections.ConfigDict, kind: str, resume: bool
):
    """:func:`prepare_run_directory` under the folder's exclusive lock, held for the block.

    A second process on the same folder gets a clear error at once instead of two runs writing
    one folder. The lock is released when the block ends or the process dies.
    """
    _storage.check_writable(workdir, "run directory")
    with _storage.FolderLock(workdir):
        yield prepare_run_directory(workdir, config, kind, resume)


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


def run_seeds(config) -> tuple[int, ...] | None:
    """The seeds of a stacked run (``config.model_seeds``), or ``None`` for one model."""
    seeds = tuple(config.get("model_seeds", ()) or ())
    return seeds or None


def init_states(init: Callable[[Any, jax.Array], State], config) -> State:
    """``init(config, key(seed))`` for the run's seed, or stacked for each of its seeds."""
    seeds = run_seeds(config)
    if seeds is None:
        return init(config, jax.random.key(config.seed))
    from latentjax.analysis.parallel import stack_pytrees

    return stack_pytrees([init(config, jax.random.key(s)) for s in seeds])


def _spread_over_devices(state: State) -> State:
    """Splits a stack's seed axis over the local devices when their number divides it."""
    from latentjax.analysis.parallel import local_mesh, shard_leading_axis

    n = jax.tree.leaves(state)[0].shape[0]
    devices = jax.local_device_count()
    if devices < 2 or n % devices:
        return state
    return shard_leading_axis(state, local_mesh("seeds"))


def _run_loop(
    *,
    name: str,
    workdir: pathlib.Path,
    state: State,
    chunk_fn: Callable,
    images: jax.Array,
    labels: jax.Array,
    seed: int,
    seeds: tuple[int, ...] | None = None,
    batch_size: int,
    epochs: int,
    log_every: int,
    checkpoint_every: int,
    metadata: dict,
    stop_after_steps: int | None,
    on_checkpoint: Callable[[State, int], None] | None = None,
    restore_state: Callable[[Any, State], State] | None = None,
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
    say = lambda msg: print(f"[{name}] {msg}", flush=True)  # noqa: E731
    resumed = checkpoints.newest_intact_step(manager, log=say)
    if resumed is not None:
        state = (restore_state or _restore_state)(manager, state, resumed)
        step = int(resumed)
        say(f"resuming {workdir} from step {step}")
    # Rows logged after the checkpoint we resume from are logged again (same numbers) below.
    _truncate_metrics(workdir / "metrics.jsonl", step)
    if seeds is not None:
        state = _spread_over_devices(state)
        name = f"{name} x{len(seeds)} seeds"
    progress = ProgressLog(name, total, step, workdir / "metrics.jsonl")
    if seeds is None:
        root_key = jax.random.key(seed)
    else:
        root_key = jax.vmap(jax.random.key)(jnp.asarray(seeds))
    while step < total:
        # Chunks end on log and checkpoint boundaries so every run cuts the same chunks.
        boundary = min(
            (step // log_every + 1) * log_every, (step // checkpoint_every + 1) * checkpoint_every
        )
        n = min(boundary, total) - step
        if seeds is None:
            idx = batch_indices(seed, step, n, num_examples, batch_size)
        else:  # [steps, seeds, batch]: each seed its own batch order
            idx = np.stack(
                [batch_indices(s, step, n, num_examples, batch_size) for s in seeds], axis=1
            )
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


def _restore_state(manager, like: State, step: int | None = None) -> State:
    return checkpoints.restore(manager, like, step)[0]


def _truncate_metrics(path: pathlib.Path, step: int) -> None:
    """Keeps the metrics rows up to ``step`` (those a resumed run does not compute again)."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = []
    for line in lines:
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            pass  # a row cut short by the interruption
    if len(kept) != len(lines):
        _storage.atomic_write_text(path, "".join(kept))


def optimizer_update(optimizer: optax.GradientTransformation, grads, opt_state, params):
    """``optimizer.update`` under standard dtype promotion.

    optax mixes its int32 step count with floats (bias correction, schedules), which strict
    promotion (our test setting, and maybe a user's) rejects; the promotion there is harmless.
    """
    with jax.numpy_dtype_promotion("standard"):
        return optimizer.update(grads, opt_state, params)


#: How a stacked step advances its seeds, by backend: ``'vmap'`` (one batched step) or
#: ``'unroll'`` (the seeds' steps one after another inside the same jitted program). XLA:CPU
#: runs ``vmap``-ped convolutions (grouped over the seed axis) 2.3x slower than a Python loop
#: over seeds (docs/results.md), so the CPU unrolls; GPUs and TPUs batch.
STACKED_STEP = {"cpu": "unroll"}


def stacked_step_layout() -> str:
    return STACKED_STEP.get(jax.default_backend(), "vmap")


def _jit_steps(step_fn: Callable, stacked: bool = False, layout: str | None = None) -> Callable:
    """Lifts ``step_fn(state, x, y, key, step) -> (state, metrics)`` to a chunk of jitted steps.

    Each step is one jitted call that gathers its batch from the device-resident data set by
    index; the host only enqueues calls (JAX dispatch is asynchronous) and reads the metrics
    once per chunk. We do not put the chunk in a ``lax.scan``: XLA:CPU runs convolutions inside
    a while loop about 30 times slower than the same step called on its own (measured here).
    ``stacked``: the state, batch indices and root keys carry a leading seed axis and one jitted
    call advances every seed, batched by ``vmap`` or unrolled (``layout``, default
    :func:`stacked_step_layout`).
    """

    def seed_step(state, images, labels, batch_idx, root_key, step):
        key = jax.random.fold_in(root_key, step)
        return step_fn(state, images[batch_idx], labels[batch_idx], key, step)

    layout = layout or stacked_step_layout()
    if layout not in ("vmap", "unroll"):
        raise ValueError(f"layout={layout!r}: expected 'vmap' or 'unroll'.")
    if stacked and layout == "vmap":
        seed_step = jax.vmap(seed_step, in_axes=(0, None, None, 0, 0, None))
    elif stacked:
        one_seed = seed_step

        def seed_step(state, images, labels, batch_idx, root_key, step):
            outs = [
                one_seed(jax.tree.map(lambda x: x[i], state), images, labels, batch_idx[i], root_key[i], step)
                for i in range(batch_idx.shape[0])
            ]
            return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)

    one_step = jax.jit(seed_step, donate_argnums=0)

    def chunk(state, images, labels, idx, root_key, first_step):
        metrics = []
        for i in range(idx.shape[0]):
            state, m = one_step(state, images, labels, idx[i], root_key, first_step + i)
            metrics.append(m)
        return state, jax.tree.map(lambda *xs: np.stack(jax.device_get(xs)), *metrics)

    return chunk


# ----------------------------------------------------------------------------- classifier


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
    """``step(state, images, labels, key, step) -> (state, metrics)`` for cross-entropy training."""
    module = ModelSpec.from_config(config).classifier()
    optimizer = classifier_optimizer(config)
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
    """Trains the classifier into ``workdir``; returns the final (or interrupted) state.

    With ``config.model_seeds`` it trains one classifier per seed as one jitted program and
    returns their stacked state.
    """
    _storage.check_writable(workdir, "run directory")  # the cheapest check first
    _training_data(config)  # missing data fails here, before the run directory is touched
    with run_directory(workdir, config, "classifier", resume) as workdir:
        return _train(
            "classifier", config, workdir, init_classifier_state, make_classifier_step,
            config.classifier_training, stop_after_steps=stop_after_steps,
        )


def _train(
    kind: str,
    config,
    workdir: pathlib.Path,
    init: Callable[[Any, jax.Array], State],
    make_step: Callable[[Any], Callable],
    schedule,
    **loop_options,
) -> State:
    """The training loop of one model kind, for its seed or its stack of ``model_seeds``."""
    images, labels = _training_data(config)
    seeds = run_seeds(config)
    return _run_loop(
        name=kind,
        workdir=workdir,
        state=init_states(init, config),
        chunk_fn=_jit_steps(make_step(config), stacked=seeds is not None),
        images=jnp.asarray(images),
        labels=jnp.asarray(labels),
        seed=config.seed,
        seeds=seeds,
        batch_size=schedule.batch_size,
        epochs=schedule.epochs,
        log_every=schedule.log_every_steps,
        checkpoint_every=schedule.checkpoint_every_steps,
        metadata={"kind": kind},
        **loop_options,
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
    generator_variables = {"params": g_vars["params"], "batch_stats": g_vars["batch_stats"]}
    return {
        "generator": generator_variables,
        # A copy: the train step donates the state, and one buffer cannot be donated twice.
        "generator_ema": jax.tree.map(jnp.copy, generator_variables),
        "discriminator": {"params": d_vars["params"]},
        "generator_opt": _gan_optimizer(gt.generator_learning_rate, gt.beta1).init(
            g_vars["params"]
        ),
        "discriminator_opt": _gan_optimizer(gt.discriminator_learning_rate, gt.beta1).init(
            d_vars["params"]
        ),
    }


def ema_start_step(config) -> int:
    """The first step whose generator update enters the moving average ``generator_ema``."""
    gt = config.gan_training
    if gt.ema_start_epoch == 0:
        return 0  # needs no data set: a step can then be built for synthetic data (benchmarks)
    return _num_train_examples(config) // gt.batch_size * gt.ema_start_epoch


def make_gan_step(config) -> Callable:
    """One non-saturating GAN step: a discriminator update, then a generator update.

    ``L_D = softplus(-D(x)) + softplus(D(G(z)))``, ``L_G = softplus(-D(G(z')))``. The state also
    carries an exponential moving average of the generator's variables, the weights that are
    exported and drawn (the average of the last updates gives steadier samples than the last
    update alone): ``G_ema <- d G_ema + (1 - d) G`` with ``d = ema_decay`` from step
    :func:`ema_start_step` on, and ``G_ema = G`` before it.
    """
    spec = ModelSpec.from_config(config)
    generator, discriminator = spec.generator(), spec.discriminator()
    gt = config.gan_training
    g_opt = _gan_optimizer(gt.generator_learning_rate, gt.beta1)
    d_opt = _gan_optimizer(gt.discriminator_learning_rate, gt.beta1)
    start = ema_start_step(config)

    def step(state, real, labels, key, step):
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
        new_generator = {
            "params": optax.apply_updates(g_vars["params"], g_updates),
            "batch_stats": batch_stats,
        }
        decay = jnp.where(step >= start, jnp.float32(gt.ema_decay), jnp.float32(0.0))
        new_state = {
            "generator": new_generator,
            # With decay 0 this is exactly the new generator (0 * old + 1 * new).
            "generator_ema": jax.tree.map(
                lambda old, new: decay * old + (1.0 - decay) * new, state["generator_ema"], new_generator
            ),
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
    """Trains the GAN into ``workdir``; writes a sample grid PNG at every checkpoint.

    With ``config.model_seeds`` it trains one GAN per seed as one jitted program (stacked
    state, one checkpoint, a sample grid per seed) and returns the stacked state.
    """
    # Checked before run.json is touched, so a refused run leaves the folder as it was.
    _storage.check_writable(workdir, "run directory")
    _training_data(config)
    predates_average = resume and _saved_without_average(config, workdir)
    with run_directory(workdir, config, "gan", resume) as workdir:
        return _train_gan(config, workdir, predates_average, stop_after_steps)


def _train_gan(config, workdir: pathlib.Path, predates_average: bool, stop_after_steps) -> State:
    seeds = run_seeds(config)
    generator = ModelSpec.from_config(config).generator()
    grid_z = sample_grid_latents(config)

    def write_samples(state, step):
        per_seed = [(None, state)] if seeds is None else [
            (s, jax.tree.map(lambda x, i=i: x[i], state)) for i, s in enumerate(seeds)
        ]
        for seed, one in per_seed:
            tag = "" if seed is None else f"_seed{seed}"
            path = workdir / f"samples{tag}_step{step:07d}.png"
            if not path.exists():
                samples = generator.apply(one["generator_ema"], grid_z, train=False)
                save_image_grid(path, np.asarray(samples), ncols=10)

    return _train(
        "gan", config, workdir, init_gan_state, make_gan_step, config.gan_training,
        stop_after_steps=stop_after_steps,
        on_checkpoint=write_samples,
        restore_state=_restore_predating_average if predates_average else None,
    )


def _saved_without_average(config, workdir: str | os.PathLike) -> bool:
    """True when the run's newest checkpoint predates ``generator_ema`` and can take it on.

    Until :func:`ema_start_step` the average equals the generator, so such a run continues
    exactly as one that had carried the average from its start; past it, it cannot.
    """
    directory = pathlib.Path(workdir) / "checkpoints"
    if not directory.is_dir():
        return False
    manager = checkpoints.open_manager(directory, read_only=True)
    try:
        step = manager.latest_step()
        if step is None or "generator_ema" in checkpoints.saved_keys(manager, step):
            return False
    finally:
        manager.close()
    start = ema_start_step(config)
    if step > start:
        raise RunDirectoryError(
            f"{str(workdir)!r}: its checkpoint at step {step} has no generator average, and "
            f"gan_training.ema_start_epoch={config.gan_training.ema_start_epoch} starts the "
            f"average at step {start}; resume with an ema_start_epoch whose first step is at "
            f"least {step}."
        )
    return True


def _restore_predating_average(manager, like: State, step: int | None = None) -> State:
    without = {key: value for key, value in like.items() if key != "generator_ema"}
    state = checkpoints.restore(manager, without, step)[0]
    return {**state, "generator_ema": jax.tree.map(jnp.copy, state["generator"])}


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
        if kind == "gan" and "generator_ema" not in checkpoints.saved_keys(manager):
            # Saved before the GAN kept an average: its generator is the only one it has.
            return _restore_predating_average(manager, like)
        state, _ = checkpoints.restore(manager, like)
    finally:
        manager.close()
    return state
