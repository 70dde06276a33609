"""Scoring directions at equal distances: move class codes along each direction, classify, and
measure what changed (:func:`evaluate_directions`). Every finder, sparse or dense, is compared
by this one kernel, and every move of codes in the analysis (the manipulation, the finders'
choice among candidates, this evaluation) is classified by :func:`move_and_classify`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from latentjax.analysis import validation
from latentjax.analysis.dose_response import flip_outcomes
from latentjax.analysis.runner import default_chunk_size, map_in_chunks
from latentjax.analysis.outputs import decisions, is_attribute_classifier
from latentjax.analysis.parallel import as_pytree


def move_and_classify(
    generate: Callable[[jax.Array], jax.Array],
    classify: Callable[[jax.Array], jax.Array],
    codes: jax.Array,
    offsets: jax.Array | None,
    chunk_size: int,
    *,
    images: bool = False,
):
    """``classify(generate(codes + offsets))``, ``chunk_size`` codes at a time.

    ``codes[..., N]`` and ``offsets[..., N]``, of one rank, broadcast against each other
    (``None``: no move), so one call moves every code by every offset: for example ``codes[C, 1, S, N]`` and
    ``offsets[1, T, 1, N]`` give ``[C, T, S, K]`` probabilities. Peak memory is one chunk of
    images. With ``images=True`` it returns ``(images[..., D], probabilities[..., K])``, the
    images flattened.

    >>> import jax, jax.numpy as jnp
    >>> classify = lambda x: jax.nn.softmax(x, axis=-1)
    >>> p = move_and_classify(lambda z: z, classify, jnp.zeros((3, 1, 2)), jnp.array([[[0.0, 0.0], [9.0, 0.0]]]), 4)
    >>> p.shape, p[0, 1].round(2).tolist()
    ((3, 2, 2), [1.0, 0.0])
    """
    moved = codes if offsets is None else codes + offsets
    lead, latent_dim = moved.shape[:-1], moved.shape[-1]
    flat = moved.reshape(-1, latent_dim)
    if not images:
        return map_in_chunks(lambda z: classify(generate(z)), flat, chunk_size).reshape(*lead, -1)

    def images_and_probabilities(z):
        x = generate(z)
        return x.reshape(x.shape[0], -1), classify(x)

    x, p = map_in_chunks(images_and_probabilities, flat, chunk_size)
    return x.reshape(*lead, -1), p.reshape(*lead, -1)


def _unit_rows(x: jax.Array) -> jax.Array:
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class DirectionEvaluation(NamedTuple):
    """Measures per class and distance, ``[C, T]`` each, of codes moved along unit directions.

    - ``probability_drop``: mean ``Q_s(z) - Q_s(z')`` of the source class ``s``;
    - ``flip_rate``: share of codes whose argmax leaves ``s`` (attributes: ``Q_s`` falls below
      0.5);
    - ``target_share``: share whose argmax is the target (attributes: ``Q_t >= 0.5``; cross
      class; in the same-class mode there is no target and it equals ``flip_rate``);
    - ``off_target_change``: mean ``sum_c |p_c(z') - p_c(z)|`` over the classes that are neither
      the source nor the class reached (the target, or the argmax after the move; attributes:
      every attribute but the source and the target): how much the move disturbs classes it is
      not about (lower is more specific);
    - ``pixel_change``: mean absolute pixel change on the [0, 1] scale;
    - ``clean_rate``: share of clean flips (same) or clean arrivals at the target (cross): the
      class reached has probability ``>= threshold`` (:func:`latentjax.analysis.dose_response.flip_outcomes`),
      a real other class rather than a broken image. ``None`` in artefacts saved before it was kept.
    """

    distances: jax.Array
    probability_drop: jax.Array
    flip_rate: jax.Array
    target_share: jax.Array
    off_target_change: jax.Array
    pixel_change: jax.Array
    clean_rate: jax.Array | None = None


def evaluate_directions(
    generate: Callable[[jax.Array], jax.Array],
    classify: Callable[[jax.Array], jax.Array],
    codes: jax.Array,
    directions: jax.Array,
    distances,
    *,
    mode: str = "same",
    targets=None,
    chunk_size: int | None = None,
    threshold: float = 0.9,
) -> DirectionEvaluation:
    """Moves class codes by equal L2 distances along each finder's directions and scores them.

    Row ``j`` of ``directions[..., C, N]`` is normalised to a unit vector ``v_j``; a K-set with
    ±1 entries then moves each of its dimensions by ``t / sqrt(K)`` at distance ``t``, so sparse
    and dense finders are compared at equal ``||z' - z|| = t``.

    - ``mode='same'``: ``z' = z - t v_s`` for the codes of class ``s`` (against the direction
      that raises ``Q_s``);
    - ``mode='cross'``: ``z' = z + t v_{targets[s]}``.

    Leading axes of ``directions`` (for example one per finder, ``[F, C, N]``) are evaluated in
    one program on the same codes (whose images are generated once); every measure then has
    shape ``[..., C, T]``. ``threshold`` (traced): the confidence of a clean flip
    (``clean_rate``).

    >>> import jax, jax.numpy as jnp
    >>> classify = lambda x: jax.nn.softmax(3.0 * x[:, :2], axis=-1)
    >>> codes = jnp.stack([jnp.tile(jnp.array([1.0, 0.0]), (4, 1)), jnp.tile(jnp.array([0.0, 1.0]), (4, 1))])
    >>> e = evaluate_directions(lambda z: z, classify, codes, jnp.eye(2), [0.0, 2.0])
    >>> e.flip_rate.tolist()
    [[0.0, 1.0], [0.0, 1.0]]
    >>> evaluate_directions(lambda z: z, classify, codes, jnp.stack([jnp.eye(2), -jnp.eye(2)]), [2.0]).flip_rate.tolist()
    [[[1.0], [1.0]], [[0.0], [0.0]]]
    """
    validation.check_codes(codes, ndim=3)
    num_classes, _, latent_dim = codes.shape
    shape = jnp.shape(directions)
    if len(shape) < 2 or shape[-2:] != (num_classes, latent_dim):
        raise ValueError(
            f"directions have shape {shape}: expected (..., {num_classes}, {latent_dim}), one "
            "direction per class (optionally stacked, e.g. one set per finder)."
        )
    if mode not in ("same", "cross"):
        raise ValueError(f"mode={mode!r}: expected 'same' or 'cross'.")
    if validation.is_concrete(threshold) and validation.number_problem(threshold, low=0, high=1, low_open=True):
        raise ValueError(f"threshold={threshold!r}: expected a probability in (0, 1].")
    if mode == "cross":
        if targets is None or np.shape(targets) != (num_classes,):
            raise ValueError(f"targets={targets!r}: expected {num_classes} class indices for mode='cross'.")
        targets = jnp.asarray(targets, jnp.int32)
    else:
        targets = jnp.arange(num_classes, dtype=jnp.int32)
    distances = jnp.asarray(distances, jnp.float32).reshape(-1)
    directions = jnp.asarray(directions, jnp.float32)
    norms = jnp.linalg.norm(directions, axis=-1)
    if validation.is_concrete(norms) and bool(jnp.any(norms == 0)):
        where = [int(i) for i in np.argwhere(np.asarray(norms) == 0)[0]]
        index = where[0] if len(where) == 1 else tuple(where)  # (set, class) when stacked
        raise ValueError(f"direction {index} is zero: expected a direction to move along.")
    generate, classify = as_pytree(generate), as_pytree(classify)
    units = _unit_rows(directions.reshape(-1, num_classes, latent_dim))
    result = _evaluate_jit(
        generate, classify, jnp.asarray(codes, jnp.float32), units, distances, targets,
        validation.as_float(threshold, jnp.float32), same=mode == "same", chunk_size=int(chunk_size or default_chunk_size()),
    )
    lead = shape[:-2]
    return result._replace(**{
        field: getattr(result, field).reshape(*lead, num_classes, distances.shape[0])
        for field in DirectionEvaluation._fields if field != "distances"
    })


def _evaluate_core(generate, classify, codes, units, distances, targets, threshold, *, same, chunk_size):
    """``units[B, C, N]``: B direction sets on the same codes; measures ``[B, C, T]``."""
    num_classes = codes.shape[0]
    sign = -1.0 if same else 1.0
    along = units[:, targets]  # [B, C, N]: the source's own (same) or its target's (cross) direction
    offsets = sign * distances[None, None, :, None, None] * along[:, :, None, None, :]  # [B, C, T, 1, N]
    x0, p0 = move_and_classify(generate, classify, codes, None, chunk_size, images=True)  # [C, S, ...]
    x1, p1 = move_and_classify(generate, classify, codes[None, :, None], offsets, chunk_size, images=True)
    num_outputs = p0.shape[-1]
    p0, x0 = p0[None, :, None], x0[None, :, None]  # [1, C, 1, S, ...]
    source = jnp.arange(num_classes)[None, :, None, None]  # [1, C, 1, 1]
    independent = is_attribute_classifier(classify)
    decided = decisions(p1, independent)  # [B, C, T, S, K]
    at = lambda v, index: jnp.take_along_axis(v, jnp.broadcast_to(index, v.shape[:-1])[..., None], axis=-1)[..., 0]
    target = targets[None, :, None, None]
    classes = jnp.arange(num_outputs)[None, None, None, None, :]
    off = classes != source[..., None]
    if not same:
        off = off & (classes != target[..., None])
    elif not independent:  # the class the codes reached is not off target either
        off = off & ~decided
    mean = lambda v: jnp.mean(v.astype(jnp.float32), axis=-1)
    q0, q1 = at(p0, source), at(p1, source)
    flipped = ~at(decided, source)
    _, clean = flip_outcomes(p1, source[..., 0] if same else target[..., 0], mode="same" if same else "cross",
                        threshold=threshold, independent=independent)
    return DirectionEvaluation(
        distances=distances,
        probability_drop=mean(q0 - q1),
        flip_rate=mean(flipped),
        target_share=mean(flipped if same else at(decided, target)),
        off_target_change=mean(jnp.sum(jnp.where(off, jnp.abs(p1 - p0), 0.0), axis=-1)),
        pixel_change=mean(jnp.mean(jnp.abs(x1 - x0), axis=-1) / 2.0),
        clean_rate=mean(clean),
    )


_evaluate_jit = jax.jit(_evaluate_core, static_argnames=("same", "chunk_size"))
