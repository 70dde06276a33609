"""UT Zappos50K (Boot, Sandal, Shoe) at 64x64 RGB: the paper's second dataset.

The photos come from a manual folder (latentjax/data/ut_zappos50k.py): set LATENTJAX_DATA_DIR
to the folder that holds ut-zappos50k-subset/ (the class-folder archive, or the official
release), or pass --config.local_data_dir=FOLDER.

Train (run directories resume where they stopped), evaluate and export:

    latentjax train-classifier --config configs/zappos.py --workdir runs/zappos-classifier
    latentjax train-gan --config configs/zappos.py --workdir runs/zappos-gan
    latentjax evaluate --config configs/zappos.py --classifier-run runs/zappos-classifier \
        --gan-run runs/zappos-gan
    latentjax export --config configs/zappos.py --classifier-run runs/zappos-classifier \
        --gan-run runs/zappos-gan --destination latentjax/pretrained/ut_zappos50k

Expected (measured, docs/results.md, "UT Zappos50K"): classifier test accuracy 98.33%
(12 epochs); GAN (20 epochs, exported as the moving average of its generator from epoch 12)
with class shares 41.2% / 29.0% / 29.8%, 68.5% of samples at p >= 0.9, Fréchet distance 9.3 in
classifier features (real train vs test 0.42, untrained generator 103). On a 2-core CPU shared
by both runs: GAN 99 minutes, classifier 36 minutes.

Analyse the shipped models:

    latentjax reproduce --config configs/zappos.py --workdir runs/zappos

Expected: 6 min 33 s on a 2-core Intel Xeon (at c04effc, TFDS's preparation included); Table 1
mean IR 0.23 [0.20, 0.30] (Boot 0.20, Sandal 0.40, Shoe 0.10; chance 0.10; the paper prints no
numbers for this dataset); stable sets per class: Method A 5.0, Method B 2.7, in both 0.3;
cross-class target share at distance 9: InterFaceGAN 0.96, Method A 0.96, GANSpace 0.88,
SeFa 0.79, Method B 0.58, random 0.00 (docs/results.md).
"""

import ml_collections

from default import get_config as _default  # configs/ is on sys.path while this file loads


def get_config() -> ml_collections.ConfigDict:
    config = _default()
    config.dataset = "ut_zappos50k"
    config.image_size = 64
    config.channels = 3
    config.num_classes = 3

    # A DCGAN sized for a 2-core CPU: 8x8 -> 64x64 in three sub-pixel upsamplings.
    config.generator.base_width = 16
    config.discriminator.base_width = 32
    # A new section: per-channel statistics are tuples, which ConfigDict will not put in place
    # of default.py's floats.
    config.classifier = ml_collections.ConfigDict(
        dict(
            # Lighter dropout than Fashion-MNIST's 0.3: with 0.3 and 8 epochs the classifier
            # underfits (train and test accuracy both 95%, Sandal the class it misses).
            dropout=0.1,
            width=16,
            hidden=128,
            blocks=3,  # 64 -> 8 before the dense layer, which stays at 0.5 M weights
            # The train split's per-channel pixel statistics on the [0, 1] scale (white
            # backgrounds: bright and low-contrast).
            pixel_mean=(0.85529, 0.83397, 0.82615),
            pixel_std=(0.27145, 0.29282, 0.30082),
        )
    )
    config.classifier_training.update(
        # Shifted-in borders are white, as the photos' backgrounds.
        dict(epochs=12, augment_fill=1.0, log_every_steps=20, checkpoint_every_steps=200)
    )
    config.gan_training.update(
        dict(epochs=20, ema_start_epoch=12, ema_decay=0.995, log_every_steps=20,
             checkpoint_every_steps=100)
    )

    config.analysis.pretrained = "ut_zappos50k"
    # Cross-class targets, one per source class: Boot -> Shoe, Sandal -> Shoe, Shoe -> Boot.
    config.analysis.cross_targets = (2, 2, 0)
    return config
