"""optax's ``init`` and ``update`` under standard dtype promotion, the one place that says so.

optax mixes its int32 step count with floats (bias correction, schedules, L-BFGS's memory), which
strict promotion (the test suite's setting, and maybe a user's) rejects; there the promotion is
harmless, so these two calls allow it and nothing else does.
"""

from __future__ import annotations

from typing import Any

import jax
import optax


def optax_init(optimizer: optax.GradientTransformation, params: Any) -> Any:
    """``optimizer.init(params)`` under standard dtype promotion."""
    with jax.numpy_dtype_promotion("standard"):
        return optimizer.init(params)


def optax_update(optimizer: optax.GradientTransformation, grads: Any, state: Any, params: Any, **extra: Any):
    """``optimizer.update(grads, state, params, **extra)`` under standard dtype promotion.

    >>> import jax.numpy as jnp, optax
    >>> sgd = optax.sgd(0.5)
    >>> updates, _ = optax_update(sgd, jnp.ones(2), optax_init(sgd, jnp.zeros(2)), jnp.zeros(2))
    >>> updates.tolist()
    [-0.5, -0.5]
    """
    with jax.numpy_dtype_promotion("standard"):
        return optimizer.update(grads, state, params, **extra)
