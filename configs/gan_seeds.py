"""Three independently trained GANs as one stacked run: the model-seed axis of the sweep.

Run (about 75 minutes on a 2-core CPU; the three seeds train as one program):

    latentjax train-gan --config configs/gan_seeds.py --workdir runs/gan-seeds
    latentjax export --config configs/gan_seeds.py --gan-run runs/gan-seeds \
        --classifier-pretrained fashion_mnist --destination runs/gan-seeds-exported

export writes runs/gan-seeds-exported/seed{1,2,3} (each with the shipped classifier) and prints
each generator's quality; configs/sweep.py analyses them. The GANs are smaller and shorter-trained
than the shipped one (discriminator width 32, 6 epochs) so that three fit in one sitting on a CPU;
their quality is in docs/results.md.
"""

import ml_collections

from default import get_config as _default  # configs/ is on sys.path while this file loads


def get_config() -> ml_collections.ConfigDict:
    config = _default()
    config.model_seeds = (1, 2, 3)
    config.discriminator.base_width = 32
    config.gan_training.update(dict(epochs=6, ema_start_epoch=3, checkpoint_every_steps=500))
    return config
