"""Controllable manipulation: shifting codes along a signed set of dimensions.

For a direction ``v = sum_{i in R} s_i e_i`` and a grid of ``alpha``::

    Z' = Z + alpha * v

- same class ``j`` (codes of class ``j``, ``v`` the direction that *raises* ``Q_j``): the codes
  move against it, ``Z' = Z - alpha * v``; we report the mean ``Q_j`` per ``alpha`` and the flip
  rate, the share of codes whose argmax leaves ``j``;
- cross class ``s -> t`` (codes of class ``s``, ``v`` the direction raising ``Q_t``):
  ``Z' = Z + alpha * v``; we report the mean ``Q_t`` and the share whose argmax becomes ``t``.

With an attribute classifier (:func:`~latentjax.analysis.outputs.attribute_classifier`) a code
leaves attribute ``j`` when ``Q_j`` falls below 0.5, and reaches ``t`` when ``Q_t`` rises to 0.5.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from latentjax.analysis import validation
from latentjax.analysis.runner import default_chunk_size
from latentjax.analysis.evaluation import move_and_classify
from latentjax.analysis.outputs import decisions, is_attribute_classifier
from latentjax.analysis.parallel import as_pytree

DEFAULT_ALPHAS = tuple(np.linspace(-3.0, 3.0, 13).tolist())  # NumPy: no backend at import


class ManipulationResult(NamedTuple):
    """Effect of one shift per ``alpha`` (``A`` values) on ``M`` codes.

    Attributes:
      alphas: ``[A]``. mean_probability: ``[A]``, mean ``Q_class`` over the codes.
      argmax_rate: ``[A]``: for ``mode='same'`` the flip rate (argmax != class), for
        ``mode='cross'`` the share with argmax == class (attributes: ``Q_class`` below 0.5,
        and at or above it).
      probabilities: ``[A, M, C]`` all class probabilities.
      images: ``[A, num_images, ...]`` the first ``num_images`` codes' images, for figures.
    """

    alphas: jax.Array
    mean_probability: jax.Array
    argmax_rate: jax.Array
    probabilities: jax.Array
    images: jax.Array


def shift_codes(codes: jax.Array, direction: jax.Array, alphas: jax.Array) -> jax.Array:
    """``[A, M, N]`` codes ``Z + alpha * v`` for every ``alpha``.

    >>> shift_codes(jnp.zeros((1, 2)), jnp.array([1.0, -1.0]), jnp.array([0.0, 2.0])).tolist()
    [[[0.0, 0.0]], [[2.0, -2.0]]]
    """
    return codes[None] + alphas[:, None, None] * direction[None, None, :]


def manipulate(
    generate: Callable[[jax.Array], jax.Array],
    classify: Callable[[jax.Array], jax.Array],
    codes: jax.Array,
    direction: jax.Array,
    class_index: int,
    *,
    mode: str = "same",
    alphas=DEFAULT_ALPHAS,
    num_images: int = 8,
    chunk_size: int | None = None,
) -> ManipulationResult:
    """Shifts ``codes[M, N]`` along ``direction[N]`` over ``alphas`` and scores ``class_index``.

    ``mode='same'``: ``direction`` raises ``Q_class``, codes move against it; the rate is the flip
    rate. ``mode='cross'``: codes move along it; the rate is the share that becomes ``class``.
    Models, codes, direction and ``alphas`` are traced (pytrees or plain functions as in
    :func:`latentjax.compute_apcr`).

    >>> import jax, jax.numpy as jnp
    >>> classify = lambda x: jax.nn.softmax(jnp.stack([x[:, 0], -x[:, 0]], -1))
    >>> codes = jnp.full((4, 2), 1.0)                  # class 0: the first coordinate is positive
    >>> result = manipulate(lambda z: z, classify, codes, jnp.array([1.0, 0.0]), 0,
    ...                     alphas=jnp.array([0.0, 3.0]))
    >>> result.argmax_rate.tolist()                    # moved against the direction: all flip
    [0.0, 1.0]
    """
    validation.check_codes(codes, ndim=2)
    if jnp.shape(direction) != (codes.shape[-1],):
        raise ValueError(
            f"direction has shape {jnp.shape(direction)}: expected ({codes.shape[-1]},), one "
            "entry per latent dimension."
        )
    if mode not in ("same", "cross"):
        raise ValueError(f"mode={mode!r}: expected 'same' or 'cross'.")
    generate, classify = as_pytree(generate), as_pytree(classify)
    num_classes = validation.probe_models(generate, classify, codes)
    validation.check_class_index(class_index, num_classes)
    alphas = jnp.asarray(alphas, codes.dtype)
    result = _manipulate_jit(
        generate,
        classify,
        jnp.asarray(codes),
        jnp.asarray(direction, codes.dtype),
        alphas,
        jnp.int32(class_index),
        same=mode == "same",
        num_images=int(min(num_images, codes.shape[0])),
        chunk_size=int(chunk_size or default_chunk_size()),
    )
    validation.check_probability_array(result.probabilities, "while manipulating", is_attribute_classifier(classify))
    return result


def _manipulate_core(
    generate, classify, codes, direction, alphas, class_index, *, same, num_images, chunk_size
):
    sign = -1.0 if same else 1.0
    offsets = alphas[:, None, None] * (sign * direction)[None, None, :]  # [A, 1, N]: shift_codes's
    probs = move_and_classify(generate, classify, codes[None], offsets, chunk_size)  # [A, M, K]
    decided = decisions(probs, is_attribute_classifier(classify))[..., class_index]
    hit = ~decided if same else decided
    if num_images:
        shown = shift_codes(codes[:num_images], sign * direction, alphas)  # [A, num_images, N]
        images = generate(shown.reshape(-1, codes.shape[-1]))
        images = images.reshape(*shown.shape[:2], *images.shape[1:])
    else:  # scores only (the dose–response): no pictures to draw
        images = jnp.zeros((alphas.shape[0], 0), probs.dtype)
    return ManipulationResult(
        alphas,
        jnp.mean(jnp.take(probs, class_index, axis=-1), axis=-1),
        jnp.mean(hit.astype(jnp.float32), axis=-1),
        probs,
        images,
    )


_manipulate_jit = jax.jit(_manipulate_core, static_argnames=("same", "num_images", "chunk_size"))


class Edit(NamedTuple):
    """An edit along one direction: ``codes[T, M, N]`` (``M`` codes moved by each of ``T``
    ``distances``), their ``images[T, M, H, W, C]`` and ``probabilities[T, M, K]``."""

    distances: jax.Array
    codes: jax.Array
    images: jax.Array
    probabilities: jax.Array


def edit_codes(
    generate: Callable[[jax.Array], jax.Array],
    classify: Callable[[jax.Array], jax.Array],
    codes: jax.Array,
    direction: jax.Array,
    distances,
    *,
    chunk_size: int | None = None,
) -> Edit:
    """Moves each code by each L2 ``distance`` along the unit ``direction``: ``z + d v / ||v||``.

    ``codes[M, N]``; ``direction[N]`` (any non-zero length: a sparse ``±1`` set or a dense
    vector, such as a row of a saved directions file); ``distances[T]``, signed (negative moves
    against the direction). Returns :class:`Edit` with the images and the classifier's outputs
    of every moved code, for a picture, a clip or the scores of an edit.

    >>> import jax, jax.numpy as jnp
    >>> classify = lambda x: jax.nn.softmax(jnp.stack([x[:, 0], -x[:, 0]], -1))
    >>> e = edit_codes(lambda z: z, classify, jnp.zeros((1, 2)), jnp.array([3.0, 4.0]), [0.0, 5.0])
    >>> e.codes[:, 0].tolist(), e.probabilities.shape
    ([[0.0, 0.0], [3.0, 4.0]], (2, 1, 2))
    """
    validation.check_codes(codes, ndim=2)
    direction = jnp.asarray(direction, jnp.float32)
    if direction.shape != (codes.shape[-1],):
        raise ValueError(f"direction of shape {direction.shape}: expected ({codes.shape[-1]},), one entry per latent dimension.")
    norm = float(jnp.linalg.norm(direction))
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError(f"direction of norm {norm}: expected a finite, non-zero direction to move along.")
    distances = jnp.asarray(distances, jnp.float32)
    if distances.ndim != 1 or distances.shape[0] == 0 or not bool(jnp.all(jnp.isfinite(distances))):
        raise ValueError(f"distances {np.asarray(distances).tolist()!r}: expected a non-empty list of finite numbers.")
    generate, classify = as_pytree(generate), as_pytree(classify)
    validation.probe_models(generate, classify, codes)
    moved = shift_codes(jnp.asarray(codes, jnp.float32), direction / norm, distances)
    images, probabilities = _edit_jit(generate, classify, moved, chunk_size=int(chunk_size or default_chunk_size()))
    validation.check_probability_array(probabilities, "while editing", is_attribute_classifier(classify))
    return Edit(distances, moved, images, probabilities)


@functools.partial(jax.jit, static_argnames="chunk_size")
def _edit_jit(generate, classify, moved, *, chunk_size):
    flat_images, probabilities = move_and_classify(generate, classify, moved, None, chunk_size, images=True)
    image_shape = jax.eval_shape(generate, moved[0, :1]).shape[1:]
    return flat_images.reshape(*moved.shape[:2], *image_shape), probabilities


def compare_sets(
    generate: Callable[[jax.Array], jax.Array],
    classify: Callable[[jax.Array], jax.Array],
    codes: jax.Array,
    scores: jax.Array,
    signs: jax.Array,
    k: int,
    key: jax.Array,
    *,
    mode: str = "same",
    targets: jax.Array | None = None,
    alphas=DEFAULT_ALPHAS,
    num_images: int = 8,
    chunk_size: int | None = None,
) -> dict[str, ManipulationResult]:
    """Top-K, bottom-K and random-K sets side by side, for every class at once.

    For each set ``R_j`` and strength ``alpha``: ``z' = z - alpha * sum_{i in R_j} s_ji e_i``
    in ``'same'`` mode (a positive ``alpha`` moves against the direction that raises ``Q_j``) and
    ``z' = z + alpha * sum_{i in R_t} s_ti e_i`` towards ``t = targets[j]`` in ``'cross'`` mode
    (``s = sign(signs)``), scored by ``mean_z Q(G(z'))`` and the share of codes whose argmax
    leaves ``j`` (same) or reaches ``t`` (cross).

    Args:
      codes: ``[C, S, N]`` code sets, ``codes[j]`` of class ``j``.
      scores: ``[C, N]`` ranking scores (``apcr.T`` or ``abs(weights)``).
      signs: ``[C, N]`` directions raising each class (``directions.T`` or ``weights``).
      k: set size. key: draws the random-K sets.
      mode: ``'same'`` (class ``j``'s codes against class ``j``'s set) or ``'cross'``
        (class ``j``'s codes along the set of ``targets[j]``, scored for ``targets[j]``).

    Returns:
      ``{'top': r, 'bottom': r, 'random': r}``, each a :class:`ManipulationResult` whose fields
      carry a leading class axis ``[C, ...]``.

    >>> import jax, jax.numpy as jnp
    >>> classify = lambda x: jax.nn.softmax(jnp.stack([4 * x[:, 0], -4 * x[:, 0]], -1))
    >>> codes = jnp.stack([jnp.full((4, 3), 0.5), jnp.full((4, 3), -0.5)])  # class 0, class 1
    >>> scores = jnp.array([[1.0, 0.0, 0.1], [1.0, 0.0, 0.1]])
    >>> signs = jnp.array([[1.0, 1.0, 1.0], [-1.0, 1.0, 1.0]])
    >>> sets = compare_sets(lambda z: z, classify, codes, scores, signs, 1, jax.random.key(0), alphas=(-2.0, 0.0, 2.0))
    >>> sets["top"].argmax_rate.tolist(), sets["bottom"].argmax_rate.tolist()
    ([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    """
    from latentjax.analysis import sets  # a sibling module of the analysis

    validation.check_codes(codes, ndim=3)
    num_sets, _, latent_dim = codes.shape
    if jnp.shape(scores) != (num_sets, latent_dim) or jnp.shape(signs) != (num_sets, latent_dim):
        raise ValueError(
            f"scores {jnp.shape(scores)} and signs {jnp.shape(signs)}: expected "
            f"({num_sets}, {latent_dim}), one row per code set."
        )
    if mode not in ("same", "cross"):
        raise ValueError(f"mode={mode!r}: expected 'same' or 'cross'.")
    generate, classify = as_pytree(generate), as_pytree(classify)
    num_classes = validation.probe_models(generate, classify, codes)
    targets = jnp.arange(num_sets) if targets is None else jnp.asarray(targets, jnp.int32)
    if validation.is_concrete(targets):
        for t in targets.tolist():
            validation.check_class_index(t, num_classes, "target")
    masks = {
        "top": sets.top_k_mask(scores, k),
        "bottom": sets.bottom_k_mask(scores, k),
        "random": sets.random_k_mask(key, num_sets, latent_dim, k),
    }
    alphas = jnp.asarray(alphas, codes.dtype)
    results = {}
    for name, mask in masks.items():
        directions = sets.signed_directions(mask, signs)[targets]
        results[name] = _compare_jit(
            generate,
            classify,
            jnp.asarray(codes),
            directions.astype(codes.dtype),
            alphas,
            targets,
            same=mode == "same",
            num_images=int(min(num_images, codes.shape[1])),
            chunk_size=int(chunk_size or default_chunk_size()),
        )
        validation.check_probability_array(
            results[name].probabilities, f"while moving codes along the {name}-K sets", is_attribute_classifier(classify)
        )
    return results


def _compare_core(generate, classify, codes, directions, alphas, targets, **options):
    per_class = lambda c, d, t: _manipulate_core(generate, classify, c, d, alphas, t, **options)
    return jax.lax.map(lambda args: per_class(*args), (codes, directions, targets))


_compare_jit = jax.jit(_compare_core, static_argnames=("same", "num_images", "chunk_size"))
