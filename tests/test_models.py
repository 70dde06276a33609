"""Model behaviour: ranges, shapes, the functional face, vmapping over seeds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latentjax.models import networks as models
from latentjax.models import ModelSpec


def test_depth_to_space_matches_a_reference_loop():
    x = jnp.arange(2 * 3 * 3 * 8, dtype=jnp.float32).reshape(2, 3, 3, 8)
    y = models.depth_to_space(x, 2)
    assert y.shape == (2, 6, 6, 2)
    for i in range(3):
        for j in range(3):
            for a in range(2):
                for b in range(2):
                    np.testing.assert_array_equal(
                        y[:, 2 * i + a, 2 * j + b, :], x[:, i, j, (a * 2 + b) * 2 : (a * 2 + b + 1) * 2]
                    )


@pytest.mark.parametrize("height, width", [(28, 28), (7, 7), (6, 9)])
def test_max_pool_2x2_gives_flax_max_pool_values_and_gradients(height, width):
    import flax.linen as nn

    x = jax.random.normal(jax.random.key(0), (2, height, width, 3))
    reference = lambda x: nn.max_pool(x, (2, 2), strides=(2, 2))
    np.testing.assert_array_equal(models.max_pool_2x2(x), reference(x))
    loss = lambda pool: lambda x: jnp.sum(jnp.sin(pool(x)))
    np.testing.assert_array_equal(jax.grad(loss(models.max_pool_2x2))(x), jax.grad(loss(reference))(x))


@pytest.mark.parametrize("image_size, channels", [(28, 1), (64, 3)])
def test_generator_output_shape_and_range(image_size, channels):
    generator = models.Generator(latent_dim=10, image_size=image_size, channels=channels, base_width=4)
    z = 3.0 * jax.random.normal(jax.random.key(0), (5, 10))
    variables = generator.init(jax.random.key(1), z)
    x = generator.apply(variables, z)
    assert x.shape == (5, image_size, image_size, channels)
    assert float(jnp.max(jnp.abs(x))) <= 1.0


def test_bad_image_size_is_explained():
    with pytest.raises(ValueError, match="image_size=30"):
        models.num_upsamplings(30)


def test_generate_is_per_sample_in_eval_mode(default_config):
    """Batch norm uses running statistics: a code's image does not depend on its batch."""
    spec = ModelSpec.from_config(default_config)
    variables = spec.generator().init(jax.random.key(0), jnp.zeros((1, 100)))
    generate = models.make_generate(spec, variables)
    z = jax.random.normal(jax.random.key(1), (6, 100))
    np.testing.assert_allclose(generate(z)[2:3], generate(z[2:3]), atol=1e-5)


def test_classify_returns_probabilities_and_standardises_its_input(default_config):
    spec = ModelSpec.from_config(default_config)
    module = spec.classifier()
    x = jax.random.uniform(jax.random.key(0), (4, 28, 28, 1), minval=-1.0, maxval=1.0)
    variables = module.init(jax.random.key(1), x)
    probs = models.make_classify(spec, variables)(x)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert bool(jnp.all(probs >= 0))
    # The standardisation is the module's own: a module with mean 0 and std 1 fed the
    # pre-standardised image computes the same probabilities with the same weights.
    plain = models.Classifier(mean=0.0, std=1.0, width=spec.classifier_width, hidden=spec.classifier_hidden)
    standardised = ((x + 1.0) / 2.0 - spec.pixel_mean) / spec.pixel_std
    probs_plain = jax.nn.softmax(plain.apply(variables, 2.0 * standardised - 1.0), axis=-1)
    np.testing.assert_allclose(probs, probs_plain, atol=1e-5)
    features = models.make_features(spec, variables)(x)
    assert features.shape == (4, default_config.classifier.hidden)


@pytest.mark.slow  # compiles for over 10 s: make test runs it, the quick tier does not
def test_generator_vmaps_over_seeds(default_config):
    spec = ModelSpec.from_config(default_config)
    generator = spec.generator()
    keys = jax.vmap(jax.random.key)(jnp.arange(3))
    stacked = jax.vmap(lambda k: generator.init(k, jnp.zeros((1, 100))))(keys)
    z = jax.random.normal(jax.random.key(5), (2, 100))
    images = jax.jit(jax.vmap(lambda v: generator.apply(v, z)))(stacked)
    assert images.shape == (3, 2, 28, 28, 1)
    one = generator.apply(jax.tree.map(lambda a: a[1], stacked), z)
    np.testing.assert_allclose(images[1], one, atol=1e-5)


@pytest.mark.slow  # compiles for over 10 s: make test runs it, the quick tier does not
def test_per_channel_statistics_and_three_blocks_for_64x64_rgb():
    """configs/zappos.py's classifier: one mean and std per channel, three pooling blocks."""
    from conftest import REPO
    from latentjax import config as config_lib

    config = config_lib.load_config(REPO / "configs" / "zappos.py")
    spec = ModelSpec.from_config(config)
    assert len(spec.pixel_mean) == 3 and spec.classifier_blocks == 3
    x = jax.random.uniform(jax.random.key(0), (2, 64, 64, 3), minval=-1.0, maxval=1.0)
    variables = spec.classifier().init(jax.random.key(1), x)
    # Three 2x2 poolings: the dense layer reads an 8x8 grid of 4 * width channels.
    dense = variables["params"]["Dense_0"]["kernel"]
    assert dense.shape == (8 * 8 * 4 * config.classifier.width, config.classifier.hidden)
    plain = models.Classifier(num_classes=3, width=spec.classifier_width, hidden=spec.classifier_hidden, blocks=3)
    mean, std = (jnp.asarray(v)[None, None, None] for v in (spec.pixel_mean, spec.pixel_std))
    standardised = ((x + 1.0) / 2.0 - mean) / std  # each channel by its own statistics
    np.testing.assert_allclose(
        models.make_classify(spec, variables)(x),
        jax.nn.softmax(plain.apply(variables, 2.0 * standardised - 1.0), axis=-1),
        atol=1e-5,
    )


def test_a_spec_read_back_from_json_metadata_is_hashable_and_equal():
    import dataclasses
    import json

    spec = ModelSpec(
        latent_dim=4, image_size=8, channels=3, num_classes=3, generator_width=2,
        discriminator_width=2, classifier_width=2, classifier_hidden=4, classifier_dropout=0.0,
        pixel_mean=(0.1, 0.2, 0.3), pixel_std=(0.4, 0.5, 0.6), classifier_blocks=3,
    )
    again = ModelSpec(**json.loads(json.dumps(dataclasses.asdict(spec))))  # lists come back
    assert again == spec and hash(again.classifier()) == hash(spec.classifier())
