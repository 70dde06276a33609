"""Method A: sequential intervention on each latent dimension, scored by APCR.

For latent dimension ``i``, offset index ``k in {-m, ..., m}`` and step ``delta``::

    Z^k     = Z_j + k * delta * e_i
    S^k_ij  = Q_j(G(Z^k))
    APCR_ij = mean_{z in Z_j} mean_{k != 0} |S^k_ij(z) - S^0_j(z)| / (S^0_j(z) + eps)

``relative=False`` drops the division by ``S^0 + eps``; ``signed=True`` drops the absolute value
(both as in ``SPEC.md``). The curves ``mean_z S^k_ij`` are kept (the paper's Figure 3).

All (class, dimension, offset, sample) evaluations are enumerated as rows and computed
``chunk_size`` rows at a time with ``lax.map``, so peak memory is one chunk of generator and
classifier activations whatever ``S``, ``N`` and ``m`` are. The ``k = 0`` scores are computed once
per code, not once per dimension.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from latentjax import _validation
from latentjax._chunking import default_chunk_size, map_in_chunks


class APCRResult(NamedTuple):
    """Method A's outputs.

    Attributes:
      apcr: ``[N, C]``, ``APCR_ij`` for dimension ``i`` and class ``j``.
      curves: ``[N, 2m + 1, C]``, ``mean_{z in Z_j} Q_j(G(z + k delta e_i))`` for ``k = -m..m``.
      directions: ``[N, C]`` in {-1, 0, 1}: the sign of the mean score change between positive
        and negative offsets (the direction along ``e_i`` that raises ``Q_j``).
      offsets: ``[2m + 1]``, the latent offsets ``k * delta``.
    """

    apcr: jax.Array
    curves: jax.Array
    directions: jax.Array
    offsets: jax.Array


def _probabilities(generate, classify):
    return lambda z: classify(generate(z))


def _apcr_core(
    generate: Callable,
    classify: Callable,
    codes: jax.Array,
    classes: jax.Array,
    *,
    delta: float,
    m: int,
    relative: bool,
    signed: bool,
    eps: float,
    chunk_size: int,
) -> APCRResult:
    num_sets, num_samples, latent_dim = codes.shape
    probs_of = _probabilities(generate, classify)
    nonzero = jnp.concatenate([jnp.arange(-m, 0), jnp.arange(1, m + 1)]).astype(codes.dtype)
    num_offsets = 2 * m

    base = map_in_chunks(probs_of, codes.reshape(-1, latent_dim), chunk_size)
    base = base.reshape(num_sets, num_samples, -1)
    s0 = jnp.take_along_axis(base, classes[:, None, None], axis=-1)[..., 0]  # [C, S]

    def shifted_score(rows: jax.Array) -> jax.Array:
        c, rest = jnp.divmod(rows, latent_dim * num_offsets * num_samples)
        i, rest = jnp.divmod(rest, num_offsets * num_samples)
        k, s = jnp.divmod(rest, num_samples)
        shift = (nonzero[k] * delta)[:, None] * jax.nn.one_hot(i, latent_dim, dtype=codes.dtype)
        probs = probs_of(codes[c, s] + shift)
        return jnp.take_along_axis(probs, classes[c][:, None], axis=-1)[:, 0]

    rows = jnp.arange(num_sets * latent_dim * num_offsets * num_samples, dtype=jnp.int32)
    scores = map_in_chunks(shifted_score, rows, chunk_size)
    scores = scores.reshape(num_sets, latent_dim, num_offsets, num_samples)

    change = scores - s0[:, None, None, :]
    if not signed:
        change = jnp.abs(change)
    if relative:
        change = change / (s0[:, None, None, :] + eps)
    apcr = jnp.mean(change, axis=(2, 3))  # [C, N]

    mean_scores = jnp.mean(scores, axis=-1)  # [C, N, 2m]
    mean_s0 = jnp.broadcast_to(jnp.mean(s0, axis=-1)[:, None, None], (num_sets, latent_dim, 1))
    curves = jnp.concatenate([mean_scores[..., :m], mean_s0, mean_scores[..., m:]], axis=-1)
    directions = jnp.sign(
        jnp.mean(mean_scores[..., m:], axis=-1) - jnp.mean(mean_scores[..., :m], axis=-1)
    )
    offsets = jnp.arange(-m, m + 1).astype(codes.dtype) * delta
    return APCRResult(apcr.T, jnp.transpose(curves, (1, 2, 0)), directions.T, offsets)


def compute_apcr(
    generate: Callable[[jax.Array], jax.Array],
    classify: Callable[[jax.Array], jax.Array],
    codes: jax.Array,
    *,
    classes: jax.Array | None = None,
    delta: float = 0.5,
    m: int = 6,
    relative: bool = True,
    signed: bool = False,
    eps: float = 1e-6,
    chunk_size: int | None = None,
) -> APCRResult:
    """APCR of every latent dimension for every class, with the score curves (Method A).

    Args:
      generate: ``z[B, N] -> x[B, ...]``, any pure function (e.g. a frozen GAN generator).
      classify: ``x[B, ...] -> probs[B, C]`` (softmax probabilities).
      codes: ``[C', S, N]``: ``codes[c]`` are the ``S`` codes ``Z_j`` of class ``classes[c]``.
      classes: ``[C']`` class index of each code set; default ``arange(C')``.
      delta: latent step between offsets (> 0). m: offsets ``k = -m..m`` (``m >= 1``).
      relative, signed, eps: the definition options of ``SPEC.md``.
      chunk_size: generator+classifier rows per chunk (default per backend,
        :data:`latentjax._chunking.DEFAULT_CHUNK_SIZE`): bounds peak memory.

    Returns:
      :class:`APCRResult` with ``apcr[N, C']``, ``curves[N, 2m+1, C']``, ``directions[N, C']``.

    Example (a classifier that looks only at latent dimension 2):

    >>> import jax, jax.numpy as jnp
    >>> generate = lambda z: z
    >>> classify = lambda x: jax.nn.softmax(jnp.stack([x[:, 2], -x[:, 2]], -1))
    >>> codes = jax.random.normal(jax.random.key(0), (2, 16, 4))
    >>> result = compute_apcr(generate, classify, codes, m=2)
    >>> result.apcr.shape, result.curves.shape
    ((4, 2), (4, 5, 2))
    >>> jnp.argmax(result.apcr, axis=0).tolist()
    [2, 2]
    """
    _validation.check_codes(codes, ndim=3)
    _validation.check_positive(delta, "delta")
    _validation.check_positive(m, "m", integer=True)
    _validation.check_positive(eps, "eps")
    if chunk_size is not None:
        _validation.check_positive(chunk_size, "chunk_size", integer=True)
    classes = _validation.resolve_classes(generate, classify, codes, classes)
    return _compute_apcr_jit(
        generate,
        classify,
        jnp.asarray(codes),
        jnp.asarray(classes, jnp.int32),
        delta=float(delta),
        m=int(m),
        relative=bool(relative),
        signed=bool(signed),
        eps=float(eps),
        chunk_size=int(chunk_size or default_chunk_size()),
    )


_compute_apcr_jit = jax.jit(
    _apcr_core,
    static_argnums=(0, 1),
    static_argnames=("delta", "m", "relative", "signed", "eps", "chunk_size"),
)
