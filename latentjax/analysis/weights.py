"""Method B: an optimised weight vector ``w in [-1, 1]^N`` per class.

::

    Z'   = Z + w * xi                      xi = s * u,  u in [xi_min, xi_max],  s = +-1
    dS_j = Q_j(G(Z')) - Q_j(G(Z))
    w*   = argmin_w  E_{z, u} [1 - max_s |dS_j|] + lambda * penalty(w)

Both signs of ``xi`` are evaluated and the larger ``|dS_j|`` counts, so ``w`` and ``-w`` score
the same: the result is oriented so that ``+w*`` raises ``Q_j`` (:func:`orient_weights`). The box is kept by
``optax.projections.projection_box`` after every optimiser step, or by ``w = tanh(v)``
(``parametrization='tanh'``). All classes are optimised together by ``vmap``.

Two readings of the expectation (docs/method.md, "Method B"):

- **sampled** (the paper's, the default): each Adam step a random batch of ``batch_size``
  codes and a random ``u ~ U[xi_min, xi_max]`` per code, exact ``|.|`` and ``max``, constant
  learning rate. Its answer wanders with floating-point rounding (docs/results.md, "Method B:
  one answer?").
- **converged** (:data:`CONVERGED_READING`): the loss uses all ``S`` codes of the class, ``u``
  at ``xi_nodes`` fixed Gauss-Legendre nodes, and ``|.|`` and ``max`` smoothed over a width
  ``smoothing``: one smooth, deterministic function of ``w``, minimised by Adam with its
  learning rate decayed to 0 on a cosine, or by L-BFGS with a line search
  (``solver='lbfgs'``). On the planted problem both end at a point that a 1e-6 perturbation of
  the codes moves by about 1e-6. On the shipped models the loss has many minima and a 1e-6 change
  of the codes can lead a run into another, whatever the optimiser (docs/results.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from latentjax.analysis import validation
from latentjax.analysis.optax_calls import optax_init, optax_update
from latentjax.analysis.weight_options import check_options
from latentjax.analysis.objective import weight_objective, xi_quadrature
from latentjax.analysis.outputs import is_attribute_classifier
from latentjax.analysis.parallel import as_pytree, is_traced, usable_cores

#: The converged reading's settings for :func:`optimize_weights` (docs/method.md).
CONVERGED_READING = dict(
    solver="adam", batch_size=0, xi_nodes=1, smoothing=0.01, schedule="cosine",
    learning_rate=0.1, steps=300,
)
#: Curvature pairs L-BFGS keeps.
LBFGS_MEMORY = 10


class WeightResult(NamedTuple):
    """``weights[C, N]`` (``w*`` per class, in [-1, 1]) and ``losses[C, steps]``.

    ``snapshots[C, len(snapshot_steps), N]``: ``w`` after each requested step (``None`` when
    none were requested). Step ``t``'s snapshot equals the result of a run of ``t`` steps.
    """

    weights: jax.Array
    losses: jax.Array
    snapshots: jax.Array | None = None


class _Loop(NamedTuple):
    """The static shape of Method B's loop: what the compiled program depends on."""

    solver: str
    total_steps: int
    batch_size: int  # 0: every code in every step
    xi_nodes: int  # 0: u ~ U[xi_min, xi_max] drawn per code and step
    penalty: str
    schedule: str
    parametrization: str
    optimizer: optax.GradientTransformation | None


def _parts(learning_rate, loop: _Loop):
    to_w = jnp.tanh if loop.parametrization == "tanh" else (lambda v: v)
    optimizer = loop.optimizer
    if loop.solver == "lbfgs":
        # Its zoom line search picks every step length: no learning rate, no schedule.
        optimizer = optax.lbfgs(memory_size=LBFGS_MEMORY)
    elif optimizer is None:
        # The learning rate is an input of the optimiser state, not a constant of the program.
        optimizer = optax.inject_hyperparams(optax.adam)(learning_rate=learning_rate)
    return to_w, optimizer


