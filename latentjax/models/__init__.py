"""Models: the Flax networks, their training, their checkpoints and the shipped weights.

- :mod:`latentjax.models.networks`: generator, discriminator, classifier, and
  :func:`make_generate` / :func:`make_classify`, which turn weights into the model pytrees the
  analysis takes;
- :mod:`latentjax.models.training`: jitted, resumable training of one model or a stack of seeds;
- :mod:`latentjax.models.checkpoints`: all Orbax I/O;
- :mod:`latentjax.models.pretrained`: export and :func:`load_pretrained`;
- :mod:`latentjax.models.quality`: accuracy, class shares and Fréchet distances.
"""

from latentjax.extras import require

for _module in ("flax", "orbax.checkpoint", "ml_collections"):
    require(_module, "models", "latentjax.models (networks, training, checkpoints)")


from latentjax.models.networks import (
    Classifier,
    Discriminator,
    Generator,
    ModelSpec,
    make_classify,
    make_features,
    make_generator_layer,
    make_generate,
)

__all__ = [
    "Classifier",
    "Discriminator",
    "Generator",
    "ModelSpec",
    "make_classify",
    "make_features",
    "make_generator_layer",
    "make_generate",
]
