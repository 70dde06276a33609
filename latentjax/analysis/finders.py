"""Direction finders: one signature for the paper's methods and the methods others use.

A *finder* answers, for every class ``j``, "along which latent direction does class ``j``
change?". Every finder has the signature::

    finder(generate, classify, codes, key, *, k, **options) -> directions[C, N]

with ``codes[C, S, N]`` the class code sets (``codes[j]`` of class ``j``). Row ``j`` is a
direction that *raises* ``Q_j``, the classifier's probability of class ``j`` (so moving a
class-``j`` code against it lowers ``Q_j``, as in the paper's manipulation). Sparse finders
return ``sum_{i in R_j} s_ji e_i`` over a K-set ``R_j`` (entries ±1 on K dimensions); dense
finders return unit vectors. :func:`evaluate_directions` compares both at equal L2 distances.

Registered (``FINDERS``):

- ``apcr``: Method A, the top-K APCR dimensions with their measured directions;
- ``weights``: Method B, the controlling set ``C_j`` with the signs of ``w*``;
- ``ganspace``: Härkönen et al. 2020. PCA of an early layer's activations ``y = f(z)`` over
  prior codes, mapped back to the latent space by least squares, ``U = argmin ||X U - Z||``
  with ``X`` the principal coordinates; per class the component (and sign) whose shift lowers
  ``Q_j`` most;
- ``sefa``: Shen and Zhou 2021. The top eigenvectors of ``A^T A`` for the generator's first
  linear layer ``y = A z``; per class the eigenvector (and sign) whose shift lowers ``Q_j`` most;
- ``interfacegan``: Shen et al. 2020. The unit normal of a linear SVM (scikit-learn's
  ``LinearSVC``) separating prior codes the classifier gives class ``j`` from the rest;
- ``random``, ``random_dense``: random signed K-sets and random unit vectors, the baselines.

Register your own with :func:`register_finder`.

>>> import jax, jax.numpy as jnp
>>> classify = lambda x: jax.nn.softmax(3.0 * x, axis=-1)      # class j: z_j is the largest
>>> codes = jnp.tile(jnp.eye(3)[:, None, :], (1, 4, 1))         # [C=3, S=4, N=3]
>>> find_directions("apcr", lambda z: z, classify, codes, jax.random.key(0), k=1, m=2).tolist()
[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from latentjax.analysis import validation
from latentjax.analysis.runner import default_chunk_size
from latentjax.analysis.apcr import compute_apcr
from latentjax.analysis.outputs import decisions, is_attribute_classifier
from latentjax.analysis.parallel import as_pytree
from latentjax.analysis.evaluation import _unit_rows, move_and_classify
from latentjax.analysis.sets import controlling_set, random_k_mask, signed_directions, top_k_mask
from latentjax.analysis.weights import optimize_weights

Finder = Callable[..., jax.Array]


@dataclasses.dataclass(frozen=True)
class RegisteredFinder:
    """A finder with what the evaluation needs to know about it."""

    name: str
    fn: Finder
    sparse: bool  # True: K-sets of ±1 entries; False: dense unit vectors
    description: str


FINDERS: dict[str, RegisteredFinder] = {}


def register_finder(name: str, *, sparse: bool, description: str = "") -> Callable[[Finder], Finder]:
    """Decorator: makes ``fn(generate, classify, codes, key, *, k, **options)`` a named finder.

    >>> @register_finder("first_dims", sparse=True, description="the first K dimensions")
    ... def first_dims(generate, classify, codes, key, *, k):
    ...     return jnp.zeros(codes.shape[::2]).at[:, :k].set(1.0)
    >>> "first_dims" in FINDERS
    True
    >>> del FINDERS["first_dims"]
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name={name!r}: expected a non-empty string.")

    def decorate(fn: Finder) -> Finder:
        if name in FINDERS and FINDERS[name].fn is not fn:
            raise ValueError(f"a finder named {name!r} is already registered: pick another name.")
        FINDERS[name] = RegisteredFinder(name, fn, sparse, description or (fn.__doc__ or "").split("\n")[0])
        return fn

    return decorate