def _init_one_class(codes, init, learning_rate, loop: _Loop):
    """The optimiser's start ``(v0, opt_state)`` for one class."""
    _, optimizer = _parts(learning_rate, loop)
    init = init.astype(codes.dtype)
    # tanh: v such that tanh(v) = init; init is inside (-1, 1) (checked by the caller).
    start = jnp.arctanh(init) if loop.parametrization == "tanh" else init
    v0 = jnp.full((codes.shape[-1],), start)
    return v0, optax_init(optimizer, v0)


def _advance_one_class(
    generate, classify, codes, base_scores, target, key, lam, xi_min, xi_max, smoothing,
    learning_rate, carry, first_step, *, loop: _Loop, num_steps, unrolled, keep_path,
):
    """Steps ``first_step .. first_step + num_steps - 1`` from ``carry``: ``(carry, losses, path)``.

    ``base_scores[S]``: ``Q_target(G(codes))``, computed once for the whole run.
    ``unrolled``: straight-line code instead of ``lax.scan`` (see ``loop`` of optimize_weights).
    """
    to_w, optimizer = _parts(learning_rate, loop)
    if loop.xi_nodes:
        nodes, node_weights = xi_quadrature(loop.xi_nodes, xi_min, xi_max)

    def step(carry, step_index):
        v, opt_state = carry
        # fold_in, not split(key, steps): step t draws the same batch whatever the run's length,
        # so the first t steps of a long run are a run of t steps (what snapshots rely on).
        pick_key, xi_key = jax.random.split(jax.random.fold_in(key, step_index))
        if loop.batch_size:
            idx = jax.random.randint(pick_key, (loop.batch_size,), 0, codes.shape[0])
            batch, base = codes[idx], base_scores[idx]
        else:
            batch, base = codes, base_scores
        if loop.xi_nodes:
            xi, xi_weights = jnp.broadcast_to(nodes, (batch.shape[0], loop.xi_nodes)), node_weights
        else:
            xi, xi_weights = jax.random.uniform(xi_key, (batch.shape[0],), codes.dtype, xi_min, xi_max), None
        def loss_fn(v):
            return weight_objective(
                to_w(v), generate, classify, batch, xi, target, base, lam,
                xi_weights=xi_weights, smoothing=smoothing, penalty=loop.penalty,
            )

        if loop.solver == "lbfgs":
            # The loss is deterministic, so the line search's last value and gradient (kept in
            # the state) are this point's: one evaluation per step when it is accepted.
            loss, grad = optax.value_and_grad_from_state(loss_fn)(v, state=opt_state)
            updates, opt_state = optax_update(optimizer, grad, opt_state, v, value=loss, grad=grad, value_fn=loss_fn)
        else:
            loss, grad = jax.value_and_grad(loss_fn)(v)
            if loop.schedule == "cosine":
                progress = jnp.minimum(step_index, loop.total_steps).astype(codes.dtype) / loop.total_steps
                opt_state.hyperparams["learning_rate"] = learning_rate * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))
            updates, opt_state = optax_update(optimizer, grad, opt_state, v)
        v = optax.apply_updates(v, updates)
        # Adam projects after every step. L-BFGS does not: a projected step would break the
        # curvature pairs its line search relies on (it stalls); it projects once at the end.
        if loop.parametrization == "box" and loop.solver == "adam":
            v = optax.projections.projection_box(v, -1.0, 1.0)
        return (v, opt_state), (loss, _in_box(to_w(v), loop) if keep_path else None)

    indices = first_step + jnp.arange(num_steps)
    if not unrolled:
        carry, (losses, path) = jax.lax.scan(step, carry, indices)
        return carry, losses, path
    outputs = []
    for i in range(num_steps):
        carry, out = step(carry, indices[i])
        outputs.append(out)
    losses = jnp.stack([loss for loss, _ in outputs])
    path = jnp.stack([w for _, w in outputs]) if keep_path else None
    return carry, losses, path


