"""Exporting trained models, and loading the pretrained models shipped with latentjax.

An exported model folder holds ``generator/`` and ``classifier/`` (one-step Orbax checkpoints of
the inference variables only) whose metadata carries the model spec, the config of the training
run and the quality numbers measured at export. ``load_pretrained()`` turns one into the two
plain callables the analysis takes:

>>> import latentjax
>>> models = latentjax.load_pretrained()                      # doctest: +SKIP
>>> probs = models.classify(models.generate(z))               # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from latentjax.storage.files import committed_directory
from latentjax.models import checkpoints
from latentjax.models.networks import ModelSpec, make_classify, make_features, make_generate

PRETRAINED_ROOT = pathlib.Path(__file__).parents[1] / "pretrained-models"


@dataclasses.dataclass(frozen=True)
class PretrainedModels:
    """A frozen generator and classifier with their metadata.

    ``generate``, ``classify`` and ``features`` are model pytrees
    (``jax.tree_util.Partial(apply, variables)``, see :func:`latentjax.models.make_generate`):
    call them like functions, pass them to jitted code as ordinary arguments, and stack several
    seeds' with :func:`latentjax.stack_pytrees` for ``jax.vmap``.
    """

    spec: ModelSpec
    generator_variables: Any
    classifier_variables: Any
    metadata: dict
    generate: Callable[[jax.Array], jax.Array]
    classify: Callable[[jax.Array], jax.Array]
    features: Callable[[jax.Array], jax.Array]


def _inference_like(spec: ModelSpec) -> dict:
    key = jax.random.key(0)
    image = jnp.zeros((1, spec.image_size, spec.image_size, spec.channels))
    return {
        "generator": spec.generator().init(key, jnp.zeros((1, spec.latent_dim))),
        "classifier": spec.classifier().init(key, image),
    }


def export_models(
    destination: str | os.PathLike,
    spec: ModelSpec,
    generator_variables: Any,
    classifier_variables: Any,
    metadata: dict,
) -> pathlib.Path:
    """Writes the inference variables of both models to a new folder ``destination``.

    Atomic: the folder appears only once both models are written and checksummed.
    """
    destination = pathlib.Path(destination)
    if destination.exists():
        raise FileExistsError(f"{destination} exists; refusing to overwrite exported models.")
    record = {**metadata, "model_spec": dataclasses.asdict(spec)}
    with committed_directory(destination, checksums=False) as staging:
        checkpoints.save_final(staging / "generator", generator_variables, record)
        checkpoints.save_final(staging / "classifier", classifier_variables, record)
    return destination


def load_pretrained(name_or_path: str | os.PathLike = "fashion_mnist") -> PretrainedModels:
    """Loads exported models: a shipped name (``'fashion_mnist'``) or a folder path.

    Returns :class:`PretrainedModels` whose ``generate`` and ``classify`` are model pytrees:
    ``generate(z[B, N]) -> x[B, H, W, C]`` in [-1, 1], ``classify(x) -> Q[B, classes]`` (softmax).

    >>> import jax, jax.numpy as jnp
    >>> models = load_pretrained("fashion_mnist")
    >>> codes = jax.ShapeDtypeStruct((2, models.spec.latent_dim), jnp.float32)
    >>> images = jax.eval_shape(models.generate, codes)  # shapes only: nothing is compiled
    >>> images.shape, jax.eval_shape(models.classify, images).shape
    ((2, 28, 28, 1), (2, 10))
    """
    path = pathlib.Path(name_or_path)
    if not path.is_dir():
        shipped = PRETRAINED_ROOT / str(name_or_path)
        if not shipped.is_dir():
            available = sorted(p.name for p in PRETRAINED_ROOT.iterdir() if p.is_dir()) if PRETRAINED_ROOT.is_dir() else []
            raise FileNotFoundError(
                f"no pretrained models {str(name_or_path)!r}: expected a folder written by "
                f"export_models or one of the shipped names {available}."
            )
        path = shipped
    metadata = checkpoints.restore_metadata(path / "classifier")
    spec = ModelSpec(**metadata["model_spec"])
    like = _inference_like(spec)
    generator_variables, _ = checkpoints.load_final(path / "generator", like["generator"])
    classifier_variables, _ = checkpoints.load_final(path / "classifier", like["classifier"])
    return PretrainedModels(
        spec=spec,
        generator_variables=generator_variables,
        classifier_variables=classifier_variables,
        metadata=metadata,
        generate=make_generate(spec, generator_variables),
        classify=make_classify(spec, classifier_variables),
        features=make_features(spec, classifier_variables),
    )