def find_directions(
    name: str,
    generate: Callable[[jax.Array], jax.Array],
    classify: Callable[[jax.Array], jax.Array],
    codes: jax.Array,
    key: jax.Array,
    *,
    k: int = 10,
    **options,
) -> jax.Array:
    """Runs the registered finder ``name``: ``directions[C, N]``, row ``j`` raising ``Q_j``.

    ``codes[C, S, N]``: the class code sets; ``k``: the size of the sparse finders' sets;
    ``options`` go to the finder (e.g. ``samples=`` for ``interfacegan``, ``layer=`` for
    ``ganspace``). Checks the name, the codes, ``k`` and the returned shape.

    >>> import jax, jax.numpy as jnp
    >>> classify = lambda x: jax.nn.softmax(3.0 * x, axis=-1)   # class j where z_j is larger
    >>> codes = jnp.tile(jnp.eye(2)[:, None, :], (1, 3, 1))
    >>> d = find_directions("interfacegan", lambda z: z, classify, codes, jax.random.key(0), k=1, samples=256)
    >>> [[round(v, 1) for v in row] for row in d.tolist()]     # the normals of z_0 = z_1
    [[0.7, -0.7], [-0.7, 0.7]]
    """
    if name not in FINDERS:
        raise ValueError(f"finder {name!r}: expected one of {sorted(FINDERS)} (or register_finder).")
    validation.check_codes(codes, ndim=3)
    validation.check_k(k, codes.shape[-1])
    directions = FINDERS[name].fn(generate, classify, codes, key, k=k, **options)
    expected = (codes.shape[0], codes.shape[-1])
    if jnp.shape(directions) != expected:
        raise ValueError(
            f"finder {name!r} returned directions of shape {jnp.shape(directions)}: expected "
            f"{expected}, one direction per code set."
        )
    return jnp.asarray(directions, jnp.float32)


# ------------------------------------------------------------------------ the paper's methods


@register_finder("apcr", sparse=True, description="Method A: top-K APCR dimensions, measured signs")
def apcr_directions(generate, classify, codes, key, *, k, **apcr_options):
    """Method A: ``sum_{i in H_j} sign_ij e_i`` over the top-K APCR dimensions of class ``j``."""
    del key  # Method A is deterministic
    result = compute_apcr(generate, classify, codes, **apcr_options)
    return signed_directions(top_k_mask(result.apcr.T, k), result.directions.T)


@register_finder("weights", sparse=True, description="Method B: controlling set, signs of w*")
def weight_directions(generate, classify, codes, key, *, k, **weight_options):
    """Method B: ``sum_{i in C_j} sign(w*_ji) e_i`` over the controlling set of class ``j``."""
    result = optimize_weights(generate, classify, codes, key, **weight_options)
    return signed_directions(controlling_set(result.weights, k=k), result.weights)


# ------------------------------------------------------------------------------ baselines


@register_finder("random", sparse=True, description="random K-sets with random signs")
def random_sparse_directions(generate, classify, codes, key, *, k):
    """Random signed K-sets, independently per class: the baseline of the sparse finders."""
    del generate, classify
    num_classes, _, latent_dim = codes.shape
    set_key, sign_key = jax.random.split(key)
    signs = jax.random.rademacher(sign_key, (num_classes, latent_dim), jnp.float32)
    return signed_directions(random_k_mask(set_key, num_classes, latent_dim, k), signs)


@register_finder("random_dense", sparse=False, description="random unit vectors")
def random_dense_directions(generate, classify, codes, key, *, k):
    """Random unit vectors (uniform on the sphere): the baseline of the dense finders."""
    del generate, classify, k
    vectors = jax.random.normal(key, (codes.shape[0], codes.shape[-1]))
    return vectors / jnp.linalg.norm(vectors, axis=-1, keepdims=True)


# ------------------------------------------------------------- candidates, chosen per class