def optimize_weights(
    generate: Callable[[jax.Array], jax.Array],
    classify: Callable[[jax.Array], jax.Array],
    codes: jax.Array,
    key: jax.Array,
    *,
    classes: jax.Array | None = None,
    lam: float = 0.2,
    xi_range: tuple[float, float] = (1.0, 3.0),
    steps: int = 500,
    batch_size: int = 64,
    learning_rate: float = 1e-2,
    init: float = 0.5,
    parametrization: str = "box",
    solver: str = "adam",
    xi_nodes: int = 0,
    smoothing: float = 0.0,
    schedule: str = "constant",
    penalty: str = "l2",
    optimizer: optax.GradientTransformation | None = None,
    snapshot_steps: tuple[int, ...] = (),
    loop: str = "auto",
    progress: Callable[[int, int], object] | None = None,
) -> WeightResult:
    """Optimises ``w*`` for every class at once, all classes ``vmap``-ped in one program (Method B).

    Args:
      generate, classify: as in :func:`latentjax.compute_apcr`.
      codes: ``[C', S, N]``, the code sets ``Z_j`` (``codes[c]`` belongs to ``classes[c]``).
      key: PRNG key; class ``c`` uses ``fold_in(key, c)``. Or one key per code set, ``[C']``.
        With ``batch_size=0`` and ``xi_nodes > 0`` nothing is random and the key is unused.
      lam: weight of the penalty. xi_range: ``(xi_min, xi_max)``, ``0 < xi_min <= xi_max``.
      steps: optimiser steps (L-BFGS iterations, or Adam steps).
      solver: ``'adam'`` or ``'lbfgs'`` (``optax.lbfgs`` with its zoom line search; needs the
        deterministic loss: ``batch_size=0`` and ``xi_nodes > 0``; the box is applied once at
        the end, since a projected step breaks its curvature pairs).
      learning_rate: Adam's, through ``optax.inject_hyperparams``, so it is traced and a new
        value does not compile again (L-BFGS's line search needs none).
      batch_size: codes per step; 0 = all ``S`` codes in every step (a deterministic loss).
      xi_nodes: ``u`` at this many Gauss-Legendre nodes of ``[xi_min, xi_max]``
        (:func:`xi_quadrature`); 0 = one ``u ~ U[xi_min, xi_max]`` per code and step.
      smoothing: width that rounds the kinks of ``|dS|`` and of the max over signs; 0 = exact.
      schedule: Adam's learning rate: ``'cosine'`` decays it from ``learning_rate`` to 0 over
        ``steps``; ``'constant'``: the paper's.
      penalty: ``'l2'`` (the paper's plain norm), ``'l2_squared'`` or ``'l1'``.
      init: initial value of every ``w_i``. parametrization: ``'box'`` (projection) or ``'tanh'``.
      optimizer: instead of Adam, any ``optax.GradientTransformation`` (``learning_rate`` and
        ``schedule`` are then its own business: pass ``schedule='constant'``). It is part of the
        compiled program: build it once and reuse the same object.
      snapshot_steps: steps (each in ``1..steps``) after which to also return ``w``: one run of
        ``max(snapshot_steps)`` steps answers every shorter run (step ``t`` draws the same batch
        whatever ``steps`` is). Not with Adam on a cosine: its shape depends on ``steps``, so
        its step ``t`` is not a run of ``t`` steps.
      loop: ``'device'``: the whole run is one ``lax.scan`` inside ``jit``; ``'host'``: blocks of
        :data:`HOST_BLOCK_STEPS` unrolled steps, each one jitted call, driven from Python, for
        groups of :data:`HOST_GROUP_ROWS` code sets dealt to the devices in turn (the same
        mathematics: XLA:CPU runs the body of a compiled loop several times slower than the
        same ops unrolled, and the groups keep every core busy, docs/results.md); ``'auto'``:
        ``'host'`` on CPU, ``'device'`` elsewhere and whenever the inputs are traced (under
        ``jit`` or ``vmap``).
      progress: called as ``progress(steps_done, steps)`` after each block of the host loop
        (not with ``loop='device'``, which runs as one call).

    The defaults are the paper's reading (module docstring); ``**CONVERGED_READING`` gives the
    converged one. ``generate``, ``classify``, ``codes``, ``key`` and the float settings (``lam``,
    ``xi_range``, ``learning_rate``, ``init``, ``smoothing``) are traced, so the function works
    under ``jax.jit`` and ``jax.vmap`` (for example over a stack of generator seeds, see
    :func:`latentjax.stack_pytrees`).

    Returns:
      :class:`WeightResult`: ``weights[C', N]`` in [-1, 1], ``losses[C', steps]``,
      ``snapshots[C', len(snapshot_steps), N]`` (``None`` without ``snapshot_steps``).

    >>> import jax, jax.numpy as jnp
    >>> generate = lambda z: z
    >>> classify = lambda x: jax.nn.softmax(jnp.stack([4 * x[:, 1], -4 * x[:, 1]], -1))
    >>> codes = jax.random.normal(jax.random.key(0), (2, 32, 3))
    >>> result = optimize_weights(generate, classify, codes, jax.random.key(1), steps=100)
    >>> jnp.argmax(jnp.abs(result.weights), axis=1).tolist()
    [1, 1]
    >>> bool(jnp.all(jnp.abs(result.weights) <= 1.0))
    True
    """
    snapshot_steps = tuple(snapshot_steps)
    check_options(
        codes, steps=steps, batch_size=batch_size, xi_nodes=xi_nodes, learning_rate=learning_rate,
        lam=lam, smoothing=smoothing, xi_range=xi_range, penalty=penalty, schedule=schedule,
        solver=solver, optimizer=optimizer, snapshot_steps=snapshot_steps,
        parametrization=parametrization, loop=loop, init=init,
    )
    xi_min, xi_max = xi_range
    generate, classify = as_pytree(generate), as_pytree(classify)
    classes = validation.resolve_classes(generate, classify, codes, classes)
    codes = jnp.asarray(codes)
    as_float = lambda x: validation.as_float(x, codes.dtype)
    if _is_key_batch(key) and jnp.shape(key)[0] != codes.shape[0]:
        raise ValueError(
            f"key of shape {jnp.shape(key)}: expected one key, or one per code set ({codes.shape[0]})."
        )
    floats = (lam, xi_min, xi_max, smoothing, learning_rate, init)
    traced = is_traced(generate, classify, codes, key, *floats)
    host = loop == "host" or (loop == "auto" and not traced and jax.default_backend() == "cpu")
    if host and traced:
        raise ValueError("loop='host' drives the steps from Python: expected concrete inputs, not traced ones.")
    spec = _Loop(solver, int(steps), int(batch_size), int(xi_nodes), penalty, schedule, parametrization, optimizer)
    run, extra = (_optimize_host, dict(progress=progress)) if host else (_optimize_jit, {})
    result, invalid = run(
        generate, classify, codes, jnp.asarray(classes, jnp.int32), key,
        *(as_float(x) for x in floats), loop=spec, snapshot_steps=snapshot_steps, **extra,
    )
    validation.raise_for_invalid_rows(invalid, "while optimising Method B's weights", is_attribute_classifier(classify))
    return result


