"""Method B: an optimised weight vector ``w in [-1, 1]^N`` per class.

::

    Z'   = Z + w * xi                      xi = s * u,  u ~ U[xi_min, xi_max],  s = +-1
    dS_j = Q_j(G(Z')) - Q_j(G(Z))
    w*   = argmin_w  E_{z, xi} [1 - max_s |dS_j|] + lambda * ||w||_2

Both signs of ``xi`` are evaluated and the larger ``|dS_j|`` counts. The box is kept by
``optax.projections.projection_box`` after every optimiser step, or by ``w = tanh(v)``
(``parametrization='tanh'``). The whole loop is one ``lax.scan`` inside ``jit``, and all classes
are optimised together by ``vmap``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from latentjax.analysis import _validation
from latentjax.analysis.parallel import as_pytree, is_traced


class WeightResult(NamedTuple):
    """``weights[C, N]`` (``w*`` per class, in [-1, 1]) and ``losses[C, steps]``.

    ``snapshots[C, len(snapshot_steps), N]``: ``w`` after each requested step (``None`` when
    none were requested). Step ``t``'s snapshot equals the result of a run of ``t`` steps.
    """

    weights: jax.Array
    losses: jax.Array
    snapshots: jax.Array | None = None


def weight_objective(
    w: jax.Array,
    generate: Callable,
    classify: Callable,
    codes: jax.Array,
    xi: jax.Array,
    target: jax.Array,
    base_scores: jax.Array,
    lam: float,
) -> jax.Array:
    """``mean_b [1 - max_s |Q_t(G(z_b + s xi_b w)) - Q_t(G(z_b))|] + lam ||w||_2``.

    ``codes[B, N]``, ``xi[B]`` (positive magnitudes), ``base_scores[B] = Q_t(G(codes))``.
    """
    step = xi[:, None] * w[None, :]
    shifted = jnp.concatenate([codes + step, codes - step])
    scores = classify(generate(shifted))[:, target]
    change = jnp.abs(scores - jnp.concatenate([base_scores, base_scores]))
    best = jnp.max(change.reshape(2, -1), axis=0)
    # sqrt(sum w^2 + tiny): the L2 norm with a finite gradient at w = 0.
    norm = jnp.sqrt(jnp.sum(w * w) + 1e-12)
    return jnp.mean(1.0 - best) + lam * norm


def _parts(learning_rate, optimizer, parametrization):
    to_w = jnp.tanh if parametrization == "tanh" else (lambda v: v)
    if optimizer is None:
        # The learning rate is an input of the optimiser state, not a constant of the program.
        optimizer = optax.inject_hyperparams(optax.adam)(learning_rate=learning_rate)
    return to_w, optimizer


def _init_one_class(codes, init, learning_rate, *, optimizer, parametrization):
    """The optimiser's start ``(v0, opt_state)`` for one class."""
    _, optimizer = _parts(learning_rate, optimizer, parametrization)
    init = init.astype(codes.dtype)
    # tanh: v such that tanh(v) = init; init is inside (-1, 1) (checked by the caller).
    start = jnp.arctanh(init) if parametrization == "tanh" else init
    v0 = jnp.full((codes.shape[-1],), start)
    with jax.numpy_dtype_promotion("standard"):
        return v0, optimizer.init(v0)


