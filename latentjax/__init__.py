"""latentjax: which latent dimensions of a GAN control which concept, in JAX.

The analysis (Li et al., ICPR 2020; see docs/method.md) takes a generator ``generate(z[B, N]) -> x``
and a classifier ``classify(x) -> probs[B, C]``, either as model pytrees (for example
``jax.tree_util.Partial(apply, variables)``, what :func:`load_pretrained` gives) or as plain
functions:

- :func:`sample_class_latents`, :func:`invert_images`: the latent sample sets ``Z_j``;
- :func:`compute_apcr`: Method A (sequential intervention, APCR and score curves);
- :func:`optimize_weights`: Method B (optimised weight vectors in [-1, 1]^N);
- :func:`weight_stability`, :func:`apcr_stability`: either method as stability selection
  (selection probabilities over half-sample fits, a stable set and its error bound);
- :func:`top_k_mask`, :func:`controlling_set`, :func:`intersection_ratio`: the sets and Table 1;
- :func:`manipulate`, :func:`edit_codes`: shifting codes along a signed set of dimensions, or
  along any saved direction;
- :func:`tsne_embedding`, :func:`knn_class_accuracy`: latent-space structure;
- :func:`stack_pytrees`, :func:`shard_leading_axis`, :func:`local_mesh`: many model seeds in
  one program, over all devices.

The packages show the layers: :mod:`latentjax.analysis` (the pure core, importing nothing else),
:mod:`latentjax.models` (Flax networks, training, checkpoints, the shipped weights),
:mod:`latentjax.data` (datasets), :mod:`latentjax.experiment` (pipeline stages, reproduction,
report) and :mod:`latentjax.cli` on top. :func:`load_pretrained` (the shipped Fashion-MNIST
models) loads the model stack only when first used.
"""

from latentjax.analysis import *  # noqa: F403
from latentjax.analysis import __all__ as _analysis_names

__version__ = "0.1.0"

# Names from the models layer, imported on first use so the analysis alone stays light.
_LAZY = {
    "PretrainedModels": "latentjax.models.pretrained",
    "load_pretrained": "latentjax.models.pretrained",
    "Directions": "latentjax.directions",
    "save_directions": "latentjax.directions",
    "load_directions": "latentjax.directions",
    "model_fingerprint": "latentjax.directions",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'latentjax' has no attribute {name!r}")


__all__ = [*_analysis_names, *_LAZY]
