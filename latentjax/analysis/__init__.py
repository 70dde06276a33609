"""The analysis core: pure functions of models (pytrees or plain callables) and arrays.

It imports nothing from the rest of latentjax (models, data, experiment, CLI), so a user with
their own GAN and classifier needs only this package.
"""

from latentjax.analysis.apcr import APCRResult, compute_apcr
from latentjax.analysis.dose_response import DoseResponse, dose_response, flip_outcomes, half_point
from latentjax.analysis.evaluation import DirectionEvaluation, evaluate_directions, move_and_classify
from latentjax.analysis.finders import FINDERS, find_directions, register_finder
from latentjax.analysis.latents import ClassLatents, Inversion, invert_images, sample_class_latents
from latentjax.analysis.outputs import AttributeClassifier, attribute_classifier, is_attribute_classifier
from latentjax.analysis.manipulation import Edit, ManipulationResult, compare_sets, edit_codes, manipulate, shift_codes
from latentjax.analysis.parallel import (
    as_pytree,
    local_mesh,
    process_share,
    shard_leading_axis,
    stack_pytrees,
    unstack_pytree,
    use_host_cores,
)
from latentjax.analysis.pipeline import AnalysisSettings, SeedAnalysis, analyse_seed
from latentjax.analysis.sets import (
    bottom_k_mask,
    chance_level,
    controlling_set,
    intersection_ratio,
    jaccard,
    method_directions,
    pairwise_jaccard,
    random_k_mask,
    ranked_indices,
    signed_directions,
    top_k_mask,
)
from latentjax.analysis.stability import (
    Stability,
    apcr_stability,
    complementary_halves,
    selection_stability,
    stability_bound,
    stable_set_agreement,
    weight_fits,
    weight_stability,
)
from latentjax.analysis.statistics import bootstrap_interval, mean_and_intervals
from latentjax.analysis.structure import knn_class_accuracy, tsne_embedding
from latentjax.analysis.settings import (
    CONVERGED_READING,
    APCRSettings,
    LatentSettings,
    ManipulationSettings,
    MethodBSettings,
    SettingError,
    StabilitySettings,
)
from latentjax.analysis.weights import WeightResult, optimize_weights, weight_objective

__all__ = [
    "APCRResult",
    "Stability",
    "apcr_stability",
    "complementary_halves",
    "selection_stability",
    "stability_bound",
    "stable_set_agreement",
    "weight_fits",
    "weight_stability",
    "ClassLatents",
    "DirectionEvaluation",
    "FINDERS",
    "Inversion",
    "Edit",
    "ManipulationResult",
    "WeightResult",
    "as_pytree",
    "AttributeClassifier",
    "attribute_classifier",
    "is_attribute_classifier",
    "bootstrap_interval",
    "mean_and_intervals",
    "bottom_k_mask",
    "chance_level",
    "compare_sets",
    "flip_outcomes",
    "dose_response",
    "DoseResponse",
    "half_point",
    "edit_codes",
    "compute_apcr",
    "evaluate_directions",
    "move_and_classify",
    "find_directions",
    "controlling_set",
    "intersection_ratio",
    "invert_images",
    "jaccard",
    "method_directions",
    "knn_class_accuracy",
    "local_mesh",
    "manipulate",
    "optimize_weights",
    "CONVERGED_READING",
    "APCRSettings",
    "AnalysisSettings",
    "SeedAnalysis",
    "analyse_seed",
    "LatentSettings",
    "ManipulationSettings",
    "MethodBSettings",
    "SettingError",
    "StabilitySettings",
    "pairwise_jaccard",
    "process_share",
    "random_k_mask",
    "ranked_indices",
    "register_finder",
    "sample_class_latents",
    "shard_leading_axis",
    "shift_codes",
    "signed_directions",
    "stack_pytrees",
    "top_k_mask",
    "tsne_embedding",
    "unstack_pytree",
    "use_host_cores",
    "weight_objective",
]
