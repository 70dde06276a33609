"""Loading, overriding and validating ml_collections experiment configs.

Configs live in ``configs/*.py``, each with a ``get_config()`` that returns a locked
``ml_collections.ConfigDict``. Locking turns a typo in a key (``batch_sise``) into an error;
:func:`validate_config` then rejects impossible values, naming the key and the value, before
any work starts.
"""

from __future__ import annotations

import ast
import importlib.util
import pathlib
import sys

import ml_collections

from latentjax.analysis._validation import number_problem
from latentjax.errors import ConfigError

_POSITIVE_INTS = (
    "latent_dim",
    "image_size",
    "channels",
    "num_classes",
    "generator.base_width",
    "discriminator.base_width",
    "classifier.width",
    "classifier.hidden",
    "classifier.blocks",
    "classifier_training.batch_size",
    "classifier_training.epochs",
    "classifier_training.log_every_steps",
    "classifier_training.checkpoint_every_steps",
    "gan_training.batch_size",
    "gan_training.epochs",
    "gan_training.log_every_steps",
    "gan_training.checkpoint_every_steps",
    "evaluation.num_samples",
    "evaluation.batch_size",
)
_POSITIVE_FLOATS = (
    "classifier_training.learning_rate",
    "gan_training.generator_learning_rate",
    "gan_training.discriminator_learning_rate",
)
_UNIT_INTERVAL = (
    "classifier.dropout",
    "gan_training.beta1",
    "gan_training.ema_decay",
    "evaluation.confidence",
)
_NON_NEGATIVE = ("classifier_training.weight_decay",)
_PIXEL_RANGE = ("classifier_training.augment_fill",)  # a pixel value in the generator's [-1, 1]
_NON_NEGATIVE_INTS = ("seed", "train_examples", "gan_training.ema_start_epoch")


def _get(config: ml_collections.ConfigDict, dotted: str):
    node = config
    for part in dotted.split("."):
        node = node[part]
    return node


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


def _check(value, key: str, **bounds) -> None:
    """One number check for every key (see :func:`latentjax.analysis._validation.number_problem`)."""
    expected = number_problem(value, **bounds)
    if expected:
        raise ConfigError(f"{key}={value!r}: expected {expected}.")


#: Bounds per kind of setting, as number_problem takes them.
POSITIVE_INT = dict(integer=True, low=1)
NON_NEGATIVE_INT = dict(integer=True, low=0)
POSITIVE = dict(low=0, low_open=True)
NON_NEGATIVE = dict(low=0)
UNIT_INTERVAL = dict(low=0, high=1, high_open=True)


