"""Loading and overriding ml_collections experiment configs.

Configs live in ``configs/*.py``, each with a ``get_config()`` that returns a locked
``ml_collections.ConfigDict``. Locking turns a typo in a key (``batch_sise``) into an error;
:func:`validate_config` (:mod:`latentjax.config.rules`) then rejects impossible values, naming
the key and the value, before any work starts. A sweep's grid and cells:
:mod:`latentjax.config.sweep_grid`.
"""

from __future__ import annotations

import ast
import importlib.util
import pathlib
import sys

import ml_collections

from latentjax.config.rules import get_dotted, validate_config
from latentjax.errors import ConfigError
from latentjax.config.sweep_grid import SWEEP_KEYS, SWEEP_LAYOUTS, cell_config, sweep_cells

__all__ = [
    "SWEEP_KEYS", "SWEEP_LAYOUTS", "apply_overrides", "cell_config", "load_config", "resolve_config",
    "shipped_configs", "sweep_cells", "validate_config",
]

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
            current = get_dotted(config, key)
        except (KeyError, AttributeError) as exc:
            raise ConfigError(f"config.{key}: no such key in this config.") from exc
        if isinstance(current, ml_collections.ConfigDict) and isinstance(value, dict):
            # A whole section given as a dict (e.g. a sweep's grid): replace, not merge.
            parent, _, leaf = key.rpartition(".")
            node = get_dotted(config, parent) if parent else config
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

