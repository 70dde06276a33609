"""Method A: sequential intervention on each latent dimension, scored by APCR.

For latent dimension ``i``, offset index ``k in {-m, ..., m}`` and step ``delta``::

    Z^k     = Z_j + k * delta * e_i
    S^k_ij  = Q_j(G(Z^k))
    APCR_ij = mean_{z in Z_j} mean_{k != 0} |S^k_ij(z) - S^0_j(z)| / (S^0_j(z) + eps)

``relative=False`` drops the division by ``S^0 + eps``; ``signed=True`` drops the absolute value
(both as in docs/method.md). The curves ``mean_z S^k_ij`` are kept (the paper's Figure 3).

All (class, dimension, offset, sample) evaluations are enumerated as rows and computed
``chunk_size`` rows at a time, each chunk adding its changes into ``[C, N]`` sums, so peak memory
is one chunk of generator and classifier activations whatever ``S``, ``N`` and ``m`` are. With
several devices each takes a contiguous block of rows and only the sums cross devices. The
``k = 0`` scores are computed once per code, not once per dimension.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from latentjax.analysis import validation
from jax.sharding import Mesh

from latentjax.analysis.runner import (
    default_chunk_size, map_in_chunks, reporting_progress, sum_over_rows,
)
from latentjax.analysis.outputs import is_attribute_classifier
from latentjax.analysis.parallel import as_pytree, auto_mesh, is_traced, replicate
from latentjax.analysis.settings import APCRSettings


class APCRResult(NamedTuple):
    """Method A's outputs.

    Attributes:
      apcr: ``[N, C]``, ``APCR_ij`` for dimension ``i`` and class ``j``.
      curves: ``[N, 2m + 1, C]``, ``mean_{z in Z_j} Q_j(G(z + k delta e_i))`` for ``k = -m..m``.
      directions: ``[N, C]`` in {-1, 0, 1}: the sign of the mean score change between positive
        and negative offsets (the direction along ``e_i`` that raises ``Q_j``).
      offsets: ``[2m + 1]``, the latent offsets ``k * delta``.
      per_code: ``[S, N, C]``, each code's own APCR (``apcr`` is its mean over codes): what
        :func:`latentjax.apcr_stability` resamples, with no further model evaluation. ``None``
        in artefacts written before it was kept.
    """

    apcr: jax.Array
    curves: jax.Array
    directions: jax.Array
    offsets: jax.Array
    per_code: jax.Array | None = None


def _apcr_core(
    generate: Callable,
    classify: Callable,
    codes: jax.Array,
    classes: jax.Array,
    delta: jax.Array,
    eps: jax.Array,
    *,
    m: int,
    relative: bool,
    signed: bool,
    chunk_size: int,
    mesh: Mesh | None,
    report_progress: bool = False,
) -> APCRResult:
    num_sets, num_samples, latent_dim = codes.shape
    num_offsets = 2 * m
    nonzero = jnp.concatenate([jnp.arange(-m, 0), jnp.arange(1, m + 1)]).astype(codes.dtype)
    delta = delta.astype(codes.dtype)

    def probs_of(z):
        return classify(generate(z))

    independent = is_attribute_classifier(classify)
    base = map_in_chunks(probs_of, codes.reshape(-1, latent_dim), chunk_size)
    invalid = validation.invalid_probability_rows(base, independent=independent)
    base = base.reshape(num_sets, num_samples, -1)
    s0 = jnp.take_along_axis(base, classes[:, None, None], axis=-1)[..., 0]  # [C, S]

    # Row r enumerates (code set c, dimension i, offset k, sample s), s fastest. A chunk of rows
    # adds its relative changes into APCR bins (c, i) and its scores into curve bins (c, i, k).
    def chunk_sums(operands, rows, valid):
        generate, classify, codes, classes, s0, delta, eps = operands
        c, rest = jnp.divmod(rows, latent_dim * num_offsets * num_samples)
        i, rest = jnp.divmod(rest, num_offsets * num_samples)
        k, s = jnp.divmod(rest, num_samples)
        shift = (nonzero[k] * delta)[:, None] * jax.nn.one_hot(i, latent_dim, dtype=codes.dtype)
        probs = classify(generate(codes[c, s] + shift))
        score = jnp.take_along_axis(probs, classes[c][:, None], axis=-1)[:, 0]
        change = score - s0[c, s]
        if not signed:
            change = jnp.abs(change)
        if relative:
            change = change / (s0[c, s] + eps)
        weight = valid.astype(score.dtype)
        apcr_bins = jnp.zeros((num_sets * latent_dim,), score.dtype)
        code_bins = jnp.zeros((num_sets * num_samples * latent_dim,), score.dtype)
        curve_bins = jnp.zeros((num_sets * latent_dim * num_offsets,), score.dtype)
        return (
            apcr_bins.at[c * latent_dim + i].add(weight * change),
            code_bins.at[(c * num_samples + s) * latent_dim + i].add(weight * change),
            curve_bins.at[(c * latent_dim + i) * num_offsets + k].add(weight * score),
            validation.invalid_probability_rows(probs, valid, independent),
        )

    operands = (generate, classify, codes, classes, s0, delta, eps.astype(codes.dtype))
    num_rows = num_sets * latent_dim * num_offsets * num_samples
    change_sum, code_sum, score_sum, invalid_shifted = sum_over_rows(
        chunk_sums, operands, num_rows, chunk_size, mesh, report_progress
    )
    apcr = change_sum.reshape(num_sets, latent_dim) / (num_offsets * num_samples)  # [C, N]
    mean_scores = score_sum.reshape(num_sets, latent_dim, num_offsets) / num_samples
    mean_s0 = jnp.broadcast_to(jnp.mean(s0, axis=-1)[:, None, None], (num_sets, latent_dim, 1))
    curves = jnp.concatenate([mean_scores[..., :m], mean_s0, mean_scores[..., m:]], axis=-1)
    directions = jnp.sign(
        jnp.mean(mean_scores[..., m:], axis=-1) - jnp.mean(mean_scores[..., :m], axis=-1)
    )
    offsets = jnp.arange(-m, m + 1).astype(codes.dtype) * delta
    # Its own bins, not apcr's divided up: apcr keeps the summation order it always had.
    per_code = code_sum.reshape(num_sets, num_samples, latent_dim) / num_offsets
    result = APCRResult(
        apcr.T, jnp.transpose(curves, (1, 2, 0)), directions.T, offsets, jnp.transpose(per_code, (1, 2, 0))
    )
    return result, invalid + invalid_shifted


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
    mesh: Mesh | None = None,
    progress: Callable[[int, int], object] | None = None,
) -> APCRResult:
    """APCR of every latent dimension for every class, with the score curves (Method A).

    Args:
      generate: ``z[B, N] -> x[B, ...]``: a model pytree such as
        ``jax.tree_util.Partial(apply, variables)`` (its weights are traced, so another model of
        the same architecture reuses the compiled program, and a stack of them can be
        ``jax.vmap``-ped), or any plain pure function.
      classify: ``x[B, ...] -> probs[B, C]`` (softmax probabilities), a pytree or a function.
      codes: ``[C', S, N]``: ``codes[c]`` are the ``S`` codes ``Z_j`` of class ``classes[c]``.
      classes: ``[C']`` class index of each code set; default ``arange(C')``.
      delta: latent step between offsets (> 0). m: offsets ``k = -m..m`` (``m >= 1``).
      relative, signed, eps: the definition options of docs/method.md. ``delta`` and ``eps`` are
        traced: a new value does not compile again.
      chunk_size: generator+classifier rows per chunk and device (default per backend,
        :data:`latentjax.analysis.runner.DEFAULT_CHUNK_SIZE`): bounds peak memory.
      mesh: a one-axis ``jax.sharding.Mesh`` whose devices share the rows (each sums its own
        block; only ``[C, N]`` sums cross devices). Default: all local devices when there are
        several and the call is not inside the caller's ``jit``/``vmap``
        (:func:`latentjax.analysis.parallel.auto_mesh`).
      progress: called as ``progress(done, total)`` on the host as chunks of rows finish (not
        under the caller's ``jit``/``vmap``); the numbers are the same with or without it.

    Returns:
      :class:`APCRResult` with ``apcr[N, C']``, ``curves[N, 2m+1, C']``, ``directions[N, C']``,
      ``per_code[S, N, C']``.

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
    validation.check_codes(codes, ndim=3)
    APCRSettings(delta, m, relative, signed, eps, chunk_size).validate()
    generate, classify = as_pytree(generate), as_pytree(classify)
    classes = validation.resolve_classes(generate, classify, codes, classes)
    codes = jnp.asarray(codes)
    mesh = auto_mesh(generate, classify, codes) if mesh is None else mesh
    if mesh is not None:
        # Weights restored from a checkpoint are committed to one device; every device of the
        # mesh needs its own copy of the (small) models and codes.
        generate, classify, codes = replicate(mesh, generate, classify, codes)
    chunk_size = int(chunk_size or default_chunk_size())
    report = progress is not None and not is_traced(generate, classify, codes, delta, eps)
    run = lambda: _compute_apcr_jit(
        generate,
        classify,
        codes,
        jnp.asarray(classes, jnp.int32),
        validation.as_float(delta, codes.dtype),
        validation.as_float(eps, codes.dtype),
        m=int(m),
        relative=bool(relative),
        signed=bool(signed),
        chunk_size=chunk_size,
        mesh=mesh,
        report_progress=report,
    )
    if report:
        with reporting_progress(progress):
            result = jax.block_until_ready(run())  # the reports arrive while it runs
    else:
        result = run()
    result, invalid = result
    validation.raise_for_invalid_rows(invalid, "while computing APCR", is_attribute_classifier(classify))
    if mesh is not None and not is_traced(result):
        # The [N, C] results are small: hand them back on one device, where the caller's other
        # arrays (and models restored from a checkpoint) live, not replicated over the mesh.
        result = jax.device_put(result, mesh.devices.flat[0])
    return result


#: Only these shape the compiled program; models, codes and float settings are traced.
STATIC_ARGNAMES = ("m", "relative", "signed", "chunk_size", "mesh", "report_progress")
_compute_apcr_jit = jax.jit(_apcr_core, static_argnames=STATIC_ARGNAMES)
