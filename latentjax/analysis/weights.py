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
from latentjax.analysis.parallel import as_pytree


class WeightResult(NamedTuple):
    """``weights[C, N]`` (``w*`` per class, in [-1, 1]) and ``losses[C, steps]``."""

    weights: jax.Array
    losses: jax.Array


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


def _optimize_one_class(
    generate,
    classify,
    codes,
    target,
    key,
    lam,
    xi_min,
    xi_max,
    learning_rate,
    init,
    *,
    steps,
    batch_size,
    optimizer,
    parametrization,
):
    latent_dim = codes.shape[-1]
    init = init.astype(codes.dtype)
    if parametrization == "tanh":
        # v such that tanh(v) = init; init is inside (-1, 1) (checked by the caller).
        v0 = jnp.full((latent_dim,), jnp.arctanh(init))
    else:
        v0 = jnp.full((latent_dim,), init)
    to_w = jnp.tanh if parametrization == "tanh" else (lambda v: v)
    if optimizer is None:
        # The learning rate is an input of the optimiser state, not a constant of the program.
        optimizer = optax.inject_hyperparams(optax.adam)(learning_rate=learning_rate)

    def step(carry, step_key):
        v, opt_state = carry
        pick_key, xi_key = jax.random.split(step_key)
        idx = jax.random.randint(pick_key, (batch_size,), 0, codes.shape[0])
        batch = codes[idx]
        xi = jax.random.uniform(xi_key, (batch_size,), codes.dtype, xi_min, xi_max)
        base = jax.lax.stop_gradient(classify(generate(batch))[:, target])
        loss, grad = jax.value_and_grad(
            lambda v: weight_objective(to_w(v), generate, classify, batch, xi, target, base, lam)
        )(v)
        with jax.numpy_dtype_promotion("standard"):  # optax mixes int step counts with floats
            updates, opt_state = optimizer.update(grad, opt_state, v)
        v = optax.apply_updates(v, updates)
        if parametrization == "box":
            v = optax.projections.projection_box(v, -1.0, 1.0)
        return (v, opt_state), loss

    with jax.numpy_dtype_promotion("standard"):
        opt_state = optimizer.init(v0)
    (v, _), losses = jax.lax.scan(step, (v0, opt_state), jax.random.split(key, steps))
    return to_w(v), losses


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
) -> WeightResult:
    """Optimises ``w*`` for every class in one vmapped, jitted ``lax.scan`` (Method B).

    Args:
      generate, classify: as in :func:`latentjax.compute_apcr`.
      codes: ``[C', S, N]``, the code sets ``Z_j`` (``codes[c]`` belongs to ``classes[c]``).
      key: PRNG key; class ``c`` uses ``fold_in(key, c)``.
      lam: weight of ``||w||_2``. xi_range: ``(xi_min, xi_max)``, ``0 < xi_min <= xi_max``.
      steps, batch_size, learning_rate: the loop: Adam through ``optax.inject_hyperparams``, so
        the learning rate is traced and a new value does not compile again.
      init: initial value of every ``w_i``. parametrization: ``'box'`` (projection) or ``'tanh'``.
      optimizer: instead of Adam, any ``optax.GradientTransformation`` (``learning_rate`` is then
        ignored). It is part of the compiled program: build it once and reuse the same object,
        or each new object compiles again.

    ``generate``, ``classify``, ``codes``, ``key`` and the float settings (``lam``, ``xi_range``,
    ``learning_rate``, ``init``) are traced, so the function works under ``jax.jit`` and
    ``jax.vmap`` (for example over a stack of generator seeds, see
    :func:`latentjax.stack_pytrees`).

    Returns:
      :class:`WeightResult`: ``weights[C', N]`` in [-1, 1], ``losses[C', steps]``.

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
    if parametrization not in ("box", "tanh"):
        raise ValueError(f"parametrization={parametrization!r}: expected 'box' or 'tanh'.")
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
    return _optimize_jit(
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
    )


def _optimize_all(generate, classify, codes, classes, key, *settings, **options):
    keys = jax.vmap(lambda c: jax.random.fold_in(key, c))(jnp.arange(codes.shape[0]))
    per_class = lambda c, t, k: _optimize_one_class(generate, classify, c, t, k, *settings, **options)
    weights, losses = jax.vmap(per_class)(codes, classes, keys)
    return WeightResult(weights, losses)


# Only the loop's length, batch size, parametrisation and a user-supplied optimiser are part of
# the program; models, codes, keys and every float setting are traced inputs.
_optimize_jit = jax.jit(
    _optimize_all, static_argnames=("steps", "batch_size", "optimizer", "parametrization")
)
