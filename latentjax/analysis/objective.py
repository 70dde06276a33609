"""Method B's loss: the smoothed change of a class's score along ``w``, its quadrature over
``xi``, and the penalty on ``w`` (docs/method.md, "Method B"). :mod:`latentjax.analysis.weights`
minimises it.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

#: The penalties on ``w``: the paper's plain L2 norm, its square, and the L1 norm.
PENALTIES = ("l2", "l2_squared", "l1")
# Keeps sqrt differentiable at 0 when the smoothing width is 0 (the exact |.| and max).
_TINY = 1e-30


def smooth_abs(x: jax.Array, width) -> jax.Array:
    """``sqrt(x^2 + width^2)``: ``|x|`` with a rounded kink; exactly ``|x|`` at ``width = 0``.

    >>> import jax.numpy as jnp
    >>> smooth_abs(jnp.array(-3.0), 0.0).item(), smooth_abs(jnp.array(0.0), 0.5).item()
    (3.0, 0.5)
    """
    return jnp.sqrt(x * x + width * width + _TINY)


def smooth_max(a: jax.Array, b: jax.Array, width) -> jax.Array:
    """``(a + b + smooth_abs(a - b, width)) / 2``: ``max(a, b)`` with a rounded kink at ``a = b``.

    >>> import jax.numpy as jnp
    >>> smooth_max(jnp.array(1.0), jnp.array(3.0), 0.0).item()
    3.0
    """
    return 0.5 * (a + b + smooth_abs(a - b, width))


def weight_penalty(w: jax.Array, penalty: str = "l2") -> jax.Array:
    """``||w||_2`` (``'l2'``, differentiable at 0), ``||w||_2^2`` (``'l2_squared'``) or ``||w||_1``.

    >>> import jax.numpy as jnp
    >>> [round(float(weight_penalty(jnp.array([3.0, -4.0]), p)), 3) for p in PENALTIES]
    [5.0, 25.0, 7.0]
    """
    if penalty == "l2":
        return jnp.sqrt(jnp.sum(w * w) + 1e-12)
    if penalty == "l2_squared":
        return jnp.sum(w * w)
    if penalty == "l1":
        return jnp.sum(jnp.sqrt(w * w + 1e-12))
    raise ValueError(f"penalty={penalty!r}: expected one of {PENALTIES}.")


def xi_quadrature(nodes: int, xi_min, xi_max) -> tuple[jax.Array, jax.Array]:
    """Gauss-Legendre nodes ``u[nodes]`` on ``[xi_min, xi_max]`` and weights summing to 1.

    ``E_{u ~ U[xi_min, xi_max]} f(u) ~= sum_q weights_q f(u_q)``, exact for polynomials of
    degree ``2 * nodes - 1``.

    >>> u, weights = xi_quadrature(2, 1.0, 3.0)
    >>> [round(float(x), 4) for x in u], weights.tolist()
    ([1.4226, 2.5774], [0.5, 0.5])
    """
    reference, reference_weights = np.polynomial.legendre.leggauss(nodes)
    half = 0.5 * (jnp.asarray(xi_max) - jnp.asarray(xi_min))
    mid = 0.5 * (jnp.asarray(xi_max) + jnp.asarray(xi_min))
    return mid + half * jnp.asarray(reference, half.dtype), jnp.asarray(reference_weights / 2.0, half.dtype)


def weight_objective(
    w: jax.Array,
    generate: Callable,
    classify: Callable,
    codes: jax.Array,
    xi: jax.Array,
    target: jax.Array,
    base_scores: jax.Array,
    lam: float,
    *,
    xi_weights: jax.Array | None = None,
    smoothing=0.0,
    penalty: str = "l2",
) -> jax.Array:
    """``mean_b sum_q xi_weights_q [1 - max_s |Q_t(G(z_b + s xi_bq w)) - Q_t(G(z_b))|] + lam penalty(w)``.

    ``codes[B, N]``; ``xi[B]`` (one positive magnitude per code) or ``xi[B, Q]`` with
    ``xi_weights[Q]`` (quadrature); ``base_scores[B] = Q_t(G(codes))``. ``smoothing`` rounds
    ``|.|`` and ``max`` (:func:`smooth_abs`, :func:`smooth_max`); 0 is the exact objective.

    >>> import jax, jax.numpy as jnp
    >>> generate = lambda z: z
    >>> classify = lambda x: jax.nn.softmax(jnp.stack([x[:, 0], -x[:, 0]], -1))
    >>> codes = jnp.zeros((1, 2))
    >>> loss = weight_objective(jnp.array([1.0, 0.0]), generate, classify, codes, jnp.array([1.0]), 0, jnp.array([0.5]), 0.0)
    >>> round(float(loss), 4)  # 1 - (sigmoid(2) - 0.5)
    0.6192
    """
    if xi.ndim == 1:
        xi = xi[:, None]
    if xi_weights is None:
        xi_weights = jnp.ones((xi.shape[1],), xi.dtype) / xi.shape[1]
    batch, nodes = xi.shape
    step = xi.reshape(-1)[:, None] * w[None, :]  # [B * Q, N]
    repeated = jnp.repeat(codes, nodes, axis=0)
    scores = classify(generate(jnp.concatenate([repeated + step, repeated - step])))[:, target]
    base = jnp.repeat(base_scores, nodes)
    change = smooth_abs(scores - jnp.concatenate([base, base]), smoothing).reshape(2, batch, nodes)
    best = smooth_max(change[0], change[1], smoothing)
    return jnp.mean(1.0 - best @ xi_weights) + lam * weight_penalty(w, penalty)
