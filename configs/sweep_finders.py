"""The direction finders side by side over independently trained GANs: intervals over models.

Needs the GANs of configs/gan_seeds.py, exported beside the shipped classifier (see
configs/sweep_gans.py for the two commands), then:

    latentjax sweep --config configs/sweep_finders.py --workdir runs/sweep-finders

One cell (make run's analysis: S = 16, 250 Method B steps at learning rate 0.03) over three
GANs and two analysis seeds; every finder of configs/default.py. Output: finders.csv (a row per
finder and distance, each measure with its intervals over model seeds and over analysis seeds)
and the report's "Direction finders per cell".

Expected (docs/results.md): 52 min on a 2-core CPU (shared with another job); cross-class
target share at distance 9, InterFaceGAN 0.61, GANSpace 0.30, Method A 0.27, SeFa 0.25,
random 0.12, Method B 0.07; off-target change Method A 0.37, InterFaceGAN 0.21.
"""

import ml_collections

from default import SAMPLED_METHOD_B, get_config as _default, one_run_of_method_b  # configs/ is on sys.path while this file loads
from sweep import get_config as _sweep


def get_config() -> ml_collections.ConfigDict:
    config = _default()  # make run's analysis, finders included
    # Recorded with the paper's (sampled) reading of Method B, make run's default then.
    one_run_of_method_b(config.analysis, SAMPLED_METHOD_B)
    config.sweep = _sweep().sweep
    config.sweep.models = tuple(f"runs/gan-seeds-exported/seed{s}" for s in (1, 2, 3))
    config.sweep.grid = ml_collections.ConfigDict(dict(latents=dict(samples_per_class=(16,))))
    return config
