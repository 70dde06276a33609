"""The shipped Fashion-MNIST models load and still measure what their metadata records."""

import jax
import numpy as np
import pytest

import latentjax as lj
from latentjax import data
from latentjax.models.quality import classifier_accuracy

# End to end (data, training, the reproduction, subprocesses): out of the quick tier, `-m "not slow"`.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models():
    return lj.load_pretrained("fashion_mnist")


def test_shipped_classifier_reaches_the_recorded_accuracy(models, tfds_dir):
    recorded = models.metadata["quality"]["classifier_test_accuracy"]
    assert recorded >= 0.923  # the accuracy of the classifier the paper's authors used
    images, labels = data.load_split("fashion_mnist", "test", tfds_data_dir=tfds_dir)
    measured = classifier_accuracy(models.classify, images, labels, batch_size=1000)
    assert abs(measured - recorded) < 1e-3


def test_shipped_generator_covers_every_class(models):
    z = jax.random.normal(jax.random.key(123), (2000, models.spec.latent_dim))
    images = models.generate(z)
    assert images.shape == (2000, 28, 28, 1)
    assert float(images.min()) >= -1.0 and float(images.max()) <= 1.0
    histogram = np.bincount(np.asarray(models.classify(images).argmax(-1)), minlength=10) / 2000
    recorded = models.metadata["quality"]["gan"]["class_histogram"]
    np.testing.assert_allclose(histogram, recorded, atol=0.03)
    assert histogram.min() > 0.03


def test_shipped_models_record_their_config(models):
    config = models.metadata["config"]
    assert config["dataset"] == "fashion_mnist" and config["latent_dim"] == 100
    assert models.spec.generator_width == config["generator"]["base_width"]


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="the shipped models' Method B loss has many minima and a 1e-6 change of the codes can "
    "pick another (docs/results.md, 'Method B: one answer?'); "
    "strict, so this fails the day a reading settles there",
)
def test_converged_method_b_sets_do_not_move_with_rounding_on_the_shipped_models(models):
    """On the shipped models (small: 2 classes, 6 codes each), the converged Method B should give
    the same top-10 sets for codes moved by 1e-6 (relative). Both classes' sets move on the 2-core
    AMD EPYC of docs/results.md (class 5's does not, so it is left out: its run would only add time)."""
    classes = jax.numpy.array([1, 9])
    codes = lj.sample_class_latents(
        models.generate, models.classify, jax.random.key(0), latent_dim=100, num_classes=10,
        samples_per_class=6,
    ).codes[classes]
    run = lambda c: lj.optimize_weights(
        models.generate, models.classify, c, jax.random.key(1), classes=classes, settings=lj.CONVERGED_READING
    ).weights
    reference, moved = run(codes), run(codes * (1 + 1e-6))
    np.testing.assert_array_equal(lj.controlling_set(moved, k=10), lj.controlling_set(reference, k=10))
    np.testing.assert_allclose(moved, reference, atol=2e-4)