def _advance_one_class(
    generate, classify, codes, target, key, lam, xi_min, xi_max, learning_rate, carry,
    first_step, *, num_steps, batch_size, optimizer, parametrization, unrolled, keep_path,
):
    """Steps ``first_step .. first_step + num_steps - 1`` from ``carry``.

    Returns ``(carry, losses, path, invalid)``; ``invalid`` counts the rows of ``classify`` that
    were not probabilities (:func:`~latentjax.analysis._validation.invalid_probability_rows`).

    ``unrolled``: straight-line code instead of ``lax.scan`` (see ``loop`` of optimize_weights).
    """
    to_w, optimizer = _parts(learning_rate, optimizer, parametrization)

    def step(carry, step_index):
        v, opt_state = carry
        # fold_in, not split(key, steps): step t draws the same batch whatever the run's length,
        # so the first t steps of a long run are a run of t steps (what snapshots rely on).
        pick_key, xi_key = jax.random.split(jax.random.fold_in(key, step_index))
        idx = jax.random.randint(pick_key, (batch_size,), 0, codes.shape[0])
        batch = codes[idx]
        xi = jax.random.uniform(xi_key, (batch_size,), codes.dtype, xi_min, xi_max)
        base_probs = jax.lax.stop_gradient(classify(generate(batch)))
        base = base_probs[:, target]
        loss, grad = jax.value_and_grad(
            lambda v: weight_objective(to_w(v), generate, classify, batch, xi, target, base, lam)
        )(v)
        with jax.numpy_dtype_promotion("standard"):  # optax mixes int step counts with floats
            updates, opt_state = optimizer.update(grad, opt_state, v)
        v = optax.apply_updates(v, updates)
        if parametrization == "box":
            v = optax.projections.projection_box(v, -1.0, 1.0)
        invalid = _validation.invalid_probability_rows(base_probs)
        return (v, opt_state), (loss, to_w(v) if keep_path else None, invalid)

    indices = first_step + jnp.arange(num_steps)
    if not unrolled:
        carry, (losses, path, invalid) = jax.lax.scan(step, carry, indices)
        return carry, losses, path, jnp.sum(invalid)
    outputs = []
    for i in range(num_steps):
        carry, out = step(carry, indices[i])
        outputs.append(out)
    losses = jnp.stack([loss for loss, _, _ in outputs])
    path = jnp.stack([w for _, w, _ in outputs]) if keep_path else None
    return carry, losses, path, sum(n for _, _, n in outputs)


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
    optimizer: optax.GradientTransformation | None = None,
    snapshot_steps: tuple[int, ...] = (),
    loop: str = "auto",
) -> WeightResult:
    """Optimises ``w*`` for every class in one vmapped, jitted ``lax.scan`` (Method B).

    Args:
      generate, classify: as in :func:`latentjax.compute_apcr`.
      codes: ``[C', S, N]``, the code sets ``Z_j`` (``codes[c]`` belongs to ``classes[c]``).
      key: PRNG key; class ``c`` uses ``fold_in(key, c)``. Or one key per code set, ``[C']``.
      lam: weight of ``||w||_2``. xi_range: ``(xi_min, xi_max)``, ``0 < xi_min <= xi_max``.
      steps, batch_size, learning_rate: the loop: Adam through ``optax.inject_hyperparams``, so
        the learning rate is traced and a new value does not compile again.
      init: initial value of every ``w_i``. parametrization: ``'box'`` (projection) or ``'tanh'``.
      optimizer: instead of Adam, any ``optax.GradientTransformation`` (``learning_rate`` is then
        ignored). It is part of the compiled program: build it once and reuse the same object,
        or each new object compiles again.
      snapshot_steps: steps (each in ``1..steps``) after which to also return ``w``: one run of
        ``max(snapshot_steps)`` steps answers every shorter run (step ``t`` draws the same batch
        whatever ``steps`` is), which is how a sweep over Method B's length costs one run.
      loop: ``'device'``: the whole run is one ``lax.scan`` inside ``jit``; ``'host'``: blocks of
        :data:`HOST_BLOCK_STEPS` unrolled steps, each one jitted call, driven from Python (the
        same numbers: XLA:CPU runs the body of a compiled loop several times slower than the
        same ops unrolled, docs/results.md); ``'auto'``: ``'host'`` on CPU, ``'device'``
        elsewhere and whenever the inputs are traced (under ``jit`` or ``vmap``).

    ``generate``, ``classify``, ``codes``, ``key`` and the float settings (``lam``, ``xi_range``,
    ``learning_rate``, ``init``) are traced, so the function works under ``jax.jit`` and
    ``jax.vmap`` (for example over a stack of generator seeds, see
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
    _validation.check_codes(codes, ndim=3)
    _validation.check_positive(steps, "steps", integer=True)
    _validation.check_positive(batch_size, "batch_size", integer=True)
    _validation.check_positive(learning_rate, "learning_rate")
    _validation.check_non_negative(lam, "lam")
    xi_min, xi_max = xi_range
    low = _validation.scalar_value(xi_min, "xi_min")
    high = _validation.scalar_value(xi_max, "xi_max")
    if low is not None and high is not None and not 0 < low <= high:
        raise ValueError(f"xi_range={xi_range!r}: expected 0 < xi_min <= xi_max.")
    snapshot_steps = tuple(snapshot_steps)
    for t in snapshot_steps:
        if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= steps:
            raise ValueError(
                f"snapshot_steps={snapshot_steps!r}: expected integers in 1..steps={steps}."
            )
    if parametrization not in ("box", "tanh"):
        raise ValueError(f"parametrization={parametrization!r}: expected 'box' or 'tanh'.")
    if loop not in ("auto", "device", "host"):
        raise ValueError(f"loop={loop!r}: expected 'auto', 'device' or 'host'.")
    start = _validation.scalar_value(init, "init")
    if start is not None and not (
        -1.0 <= start <= 1.0 if parametrization == "box" else -1.0 < start < 1.0
    ):
        raise ValueError(
            f"init={init!r}: expected a value in [-1, 1] ('box') or in (-1, 1) ('tanh')."
        )
    generate, classify = as_pytree(generate), as_pytree(classify)
    classes = _validation.resolve_classes(generate, classify, codes, classes)
    codes = jnp.asarray(codes)
    as_float = lambda x: _validation.as_float(x, codes.dtype)
    if _is_key_batch(key) and jnp.shape(key)[0] != codes.shape[0]:
        raise ValueError(
            f"key of shape {jnp.shape(key)}: expected one key, or one per code set ({codes.shape[0]})."
        )
    traced = is_traced(generate, classify, codes, key, lam, xi_min, xi_max, learning_rate, init)
    host = loop == "host" or (loop == "auto" and not traced and jax.default_backend() == "cpu")
    if host and traced:
        raise ValueError("loop='host' drives the steps from Python: expected concrete inputs, not traced ones.")
    result, invalid = (_optimize_host if host else _optimize_jit)(
        generate,
        classify,
        codes,
        jnp.asarray(classes, jnp.int32),
        key,
        as_float(lam),
        as_float(xi_min),
        as_float(xi_max),
        as_float(learning_rate),
        as_float(init),
        steps=int(steps),
        batch_size=int(batch_size),
        optimizer=optimizer,
        parametrization=parametrization,
        snapshot_steps=snapshot_steps,
    )
    _validation.raise_for_invalid_rows(invalid, "while optimising Method B's weights")
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


def _init_all(codes, init, learning_rate, *, optimizer, parametrization):
    return jax.vmap(
        lambda c: _init_one_class(c, init, learning_rate, optimizer=optimizer,
                                  parametrization=parametrization)
    )(codes)


def _advance_all(generate, classify, codes, classes, keys, lam, xi_min, xi_max, learning_rate,
                 carry, first_step, **options):
    def per_class(c, t, k, state):
        return _advance_one_class(generate, classify, c, t, k, lam, xi_min, xi_max,
                                  learning_rate, state, first_step, **options)

    return jax.vmap(per_class)(codes, classes, keys, carry)


def _optimize_all(generate, classify, codes, classes, key, lam, xi_min, xi_max, learning_rate,
                  init, *, steps, batch_size, optimizer, parametrization, snapshot_steps):
    """The whole run as one program: ``lax.scan`` over the steps."""
    keys = _row_keys(key, codes.shape[0])
    options = dict(optimizer=optimizer, parametrization=parametrization)
    carry = _init_all(codes, init, learning_rate, **options)
    carry, losses, path, invalid = _advance_all(
        generate, classify, codes, classes, keys, lam, xi_min, xi_max, learning_rate, carry,
        jnp.int32(0), num_steps=steps, batch_size=batch_size, unrolled=False,
        keep_path=bool(snapshot_steps), **options,
    )
    to_w, _ = _parts(learning_rate, optimizer, parametrization)
    snapshots = path[:, jnp.asarray(snapshot_steps) - 1] if snapshot_steps else None
    return WeightResult(to_w(carry[0]), losses, snapshots), jnp.sum(invalid)


# Only the loop's length, batch size, parametrisation and a user-supplied optimiser are part of
# the program; models, codes, keys and every float setting are traced inputs.
_optimize_jit = jax.jit(
    _optimize_all,
    static_argnames=("steps", "batch_size", "optimizer", "parametrization", "snapshot_steps"),
)
_init_jit = jax.jit(_init_all, static_argnames=("optimizer", "parametrization"))
_advance_jit = jax.jit(
    _advance_all,
    static_argnames=("num_steps", "batch_size", "optimizer", "parametrization", "unrolled", "keep_path"),
)

#: Steps per compiled block of ``loop='host'``: long enough that the per-call cost is small,
#: short enough to compile in seconds.
HOST_BLOCK_STEPS = 10


def _optimize_host(generate, classify, codes, classes, key, lam, xi_min, xi_max, learning_rate,
                   init, *, steps, batch_size, optimizer, parametrization, snapshot_steps):
    """The same steps as :func:`_optimize_all`, as jitted straight-line blocks called from Python."""
    keys = _row_keys(key, codes.shape[0])
    options = dict(optimizer=optimizer, parametrization=parametrization)
    carry = _init_jit(codes, init, learning_rate, **options)
    losses, paths, invalid = [], [], jnp.int32(0)
    for first in range(0, steps, HOST_BLOCK_STEPS):
        carry, block_losses, path, block_invalid = _advance_jit(
            generate, classify, codes, classes, keys, lam, xi_min, xi_max, learning_rate, carry,
            jnp.int32(first), num_steps=min(HOST_BLOCK_STEPS, steps - first),
            batch_size=batch_size, unrolled=True, keep_path=bool(snapshot_steps), **options,
        )
        losses.append(block_losses)
        paths.append(path)
        invalid = invalid + jnp.sum(block_invalid)
    to_w, _ = _parts(learning_rate, optimizer, parametrization)
    snapshots = None
    if snapshot_steps:
        snapshots = jnp.concatenate(paths, axis=1)[:, jnp.asarray(snapshot_steps) - 1]
    result = WeightResult(to_w(carry[0]), jnp.concatenate(losses, axis=1), snapshots)
    return result, invalid
