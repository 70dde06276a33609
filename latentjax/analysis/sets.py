"""Ranked dimension sets and the agreement of the two methods.

Every set is a boolean mask ``[C, N]`` (class by latent dimension): a fixed shape that jit,
vmap over seeds and set algebra handle directly. Scores are passed class-major, ``[C, N]``:
for Method A that is ``apcr.T``, for Method B ``abs(weights)``::

    H_j  = top-K dimensions by APCR_{., j}
    C_j  = { i : |w*_ji| > t_j },  t_j = K-th largest |w*_j| by default
    IR_j = |H_j ∩ C_j| / K        (chance level K / N)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from latentjax.analysis import validation


def _mask_from_indices(indices: jax.Array, num_dims: int) -> jax.Array:
    return jnp.any(jax.nn.one_hot(indices, num_dims, dtype=jnp.int32) > 0, axis=-2)


def top_k_mask(scores: jax.Array, k: int) -> jax.Array:
    """``[C, N]`` mask of the ``k`` highest-scoring dimensions of each class.

    >>> top_k_mask(jnp.array([[0.1, 0.9, 0.5]]), 2).tolist()
    [[False, True, True]]
    """
    validation.check_k(k, scores.shape[-1])
    _, indices = jax.lax.top_k(scores, k)
    return _mask_from_indices(indices, scores.shape[-1])


def bottom_k_mask(scores: jax.Array, k: int) -> jax.Array:
    """``[C, N]`` mask of the ``k`` lowest-scoring dimensions of each class:
    ``B_j = {i : rank of -scores[j, i] < k}`` (ties by index).

    >>> import jax.numpy as jnp
    >>> bottom_k_mask(jnp.array([[0.3, 0.1, 0.2]]), 2).tolist()
    [[False, True, True]]"""
    return top_k_mask(-scores, k)


def random_k_mask(key: jax.Array, num_classes: int, num_dims: int, k: int) -> jax.Array:
    """``[C, N]`` mask of ``k`` dimensions drawn without replacement, independently per class:
    every K-subset of the N dimensions equally likely, ``P(i in R_j) = K / N``.

    >>> import jax
    >>> random_k_mask(jax.random.key(0), 2, 5, 3).sum(axis=1).tolist()
    [3, 3]"""
    validation.check_k(k, num_dims)
    keys = jax.random.split(key, num_classes)
    pick = lambda key: jax.random.choice(key, num_dims, (k,), replace=False)
    return _mask_from_indices(jax.vmap(pick)(keys), num_dims)


def ranked_indices(scores: jax.Array, mask: jax.Array | None = None) -> list[list[int]]:
    """Per class, the dimensions (in ``mask``, if given) from highest to lowest score:
    ``argsort(-scores[j])`` restricted to ``{i : mask[j, i]}``.

    >>> import jax.numpy as jnp
    >>> scores = jnp.array([[0.2, 0.9, 0.5]])
    >>> ranked_indices(scores), ranked_indices(scores, jnp.array([[True, False, True]]))
    ([[1, 2, 0]], [[2, 0]])"""
    order = jnp.argsort(-scores, axis=-1).tolist()
    if mask is None:
        return order
    keep = jnp.asarray(mask).tolist()
    return [[i for i in row if keep[c][i]] for c, row in enumerate(order)]


def controlling_set(
    weights: jax.Array, *, k: int | None = 10, threshold: float | None = None
) -> jax.Array:
    """Method B's controlling set ``C_j = {i : |w*_ji| > t_j}`` as a ``[C, N]`` mask.

    With ``threshold=None`` (default), ``t_j`` is the ``k``-th largest ``|w*_j|`` so ``|C_j| = k``
    (ties broken by index); with an absolute ``threshold``, ``k`` is ignored.

    >>> import jax.numpy as jnp
    >>> w = jnp.array([[0.9, -0.7, 0.1]])
    >>> controlling_set(w, k=2).tolist(), controlling_set(w, threshold=0.8).tolist()
    ([[True, True, False]], [[True, False, False]])
    """
    if threshold is not None:
        if validation.number_problem(threshold, low=0):
            raise ValueError(f"threshold={threshold!r}: expected a non-negative number.")
        return jnp.abs(weights) > threshold
    return top_k_mask(jnp.abs(weights), k)


def intersection_ratio(
    high_set: jax.Array, control_set: jax.Array, k: int, *, exact_control_size: bool = True
) -> jax.Array:
    """``IR_j = |H_j ∩ C_j| / k`` per class, from two ``[C, N]`` boolean masks.

    ``H_j`` must hold exactly ``k`` dimensions, and so must ``C_j`` unless
    ``exact_control_size=False`` (a controlling set chosen by an absolute threshold).

    >>> h = jnp.array([[True, True, False, False]])
    >>> c = jnp.array([[False, True, True, False]])
    >>> intersection_ratio(h, c, 2).tolist()
    [0.5]
    """
    if jnp.shape(high_set) != jnp.shape(control_set):
        raise ValueError(
            f"the sets have shapes {jnp.shape(high_set)} and {jnp.shape(control_set)}: expected the same [C, N]."
        )
    validation.check_k(k, jnp.shape(high_set)[-1])
    for name, mask in (("high_set", high_set), ("control_set", control_set)):
        if jnp.result_type(mask) != jnp.bool_:
            raise ValueError(f"{name} has dtype {jnp.result_type(mask)}: expected a boolean mask [C, N].")
    if validation.is_concrete(high_set):
        sizes = np.asarray(high_set).sum(-1)
        if np.any(sizes != k):
            row = int(np.flatnonzero(sizes != k)[0])
            raise ValueError(
                f"high_set row {row} has {int(sizes[row])} dimensions: expected k={k} (a top-k set)."
            )
    if exact_control_size and validation.is_concrete(control_set):
        sizes = np.asarray(control_set).sum(-1)
        if np.any(sizes != k):
            row = int(np.flatnonzero(sizes != k)[0])
            raise ValueError(
                f"control_set row {row} has {int(sizes[row])} dimensions: expected k={k} (pass "
                "exact_control_size=False for sets chosen by an absolute threshold)."
            )
    both = jnp.sum(jnp.logical_and(high_set, control_set), axis=-1)
    return both.astype(jnp.float32) / k


def chance_level(k: int, num_dims: int) -> float:
    """Expected IR of two independent random K-subsets of N dimensions:
    ``E|A n B| / K = K * (K / N) / K = K / N``.

    >>> chance_level(10, 100)
    0.1"""
    validation.check_k(k, num_dims)
    return k / num_dims


def signed_directions(mask: jax.Array, signs: jax.Array) -> jax.Array:
    """``[C, N]`` vectors ``sum_{i in R_j} s_ji e_i``: the set's dimensions with their signs.

    A zero sign (no measured direction) counts as +1 so every chosen dimension moves.

    >>> import jax.numpy as jnp
    >>> signed_directions(jnp.array([[True, True, False]]), jnp.array([[-0.4, 0.0, 0.9]])).tolist()
    [[-1.0, 1.0, 0.0]]
    """
    signs = jnp.where(signs == 0, 1.0, jnp.sign(signs)).astype(jnp.float32)
    return jnp.where(mask, signs, 0.0)


def method_directions(
    high: jax.Array, apcr_signs: jax.Array, control: jax.Array, weights: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """The paper's two methods' set directions, ``[..., C, N]`` each (any leading axes):
    Method A's ``sum_{i in H_j} sign(d_ij) e_i`` (``apcr_signs[..., N, C]``, the layout of
    :class:`~latentjax.APCRResult`'s ``directions``) and Method B's ``sum_{i in C_j} sign(w*_ji) e_i``.

    >>> import jax.numpy as jnp
    >>> mask = jnp.array([[True, False]])
    >>> a, b = method_directions(mask, jnp.array([[-1.0], [1.0]]), mask, jnp.array([[0.5, -0.2]]))
    >>> a.tolist(), b.tolist()
    ([[-1.0, 0.0]], [[1.0, 0.0]])
    """
    apcr = signed_directions(high, jnp.swapaxes(jnp.asarray(apcr_signs), -1, -2))
    return apcr, signed_directions(control, jnp.asarray(weights))


def jaccard(first: jax.Array, second: jax.Array) -> jax.Array:
    """``|A ∩ B| / |A ∪ B|`` per row of two ``[..., N]`` masks (1 where both are empty).

    >>> jaccard(jnp.array([[True, True, False]]), jnp.array([[False, True, True]])).tolist()
    [0.3333333432674408]
    """
    both = jnp.sum(jnp.logical_and(first, second), axis=-1)
    either = jnp.sum(jnp.logical_or(first, second), axis=-1)
    return jnp.where(either > 0, both / jnp.maximum(either, 1), 1.0).astype(jnp.float32)


def pairwise_jaccard(masks: jax.Array) -> jax.Array:
    """Set stability over repetitions: the mean Jaccard index of every pair of ``masks[R, ...]``.

    ``masks[R, C, N]`` (one ``[C, N]`` set per seed) gives ``[C]``; fewer than two repetitions
    give NaN (there is no pair to compare).

    >>> masks = jnp.array([[[True, True, False]], [[True, True, False]], [[True, False, True]]])
    >>> [round(x, 4) for x in pairwise_jaccard(masks).tolist()]
    [0.5556]
    """
    repetitions = masks.shape[0]
    if repetitions < 2:
        return jnp.full(masks.shape[1:-1], jnp.nan, jnp.float32)
    first, second = np.triu_indices(repetitions, k=1)
    return jnp.mean(jaccard(masks[first], masks[second]), axis=0)
