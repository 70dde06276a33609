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
- **converged** (:data:`~latentjax.analysis.settings.CONVERGED_READING`): the loss uses all ``S`` codes of the class, ``u``
  at ``xi_nodes`` fixed Gauss-Legendre nodes, and ``|.|`` and ``max`` smoothed over a width
  ``smoothing``: one smooth, deterministic function of ``w``, minimised by Adam with its
  learning rate decayed to 0 on a cosine, or by L-BFGS with a line search
  (``solver='lbfgs'``). On the planted problem both end at a point that a 1e-6 perturbation of
  the codes moves by about 1e-6. On the shipped models the loss has many minima and a 1e-6 change
  of the codes can lead a run into another, whatever the optimiser (docs/results.md).

This module holds the mathematics: the loss, one optimiser step, the start and the oriented
result, as a :class:`~latentjax.analysis.runner.Stepper`. Where the steps run (one ``lax.scan``,
or blocks dealt to the devices) is :mod:`latentjax.analysis.runner`'s business; the settings are a
:class:`~latentjax.analysis.settings.MethodBSettings`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from latentjax.analysis import runner, validation
from latentjax.analysis.objective import weight_objective, xi_quadrature
from latentjax.analysis.optax_calls import optax_init, optax_update
from latentjax.analysis.outputs import is_attribute_classifier
from latentjax.analysis.parallel import as_pytree, is_traced
from latentjax.analysis.settings import MethodBFloats, MethodBLoop, MethodBSettings

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


class _Program(NamedTuple):
    """Everything static about one Method B run: the settings' structure, a user's optimiser
    (part of the compiled program), and the steps whose ``w`` is kept."""

    loop: MethodBLoop
    optimizer: optax.GradientTransformation | None
    snapshot_steps: tuple[int, ...]

    @property
    def total_steps(self) -> int:
        return self.loop.steps


def _parts(learning_rate, program: _Program):
    loop = program.loop
    to_w = jnp.tanh if loop.parametrization == "tanh" else (lambda v: v)
    optimizer = program.optimizer
    if loop.solver == "lbfgs":
        # Its zoom line search picks every step length: no learning rate, no schedule.
        optimizer = optax.lbfgs(memory_size=LBFGS_MEMORY)
    elif optimizer is None:
        # The learning rate is an input of the optimiser state, not a constant of the program.
        optimizer = optax.inject_hyperparams(optax.adam)(learning_rate=learning_rate)
    return to_w, optimizer


def _init_one_class(codes, init, learning_rate, program: _Program):
    """The optimiser's start ``(v0, opt_state)`` for one class."""
    _, optimizer = _parts(learning_rate, program)
    init = init.astype(codes.dtype)
    # tanh: v such that tanh(v) = init; init is inside (-1, 1) (checked by the caller).
    start = jnp.arctanh(init) if program.loop.parametrization == "tanh" else init
    v0 = jnp.full((codes.shape[-1],), start)
    return v0, optax_init(optimizer, v0)