@jax.jit
def _probability_drops(generate, classify, codes, candidates, distance):
    """``drop[C, P, 2]``: mean ``Q_j(z) - Q_j(z - d s u_p)`` over class ``j``'s codes, ``s = ±1``."""
    num_classes, num_codes, _ = codes.shape
    signed = jnp.stack([candidates, -candidates], axis=1)  # [P, 2, N]
    # The unmoved codes in one batch, the moved ones [C, P, 2, S] in chunks.
    before = move_and_classify(generate, classify, codes, None, num_classes * num_codes)
    after = move_and_classify(
        generate, classify, codes[:, None, None], -distance * signed[None, :, :, None, :], default_chunk_size()
    )
    own = jnp.arange(num_classes)
    q_before = before[own, :, own]  # [C, S]
    q_after = jnp.take_along_axis(after, own[:, None, None, None, None], axis=-1)[..., 0]
    return jnp.mean(q_before[:, None, None, :] - q_after, axis=-1)


def choose_per_class(generate, classify, codes, candidates, *, distance: float = 3.0) -> jax.Array:
    """Per class, the candidate direction and sign whose shift by ``distance`` lowers ``Q_j`` most.

    ``candidates[P, N]`` (normalised here). Returns ``[C, N]`` unit rows that *raise* ``Q_j``
    (moving a class-``j`` code against row ``j`` lowers ``Q_j`` the most of all candidates).
    """
    generate, classify = as_pytree(generate), as_pytree(classify)
    candidates = _unit_rows(jnp.asarray(candidates, jnp.float32))
    drops = _probability_drops(generate, classify, jnp.asarray(codes), candidates, jnp.float32(distance))
    flat = drops.reshape(drops.shape[0], -1)  # [C, P * 2]
    best = jnp.argmax(flat, axis=-1)
    index, sign = best // 2, jnp.where(best % 2 == 0, 1.0, -1.0)
    return candidates[index] * sign[:, None]


# ------------------------------------------------------------------------ SeFa and GANSpace


def first_linear_kernel(generate, latent_dim: int) -> jax.Array:
    """The one 2-D weight ``[latent_dim, D]`` in a generator pytree: its first linear layer.

    Flax's ``Dense`` stores ``y = z @ kernel``, so ``A = kernel.T``.
    """
    candidates = [
        leaf for leaf in jax.tree.leaves(generate)
        if getattr(leaf, "ndim", 0) == 2 and leaf.shape[0] == latent_dim
    ]
    if len(candidates) != 1:
        raise ValueError(
            f"found {len(candidates)} weights of shape [{latent_dim}, D] in the generator "
            "pytree: pass first_layer= (the [N, D] matrix of its first linear layer, y = z @ W)."
        )
    return candidates[0]


@register_finder("sefa", sparse=False, description="SeFa: eigenvectors of A^T A, first layer")
def sefa_directions(
    generate, classify, codes, key, *, k, first_layer=None, components: int = 10, distance: float = 3.0
):
    """SeFa (Shen and Zhou 2021): top eigenvectors of ``A^T A``, chosen per class by ``Q_j``.

    ``first_layer``: the ``[N, D]`` weight of the generator's first linear layer
    (``y = z @ W``, so ``A = W^T`` and ``A^T A = W W^T``); by default the only such matrix in
    the generator pytree.
    """
    del key, k
    latent_dim = codes.shape[-1]
    weight = first_linear_kernel(generate, latent_dim) if first_layer is None else jnp.asarray(first_layer)
    _, vectors = jnp.linalg.eigh(weight @ weight.T)  # ascending eigenvalues
    top = vectors[:, ::-1][:, : min(components, latent_dim)].T  # [P, N]
    return choose_per_class(generate, classify, codes, top, distance=distance)


def top_principal_axes(
    centred: jax.Array, count: int, key: jax.Array, *, oversample: int = 10, iterations: int = 8
) -> jax.Array:
    """The top ``count`` right singular vectors ``[count, D]`` of ``centred[M, D]``, by randomized
    subspace iteration (Halko, Martinsson and Tropp 2011).

    ``Q = orth(X Ω)``, then ``iterations`` rounds of ``Q = orth(X orth(X^T Q))``; the answer is
    the SVD of the small ``Q^T X``. It costs ``O(M D (count + oversample))`` per round instead of
    a full SVD's ``O(M D min(M, D))``: for a 4096 x 6272 layer, under a second against minutes.

    >>> x = jnp.diag(jnp.array([5.0, 3.0, 1.0]))
    >>> jnp.abs(top_principal_axes(x, 2, jax.random.key(0))).round(3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """
    rank = min(count + oversample, *centred.shape)
    q, _ = jnp.linalg.qr(centred @ jax.random.normal(key, (centred.shape[1], rank), centred.dtype))

    def power(_, q):
        z, _ = jnp.linalg.qr(centred.T @ q)
        return jnp.linalg.qr(centred @ z)[0]

    q = jax.lax.fori_loop(0, iterations, power, q)
    _, _, vt = jnp.linalg.svd(q.T @ centred, full_matrices=False)
    return vt[:count]


