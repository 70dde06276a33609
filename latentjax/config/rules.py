"""What a valid experiment config is: one table of every setting's bounds, and the few rules that
relate two settings. :func:`validate_config` reads them in order and raises
:class:`~latentjax.errors.ConfigError` naming the first key whose value is impossible, before any
work starts.
"""

from __future__ import annotations

import ml_collections

from latentjax.config import sweep_grid
from latentjax.analysis.settings import (
    APCRSettings, LatentSettings, ManipulationSettings, MethodBSettings, SettingError,
)
from latentjax.analysis.validation import number_problem
from latentjax.errors import ConfigError

#: Bounds per kind of setting, as :func:`~latentjax.analysis.validation.number_problem` takes them.
POSITIVE_INT = dict(integer=True, low=1)
NON_NEGATIVE_INT = dict(integer=True, low=0)
POSITIVE = dict(low=0, low_open=True)
NON_NEGATIVE = dict(low=0)
UNIT_INTERVAL = dict(low=0, high=1, high_open=True)
PROBABILITY = dict(low=0, high=1)
PIXEL = dict(low=-1, high=1)  # a pixel value in the generator's [-1, 1]

#: ``(dotted key, bounds, note)``: every bounded number of a config. Rows under ``analysis.`` or
#: ``sweep.`` apply to configs that have that section.
NUMBERS: tuple[tuple[str, dict, str], ...] = tuple(
    (key, bounds, note)
    for keys, bounds, note in (
        (("latent_dim", "image_size", "channels", "num_classes", "generator.base_width",
          "discriminator.base_width", "classifier.width", "classifier.hidden", "classifier.blocks",
          "classifier_training.batch_size", "classifier_training.epochs",
          "classifier_training.log_every_steps", "classifier_training.checkpoint_every_steps",
          "gan_training.batch_size", "gan_training.epochs", "gan_training.log_every_steps",
          "gan_training.checkpoint_every_steps", "evaluation.num_samples", "evaluation.batch_size"),
         POSITIVE_INT, ""),
        (("classifier_training.learning_rate", "gan_training.generator_learning_rate",
          "gan_training.discriminator_learning_rate"), POSITIVE, ""),
        (("classifier.dropout", "gan_training.beta1", "gan_training.ema_decay", "evaluation.confidence"),
         UNIT_INTERVAL, ""),
        (("classifier_training.weight_decay",), NON_NEGATIVE, ""),
        (("classifier_training.augment_fill",), PIXEL, ""),
        (("seed", "train_examples", "gan_training.ema_start_epoch"), NON_NEGATIVE_INT, ""),
        # The settings of the analysis steps (latent sets, Methods A and B, manipulation) are
        # checked by their own validate() (_check_step_settings); these are the rest.
        (tuple(f"analysis.{k}" for k in (
            "inversion_per_class", "inversion_steps", "knn_k", "finder_samples_per_class",
            "finder_components", "finder_prior_samples")), POSITIVE_INT, ""),
        (("analysis.stability.pairs",), NON_NEGATIVE_INT, " (0 = one run of Method B per seed)"),
        (("analysis.stability.q",), NON_NEGATIVE_INT, " (0 = analysis.k)"),
        (("analysis.stability.threshold",), dict(low=0.5, high=1, low_open=True), ""),
        (("analysis.apcr.chunk_size",), NON_NEGATIVE_INT, " (0 = the backend's default)"),
        (tuple(f"analysis.{k}" for k in (
            "tsne_perplexity", "inversion_learning_rate", "finder_choice_distance")), POSITIVE, ""),
        (("analysis.inversion_beta",), NON_NEGATIVE, ""),
        (("sweep.bootstrap_resamples",), POSITIVE_INT, ""),
        (("sweep.confidence",), dict(low=0, high=1, low_open=True, high_open=True), ""),
    )
    for key in keys
)


#: The analysis steps' settings objects, each checked by its own ``validate()``.
STEP_SETTINGS = (LatentSettings, APCRSettings, MethodBSettings, ManipulationSettings)


def _choices() -> tuple[tuple[str, tuple], ...]:
    """``(dotted key, allowed values)`` for the settings that name one of a few choices."""
    return (
        ("analysis.train_models", (True, False)),
        ("sweep.model_layout", sweep_grid.SWEEP_LAYOUTS),
    )


