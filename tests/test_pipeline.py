"""A seed's analysis is one pure function of (key, models, settings): vmapped over seeds and over
stacked models, compiled once, and drawing the latent sets the pipeline's stages draw."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from jax.tree_util import Partial

import latentjax as lj
from latentjax.experiment import stages

import planted

SETTINGS = lj.AnalysisSettings(
    latents=lj.LatentSettings(samples_per_class=32, batch_size=256),
    apcr=lj.APCRSettings(m=3),
    method_b=lj.MethodBSettings(steps=150, batch_size=16, learning_rate=0.03),
    stability=lj.StabilitySettings(pairs=2, q=planted.K, threshold=0.75),
    k=planted.K, held_out_per_class=4, distances=(1.0, 3.0), cross_targets=(1, 2, 3, 0),
)
SHAPES = dict(latent_dim=planted.LATENT_DIM, num_classes=planted.NUM_CLASSES)
MODELS = (lj.as_pytree(planted.generate), lj.as_pytree(planted.classify))


def _analyse(key, generate, classify, settings):
    return lj.analyse_seed(key, generate, classify, settings, **SHAPES)


#: One seed, compiled once for every key, model weights and float setting used in this file.
analyse = jax.jit(chex.assert_max_traces(_analyse, n=1))


@pytest.fixture(scope="module")
def two_seeds():
    keys = jax.vmap(jax.random.key)(jnp.arange(2))
    return keys, jax.jit(jax.vmap(_analyse, in_axes=(0, None, None, None)))(keys, *MODELS, SETTINGS)


def test_the_planted_sets_are_found_by_both_methods(two_seeds):
    _, result = two_seeds
    planted_mask = np.asarray(planted.planted_mask())
    for seed in range(2):
        np.testing.assert_array_equal(result.high[seed], planted_mask)
        np.testing.assert_array_equal(result.control[seed], planted_mask)
    np.testing.assert_array_equal(result.intersection_ratio, np.ones((2, planted.NUM_CLASSES)))
    assert result.same.flip_rate.shape == (2, 2, planted.NUM_CLASSES, 2)  # seeds, methods, classes, distances


def test_vmapped_seeds_are_the_seeds_alone(two_seeds):
    """The same draws, scores and sets; Method B's sampled fits agree to rounding (a batched
    program rounds differently), which moves no set."""
    keys, together = two_seeds
    for seed in range(2):
        alone = analyse(keys[seed], *MODELS, SETTINGS)
        one = jax.tree.map(lambda x: x[seed], together)
        np.testing.assert_array_equal(one.latents.codes, alone.latents.codes)
        chex.assert_trees_all_close(one.apcr, alone.apcr, rtol=1e-5, atol=1e-6)
        for name in ("high", "control", "intersection_ratio"):
            np.testing.assert_array_equal(getattr(one, name), getattr(alone, name))
        np.testing.assert_array_equal(one.stability.stable, alone.stability.stable)
        np.testing.assert_allclose(one.weights, alone.weights, atol=0.02)


def test_one_compilation_for_any_key_and_any_float_setting():
    for seed, lam in ((3, 0.2), (4, 0.3)):
        settings = dataclasses.replace(SETTINGS, method_b=SETTINGS.method_b.replace(lam=lam))
        analyse(jax.random.key(seed), *MODELS, settings)  # traced at most once in this file


def test_a_stack_of_models_is_one_program():
    """Two models of one architecture (the planted classifier at two gains), vmapped."""
    classify = lambda gain, x: jax.nn.softmax(gain * x[:, : planted.NUM_CLASSES], axis=-1)
    stacked = lj.stack_pytrees([Partial(classify, jnp.float32(g)) for g in (3.0, 4.0)])
    key = jax.random.key(5)
    # One run of Method B is enough here (a lighter program to compile than the fits).
    settings = dataclasses.replace(SETTINGS, stability=None)
    other = jax.jit(_analyse)  # another classifier: another program than `analyse`
    both = jax.vmap(other, in_axes=(None, None, 0, None))(key, MODELS[0], stacked, settings)
    second = other(key, MODELS[0], Partial(classify, jnp.float32(4.0)), settings)
    chex.assert_trees_all_close(jax.tree.map(lambda x: x[1], both.intersection_ratio), second.intersection_ratio)
    np.testing.assert_array_equal(both.control[1], second.control)


def test_the_stages_of_reproduce_and_sweep_compute_what_the_pure_function_computes():
    """The same latent sets (same key streams) and the same Method A scores, seed by seed."""
    a = ml_collections.ConfigDict(dict(seeds=(7,), latents=dict(samples_per_class=32, threshold=0.9, batch_size=256, max_draws=1_000_000)))
    staged = stages.class_latents(planted.generate, planted.classify, stages.latent_settings(a), a.seeds, **SHAPES)
    pure = analyse(jax.random.key(7), *MODELS, SETTINGS)
    np.testing.assert_array_equal(staged.codes[0], pure.latents.codes)
    scores = stages.correlation_scores(planted.generate, planted.classify, SETTINGS.apcr, staged)
    chex.assert_trees_all_close(jax.tree.map(lambda x: x[0], scores), pure.apcr, rtol=1e-5, atol=1e-6)
