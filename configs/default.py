"""Default Fashion-MNIST experiment: the shipped pretrained generator and classifier.

Run (trains both models, then prints their quality numbers):

    latentjax train-classifier --config configs/default.py --workdir runs/classifier
    latentjax train-gan --config configs/default.py --workdir runs/gan
    latentjax evaluate --config configs/default.py --classifier-run runs/classifier --gan-run runs/gan

Expected (2-core CPU, about 1.5 hours together; see docs/results.md): classifier test accuracy
about 93%, GAN samples with every class between 5% and 15% of 10,000 samples.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.dataset = "fashion_mnist"
    # Where TFDS keeps prepared datasets ('' = TFDS's default, ~/tensorflow_datasets).
    config.tfds_data_dir = ""
    # A folder holding the dataset's canonical files for offline use ('' = $LATENTJAX_DATA_DIR
    # /<dataset folder> when that variable is set, else download through TFDS).
    config.local_data_dir = ""

    # Train on the first N examples of the (TFDS-shuffled) train split; 0 = all of it.
    config.train_examples = 0

    config.latent_dim = 100
    config.image_size = 28
    config.channels = 1
    config.num_classes = 10

    config.generator = ml_collections.ConfigDict(dict(base_width=32))
    config.discriminator = ml_collections.ConfigDict(dict(base_width=64))
    config.classifier = ml_collections.ConfigDict(
        dict(width=32, hidden=256, dropout=0.3, pixel_mean=0.28604, pixel_std=0.35302)
    )

    config.classifier_training = ml_collections.ConfigDict(
        dict(
            batch_size=128,
            epochs=10,
            learning_rate=2e-3,
            weight_decay=1e-4,
            augment=True,
            log_every_steps=50,
            checkpoint_every_steps=500,
        )
    )
    config.gan_training = ml_collections.ConfigDict(
        dict(
            batch_size=64,
            epochs=8,
            generator_learning_rate=2e-4,
            discriminator_learning_rate=2e-4,
            beta1=0.5,
            log_every_steps=100,
            checkpoint_every_steps=1000,
        )
    )
    config.evaluation = ml_collections.ConfigDict(
        dict(num_samples=10_000, batch_size=500, confidence=0.9)
    )
    return config