def principal_latent_directions(
    layer, codes_prior: jax.Array, components: int, key: jax.Array | None = None
) -> jax.Array:
    """GANSpace's latent directions: ``[P, N]`` rows (unit) from PCA of ``layer(z)``.

    ``X = (Y - mean) V_P`` are the principal coordinates of ``Y = layer(Z)`` (``V_P``: the top
    ``P`` principal axes, :func:`top_principal_axes` with ``key``, by default ``key(0)``); the
    directions are the rows of ``U = argmin_U ||X U - Z||`` (least squares), as GANSpace does
    for BigGAN.
    """
    activations = layer(codes_prior)
    activations = activations.reshape(activations.shape[0], -1)
    centred = activations - activations.mean(axis=0, keepdims=True)
    axes = top_principal_axes(centred, components, jax.random.key(0) if key is None else key)
    coordinates = centred @ axes.T  # [M, P]
    latent_centred = codes_prior - codes_prior.mean(axis=0, keepdims=True)
    solution, *_ = jnp.linalg.lstsq(coordinates, latent_centred)
    return _unit_rows(solution)  # [P, N]


@register_finder("ganspace", sparse=False, description="GANSpace: PCA of an early layer, regressed to z")
def ganspace_directions(
    generate, classify, codes, key, *, k, layer=None, samples: int = 4096, components: int = 10,
    distance: float = 3.0,
):
    """GANSpace (Härkönen et al. 2020), chosen per class by ``Q_j``.

    ``layer``: ``z -> activations`` of an early generator layer (the shipped generators expose
    their first layer as ``latentjax.models.make_generator_layer``); by default the image
    itself (PCA of pixels).
    """
    del k
    prior_key, axes_key = jax.random.split(key)
    prior = jax.random.normal(prior_key, (samples, codes.shape[-1]))
    layer = generate if layer is None else layer
    directions = principal_latent_directions(layer, prior, components, axes_key)
    return choose_per_class(generate, classify, codes, directions, distance=distance)


# -------------------------------------------------------------------------------- InterFaceGAN


@register_finder("interfacegan", sparse=False, description="InterFaceGAN: linear SVM normal")
def interfacegan_directions(
    generate, classify, codes, key, *, k, samples: int = 4096, regularisation: float = 1.0
):
    """InterFaceGAN (Shen et al. 2020): per class the unit normal of a linear SVM separating prior
    codes classified as ``j`` (attributes: with ``Q_j >= 0.5``) from the rest (scikit-learn's
    ``LinearSVC``), pointing to ``j``."""
    try:
        from sklearn.svm import LinearSVC
    except ImportError as exc:  # the core imports nothing from latentjax, so no shared helper
        raise ImportError(
            "the interfacegan finder needs scikit-learn: pip install 'latentjax[report]'"
        ) from exc
    del k
    prior = jax.random.normal(key, (samples, codes.shape[-1]))
    generate, classify = as_pytree(generate), as_pytree(classify)
    probs = move_and_classify(generate, classify, prior, None, default_chunk_size())
    decided = np.asarray(decisions(probs, is_attribute_classifier(classify)))
    normals = []
    for j in range(codes.shape[0]):
        inside = decided[:, j]
        if inside.sum() < 2 or (~inside).sum() < 2:
            raise ValueError(
                f"interfacegan: {int(inside.sum())} of {samples} prior codes are classified as "
                f"class {j}; expected at least 2 on each side of its boundary (raise samples=)."
            )
        svm = LinearSVC(C=regularisation, dual="auto", max_iter=10_000)
        svm.fit(np.asarray(prior), inside)
        normals.append(svm.coef_[0] / np.linalg.norm(svm.coef_[0]))
    return jnp.asarray(np.stack(normals), jnp.float32)
