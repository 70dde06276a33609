"""Tiny UT Zappos50K reproduction for tests: the shipped shoe models, a handful of codes.

Run:

    latentjax reproduce --config configs/zappos_tiny.py --workdir runs/zappos-tiny

Expected: about a minute on a CPU (after the dataset is prepared once); checks plumbing, the
numbers mean nothing.
"""

import ml_collections

from zappos import get_config as _zappos  # configs/ is on sys.path while this file loads


def get_config() -> ml_collections.ConfigDict:
    config = _zappos()
    config.evaluation.update(dict(num_samples=64, batch_size=32))
    config.analysis.update(
        dict(
            seeds=(0, 1),
            samples_per_class=2,
            m=1,
            k=3,
            weight_steps=3,
            weight_batch=2,
            num_alphas=3,
            manipulation_samples=2,
            inversion_per_class=2,
            inversion_steps=3,
            tsne_perplexity=3.0,
            knn_k=1,
        )
    )
    return config
