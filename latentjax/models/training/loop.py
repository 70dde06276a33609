"""The training loop shared by the classifier and the GAN: pure jitted steps, on-device data,
resumable runs.

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

import json
import pathlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from latentjax.storage import files as storage
from latentjax.progress import ProgressLog
from latentjax.analysis.parallel import stack_pytrees
from latentjax.models import checkpoints

State = dict[str, Any]


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


def run_seeds(config) -> tuple[int, ...] | None:
    """The seeds of a stacked run (``config.model_seeds``), or ``None`` for one model."""
    seeds = tuple(config.get("model_seeds", ()) or ())
    return seeds or None


def init_states(init: Callable[[Any, jax.Array], State], config) -> State:
    """``init(config, key(seed))`` for the run's seed, or stacked for each of its seeds."""
    seeds = run_seeds(config)
    if seeds is None:
        return init(config, jax.random.key(config.seed))
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
        state = _restore_state(manager, state, resumed)
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
        storage.atomic_write_text(path, "".join(kept))


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
            return stack_pytrees(outs)

    one_step = jax.jit(seed_step, donate_argnums=0)

    def chunk(state, images, labels, idx, root_key, first_step):
        metrics = []
        for i in range(idx.shape[0]):
            state, m = one_step(state, images, labels, idx[i], root_key, first_step + i)
            metrics.append(m)
        return state, jax.device_get(stack_pytrees(metrics))

    return chunk


def train_steps(
    kind: str,
    config,
    workdir: pathlib.Path,
    images: np.ndarray,
    labels: np.ndarray,
    init: Callable[[Any, jax.Array], State],
    make_step: Callable[[Any, int], Callable],
    schedule,
    **loop_options,
) -> State:
    """The training loop of one model kind on ``images``/``labels``, for its seed or its stack of
    ``model_seeds``, checkpointed into ``workdir`` (a run folder the caller holds).

    ``make_step(config, num_examples)`` builds the step (the schedules count epochs).
    """
    seeds = run_seeds(config)
    return _run_loop(
        name=kind,
        workdir=workdir,
        state=init_states(init, config),
        chunk_fn=_jit_steps(make_step(config, len(labels)), stacked=seeds is not None),
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