def _advance_one_class(
    generate, classify, codes, base_scores, target, key, floats: MethodBFloats, carry, first_step,
    *, program: _Program, num_steps, unrolled, keep_path,
):
    """Steps ``first_step .. first_step + num_steps - 1`` from ``carry``: ``(carry, losses, path)``.

    ``base_scores[S]``: ``Q_target(G(codes))``, computed once for the whole run.
    ``unrolled``: straight-line code instead of ``lax.scan`` (see ``loop`` of optimize_weights).
    """
    lam, xi_min, xi_max, smoothing, learning_rate, _ = floats
    loop = program.loop
    to_w, optimizer = _parts(learning_rate, program)
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
                progress = jnp.minimum(step_index, loop.steps).astype(codes.dtype) / loop.steps
                opt_state.hyperparams["learning_rate"] = learning_rate * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))
            updates, opt_state = optax_update(optimizer, grad, opt_state, v)
        v = optax.apply_updates(v, updates)
        # Adam projects after every step. L-BFGS does not: a projected step would break the
        # curvature pairs its line search relies on (it stalls); it projects once at the end.
        if loop.parametrization == "box" and loop.solver == "adam":
            v = optax.projections.projection_box(v, -1.0, 1.0)
        return (v, opt_state), (loss, _in_box(to_w(v), program) if keep_path else None)

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
    settings: MethodBSettings | None = None,
    classes: jax.Array | None = None,
    optimizer: optax.GradientTransformation | None = None,
    snapshot_steps: tuple[int, ...] = (),
    loop: str = "auto",
    progress: Callable[[int, int], object] | None = None,
    **fields,
) -> WeightResult:
    """Optimises ``w*`` for every class at once, all classes ``vmap``-ped in one program (Method B).

    The settings are a :class:`~latentjax.analysis.settings.MethodBSettings` (``settings=``), or
    its fields as keywords (``steps=30``), which replace the given or default settings' fields.

    Args:
      generate, classify: as in :func:`latentjax.compute_apcr`.
      codes: ``[C', S, N]``, the code sets ``Z_j`` (``codes[c]`` belongs to ``classes[c]``).
      key: PRNG key; class ``c`` uses ``fold_in(key, c)``. Or one key per code set, ``[C']``.
        With ``batch_size=0`` and ``xi_nodes > 0`` nothing is random and the key is unused.
      settings: :class:`~latentjax.analysis.settings.MethodBSettings` (default: the paper's
        reading). Its fields, also accepted as keywords:
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
      loop: ``'device'``: the whole run is one ``lax.scan`` inside ``jit``
        (:func:`~latentjax.analysis.runner.run_compiled`); ``'host'``: blocks of unrolled steps
        driven from Python for groups of code sets dealt to the devices
        (:func:`~latentjax.analysis.runner.run_host_blocks`; the same mathematics: XLA:CPU runs
        the body of a compiled loop several times slower than the same ops unrolled, and the
        groups keep every core busy, docs/results.md); ``'auto'``:
        ``'host'`` on CPU, ``'device'`` elsewhere and whenever the inputs are traced (under
        ``jit`` or ``vmap``).
      progress: called as ``progress(steps_done, steps)`` after each block of the host loop
        (not with ``loop='device'``, which runs as one call).

    The defaults are the paper's reading (module docstring); ``settings=CONVERGED_READING`` gives
    the converged one. ``generate``, ``classify``, ``codes``, ``key`` and the float settings (``lam``,
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
    >>> result = optimize_weights(generate, classify, codes, jax.random.key(1), steps=100, loop="device")
    >>> jnp.argmax(jnp.abs(result.weights), axis=1).tolist()
    [1, 1]
    >>> same = optimize_weights(generate, classify, codes, jax.random.key(1), settings=MethodBSettings(steps=100),
    ...                         loop="device")
    >>> bool(jnp.array_equal(same.weights, result.weights))
    True
    >>> bool(jnp.all(jnp.abs(result.weights) <= 1.0))
    True
    """
    settings = method_b_settings(settings, **fields)
    snapshot_steps = tuple(snapshot_steps)
    _check_run(codes, settings, optimizer=optimizer, snapshot_steps=snapshot_steps, loop=loop)
    generate, classify = as_pytree(generate), as_pytree(classify)
    classes = validation.resolve_classes(generate, classify, codes, classes)
    codes = jnp.asarray(codes)
    if _is_key_batch(key) and jnp.shape(key)[0] != codes.shape[0]:
        raise ValueError(
            f"key of shape {jnp.shape(key)}: expected one key, or one per code set ({codes.shape[0]})."
        )
    floats = MethodBFloats(*(validation.as_float(x, codes.dtype) for x in settings.floats))
    traced = is_traced(generate, classify, codes, key, *settings.floats)
    host = loop == "host" or (loop == "auto" and not traced and jax.default_backend() == "cpu")
    if host and traced:
        raise ValueError("loop='host' drives the steps from Python: expected concrete inputs, not traced ones.")
    program = _Program(settings.static, optimizer, snapshot_steps)
    shared = (generate, classify, floats)
    rows = (codes, jnp.asarray(classes, jnp.int32), _row_keys(key, codes.shape[0]))
    options = dict(total_steps=program.total_steps, keep_path=bool(snapshot_steps))
    if host:
        result, invalid = runner.run_host_blocks(METHOD_B, shared, rows, program, progress=progress, **options)
    else:
        result, invalid = runner.run_compiled(METHOD_B, shared, rows, program, **options)
    validation.raise_for_invalid_rows(invalid, "while optimising Method B's weights", is_attribute_classifier(classify))
    return result


def method_b_settings(settings: MethodBSettings | None = None, **fields) -> MethodBSettings:
    """``settings`` (default :class:`MethodBSettings`) with ``fields`` replaced, validated.

    >>> method_b_settings(steps=30).steps
    30
    >>> method_b_settings(stepz=30)
    Traceback (most recent call last):
    ...
    TypeError: unknown Method B setting(s) ['stepz']: expected fields of MethodBSettings: lam, xi_range, steps, batch_size, learning_rate, init, parametrization, solver, xi_nodes, smoothing, schedule, penalty.
    """
    names = [f.name for f in dataclasses.fields(MethodBSettings)]
    unknown = sorted(set(fields) - set(names))
    if unknown:
        raise TypeError(f"unknown Method B setting(s) {unknown}: expected fields of MethodBSettings: {', '.join(names)}.")
    if "xi_range" in fields:
        fields["xi_range"] = tuple(fields["xi_range"])
    settings = (settings or MethodBSettings()).replace(**fields)
    return settings.validate()