def validate_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Raises :class:`ConfigError` naming the first key whose value is impossible."""
    for key, value in _numbers(config):
        _check(value, key)  # finite
    for keys, bounds in (
        (_POSITIVE_INTS, POSITIVE_INT), (_POSITIVE_FLOATS, POSITIVE),
        (_UNIT_INTERVAL, UNIT_INTERVAL), (_NON_NEGATIVE, NON_NEGATIVE),
        (_NON_NEGATIVE_INTS, NON_NEGATIVE_INT), (_PIXEL_RANGE, dict(low=-1, high=1)),
    ):
        for key in keys:
            _check(_get(config, key), f"config.{key}", **bounds)
    _validate_pixel_statistics(config)
    seeds = tuple(config.get("model_seeds", ()) or ())
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds) or len(
        set(seeds)
    ) != len(seeds):
        raise ConfigError(
            f"config.model_seeds={config.model_seeds!r}: expected distinct non-negative integers "
            "(or () for one model)."
        )
    if "analysis" in config:
        _validate_analysis(config)
    if "sweep" in config:
        _validate_sweep(config)
    from latentjax.data import DATASETS  # local import: data imports nothing from here

    if config.dataset not in DATASETS:
        raise ConfigError(
            f"config.dataset={config.dataset!r}: expected one of {sorted(DATASETS)}."
        )
    return config


def _validate_pixel_statistics(config: ml_collections.ConfigDict) -> None:
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
                _check(v, f"config.classifier.{key}[{i}]", **bounds)
        else:
            _check(value, f"config.classifier.{key}", **bounds)
    if 2 ** config.classifier.blocks > config.image_size:
        raise ConfigError(
            f"config.classifier.blocks={config.classifier.blocks!r}: its 2x2 poolings shrink "
            f"config.image_size={config.image_size} below one pixel; expected at most "
            f"{config.image_size.bit_length() - 1}."
        )


_ANALYSIS_POSITIVE_INTS = (
    "samples_per_class", "sample_batch", "max_draws", "m", "k", "weight_steps",
    "num_alphas", "manipulation_samples", "inversion_per_class", "inversion_steps", "knn_k",
    "finder_samples_per_class", "finder_components", "finder_prior_samples",
)
_ANALYSIS_POSITIVE_FLOATS = (
    "delta", "eps", "weight_learning_rate", "xi_min", "xi_max", "alpha_max", "tsne_perplexity",
    "inversion_learning_rate", "finder_choice_distance",
)


#: 0 means "all codes" (weight_batch) and "u drawn at random" (weight_xi_nodes).
_ANALYSIS_NON_NEGATIVE_INTS = ("weight_batch", "weight_xi_nodes")


def _validate_analysis(config: ml_collections.ConfigDict) -> None:
    from latentjax.analysis.weights import PENALTIES, SCHEDULES, SOLVERS

    a = config.analysis
    for key in _ANALYSIS_POSITIVE_INTS:
        _check(a[key], f"config.analysis.{key}", **POSITIVE_INT)
    for key in _ANALYSIS_NON_NEGATIVE_INTS:
        _check(a[key], f"config.analysis.{key}", **NON_NEGATIVE_INT)
    for key, allowed in (
        ("weight_penalty", PENALTIES), ("weight_schedule", SCHEDULES), ("weight_solver", SOLVERS)
    ):
        if a[key] not in allowed:
            raise ConfigError(f"config.analysis.{key}={a[key]!r}: expected one of {allowed}.")
    if a.weight_solver == "lbfgs" and (a.weight_batch != 0 or a.weight_xi_nodes == 0):
        raise ConfigError(
            f"config.analysis.weight_solver='lbfgs' with weight_batch={a.weight_batch!r} and "
            f"weight_xi_nodes={a.weight_xi_nodes!r}: L-BFGS needs the deterministic loss, expected "
            "weight_batch=0 and weight_xi_nodes > 0 (or weight_solver='adam')."
        )
    for key in _ANALYSIS_POSITIVE_FLOATS:
        _check(a[key], f"config.analysis.{key}", **POSITIVE)
    if a.k > config.latent_dim:
        raise ConfigError(
            f"config.analysis.k={a.k!r}: expected at most config.latent_dim={config.latent_dim}."
        )
    if number_problem(a.chunk_size, **NON_NEGATIVE_INT):
        raise ConfigError(
            f"config.analysis.chunk_size={a.chunk_size!r}: expected a non-negative integer "
            "(0 = the backend's default)."
        )
    if not -1 <= a.weight_init <= 1 or (a.parametrization == "tanh" and abs(a.weight_init) == 1):
        raise ConfigError(
            f"config.analysis.weight_init={a.weight_init!r}: expected a number in [-1, 1] "
            "(Method B's weights live there; in (-1, 1) with parametrization='tanh')."
        )
    if a.xi_min > a.xi_max:
        raise ConfigError(
            f"config.analysis.xi_min={a.xi_min!r} exceeds config.analysis.xi_max={a.xi_max!r}."
        )
    if not 0 <= a.threshold <= 1:
        raise ConfigError(f"config.analysis.threshold={a.threshold!r}: expected a probability in [0, 1].")
    for key in ("lam", "inversion_beta", "weight_smoothing"):
        _check(a[key], f"config.analysis.{key}", **NON_NEGATIVE)
    if not isinstance(a.train_models, bool):
        raise ConfigError(f"config.analysis.train_models={a.train_models!r}: expected True or False.")
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
    if a.parametrization not in ("box", "tanh"):
        raise ConfigError(
            f"config.analysis.parametrization={a.parametrization!r}: expected 'box' or 'tanh'."
        )
    seeds = tuple(a.seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ConfigError(f"config.analysis.seeds={a.seeds!r}: expected non-negative integers.")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"config.analysis.seeds={a.seeds!r}: expected distinct seeds.")
    _validate_finders(a)
    targets = tuple(a.cross_targets)
    if len(targets) != config.num_classes or any(
        not isinstance(t, int) or not 0 <= t < config.num_classes for t in targets
    ):
        raise ConfigError(
            f"config.analysis.cross_targets={a.cross_targets!r}: expected {config.num_classes} "
            f"class indices in [0, {config.num_classes})."
        )


def _validate_finders(a: ml_collections.ConfigDict) -> None:
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


#: The analysis settings a sweep may vary: what the latent sets, Methods A and B, the sets and
#: the same-class manipulation read (the reproduction-only settings are not swept).
SWEEP_KEYS = (
    "samples_per_class", "threshold", "sample_batch", "max_draws",
    "delta", "m", "relative", "signed", "eps",
    "lam", "xi_min", "xi_max", "weight_steps", "weight_batch", "weight_learning_rate",
    "weight_init", "parametrization", "weight_solver", "weight_xi_nodes", "weight_smoothing", "weight_schedule",
    "weight_penalty",
    "k", "control_threshold", "alpha_max", "num_alphas", "manipulation_samples",
)
SWEEP_LAYOUTS = ("auto", "loop", "vmap")


def sweep_cells(config: ml_collections.ConfigDict) -> list[dict]:
    """The grid's cells in order (last key fastest), each ``{key: value}`` over the grid's keys."""
    import itertools

    grid = config.sweep.grid
    keys = list(grid.keys())
    return [dict(zip(keys, values)) for values in itertools.product(*(tuple(grid[k]) for k in keys))]


def cell_config(config: ml_collections.ConfigDict, cell: dict) -> ml_collections.ConfigDict:
    """The config of one sweep cell: the grid's values and the sweep's seeds in ``analysis``."""
    copy = ml_collections.ConfigDict(config.to_dict())
    copy.analysis.update(dict(cell, seeds=tuple(config.sweep.analysis_seeds)))
    return copy


def _validate_sweep(config: ml_collections.ConfigDict) -> None:
    sw = config.sweep
    models = tuple(sw.models)
    if not models or any(not isinstance(m, str) or not m for m in models) or len(set(models)) != len(models):
        raise ConfigError(
            f"config.sweep.models={sw.models!r}: expected distinct shipped names or exported "
            "folders, one per model seed."
        )
    seeds = tuple(sw.analysis_seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds) or len(
        set(seeds)
    ) != len(seeds):
        raise ConfigError(
            f"config.sweep.analysis_seeds={sw.analysis_seeds!r}: expected distinct non-negative integers."
        )
    for key in sw.grid.keys():
        values = sw.grid[key]
        if key not in SWEEP_KEYS:
            raise ConfigError(
                f"config.sweep.grid.{key}: not a swept setting; expected keys among {list(SWEEP_KEYS)}."
            )
        if not isinstance(values, (tuple, list)) or not values or len(set(values)) != len(values):
            raise ConfigError(
                f"config.sweep.grid.{key}={values!r}: expected a non-empty tuple of distinct values."
            )
    if not isinstance(sw.get("stages_dir", ""), str):
        raise ConfigError(f"config.sweep.stages_dir={sw.stages_dir!r}: expected a folder path, or '' for the sweep's own.")
    if sw.model_layout not in SWEEP_LAYOUTS:
        raise ConfigError(f"config.sweep.model_layout={sw.model_layout!r}: expected one of {SWEEP_LAYOUTS}.")
    _check(sw.bootstrap_resamples, "config.sweep.bootstrap_resamples", **POSITIVE_INT)
    if not isinstance(sw.confidence, float) or not 0 < sw.confidence < 1:
        raise ConfigError(f"config.sweep.confidence={sw.confidence!r}: expected a number in (0, 1).")
    for cell in sweep_cells(config):
        try:
            _validate_analysis(cell_config(config, cell))
        except ConfigError as exc:
            raise ConfigError(f"config.sweep.grid cell {cell}: {exc}") from None


def shipped_configs() -> dict[str, pathlib.Path]:
    """The configs installed with latentjax (the checkout's ``configs/``), by name.

    >>> "default" in shipped_configs() and "tiny" in shipped_configs()
    True
    """
    folder = pathlib.Path(next(iter(importlib.util.find_spec("latentjax.configs").submodule_search_locations)))
    return {p.stem: p for p in sorted(folder.glob("*.py")) if not p.stem.startswith("_")}


def resolve_config(name_or_path: str | pathlib.Path) -> pathlib.Path:
    """A config file: ``name_or_path`` itself when it is a file, else the shipped config of that
    name (``'default'``, ``'tiny'``, ...; :func:`shipped_configs`)."""
    path = pathlib.Path(name_or_path)
    if path.is_file():
        return path
    shipped = shipped_configs()
    if path.suffix != ".py" and len(path.parts) == 1 and path.name in shipped:
        return shipped[path.name]
    raise ConfigError(
        f"config {str(name_or_path)!r}: no such file, and no shipped config of that name; expected "
        f"a path to a config file or one of {sorted(shipped)}."
    )


def load_config(path: str | pathlib.Path) -> ml_collections.ConfigDict:
    """Imports ``get_config()`` from a config file, or a shipped config by name (``'default'``),
    and returns the locked, validated config."""
    path = resolve_config(path)
    spec = importlib.util.spec_from_file_location(f"_latentjax_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    # Configs derive from one another (tiny.py imports default.py), as in the Flax examples.
    sys.path.insert(0, str(path.resolve().parent))
    try:
        spec.loader.exec_module(module)
        if not hasattr(module, "get_config"):
            raise ConfigError(f"config file {str(path)!r} defines no get_config() function.")
        config = module.get_config()
    except SyntaxError as exc:
        raise ConfigError(
            f"config file {str(path)!r}: syntax error at line {exc.lineno}: {exc.msg}."
        ) from None
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(
            f"config file {str(path)!r} failed to load: {type(exc).__name__}: {exc}."
        ) from exc
    finally:
        sys.path.pop(0)
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(
            f"config file {str(path)!r}: get_config() returned {type(config).__name__}: "
            "expected an ml_collections.ConfigDict."
        )
    config.lock()
    return validate_config(config)


def _parse_value(text: str):
    if text.strip().lower() in ("nan", "inf", "+inf", "-inf", "infinity", "-infinity"):
        return float(text)  # a number, refused by validate_config as not finite
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare string such as a path


def apply_overrides(
    config: ml_collections.ConfigDict,
    overrides: dict[str, str] | list[str],
    *,
    validate: bool = True,
) -> ml_collections.ConfigDict:
    """Applies ``key=value`` overrides (dotted keys) to a copy; unknown keys and wrong types fail.

    >>> import ml_collections
    >>> c = ml_collections.ConfigDict({'a': {'b': 1}})
    >>> apply_overrides(c, ['a.b=3'], validate=False).a.b
    3
    """
    if isinstance(overrides, dict):
        items = list(overrides.items())
    else:
        items = []
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. seed=3.")
            key, value = item.split("=", 1)
            items.append((key, _parse_value(value)))
    config = config.copy_and_resolve_references()
    config.lock()
    for key, value in items:
        try:
            current = _get(config, key)
        except (KeyError, AttributeError) as exc:
            raise ConfigError(f"config.{key}: no such key in this config.") from exc
        if isinstance(current, ml_collections.ConfigDict) and isinstance(value, dict):
            # A whole section given as a dict (e.g. a sweep's grid): replace, not merge.
            parent, _, leaf = key.rpartition(".")
            node = _get(config, parent) if parent else config
            with node.unlocked():
                del node[leaf]
                node[leaf] = ml_collections.ConfigDict(value)
            continue
        try:
            # ml_collections' own dotted update: type-safe, ints widen to float fields.
            config.update_from_flattened_dict({key: value})
        except TypeError as exc:
            raise ConfigError(
                f"config.{key}={value!r}: wrong type, expected {type(current).__name__}."
            ) from exc
    return validate_config(config) if validate else config

