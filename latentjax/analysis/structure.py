"""Latent-space structure (the paper's Figure 1): a t-SNE embedding and a number beside it.

The number is the leave-one-out k-nearest-neighbour class accuracy in latent space: the share of
codes whose ``k`` nearest other codes (Euclidean) vote for the code's own class. Chance is about
the share of the largest class; 1.0 means classes occupy separate regions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from latentjax.analysis import validation


def knn_class_accuracy(codes: jax.Array, labels: jax.Array, k: int = 5) -> float:
    """Leave-one-out ``k``-NN accuracy of ``labels[n]`` from ``codes[n, N]``.

    >>> import jax.numpy as jnp
    >>> codes = jnp.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]])
    >>> knn_class_accuracy(codes, jnp.array([0, 0, 0, 1, 1, 1]), k=2)
    1.0
    """
    validation.check_codes(codes, ndim=2)
    n = codes.shape[0]
    if jnp.shape(labels) != (n,):
        raise ValueError(f"labels has shape {jnp.shape(labels)}: expected ({n},), one per code.")
    expected = validation.number_problem(k, integer=True, low=1, high=n - 1)
    if expected:
        raise ValueError(f"k={k!r}: expected {expected}.")
    return float(_knn_accuracy(jnp.asarray(codes), jnp.asarray(labels, jnp.int32), k))


@jax.jit
def _pairwise_sq_dist(codes):
    sq = jnp.sum(codes * codes, axis=-1)
    return sq[:, None] + sq[None, :] - 2.0 * codes @ codes.T


def _knn_accuracy(codes, labels, k):
    num_classes = int(jnp.max(labels)) + 1
    dist = _pairwise_sq_dist(codes)
    dist = dist + jnp.diag(jnp.full((codes.shape[0],), jnp.inf))  # leave one out
    _, neighbours = jax.lax.top_k(-dist, k)
    votes = jnp.sum(jax.nn.one_hot(labels[neighbours], num_classes), axis=1)
    return jnp.mean((jnp.argmax(votes, axis=-1) == labels).astype(jnp.float32))


def tsne_embedding(
    codes: jax.Array, *, seed: int = 0, perplexity: float = 30.0
) -> np.ndarray:
    """2-D t-SNE embedding ``[n, 2]`` of ``codes[n, N]`` (scikit-learn's implementation): the
    points ``y_i`` minimising ``KL(P || Q)``, ``P`` Gaussian affinities of the codes at the given
    ``perplexity``, ``Q_ij ~ (1 + |y_i - y_j|^2)^-1``.

    >>> import jax
    >>> tsne_embedding(jax.random.normal(jax.random.key(0), (12, 5)), perplexity=3.0).shape
    (12, 2)"""
    try:
        from sklearn.manifold import TSNE
    except ImportError as exc:  # the core imports nothing from latentjax, so no shared helper
        raise ImportError(
            "tsne_embedding needs scikit-learn, which is not installed: pip install 'latentjax[report]'."
        ) from exc

    validation.check_codes(codes, ndim=2)
    n = codes.shape[0]
    if not 0 < perplexity < n:
        raise ValueError(f"perplexity={perplexity!r}: expected 0 < perplexity < {n} (the codes).")
    tsne = TSNE(n_components=2, perplexity=perplexity, random_state=seed, init="pca")
    return tsne.fit_transform(np.asarray(codes, np.float64))