def _check_run(codes, settings: MethodBSettings, *, optimizer, snapshot_steps, loop) -> None:
    """What only a run can get wrong, beyond its settings (:meth:`MethodBSettings.validate`)."""
    validation.check_codes(codes, ndim=3)
    if settings.solver == "lbfgs" and optimizer is not None:
        raise ValueError("solver='lbfgs' with your own optimizer: expected no optimizer (or solver='adam').")
    if settings.solver == "adam" and optimizer is not None and settings.schedule != "constant":
        raise ValueError(
            f"schedule={settings.schedule!r} with your own optimizer: expected schedule='constant' "
            "(give the optimiser its own schedule, e.g. optax.cosine_decay_schedule)."
        )
    for t in snapshot_steps:
        if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= settings.steps:
            raise ValueError(
                f"snapshot_steps={snapshot_steps!r}: expected integers in 1..steps={settings.steps}."
            )
    if snapshot_steps and settings.solver == "adam" and settings.schedule != "constant":
        raise ValueError(
            f"snapshot_steps={snapshot_steps!r} with schedule={settings.schedule!r}: expected "
            "schedule='constant' (a decaying schedule's step t is not a run of t steps)."
        )
    if loop not in ("auto", "device", "host"):
        raise ValueError(f"loop={loop!r}: expected 'auto', 'device' or 'host'.")


def _is_key_batch(key) -> bool:
    """A batch of keys: ``[R]`` typed keys (``jax.random.key``) or ``[R, 2]`` raw ``PRNGKey``s."""
    typed = jax.dtypes.issubdtype(jnp.asarray(key).dtype, jax.dtypes.prng_key)
    return jnp.ndim(key) == (1 if typed else 2)


def _row_keys(key, num_rows):
    """One key per code set: ``key`` itself when it is a batch of keys, else ``fold_in(key, c)``."""
    if _is_key_batch(key):
        return key
    return jax.vmap(lambda c: jax.random.fold_in(key, c))(jnp.arange(num_rows))


def _start(shared, rows, program: _Program):
    """``(base_scores[C', S], carry, invalid)``: the fixed codes' scores, computed once, the
    optimiser's start for every class, and the count of invalid classifier outputs."""
    generate, classify, floats = shared
    codes, classes, _ = rows

    def per_class(c, t):
        probs = classify(generate(c))
        invalid = validation.invalid_probability_rows(probs, independent=is_attribute_classifier(classify))
        return probs[:, t], invalid, _init_one_class(c, floats.init, floats.learning_rate, program)

    base, invalid, carry = jax.vmap(per_class)(codes, classes)
    return jax.lax.stop_gradient(base), carry, jnp.sum(invalid)


def _advance(shared, rows, base, carry, first_step, program: _Program, num_steps, unrolled, keep_path):
    """Every class's steps ``first_step ..`` from ``carry``: ``(carry, (losses, path))``."""
    generate, classify, floats = shared
    codes, classes, keys = rows

    def per_class(c, b, t, k, state):
        return _advance_one_class(generate, classify, c, b, t, k, floats, state, first_step,
                                  program=program, num_steps=num_steps, unrolled=unrolled, keep_path=keep_path)

    carry, losses, path = jax.vmap(per_class)(codes, base, classes, keys, carry)
    return carry, (losses, path)


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


def _in_box(w, program: _Program):
    return optax.projections.projection_box(w, -1.0, 1.0) if program.loop.parametrization == "box" else w


def _finish(shared, rows, base, carry, outputs, program: _Program) -> WeightResult:
    """``w*`` (in the box, oriented to raise each class) and the kept snapshots."""
    del base
    generate, classify, floats = shared
    codes, classes, _ = rows
    losses, path = outputs
    to_w, _ = _parts(floats.learning_rate, program)
    to_w = lambda v, to_w=to_w: _in_box(to_w(v), program)
    xi_mid = 0.5 * (floats.xi_min + floats.xi_max)
    orient = jax.vmap(lambda c, t, w: orient_weights(generate, classify, c, t, w, xi_mid))
    snapshot_steps = program.snapshot_steps
    snapshots = path[:, jnp.asarray(snapshot_steps) - 1] if snapshot_steps else None
    if snapshots is not None:
        snapshots = orient(codes, classes, snapshots)
    return WeightResult(orient(codes, classes, to_w(carry[0])), losses, snapshots)


#: Method B as the runner executes it. Only the program's shape (settings' structure, a user's
#: optimiser, the snapshot steps) is static; models, codes, keys and every float are traced.
METHOD_B = runner.Stepper(_start, _advance, _finish)
