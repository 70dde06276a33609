"""Tiny UT Zappos50K reproduction for tests: the shipped shoe models, a handful of codes.

Run:

    latentjax reproduce --config configs/zappos_tiny.py --workdir runs/zappos-tiny

Expected: about a minute on a CPU (after the dataset is prepared once); checks plumbing, the
numbers mean nothing.
"""

import ml_collections

from tiny import TINY_ANALYSIS  # configs/ is on sys.path while this file loads
from zappos import get_config as _zappos


def get_config() -> ml_collections.ConfigDict:
    config = _zappos()
    config.evaluation.update(dict(num_samples=64, batch_size=32))
    config.analysis.update(TINY_ANALYSIS)
    return config
