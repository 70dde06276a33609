"""Where the analysis runs: every execution engine of the core, so that the mathematics
(Method A's sums, Method B's steps, the evaluations) never depends on the device layout.

Two shapes of work:

- **Row sweeps** (Method A, the evaluations, the quality scores): :func:`map_in_chunks` applies a
  function to every row of an array ``chunk_size`` rows at a time (``lax.map``), so peak memory
  is one chunk; :func:`sum_over_rows` sums over rows that are *enumerated*, not stored (row ``r``
  is decoded from its index inside the chunk function), and with a one-axis mesh gives device
  ``d`` the contiguous block ``[d R / D, (d + 1) R / D)``: only the sums cross devices (one
  ``psum``). Finished chunks can report progress to the host (:func:`reporting_progress`).
- **Iterations** (Method B's optimiser), written as a :class:`Stepper`, three pure functions over
  a batch of independent **rows** (code sets)::

    fixed, carry, tally = start(shared, rows, static)
    carry, outputs      = advance(shared, rows, fixed, carry, first_step, static, num_steps,
                                  unrolled, keep_path)
    result              = finish(shared, rows, fixed, carry, outputs, static)

  ``shared`` (models, traced float settings) is the same for every row; every leaf of ``rows``,
  ``fixed``, ``carry``, ``outputs`` and ``result`` has the rows on its leading axis; ``static``
  is hashable (the compiled program's shape); ``unrolled`` asks for straight-line steps instead
  of a ``lax.scan``; ``keep_path`` for per-step outputs beyond the losses; ``tally`` is a count
  summed over rows (e.g. invalid classifier outputs). Two engines run a stepper:

  - :func:`run_compiled`: the whole run as one jitted program, ``lax.scan`` over the steps
    (GPUs, TPUs, and under a caller's ``jit``/``vmap``);
  - :func:`run_host_blocks`: blocks of :data:`HOST_BLOCK_STEPS` unrolled steps, each one jitted
    call driven from Python, for groups of :data:`HOST_GROUP_ROWS` rows dealt to the devices in
    turn and dispatched before any is awaited. XLA:CPU runs the body of a compiled loop several
    times slower than the same operations unrolled, and one call of small convolutions leaves a
    core idle; the groups keep every core busy (docs/results.md). The group size is fixed, not
    one group per device, so the numbers do not depend on how many devices there are.

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

import contextlib
import functools
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, PartitionSpec

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


# Row sweeps.

#: Default rows per chunk and device by backend: CPUs gain nothing from bigger batches (256 was
#: fastest with one host device per core, docs/results.md), GPUs and TPUs do.
DEFAULT_CHUNK_SIZE = {"cpu": 256, "gpu": 8192, "tpu": 8192}


def default_chunk_size() -> int:
    """Rows per chunk for the default backend (:data:`DEFAULT_CHUNK_SIZE`)."""
    return DEFAULT_CHUNK_SIZE.get(jax.default_backend(), 2048)


def map_in_chunks(fn: Callable[[Any], Any], xs: Any, chunk_size: int) -> Any:
    """``fn(xs)`` computed ``chunk_size`` rows at a time with ``lax.map``; peak memory is one chunk.

    ``fn`` maps a batch ``[b, ...]`` (or a pytree of them) to a pytree of ``[b, ...]`` outputs.
    The rows are padded to a multiple of ``chunk_size`` (by repeating the last row) and the
    padding is dropped from the result, so every chunk has one shape and compiles once.

    >>> import jax.numpy as jnp
    >>> map_in_chunks(lambda x: 2 * x, jnp.arange(5.0), 2).tolist()
    [0.0, 2.0, 4.0, 6.0, 8.0]
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size}: expected a positive integer.")
    leaves = jax.tree.leaves(xs)
    n = leaves[0].shape[0]
    chunk_size = min(chunk_size, n)
    num_chunks = -(-n // chunk_size)
    pad = num_chunks * chunk_size - n

    def to_chunks(x):
        if pad:
            x = jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)])
        return x.reshape(num_chunks, chunk_size, *x.shape[1:])

    out = jax.lax.map(fn, jax.tree.map(to_chunks, xs))
    return jax.tree.map(lambda y: y.reshape(num_chunks * chunk_size, *y.shape[2:])[:n], out)


