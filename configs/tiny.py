"""Tiny Fashion-MNIST experiment for tests: small models, a few steps, real data.

Run:

    latentjax train-classifier --config configs/tiny.py --workdir runs/tiny-classifier

Expected: finishes in well under a minute on a CPU; the numbers mean nothing.
"""

import ml_collections

from default import get_config as _default  # configs/ is on sys.path while this file loads


# The reproduction on the shipped models with a handful of codes: checks plumbing only
# (configs/zappos_tiny.py uses it too).
TINY_ANALYSIS = dict(
    seeds=(0, 1),
    # Few prior codes pass 0.9 for the rarest classes; 0.5 keeps the draw short, and at 0.5
    # one batch of 256 holds two codes of every class (1024 cost the tests seconds per draw).
    latents=dict(samples_per_class=2, threshold=0.5, batch_size=256),
    apcr=dict(m=1),
    k=3,
    method_b=dict(steps=3, batch_size=2),
    stability=dict(pairs=1),
    manipulation=dict(num_alphas=3, samples=2, dose_points=3),
    inversion_per_class=2,
    inversion_steps=3,
    tsne_perplexity=3.0,
    knn_k=1,
    finder_distances=(0.0, 3.0),
    finder_table_distances=(0.0, 3.0),
    finder_samples_per_class=2,
    finder_components=3,
    finder_prior_samples=256,
)


def get_config() -> ml_collections.ConfigDict:
    config = _default()
    config.train_examples = 64
    config.generator.base_width = 8
    config.discriminator.base_width = 8
    config.classifier.width = 8
    config.classifier.hidden = 32
    config.classifier_training.update(
        dict(batch_size=8, epochs=1, log_every_steps=2, checkpoint_every_steps=4)
    )
    config.gan_training.update(
        dict(
            batch_size=8, epochs=1, log_every_steps=2, checkpoint_every_steps=4,
            ema_decay=0.5, ema_start_epoch=0,
        )
    )
    config.evaluation.update(dict(num_samples=64, batch_size=32))
    # The reproduction on the shipped models with a handful of codes: checks plumbing only.
    config.analysis.update(TINY_ANALYSIS)
    # A 4-cell sweep of the shipped models (tests: tables, intervals, resume).
    config.sweep = ml_collections.ConfigDict(
        dict(
            models=("fashion_mnist",),
            analysis_seeds=(0, 1),
            grid=ml_collections.ConfigDict(dict(k=(2, 3), method_b=dict(steps=(2, 3)))),
            model_layout="auto",
            # A folder of stage artefacts shared between sweeps ('' = the sweep's own stages/):
            # one artefact per stage, settings and analysis seed, computed once for all of them.
            stages_dir="",
            bootstrap_resamples=200,
            confidence=0.95,
        )
    )
    return config
