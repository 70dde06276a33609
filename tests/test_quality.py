"""Quality numbers with known answers."""

import numpy as np

from latentjax.models import quality


def test_frechet_distance_of_gaussians_matches_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 1.0, (200_000, 1))
    b = rng.normal(1.0, 2.0, (200_000, 1))
    # (0 - 1)^2 + 1 + 4 - 2 * sqrt(1 * 4) = 2
    assert abs(quality.frechet_distance(a, b) - 2.0) < 0.05
    assert abs(quality.frechet_distance(a, a)) < 1e-6


def test_classifier_accuracy_counts_argmax_matches():
    import jax.numpy as jnp

    images = np.arange(6, dtype=np.float32).reshape(6, 1)
    labels = np.array([0, 1, 0, 1, 0, 0])

    def classify(x):
        odd = jnp.mod(x[:, 0], 2.0)
        return jnp.stack([1.0 - odd, odd], axis=-1)

    assert quality.classifier_accuracy(classify, images, labels, batch_size=4) == 5 / 6
