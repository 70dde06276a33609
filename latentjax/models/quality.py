"""Quality numbers for the classifier and the GAN.

- classifier: test accuracy;
- GAN: over ``n`` samples, the share the classifier labels with probability >= ``confidence``,
  the class histogram of samples (mode collapse shows as classes far from 1/C), and the Fréchet
  distance in the classifier's penultimate features between samples and the test set, beside the
  same distance for real train-vs-test images and for an untrained generator.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from latentjax.analysis.runner import map_in_chunks


def classifier_accuracy(
    classify: Callable[[jax.Array], jax.Array],
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int = 500,
) -> float:
    """Share of ``images`` whose argmax class equals ``labels``."""
    probs = map_in_chunks(classify, jnp.asarray(images), batch_size)
    correct = int(jnp.sum(jnp.argmax(probs, -1) == jnp.asarray(labels)))
    return correct / len(labels)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """``||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})`` of two feature sets ``[n, d]``."""
    a = np.asarray(features_a, np.float64)
    b = np.asarray(features_b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    # Tr((S_a S_b)^{1/2}) = Tr((S_a^{1/2} S_b S_a^{1/2})^{1/2}); the right side is symmetric
    # positive semi-definite, so eigvalsh gives it without the complex noise of a general sqrtm.
    eigvals_a, eigvecs_a = np.linalg.eigh(cov_a)
    sqrt_a = (eigvecs_a * np.sqrt(np.clip(eigvals_a, 0.0, None))) @ eigvecs_a.T
    trace_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a), 0.0, None)))
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_sqrt)


def gan_quality(
    generate: Callable[[jax.Array], jax.Array],
    classify: Callable[[jax.Array], jax.Array],
    features: Callable[[jax.Array], jax.Array],
    *,
    latent_dim: int,
    test_images: np.ndarray,
    train_images: np.ndarray,
    key: jax.Array,
    num_samples: int = 10_000,
    confidence: float = 0.9,
    batch_size: int = 500,
    untrained_generate: Callable[[jax.Array], jax.Array] | None = None,
) -> dict:
    """The GAN's quality numbers as a JSON-ready dict (see the module docstring)."""
    z = jax.random.normal(key, (num_samples, latent_dim))

    def probs_and_features(z):
        x = generate(z)
        return classify(x), features(x)

    probs, fake_features = map_in_chunks(probs_and_features, z, batch_size)
    probs = np.asarray(probs)
    num_classes = probs.shape[-1]
    predicted = probs.argmax(-1)
    histogram = np.bincount(predicted, minlength=num_classes) / num_samples
    test_features = map_in_chunks(features, jnp.asarray(test_images), batch_size)
    rng = np.random.default_rng(0)
    train_subset = train_images[rng.choice(len(train_images), len(test_images), replace=False)]
    train_features = map_in_chunks(features, jnp.asarray(train_subset), batch_size)
    result = {
        "num_samples": num_samples,
        "confidence_threshold": confidence,
        "confident_share": float(np.mean(probs.max(-1) >= confidence)),
        "class_histogram": [float(h) for h in histogram],
        "class_histogram_min": float(histogram.min()),
        "class_histogram_max": float(histogram.max()),
        "frechet_distance_samples_vs_test": frechet_distance(fake_features, test_features),
        "frechet_distance_train_vs_test": frechet_distance(train_features, test_features),
    }
    if untrained_generate is not None:
        untrained = map_in_chunks(lambda z: features(untrained_generate(z)), z, batch_size)
        result["frechet_distance_untrained_vs_test"] = frechet_distance(untrained, test_features)
    return result