def get_dotted(config: ml_collections.ConfigDict, dotted: str):
    """``config['a']['b']`` for ``'a.b'``."""
    node = config
    for part in dotted.split("."):
        node = node[part]
    return node


def _applies(config, dotted: str) -> bool:
    section = dotted.split(".")[0]
    return section not in ("analysis", "sweep") or section in config


def _numbers(node, prefix: str = "config"):
    """Every number in a config, with its dotted key (tuples give ``key[i]``)."""
    items = node.items() if isinstance(node, (ml_collections.ConfigDict, dict)) else None
    if items is not None:
        for key, value in items:
            yield from _numbers(value, f"{prefix}.{key}")
    elif isinstance(node, (tuple, list)):
        for i, value in enumerate(node):
            yield from _numbers(value, f"{prefix}[{i}]")
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield prefix, node


def check(value, key: str, note: str = "", **bounds) -> None:
    """Raises :class:`ConfigError` ``"<key>=<value>: expected <what>."`` unless ``value`` fits."""
    expected = number_problem(value, **bounds)
    if expected:
        raise ConfigError(f"{key}={value!r}: expected {expected}{note}.")


def check_seeds(value, key: str, *, empty_means: str = "") -> None:
    """Distinct non-negative integers; ``()`` only where ``empty_means`` says what it means."""
    seeds = tuple(value or ())
    bad = any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds)
    if bad or len(set(seeds)) != len(seeds) or (not seeds and not empty_means):
        also = f" (or () for {empty_means})" if empty_means else ""
        raise ConfigError(f"{key}={value!r}: expected distinct non-negative integers{also}.")


def validate_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Raises :class:`ConfigError` naming the first key whose value is impossible; returns
    ``config``. Every number must be finite; then :data:`NUMBERS`, the choices, the seeds and
    the rules that relate settings; a sweep's every cell is checked as a config of its own."""
    for key, value in _numbers(config):
        check(value, key)  # finite
    _check_table(config)
    _check_pixel_statistics(config)
    check_seeds(config.get("model_seeds", ()), "config.model_seeds", empty_means="one model")
    if "analysis" in config:
        _check_analysis(config)
    if "sweep" in config:
        _check_sweep(config)
    from latentjax.data import DATASETS  # local import: data imports nothing from here

    if config.dataset not in DATASETS:
        raise ConfigError(f"config.dataset={config.dataset!r}: expected one of {sorted(DATASETS)}.")
    return config


def _check_table(config, sections=None) -> None:
    applies = lambda key: _applies(config, key) and (sections is None or key.split(".")[0] in sections)
    for key, bounds, note in NUMBERS:
        if applies(key):
            check(get_dotted(config, key), f"config.{key}", note, **bounds)
    for key, allowed in _choices():
        if applies(key):
            value = get_dotted(config, key)
            if value not in allowed or (isinstance(value, bool) != isinstance(allowed[0], bool)):
                raise ConfigError(f"config.{key}={value!r}: expected one of {allowed}.")


def _check_pixel_statistics(config: ml_collections.ConfigDict) -> None:
    """``classifier.pixel_mean``/``pixel_std``: one number, or one per channel."""
    for key, bounds in (("pixel_mean", NON_NEGATIVE), ("pixel_std", POSITIVE)):
        value = config.classifier[key]
        if isinstance(value, (tuple, list)):
            if len(value) != config.channels:
                raise ConfigError(
                    f"config.classifier.{key}={value!r}: expected one number or "
                    f"config.channels={config.channels} numbers (one per channel)."
                )
            for i, v in enumerate(value):
                check(v, f"config.classifier.{key}[{i}]", **bounds)
        else:
            check(value, f"config.classifier.{key}", **bounds)
    if 2 ** config.classifier.blocks > config.image_size:
        raise ConfigError(
            f"config.classifier.blocks={config.classifier.blocks!r}: its 2x2 poolings shrink "
            f"config.image_size={config.image_size} below one pixel; expected at most "
            f"{config.image_size.bit_length() - 1}."
        )


