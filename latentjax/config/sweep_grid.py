"""A sweep's grid: which analysis settings it may vary, its cells, and each cell's config.

``config.sweep.grid`` maps settings to tuples of values; a cell is one combination (the last key
varies fastest), analysed as the config with those values and the sweep's analysis seeds.
"""

from __future__ import annotations

import dataclasses
import itertools

import ml_collections

from latentjax.analysis.settings import APCRSettings, LatentSettings, ManipulationSettings, MethodBSettings
from latentjax.errors import ConfigError

def _setting_keys(*kinds) -> tuple[str, ...]:
    """``<section>.<field>`` for the settings objects' fields that shape a result."""
    keys = (
        kind.config_key(field.name) for kind in kinds for field in dataclasses.fields(kind)
        if field.name not in kind.EXECUTION
    )
    return tuple(dict.fromkeys(keys))


#: The analysis settings a sweep may vary, as dotted keys under ``config.analysis``: the fields of
#: the latent sets', Method A's, Method B's and the manipulation's settings objects, the set size
#: and the controlling sets' threshold (the reproduction-only settings are not swept).
SWEEP_KEYS = _setting_keys(LatentSettings, APCRSettings, MethodBSettings, ManipulationSettings) + ("control_threshold",)
#: How a sweep runs its model seeds: one after another, vmapped, or chosen by the backend.
SWEEP_LAYOUTS = ("auto", "loop", "vmap")


def grid_axes(grid) -> dict[str, tuple]:
    """The grid's axes ``{dotted key: values}``: the grid nests as ``config.analysis`` does.

    >>> grid_axes({"k": (5, 10), "method_b": {"steps": (30, 60)}})
    {'k': (5, 10), 'method_b.steps': (30, 60)}
    """
    axes = {}
    for key, value in grid.items():
        if isinstance(value, (dict, ml_collections.ConfigDict)):
            axes.update({f"{key}.{inner}": values for inner, values in grid_axes(value).items()})
        else:
            axes[key] = value
    return axes


def sweep_cells(config: ml_collections.ConfigDict) -> list[dict]:
    """The grid's cells in order (keys sorted, the last fastest), each ``{dotted key: value}``.

    >>> c = ml_collections.ConfigDict({"sweep": {"grid": {"k": (5, 10), "apcr": {"m": (6,)}}}})
    >>> sweep_cells(c)
    [{'apcr.m': 6, 'k': 5}, {'apcr.m': 6, 'k': 10}]
    """
    axes = grid_axes(config.sweep.grid)
    keys = list(axes)
    return [dict(zip(keys, values)) for values in itertools.product(*(tuple(axes[k]) for k in keys))]


def set_dotted(section: ml_collections.ConfigDict, dotted: str, value) -> None:
    """``section.a.b = value`` for ``'a.b'``."""
    *path, last = dotted.split(".")
    for part in path:
        section = section[part]
    section[last] = value


def cell_config(config: ml_collections.ConfigDict, cell: dict) -> ml_collections.ConfigDict:
    """The config of one sweep cell: the grid's values and the sweep's seeds in ``analysis``."""
    copy = ml_collections.ConfigDict(config.to_dict())
    for key, value in cell.items():
        set_dotted(copy.analysis, key, tuple(value) if isinstance(value, list) else value)
    copy.analysis.seeds = tuple(config.sweep.analysis_seeds)
    return copy


def check_grid(grid: ml_collections.ConfigDict) -> None:
    """Each key a swept setting (:data:`SWEEP_KEYS`), each value a non-empty tuple of distinct values."""
    for key, values in grid_axes(grid).items():
        if key not in SWEEP_KEYS:
            raise ConfigError(
                f"config.sweep.grid.{key}: not a swept setting; expected keys among {list(SWEEP_KEYS)}."
            )
        if not isinstance(values, (tuple, list)) or not values or len(set(map(_hashable, values))) != len(values):
            raise ConfigError(
                f"config.sweep.grid.{key}={values!r}: expected a non-empty tuple of distinct values."
            )


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value
