"""A sweep's grid: which analysis settings it may vary, its cells, and each cell's config.

``config.sweep.grid`` maps settings to tuples of values; a cell is one combination (the last key
varies fastest), analysed as the config with those values and the sweep's analysis seeds.
"""

from __future__ import annotations

import itertools

import ml_collections

from latentjax.analysis.settings import APCRSettings, LatentSettings, ManipulationSettings, MethodBSettings
from latentjax.errors import ConfigError

def _setting_keys(*kinds) -> tuple[str, ...]:
    """The config keys of the settings objects' fields that shape a result."""
    keys = []
    for kind in kinds:
        for field, key in kind.CONFIG_KEYS.items():
            if field not in kind.EXECUTION:
                keys.extend(key if isinstance(key, tuple) else (key,))
    return tuple(dict.fromkeys(keys))


#: The analysis settings a sweep may vary: the fields of the latent sets', Method A's, Method B's
#: and the manipulation's settings objects, and the controlling sets' threshold (the
#: reproduction-only settings are not swept).
SWEEP_KEYS = _setting_keys(LatentSettings, APCRSettings, MethodBSettings, ManipulationSettings) + ("control_threshold",)
#: How a sweep runs its model seeds: one after another, vmapped, or chosen by the backend.
SWEEP_LAYOUTS = ("auto", "loop", "vmap")


def sweep_cells(config: ml_collections.ConfigDict) -> list[dict]:
    """The grid's cells in order (last key fastest), each ``{key: value}`` over the grid's keys.

    >>> c = ml_collections.ConfigDict({"sweep": {"grid": {"k": (5, 10), "m": (6,)}}})
    >>> sweep_cells(c)
    [{'k': 5, 'm': 6}, {'k': 10, 'm': 6}]
    """
    grid = config.sweep.grid
    keys = list(grid.keys())
    return [dict(zip(keys, values)) for values in itertools.product(*(tuple(grid[k]) for k in keys))]


def cell_config(config: ml_collections.ConfigDict, cell: dict) -> ml_collections.ConfigDict:
    """The config of one sweep cell: the grid's values and the sweep's seeds in ``analysis``."""
    copy = ml_collections.ConfigDict(config.to_dict())
    copy.analysis.update(dict(cell, seeds=tuple(config.sweep.analysis_seeds)))
    return copy


def check_grid(grid: ml_collections.ConfigDict) -> None:
    """Each key a swept setting (:data:`SWEEP_KEYS`), each value a non-empty tuple of distinct values."""
    for key in grid.keys():
        values = grid[key]
        if key not in SWEEP_KEYS:
            raise ConfigError(
                f"config.sweep.grid.{key}: not a swept setting; expected keys among {list(SWEEP_KEYS)}."
            )
        if not isinstance(values, (tuple, list)) or not values or len(set(values)) != len(values):
            raise ConfigError(
                f"config.sweep.grid.{key}={values!r}: expected a non-empty tuple of distinct values."
            )
