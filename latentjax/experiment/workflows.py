"""Where models, data and quality numbers meet: evaluating and exporting trained models.

The CLI calls these functions and nothing else; a notebook can call them just the same.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from latentjax import data
from latentjax.storage.files import check_writable, committed_directory
from latentjax.experiment import training_runs
from latentjax.models import training
from latentjax.models.networks import ModelSpec, make_classify, make_features, make_generate
from latentjax.models.pretrained import PretrainedModels, export_models, load_pretrained
from latentjax.models.quality import classifier_accuracy, gan_quality


GENERATOR_WEIGHTS = {"average": "generator_ema", "last": "generator"}


def models_from_runs(
    config: ml_collections.ConfigDict,
    classifier_run: str | os.PathLike | None,
    gan_run: str | os.PathLike,
    *,
    generator_weights: str = "average",
    seed: int | None = None,
    classifier_pretrained: str | None = None,
) -> PretrainedModels:
    """The newest checkpoints of a classifier run and a GAN run, as frozen model pytrees.

    ``classifier_pretrained``: instead of a classifier run, the classifier of shipped or exported
    models (a fixed measuring instrument for several independently trained GANs).
    ``generator_weights``: ``'average'`` (the moving average the GAN exports, see
    :func:`latentjax.models.training.make_gan_step`) or ``'last'`` (the generator's last update).
    ``seed``: for runs of several ``config.model_seeds``, which seed's models (default the first).
    """
    if generator_weights not in GENERATOR_WEIGHTS:
        raise ValueError(
            f"generator_weights={generator_weights!r}: expected one of {sorted(GENERATOR_WEIGHTS)}."
        )
    if (classifier_run is None) == (classifier_pretrained is None):
        raise ValueError(
            f"classifier_run={classifier_run!r}, classifier_pretrained={classifier_pretrained!r}: "
            "expected exactly one of them."
        )
    spec = ModelSpec.from_config(config)
    if classifier_pretrained is not None:
        shipped = load_pretrained(classifier_pretrained)
        fields = ("image_size", "channels", "num_classes", "classifier_width",
                  "classifier_hidden", "classifier_dropout", "pixel_mean", "pixel_std",
                  "classifier_blocks")
        theirs, ours = ({f: getattr(s, f) for f in fields} for s in (shipped.spec, spec))
        if theirs != ours:
            raise ValueError(
                f"classifier_pretrained={classifier_pretrained!r} has the classifier {theirs}; "
                f"expected the config's {ours}."
            )
        classifier_state = {"classifier": shipped.classifier_variables}
    else:
        classifier_state = training_runs.load_run_state(config, classifier_run, "classifier")
    gan_state = training_runs.load_run_state(config, gan_run, "gan")
    seeds = training.run_seeds(config)
    if seeds is not None:
        seed = seeds[0] if seed is None else seed
        if seed not in seeds:
            raise ValueError(f"seed={seed!r}: expected one of the runs' model_seeds {list(seeds)}.")
        index = seeds.index(seed)
        gan_state = jax.tree.map(lambda x: x[index], gan_state)
        if classifier_pretrained is None:
            classifier_state = jax.tree.map(lambda x: x[index], classifier_state)
    classifier_variables = classifier_state.get("classifier") or {
        "params": classifier_state["params"],
        "batch_stats": classifier_state["batch_stats"],
    }
    generator_variables = gan_state[GENERATOR_WEIGHTS[generator_weights]]
    return PretrainedModels(
        spec=spec,
        generator_variables=generator_variables,
        classifier_variables=classifier_variables,
        metadata={"config": config.to_dict()},
        generate=make_generate(spec, generator_variables),
        classify=make_classify(spec, classifier_variables),
        features=make_features(spec, classifier_variables),
    )


def evaluate_models(config: ml_collections.ConfigDict, models: PretrainedModels) -> dict:
    """Classifier test accuracy and the GAN's quality numbers (see :mod:`latentjax.quality`)."""
    test_images, test_labels = data.load_from_config(config, "test")
    train_images, _ = data.load_from_config(config, "train")
    ev = config.evaluation
    untrained = training.init_gan_state(config, jax.random.key(config.seed + 17))["generator"]
    result = {
        "classifier_test_accuracy": classifier_accuracy(
            models.classify, test_images, test_labels, ev.batch_size
        ),
        "gan": gan_quality(
            models.generate,
            models.classify,
            models.features,
            latent_dim=models.spec.latent_dim,
            test_images=test_images,
            train_images=train_images,
            key=jax.random.key(config.seed),
            num_samples=ev.num_samples,
            confidence=ev.confidence,
            batch_size=ev.batch_size,
            untrained_generate=make_generate(models.spec, untrained),
        ),
    }
    return result


def export_from_runs(
    config: ml_collections.ConfigDict,
    classifier_run: str | os.PathLike | None,
    gan_run: str | os.PathLike,
    destination: str | os.PathLike,
    *,
    classifier_pretrained: str | None = None,
) -> dict:
    """Evaluates two finished runs and exports their inference variables with the numbers.

    Atomic: ``destination`` appears only when every model in it is written (it is staged as
    ``<destination>.partial``; a stale one from an interrupted export is discarded).

    ``classifier_pretrained`` instead of ``classifier_run``: pair the GAN run with the
    classifier of shipped or exported models. Runs of several ``config.model_seeds`` export each seed's pair to ``destination/seed<s>``
    and return ``{seed: quality}``.
    """
    destination = pathlib.Path(destination)
    if destination.exists():
        raise FileExistsError(f"{destination} exists; refusing to overwrite exported models.")
    check_writable(destination, "export destination")
    seeds = training.run_seeds(config)
    with committed_directory(destination, checksums=False) as staging:
        qualities = _export_seeds(config, classifier_run, gan_run, staging, seeds, classifier_pretrained)
    return qualities[None] if seeds is None else qualities


def _export_seeds(config, classifier_run, gan_run, staging, seeds, classifier_pretrained) -> dict:
    targets = [(None, staging)] if seeds is None else [(s, staging / f"seed{s}") for s in seeds]
    qualities = {}
    for seed, folder in targets:
        models = models_from_runs(
            config, classifier_run, gan_run, seed=seed, classifier_pretrained=classifier_pretrained
        )
        quality = evaluate_models(config, models)
        metadata = {"config": config.to_dict(), "quality": quality}
        if classifier_pretrained is not None:
            metadata["classifier_from"] = classifier_pretrained
        if seed is not None:
            metadata["model_seed"] = seed
        export_models(
            folder, models.spec, models.generator_variables, models.classifier_variables, metadata
        )
        qualities[seed] = quality
    return qualities


def train_and_export(
    config: ml_collections.ConfigDict,
    directory: str | os.PathLike,
    *,
    log: Callable[[str], Any] = print,
) -> pathlib.Path:
    """Trains the classifier and the GAN the config describes and exports them for analysis.

    Writes ``directory/classifier`` and ``directory/gan`` (training runs) and
    ``directory/exported`` (what :func:`~latentjax.pretrained.load_pretrained` reads), and
    returns the last. Calling it again after an interruption resumes each run from its last
    checkpoint; a finished export is reused as it is (the export is atomic, see
    :func:`export_from_runs`, so a half-written one is never taken for a finished one).
    """
    directory = pathlib.Path(directory)
    exported = directory / "exported"
    if exported.is_dir():
        log(f"models: using {exported}, exported earlier")
        return exported
    log(f"models: training the classifier in {directory / 'classifier'}")
    training_runs.train_classifier(config, directory / "classifier", resume=True)
    log(f"models: training the GAN in {directory / 'gan'}")
    training_runs.train_gan(config, directory / "gan", resume=True)
    log("models: evaluating and exporting")
    export_from_runs(config, directory / "classifier", directory / "gan", exported)
    return exported


def load_models(
    config: ml_collections.ConfigDict,
    *,
    pretrained: str | None = None,
    classifier_run: str | None = None,
    gan_run: str | None = None,
    generator_weights: str = "average",
    seed: int | None = None,
) -> PretrainedModels:
    """Models from two training runs when both are given, else shipped/exported models."""
    if classifier_run or gan_run:
        if not (classifier_run and gan_run):
            raise ValueError("give both a classifier run and a GAN run, or neither.")
        return models_from_runs(
            config, classifier_run, gan_run, generator_weights=generator_weights, seed=seed
        )
    if seed is not None:
        raise ValueError("--model-seed applies to training runs of several seeds, not to exported models.")
    if generator_weights != "average":
        raise ValueError("generator_weights applies to a GAN run (give --gan-run), not to exported models.")
    return load_pretrained(pretrained or config.dataset)


def sample_images(models: PretrainedModels, num: int, seed: int) -> jnp.ndarray:
    return models.generate(jax.random.normal(jax.random.key(seed), (num, models.spec.latent_dim)))
