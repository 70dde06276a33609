"""Models as pytrees, stacks of model seeds, and laying work out over all devices.

A model enters the analysis as a **pytree of its weights** whose call is the model:
``jax.tree_util.Partial(apply, variables)`` (what :func:`latentjax.load_pretrained` returns) is
one. Jitted analysis code takes it as an ordinary traced argument, so

- a new model or a reloaded one of the same architecture reuses the compiled program (the cache
  is keyed on shapes and the apply function, not on the weights);
- a stack of per-seed weights (:func:`stack_pytrees`) can be ``jax.vmap``-ped: one program for
  many seeds, its seed axis laid out over devices with :func:`shard_leading_axis`.

A plain Python function (no weights) still works: :func:`as_pytree` wraps it as a leafless
``Partial``, compiled once per function object.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jax.tree_util import Partial


def as_pytree(fn: Callable) -> Any:
    """``fn`` as a pytree that jitted code can take as an argument.

    A callable that already is a pytree (a ``Partial`` holding weights, an equinox module) is
    returned as it is; a plain function becomes ``Partial(fn)``, a pytree without leaves whose
    structure is the function itself.

    >>> import jax.numpy as jnp
    >>> double = as_pytree(lambda x: 2 * x)
    >>> jax.tree.leaves(double), double(jnp.ones(2)).tolist()
    ([], [2.0, 2.0])
    """
    if not callable(fn):
        raise TypeError(f"expected a callable model, got {type(fn).__name__}: {fn!r}")
    if jax.tree_util.treedef_is_leaf(jax.tree.structure(fn)):
        return Partial(fn)
    return fn


def stack_pytrees(trees: Sequence[Any]) -> Any:
    """One pytree whose leaves are the given trees' leaves stacked on a new leading axis.

    ``jax.vmap(f)(stack_pytrees([g0, g1, g2]))`` then runs ``f`` for the three models (for
    example three GAN seeds of one architecture) as one program.

    >>> import jax.numpy as jnp
    >>> from jax.tree_util import Partial
    >>> scale = lambda w, x: w * x
    >>> models = stack_pytrees([Partial(scale, jnp.float32(s)) for s in (1, 2, 3)])
    >>> jax.vmap(lambda model: model(jnp.ones(2)))(models).tolist()
    [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]
    """
    trees = list(trees)
    if not trees:
        raise ValueError("stack_pytrees got no trees: expected at least one.")
    structures = {jax.tree.structure(t) for t in trees}
    if len(structures) != 1:
        raise ValueError(
            f"the {len(trees)} trees have {len(structures)} different structures: expected models "
            "of one architecture (the same apply function and weight names)."
        )
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def unstack_pytree(tree: Any) -> list[Any]:
    """The inverse of :func:`stack_pytrees`: one tree per index of the leading axis,
    ``unstack(tree)[i] = tree.map(lambda x: x[i])``.

    >>> import jax.numpy as jnp
    >>> [t["w"].tolist() for t in unstack_pytree({"w": jnp.array([[1.0, 2.0], [3.0, 4.0]])})]
    [[1.0, 2.0], [3.0, 4.0]]
    """
    leaves, structure = jax.tree.flatten(tree)
    if not leaves:
        raise ValueError("the tree has no leaves to unstack.")
    return [jax.tree.unflatten(structure, [x[i] for x in leaves]) for i in range(leaves[0].shape[0])]


def is_traced(*trees: Any) -> bool:
    """True when any leaf is a tracer, i.e. the caller is inside ``jit``, ``vmap`` or ``grad``."""
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(trees))


def local_mesh(axis_name: str = "devices", devices: Sequence[Any] | None = None) -> Mesh:
    """A one-axis mesh of ``devices`` (default: all local devices, e.g. the 8 cores of a TPU).

    >>> import jax
    >>> dict(local_mesh("seeds", jax.local_devices()[:1]).shape)
    {'seeds': 1}
    """
    devices = jax.local_devices() if devices is None else list(devices)
    return Mesh(np.array(devices), (axis_name,))


HOST_DEVICES_FLAG = "--xla_force_host_platform_device_count"


def use_host_cores(count: int | None = None) -> int:
    """Splits the CPU into ``count`` XLA devices (default: one per usable core); returns it.

    On a CPU, XLA runs one small convolution at a time with a few threads and leaves cores idle;
    with one device per core, the row-sharded sweeps (:func:`latentjax.compute_apcr`) run a
    block of rows on each core at once (docs/results.md: about 1.8x on 2 cores). It only
    affects the host (CPU) platform, never a GPU or TPU, and must run before JAX starts its
    backends (before the first array is made); a device count already in ``XLA_FLAGS`` wins.
    The ``latentjax`` command calls it at startup.

    >>> import os, subprocess, sys
    >>> code = "import latentjax as lj; n = lj.use_host_cores(2); import jax; print(n, jax.local_device_count())"
    >>> env = {**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"}
    >>> subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout.split()
    ['2', '2']
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if HOST_DEVICES_FLAG in flags:
        return int(flags.split(HOST_DEVICES_FLAG + "=")[1].split()[0])
    count = usable_cores() if count is None else count
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError as error:  # JAX refuses once its backends have started
        raise RuntimeError(
            "use_host_cores() must run before JAX starts its backends (before the first array "
            f"is made); or set XLA_FLAGS={HOST_DEVICES_FLAG}={count} before starting Python."
        ) from error
    return count


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS reports one, as on
    Linux; else every core, as on macOS and Windows).

    >>> usable_cores() >= 1
    True
    """
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def process_share(items: Sequence[Any]) -> list[Any]:
    """This process's share of ``items`` (for example model seeds) in a multi-host run.

    After ``jax.distributed.initialize()`` on each of ``H`` hosts, host ``i`` takes items
    ``i, i + H, i + 2H, ...`` and analyses them on its own devices; with one process it takes all.

    >>> process_share([0, 1, 2, 3])       # a single process
    [0, 1, 2, 3]
    """
    return list(items)[jax.process_index() :: jax.process_count()]


def auto_mesh(*trees: Any) -> Mesh | None:
    """The mesh an analysis call spreads its rows over when the caller gave none.

    All local devices when there is more than one and the call is not inside a transform; under
    the caller's ``jit`` or ``vmap`` the caller owns the layout (for example a seed axis already
    sharded with :func:`shard_leading_axis`), so the rows stay where they are.
    """
    if jax.local_device_count() < 2 or is_traced(*trees):
        return None
    return local_mesh()


def replicate(mesh: Mesh, *trees: Any) -> tuple[Any, ...]:
    """Each tree with a full copy on every device of ``mesh`` (no-op for traced values)."""
    if is_traced(*trees):
        return trees
    return jax.device_put(trees, NamedSharding(mesh, PartitionSpec()))


def shard_leading_axis(tree: Any, mesh: Mesh | None = None) -> Any:
    """Every leaf of ``tree`` split along its leading axis (seeds) over the mesh's one axis.

    The leading axis must divide evenly by the number of devices. With the stacked models (or
    codes, or keys) sharded this way, ``jax.jit(jax.vmap(f))`` runs each device's seeds on that
    device, and the outputs keep the same layout: with ``D`` devices, device ``d`` holds rows
    ``d * n / D .. (d + 1) * n / D - 1``.

    >>> import jax, jax.numpy as jnp
    >>> x = shard_leading_axis(jnp.arange(4.0), local_mesh("seeds", jax.local_devices()[:1]))
    >>> x.sharding.spec, x.tolist()
    (P('seeds',), [0.0, 1.0, 2.0, 3.0])
    """
    mesh = local_mesh("seeds") if mesh is None else mesh
    if len(mesh.axis_names) != 1:
        raise ValueError(f"mesh has axes {mesh.axis_names}: expected one axis (the seeds).")
    sharding = NamedSharding(mesh, PartitionSpec(mesh.axis_names[0]))
    for leaf in jax.tree.leaves(tree):
        if jnp.ndim(leaf) == 0 or jnp.shape(leaf)[0] % mesh.size:
            raise ValueError(
                f"a leaf of shape {jnp.shape(leaf)} cannot be split over {mesh.size} devices: "
                f"expected a leading (seed) axis divisible by {mesh.size}."
            )
    return jax.device_put(tree, sharding)