class ChunkProgress:
    """The host end of progress reports from inside a compiled loop over chunks.

    The compiled loop calls this object (one fixed function, so reporting adds one program
    variant, not one per caller) after each chunk on each device, with the loop's total number
    of chunks; it forwards ``(done, total)`` to the function set by :func:`reporting_progress`,
    and does nothing when none is set.
    """

    def __init__(self):
        self.target, self.done = None, 0
        # The runtime may run two chunks' callbacks at once on different host threads: count and
        # forward under one lock, so that the reports arrive as 1, 2, ..., total, each once.
        self._lock = threading.Lock()

    def __call__(self, chunk_index, total_chunks) -> None:
        with self._lock:
            if self.target is not None:
                self.done += 1
                total = int(total_chunks)
                self.target(min(self.done, total), total)


CHUNK_PROGRESS = ChunkProgress()


@contextlib.contextmanager
def reporting_progress(report: Callable[[int, int], Any]):
    """Within the block, chunks finished by a loop compiled with ``report_progress=True`` call
    ``report(done, total)``. Values are unchanged: the report is a side effect only."""
    with CHUNK_PROGRESS._lock:
        CHUNK_PROGRESS.target, CHUNK_PROGRESS.done = report, 0
    try:
        yield
    finally:
        with CHUNK_PROGRESS._lock:
            CHUNK_PROGRESS.target = None


def row_blocks(num_rows: int, chunk_size: int, num_devices: int = 1) -> tuple[int, int]:
    """``(chunk_size, chunks_per_device)`` that cover ``num_rows`` rows on ``num_devices``.

    The chunk shrinks when a device's share is smaller than one chunk, so small sweeps are not
    padded up to a whole chunk per device.

    >>> row_blocks(1000, 512, 1), row_blocks(1000, 512, 8)
    ((512, 2), (125, 1))
    """
    per_device = -(-num_rows // num_devices)
    chunk_size = max(1, min(chunk_size, per_device))
    return chunk_size, -(-per_device // chunk_size)


def sum_over_rows(
    chunk_fn: Callable[[Any, jax.Array, jax.Array], Any],
    operands: Any,
    num_rows: int,
    chunk_size: int,
    mesh: Mesh | None = None,
    report_progress: bool = False,
) -> Any:
    """``sum_{r < num_rows} chunk_fn(operands, rows, valid)`` over chunks of enumerated rows.

    ``chunk_fn(operands, rows[b], valid[b])`` returns a pytree of partial sums for the rows of one
    chunk; rows past ``num_rows`` arrive with ``valid`` False (and ``rows`` clamped to a real
    row) and must contribute zero. ``report_progress``: each finished chunk calls
    :data:`CHUNK_PROGRESS` on the host (see :func:`reporting_progress`). ``operands`` (models,
    codes, settings) are passed explicitly
    rather than closed over, so that with a ``mesh`` (one axis) every device receives them as
    replicated inputs of ``shard_map`` and sums its own block of rows; the blocks' sums are then
    added across devices with one ``psum``.

    >>> import jax.numpy as jnp
    >>> squares = lambda _, rows, valid: jnp.sum(jnp.where(valid, rows * rows, 0))
    >>> int(sum_over_rows(squares, None, 10, 3))
    285
    """
    num_devices = 1 if mesh is None else mesh.size
    chunk_size, chunks_per_device = row_blocks(num_rows, chunk_size, num_devices)
    rows_per_device = chunk_size * chunks_per_device

    def local_sum(operands, device_index):
        def body(total, chunk_index):
            rows = device_index * rows_per_device + chunk_index * chunk_size
            rows = rows + jnp.arange(chunk_size, dtype=jnp.int32)
            valid = rows < num_rows
            part = chunk_fn(operands, jnp.where(valid, rows, num_rows - 1), valid)
            if report_progress:
                # On the chunk index only: a use of the sums could change how XLA fuses, and so
                # the last bit of the numbers. Chunks run in order, so the count is at most one
                # chunk early.
                jax.debug.callback(CHUNK_PROGRESS, chunk_index, chunks_per_device * num_devices)
            if total is None:
                return part, None
            return jax.tree.map(jnp.add, total, part), None

        # The first chunk's sums fix the accumulator's structure and dtypes.
        first, _ = body(None, jnp.int32(0))
        total, _ = jax.lax.scan(body, first, jnp.arange(1, chunks_per_device, dtype=jnp.int32))
        return total

    if mesh is None:
        return local_sum(operands, jnp.int32(0))
    if len(mesh.axis_names) != 1:
        raise ValueError(
            f"mesh has axes {mesh.axis_names}: expected a mesh with one axis (the rows)."
        )
    (axis,) = mesh.axis_names

    def per_device(operands):
        total = local_sum(operands, jax.lax.axis_index(axis).astype(jnp.int32))
        return jax.tree.map(lambda x: jax.lax.psum(x, axis), total)

    return jax.shard_map(
        per_device, mesh=mesh, in_specs=(PartitionSpec(),), out_specs=PartitionSpec()
    )(operands)