def _check_analysis(config: ml_collections.ConfigDict) -> None:
    """The analysis rules that relate two settings (the table has checked each one)."""
    a = config.analysis
    _check_step_settings(a)
    if a.k > config.latent_dim:
        raise ConfigError(
            f"config.analysis.k={a.k!r}: expected at most config.latent_dim={config.latent_dim}."
        )
    if a.stability.pairs and (a.stability.q or a.k) > config.latent_dim:
        raise ConfigError(
            f"config.analysis.stability.q={a.stability.q!r}: expected at most "
            f"config.latent_dim={config.latent_dim} (0 = analysis.k)."
        )
    if a.stability.pairs and a.latents.samples_per_class < 2:
        raise ConfigError(
            f"config.analysis.latents.samples_per_class={a.latents.samples_per_class!r} with "
            f"stability.pairs={a.stability.pairs!r}: stability selection splits the codes into two "
            "halves, expected at least 2 (or stability.pairs=0)."
        )
    if a.train_models and tuple(config.get("model_seeds", ()) or ()):
        raise ConfigError(
            f"config.analysis.train_models=True trains one model pair, but config.model_seeds="
            f"{config.model_seeds!r}: set model_seeds=() or train the seeds with train-classifier "
            "and train-gan, export them, and analyse one with --config.analysis.pretrained=<folder>."
        )
    if not a.train_models and not (isinstance(a.pretrained, str) and a.pretrained):
        raise ConfigError(
            f"config.analysis.pretrained={a.pretrained!r}: expected a shipped name or an exported "
            "folder (or config.analysis.train_models=True)."
        )
    check_seeds(a.seeds, "config.analysis.seeds")
    _check_finders(a)
    targets = tuple(a.cross_targets)
    if len(targets) != config.num_classes or any(
        not isinstance(t, int) or not 0 <= t < config.num_classes for t in targets
    ):
        raise ConfigError(
            f"config.analysis.cross_targets={a.cross_targets!r}: expected {config.num_classes} "
            f"class indices in [0, {config.num_classes})."
        )


def _check_step_settings(a: ml_collections.ConfigDict) -> None:
    """Each analysis step's settings object, built from the config and checked by its own
    ``validate()``; its message is reworded with the config keys."""
    for kind in STEP_SETTINGS:
        try:
            kind.from_config(a).validate()
        except SettingError as exc:
            raise ConfigError(exc.render(lambda field: f"config.analysis.{kind.config_key(field)}")) from None


def _check_finders(a: ml_collections.ConfigDict) -> None:
    from latentjax.analysis.finders import FINDERS  # the registry, with any finder a user added

    names = tuple(a.finders)
    unknown = [n for n in names if n not in FINDERS]
    if unknown or len(set(names)) != len(names):
        raise ConfigError(
            f"config.analysis.finders={a.finders!r}: expected distinct names among {sorted(FINDERS)} "
            "(register your own with latentjax.register_finder), or () to skip the comparison."
        )
    distances = tuple(a.finder_distances)
    if not distances or any(number_problem(d, low=0) for d in distances) or list(distances) != sorted(set(distances)):
        raise ConfigError(
            f"config.analysis.finder_distances={a.finder_distances!r}: expected increasing "
            "non-negative latent distances (L2 norms of the shift)."
        )
    if len(tuple(a.finder_table_distances)) != 2 or any(d not in distances for d in a.finder_table_distances):
        raise ConfigError(
            f"config.analysis.finder_table_distances={a.finder_table_distances!r}: expected two "
            f"of config.analysis.finder_distances={distances!r}."
        )


def _check_sweep(config: ml_collections.ConfigDict) -> None:
    sw = config.sweep
    models = tuple(sw.models)
    if not models or any(not isinstance(m, str) or not m for m in models) or len(set(models)) != len(models):
        raise ConfigError(
            f"config.sweep.models={sw.models!r}: expected distinct shipped names or exported "
            "folders, one per model seed."
        )
    check_seeds(sw.analysis_seeds, "config.sweep.analysis_seeds")
    sweep_grid.check_grid(sw.grid)
    if not isinstance(sw.get("stages_dir", ""), str):
        raise ConfigError(f"config.sweep.stages_dir={sw.stages_dir!r}: expected a folder path, or '' for the sweep's own.")
    for cell in sweep_grid.sweep_cells(config):
        try:
            cell_config = sweep_grid.cell_config(config, cell)
            _check_table(cell_config, sections=("analysis",))
            _check_analysis(cell_config)
        except ConfigError as exc:
            raise ConfigError(f"config.sweep.grid cell {cell}: {exc}") from None
