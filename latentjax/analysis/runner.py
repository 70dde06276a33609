"""How an iterative analysis reaches the devices: one compiled ``lax.scan``, or host-driven blocks
of unrolled steps for groups of rows dealt to the devices in turn.

An analysis that iterates (Method B's optimiser) is written as a :class:`Stepper`, three pure
functions over a batch of independent **rows** (code sets)::

    fixed, carry, tally = start(shared, rows, static)
    carry, outputs      = advance(shared, rows, fixed, carry, first_step, static, num_steps,
                                  unrolled, keep_path)
    result              = finish(shared, rows, fixed, carry, outputs, static)

``shared`` (models, traced float settings) is the same for every row; every leaf of ``rows``,
``fixed``, ``carry``, ``outputs`` and ``result`` has the rows on its leading axis; ``static`` is
hashable (the compiled program's shape); ``unrolled`` asks for straight-line steps instead of a
``lax.scan``; ``keep_path`` for per-step outputs beyond the losses; ``tally`` is a count summed over rows (e.g. invalid
classifier outputs). The stepper says what one step computes; this module says where and how the
steps run, so the mathematics never depends on the device layout:

- :func:`run_compiled`: the whole run as one jitted program, ``lax.scan`` over the steps (GPUs,
  TPUs, and under a caller's ``jit``/``vmap``);
- :func:`run_host_blocks`: blocks of :data:`HOST_BLOCK_STEPS` unrolled steps, each one jitted
  call driven from Python, for groups of :data:`HOST_GROUP_ROWS` rows dealt to the devices in
  turn and dispatched before any is awaited. XLA:CPU runs the body of a compiled loop several
  times slower than the same operations unrolled, and one call of small convolutions leaves a
  core idle; the groups keep every core busy (docs/results.md). The group size is fixed, not one
  group per device, so the numbers do not depend on how many devices there are.

>>> import jax, jax.numpy as jnp
>>> count = Stepper(
...     start=lambda shared, rows, static: (rows, jnp.zeros_like(rows), jnp.int32(0)),
...     advance=lambda shared, rows, fixed, carry, first, static, num_steps, unrolled, keep_path: (
...         carry + num_steps * shared * fixed, jnp.zeros((rows.shape[0], num_steps))),
...     finish=lambda shared, rows, fixed, carry, outputs, static: carry,
... )
>>> run_compiled(count, 2.0, jnp.arange(3.0), None, total_steps=4)[0].tolist()
[0.0, 8.0, 16.0]
>>> run_host_blocks(count, 2.0, jnp.arange(3.0), None, total_steps=4)[0].tolist()
[0.0, 8.0, 16.0]
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from latentjax.analysis.parallel import usable_cores

#: Steps per compiled block of :func:`run_host_blocks`: long enough that the per-call cost is
#: small, short enough to compile in seconds.
HOST_BLOCK_STEPS = 10
#: Rows per call of :func:`run_host_blocks`, dealt to the devices in turn (on CPU, to as many as
#: there are cores). Fixed, so that the numbers are the same on 1, 2 or 8 devices: XLA:CPU's
#: convolutions round differently by batch size.
HOST_GROUP_ROWS = 5


class Stepper(NamedTuple):
    """An iterative analysis as three pure functions (module docstring). Build it once, at import:
    its functions are part of the compiled programs' cache key."""

    start: Callable
    advance: Callable
    finish: Callable


def _whole_run(stepper: Stepper, shared, rows, static, total_steps: int, keep_path: bool):
    fixed, carry, tally = stepper.start(shared, rows, static)
    carry, outputs = stepper.advance(shared, rows, fixed, carry, jnp.int32(0), static, total_steps, False, keep_path)
    return stepper.finish(shared, rows, fixed, carry, outputs, static), tally


_whole_run_jit = jax.jit(_whole_run, static_argnames=("stepper", "static", "total_steps", "keep_path"))


def run_compiled(stepper: Stepper, shared, rows, static, *, total_steps: int, keep_path: bool = False):
    """``(result, tally)``: every step of every row in one jitted program (a ``lax.scan``).

    Works on traced inputs (under a caller's ``jit`` or ``vmap``).
    """
    return _whole_run_jit(stepper, shared, rows, static, total_steps, keep_path)


@functools.lru_cache(maxsize=None)
def _jitted(stepper: Stepper):
    """The stepper's three functions, each jitted with its structural arguments static."""
    start = jax.jit(stepper.start, static_argnums=(2,))
    advance = jax.jit(stepper.advance, static_argnums=(5, 6, 7, 8))
    finish = jax.jit(stepper.finish, static_argnums=(5,))
    return start, advance, finish


def device_groups(num_rows: int, group_rows: int | None = None):
    """``([(rows slice, device)], devices)``: groups of ``group_rows`` rows (default
    :data:`HOST_GROUP_ROWS`) dealt to the devices in turn; on CPU to at most one device per core.

    >>> groups, _ = device_groups(11, 5)
    >>> [(part.start, part.stop) for part, _ in groups]
    [(0, 5), (5, 10), (10, 15)]
    """
    group_rows = group_rows or HOST_GROUP_ROWS
    devices = jax.local_devices()
    if devices[0].platform == "cpu":  # more CPU devices than cores only cost compilations
        devices = devices[: usable_cores()]
    firsts = range(0, num_rows, group_rows)
    return [(slice(first, first + group_rows), devices[i % len(devices)]) for i, first in enumerate(firsts)], devices


def run_host_blocks(
    stepper: Stepper, shared, rows, static, *, total_steps: int, keep_path: bool = False,
    progress: Callable[[int, int], Any] | None = None, block_steps: int | None = None,
    group_rows: int | None = None,
):
    """``(result, tally)``: the same steps as :func:`run_compiled`, as jitted blocks of
    ``block_steps`` unrolled steps called from Python, for groups of ``group_rows`` rows spread
    over the devices (defaults :data:`HOST_BLOCK_STEPS`, :data:`HOST_GROUP_ROWS`).
    ``progress(steps_done, total_steps)`` after each block. Concrete inputs only.
    """
    start, advance, finish = _jitted(stepper)
    block_steps = block_steps or HOST_BLOCK_STEPS
    num_rows = jax.tree.leaves(rows)[0].shape[0]
    placement, devices = device_groups(num_rows, group_rows)
    groups = [
        jax.device_put((shared, jax.tree.map(lambda x, s=part: x[s], rows)), device)
        for part, device in placement
    ]
    starts = [start(g_shared, g_rows, static) for g_shared, g_rows in groups]
    carries = [carry for _, carry, _ in starts]
    outputs = [[] for _ in groups]
    for first in range(0, total_steps, block_steps):
        for i, ((g_shared, g_rows), (fixed, _, _)) in enumerate(zip(groups, starts)):
            # Dispatched without waiting: the devices run their groups at once.
            carries[i], block = advance(
                g_shared, g_rows, fixed, carries[i], jnp.int32(first), static,
                min(block_steps, total_steps - first), True, keep_path,
            )
            outputs[i].append(block)
        if progress is not None:
            jax.block_until_ready([group[-1] for group in outputs])
            progress(min(first + block_steps, total_steps), total_steps)
    results = [
        finish(g_shared, g_rows, fixed, carry, jax.tree.map(lambda *blocks: jnp.concatenate(blocks, axis=1), *group), static)
        for (g_shared, g_rows), (fixed, _, _), carry, group in zip(groups, starts, carries, outputs)
    ]
    gathered = jax.device_put((results, [tally for _, _, tally in starts]), devices[0])
    return jax.tree.map(lambda *parts: jnp.concatenate(parts), *gathered[0]), sum(gathered[1])