def _is_key_batch(key) -> bool:
    """A batch of keys: ``[R]`` typed keys (``jax.random.key``) or ``[R, 2]`` raw ``PRNGKey``s."""
    typed = jax.dtypes.issubdtype(jnp.asarray(key).dtype, jax.dtypes.prng_key)
    return jnp.ndim(key) == (1 if typed else 2)


def _row_keys(key, num_rows):
    """One key per code set: ``key`` itself when it is a batch of keys, else ``fold_in(key, c)``."""
    if _is_key_batch(key):
        return key
    return jax.vmap(lambda c: jax.random.fold_in(key, c))(jnp.arange(num_rows))


def _start(generate, classify, codes, classes, init, learning_rate, loop: _Loop):
    """``(base_scores[C', S], invalid, carry)``: the fixed codes' scores, computed once, and the
    optimiser's start for every class."""
    def per_class(c, t):
        probs = classify(generate(c))
        invalid = validation.invalid_probability_rows(probs, independent=is_attribute_classifier(classify))
        return probs[:, t], invalid, _init_one_class(c, init, learning_rate, loop)

    base, invalid, carry = jax.vmap(per_class)(codes, classes)
    return jax.lax.stop_gradient(base), jnp.sum(invalid), carry


def _advance_all(generate, classify, codes, base, classes, keys, lam, xi_min, xi_max, smoothing,
                 learning_rate, carry, first_step, **options):
    def per_class(c, b, t, k, state):
        return _advance_one_class(generate, classify, c, b, t, k, lam, xi_min, xi_max, smoothing,
                                  learning_rate, state, first_step, **options)

    return jax.vmap(per_class)(codes, base, classes, keys, carry)


