"""Table 1 over three independently trained GANs (model seeds) and two analysis seeds.

Needs the GANs of configs/gan_seeds.py, exported beside the shipped classifier:

    latentjax train-gan --config configs/gan_seeds.py --workdir runs/gan-seeds
    latentjax export --config configs/gan_seeds.py --gan-run runs/gan-seeds \
        --classifier-pretrained fashion_mnist --destination runs/gan-seeds-exported
    latentjax sweep --config configs/sweep_gans.py --workdir runs/sweep-gans

The report's two intervals say whether the spread of Table 1 comes from the GAN (model seeds)
or from the analysis (latent sets and Method B's batches). Measured numbers: docs/results.md.
"""

import ml_collections

from sweep import get_config as _sweep  # configs/ is on sys.path while this file loads


def get_config() -> ml_collections.ConfigDict:
    config = _sweep()
    config.sweep.models = tuple(f"runs/gan-seeds-exported/seed{s}" for s in (1, 2, 3))
    config.sweep.grid = ml_collections.ConfigDict(dict(latents=dict(samples_per_class=(8,)), method_b=dict(steps=(60, 250))))
    return config
