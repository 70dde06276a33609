"""How Method B's sets settle with its length: 60 to 1,000 Adam steps, one run (snapshots).

    latentjax sweep --config configs/sweep_steps.py --workdir runs/sweep-steps

S = 8 codes per class, two analysis seeds, the shipped models; every step count is a snapshot
of one 1,000-step run, so the sweep costs one Method B run per seed. Numbers: docs/results.md.
"""

import ml_collections

from sweep import get_config as _sweep  # configs/ is on sys.path while this file loads


def get_config() -> ml_collections.ConfigDict:
    config = _sweep()
    config.sweep.grid = ml_collections.ConfigDict(
        dict(latents=dict(samples_per_class=(8,)), method_b=dict(steps=(60, 125, 250, 500, 1000)))
    )
    return config
