"""latentjax: which latent dimensions of a GAN control which concept, in JAX.

The analysis (Li et al., ICPR 2020; see SPEC.md) takes any pair of pure functions
``generate(z[B, N]) -> x`` and ``classify(x) -> probs[B, C]``:

- :func:`sample_class_latents`, :func:`invert_images`: the latent sample sets ``Z_j``;
- :func:`compute_apcr`: Method A (sequential intervention, APCR and score curves);
- :func:`optimize_weights`: Method B (optimised weight vectors in [-1, 1]^N);
- :func:`top_k_mask`, :func:`controlling_set`, :func:`intersection_ratio`: the sets and Table 1;
- :func:`manipulate`: shifting codes along a signed set of dimensions;
- :func:`tsne_embedding`, :func:`knn_class_accuracy`: latent-space structure.

Models, data and training (``latentjax.models``, ``latentjax.data``, ``latentjax.training``)
sit beside the analysis; :func:`load_pretrained` gives the shipped Fashion-MNIST models.
"""

from latentjax.apcr import APCRResult, compute_apcr
from latentjax.latents import ClassLatents, Inversion, invert_images, sample_class_latents
from latentjax.manipulation import ManipulationResult, compare_sets, manipulate, shift_codes
from latentjax.pretrained import PretrainedModels, load_pretrained
from latentjax.sets import (
    bottom_k_mask,
    chance_level,
    controlling_set,
    intersection_ratio,
    random_k_mask,
    ranked_indices,
    signed_directions,
    top_k_mask,
)
from latentjax.structure import knn_class_accuracy, tsne_embedding
from latentjax.weights import WeightResult, optimize_weights, weight_objective

__version__ = "0.1.0"

__all__ = [
    "APCRResult",
    "ClassLatents",
    "Inversion",
    "ManipulationResult",
    "PretrainedModels",
    "WeightResult",
    "bottom_k_mask",
    "chance_level",
    "compare_sets",
    "compute_apcr",
    "controlling_set",
    "intersection_ratio",
    "invert_images",
    "knn_class_accuracy",
    "load_pretrained",
    "manipulate",
    "optimize_weights",
    "random_k_mask",
    "ranked_indices",
    "sample_class_latents",
    "shift_codes",
    "signed_directions",
    "top_k_mask",
    "tsne_embedding",
    "weight_objective",
]
