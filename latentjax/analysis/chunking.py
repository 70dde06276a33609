"""Large row sweeps in fixed-size chunks, on the device, optionally spread over a device mesh.

Two shapes of work:

- :func:`map_in_chunks`: ``fn`` applied to every row of an array, ``chunk_size`` rows at a time
  (``lax.map``), so peak memory is one chunk;
- :func:`sum_over_rows`: a sum over ``num_rows`` rows that are *enumerated*, not stored (row
  ``r`` is decoded from its index inside the chunk function). With a mesh, device ``d`` takes
  the contiguous block of rows ``[d * R / D, (d + 1) * R / D)``, sums it locally and only the
  sums cross devices (one ``psum``): the row axis never leaves its device.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, PartitionSpec

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