def orient_weights(generate, classify, codes, target, w, xi_mid) -> jax.Array:
    """``w`` or ``-w``, whichever raises ``Q_target`` more on ``codes`` when moved by ``xi_mid``.

    The objective counts both signs of ``xi``, so ``w`` and ``-w`` score the same and the sign
    the optimiser ends with is an accident of its path. The sign of ``w*`` is read as the
    direction that raises the class, so it is fixed here: ``mean_z Q_t(G(z + xi_mid w)) >=
    mean_z Q_t(G(z - xi_mid w))``. ``codes[S, N]``, ``w[..., N]`` (one or more vectors).

    >>> import jax, jax.numpy as jnp
    >>> classify = lambda x: jax.nn.softmax(jnp.stack([x[:, 0], -x[:, 0]], -1))
    >>> orient_weights(lambda z: z, classify, jnp.zeros((2, 2)), 0, jnp.array([-0.5, 0.25]), 2.0).tolist()
    [0.5, -0.25]
    """
    flat = w.reshape(-1, w.shape[-1])

    def one(v):
        step = xi_mid * v[None, :]
        moved = jnp.concatenate([codes + step, codes - step])
        scores = classify(generate(moved))[:, target].reshape(2, -1).mean(axis=1)
        return jnp.where(scores[0] >= scores[1], v, -v)

    return jax.lax.map(one, flat).reshape(w.shape)


def _in_box(w, loop: _Loop):
    return optax.projections.projection_box(w, -1.0, 1.0) if loop.parametrization == "box" else w


def _finish(generate, classify, codes, classes, xi_min, xi_max, carry, losses, path, learning_rate,
            loop: _Loop, snapshot_steps):
    to_w, _ = _parts(learning_rate, loop)
    to_w = lambda v, to_w=to_w: _in_box(to_w(v), loop)
    xi_mid = 0.5 * (xi_min + xi_max)
    orient = jax.vmap(lambda c, t, w: orient_weights(generate, classify, c, t, w, xi_mid))
    snapshots = path[:, jnp.asarray(snapshot_steps) - 1] if snapshot_steps else None
    if snapshots is not None:
        snapshots = orient(codes, classes, snapshots)
    return WeightResult(orient(codes, classes, to_w(carry[0])), losses, snapshots)


def _optimize_all(generate, classify, codes, classes, key, lam, xi_min, xi_max, smoothing,
                  learning_rate, init, *, loop: _Loop, snapshot_steps):
    """The whole run as one program: ``lax.scan`` over the steps."""
    base, invalid, carry = _start(generate, classify, codes, classes, init, learning_rate, loop)
    carry, losses, path = _advance_all(
        generate, classify, codes, base, classes, _row_keys(key, codes.shape[0]), lam, xi_min,
        xi_max, smoothing, learning_rate, carry, jnp.int32(0), loop=loop,
        num_steps=loop.total_steps, unrolled=False, keep_path=bool(snapshot_steps),
    )
    return _finish(generate, classify, codes, classes, xi_min, xi_max, carry, losses, path,
                   learning_rate, loop, snapshot_steps), invalid


# Only the loop's shape (steps, batch, nodes, penalty, schedule, parametrisation, a user's
# optimiser) is part of the program; models, codes, keys and every float setting are traced.
_optimize_jit = jax.jit(_optimize_all, static_argnames=("loop", "snapshot_steps"))
_start_jit = jax.jit(_start, static_argnames=("loop",))
_finish_jit = jax.jit(_finish, static_argnames=("loop", "snapshot_steps"))
_advance_jit = jax.jit(_advance_all, static_argnames=("loop", "num_steps", "unrolled", "keep_path"))

#: Steps per compiled block of ``loop='host'``: long enough that the per-call cost is small,
#: short enough to compile in seconds.
HOST_BLOCK_STEPS = 10
#: Code sets per call of ``loop='host'``. The groups are dealt to the devices in turn (on CPU, to
#: as many as there are cores) and run at once (XLA:CPU leaves a core idle in one call of these
#: small convolutions). The size is fixed, not one group per device, so the numbers do not depend
#: on how many devices there are.
HOST_GROUP_ROWS = 5


class _HostGroup(NamedTuple):
    """One group's inputs to the host loop, placed on its device."""

    generate: Callable
    classify: Callable
    codes: jax.Array
    classes: jax.Array
    keys: jax.Array
    lam: jax.Array
    xi_min: jax.Array
    xi_max: jax.Array
    smoothing: jax.Array
    learning_rate: jax.Array
    init: jax.Array


def _optimize_host(generate, classify, codes, classes, key, lam, xi_min, xi_max, smoothing,
                   learning_rate, init, *, loop: _Loop, snapshot_steps, progress=None):
    """The same steps as :func:`_optimize_all`, as jitted straight-line blocks called from Python,
    for groups of :data:`HOST_GROUP_ROWS` code sets spread over the devices."""
    keys, devices = _row_keys(key, codes.shape[0]), jax.local_devices()
    if devices[0].platform == "cpu":  # more CPU devices than cores only cost compilations
        devices = devices[: usable_cores()]
    groups = [
        jax.device_put(
            _HostGroup(generate, classify, codes[rows], classes[rows], keys[rows], lam, xi_min,
                       xi_max, smoothing, learning_rate, init),
            devices[index % len(devices)],
        )
        for index, rows in enumerate(
            slice(first, first + HOST_GROUP_ROWS) for first in range(0, codes.shape[0], HOST_GROUP_ROWS)
        )
    ]
    starts = [_start_jit(g.generate, g.classify, g.codes, g.classes, g.init, g.learning_rate, loop) for g in groups]
    carries = [carry for _, _, carry in starts]
    losses, paths = [[] for _ in groups], [[] for _ in groups]
    for first in range(0, loop.total_steps, HOST_BLOCK_STEPS):
        for i, (g, (base, _, _)) in enumerate(zip(groups, starts)):
            # Dispatched without waiting: the devices run their groups at once.
            carries[i], block_losses, path = _advance_jit(
                g.generate, g.classify, g.codes, base, g.classes, g.keys, g.lam, g.xi_min, g.xi_max,
                g.smoothing, g.learning_rate, carries[i], jnp.int32(first), loop=loop,
                num_steps=min(HOST_BLOCK_STEPS, loop.total_steps - first), unrolled=True,
                keep_path=bool(snapshot_steps),
            )
            losses[i].append(block_losses)
            paths[i].append(path)
        if progress is not None:
            jax.block_until_ready([group_losses[-1] for group_losses in losses])
            progress(min(first + HOST_BLOCK_STEPS, loop.total_steps), loop.total_steps)
    results = [
        _finish_jit(g.generate, g.classify, g.codes, g.classes, g.xi_min, g.xi_max, carry,
                    jnp.concatenate(group_losses, axis=1),
                    jnp.concatenate(group_paths, axis=1) if snapshot_steps else None,
                    g.learning_rate, loop, snapshot_steps)
        for g, carry, group_losses, group_paths in zip(groups, carries, losses, paths)
    ]
    gathered = jax.device_put((results, [invalid for _, invalid, _ in starts]), devices[0])
    return jax.tree.map(lambda *parts: jnp.concatenate(parts), *gathered[0]), sum(gathered[1])
