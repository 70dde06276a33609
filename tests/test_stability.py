"""Stability selection against planted answers, hand-computed statistics and its invariances."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

import latentjax as lj
from latentjax.analysis import stability
from latentjax.analysis import runner
from latentjax.experiment import stages

import planted
from tracing import counting_traces

#: Fits on halves of 32 codes that find the planted answer (fewer codes or steps let a fit
#: lower Q_j through another class's planted dimensions, a near-equivalent answer at q = 2).
FITS = dict(steps=150, batch_size=16, learning_rate=0.03, loop="device")  # one scan: the quicker compile here


@pytest.fixture(scope="module", autouse=True)
def short_host_blocks():
    """Method B's host loop in blocks of 4 steps: fewer unrolled steps to compile; the fits'
    numbers do not depend on the block length."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "HOST_BLOCK_STEPS", 4)
        yield


@pytest.fixture(scope="module")
def codes():
    return planted.class_codes(samples_per_class=32)


@pytest.fixture(scope="module")
def weight_stable(codes):
    return lj.weight_stability(
        planted.generate, planted.classify, codes, jax.random.key(0), pairs=4, q=planted.K, threshold=0.9, **FITS
    )


# ----------------------------------------------------------------------------- the statistics


def test_selection_probability_standard_error_and_bound_by_hand():
    # Two pairs, one class, three dimensions; each fit selects its top 1 by |score|.
    scores = jnp.array([[[0.9, 0.1, 0.0]], [[0.2, -0.8, 0.0]], [[0.7, 0.3, 0.1]], [[0.6, 0.5, -0.2]]])
    result = lj.selection_stability(scores, q=1, threshold=0.75)
    np.testing.assert_array_equal(result.probability, [[0.75, 0.25, 0.0]])
    # Pair means for dimension 0: (1 + 0) / 2 = 0.5 and (1 + 1) / 2 = 1; sd (ddof 1) = 0.3536; / sqrt(2).
    np.testing.assert_allclose(result.standard_error, [[np.std([0.5, 1.0], ddof=1) / np.sqrt(2)] * 2 + [0.0]], rtol=1e-6)
    np.testing.assert_array_equal(result.stable, [[True, False, False]])  # pi = 0.75 meets 0.75 exactly
    np.testing.assert_array_equal(result.sign, [[1.0, 1.0, 0.0]])  # dim 1: +0.1, -0.8, +0.3, +0.5; dim 2: one - and one +
    np.testing.assert_allclose(result.mean_score, [[0.6, 0.425, 0.075]], rtol=1e-6)
    # q^2 / ((2 pi_thr - 1) N) = 1 / (0.5 * 3).
    assert float(result.error_bound) == pytest.approx(1.0 / 1.5)
    assert lj.stability_bound(10, 100, 0.75) == 2.0
    assert lj.stability_bound(10, 100, 0.9) == pytest.approx(100 / 80)


def test_threshold_meets_a_probability_that_is_a_ratio_of_fits():
    # pi = 7/10 against pi_thr = 0.7: stable, whatever the float rounding of 7/10.
    scores = jnp.concatenate([jnp.tile(jnp.array([[[1.0, 0.0]]]), (7, 1, 1)), jnp.tile(jnp.array([[[0.0, 1.0]]]), (3, 1, 1))])
    assert lj.selection_stability(scores, q=1, threshold=0.7).stable.tolist() == [[True, False]]


def test_complementary_halves_are_disjoint_and_cover_the_codes():
    halves = np.asarray(lj.complementary_halves(jax.random.key(3), 10, 6))
    assert halves.shape == (12, 5)
    for p in range(6):
        assert sorted(halves[2 * p].tolist() + halves[2 * p + 1].tolist()) == list(range(10))
    assert len({tuple(sorted(h)) for h in halves.tolist()}) > 2  # the pairs are different splits


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: lj.selection_stability(jnp.ones((3, 1, 4)), q=1, threshold=0.7), r"F = 2P >= 2"),
        (lambda: lj.selection_stability(jnp.ones((2, 1, 4)), q=5, threshold=0.7), r"q=5: expected an integer in \[1, 4\]"),
        (lambda: lj.selection_stability(jnp.ones((2, 1, 4)), q=1, threshold=0.5), r"threshold=0.5: expected a number in \(0.5, 1\]"),
        (lambda: lj.stability_bound(1, 4, 1.2), r"threshold=1.2"),
        (lambda: lj.weight_stability(planted.generate, planted.classify, jnp.ones((4, 16, 16)), jax.random.key(0), pairs=0),
         r"pairs=0: expected a positive integer"),
        (lambda: lj.weight_stability(planted.generate, planted.classify, jnp.ones((4, 1, 16)), jax.random.key(0)),
         r"1 codes per class: expected at least 2"),
        (lambda: lj.apcr_stability(jnp.ones((4, 16)), jax.random.key(0)), r"expected \[S, N, C\]"),
    ],
)
def test_bad_settings_are_named_before_any_work(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_agreement_intervals_hold_their_value():
    key = jax.random.key(5)
    scores = jax.random.normal(key, (16, 3, 20)) + jnp.zeros((16, 3, 20)).at[:, :, :4].set(3.0)
    first = lj.selection_stability(scores, q=4, threshold=0.7)
    second = lj.selection_stability(scores[::-1], q=4, threshold=0.7)
    table = lj.stable_set_agreement(first, second, k=4, num_resamples=200)
    for name, (value, low, high) in table.items():
        assert np.all(low <= value + 1e-9) and np.all(value <= high + 1e-9), name
    np.testing.assert_array_equal(table["overlap"][0], table["size_first"][0])  # the same fits, reversed


# ----------------------------------------------------------------------------- planted problem


def test_method_b_stable_set_is_the_planted_set(weight_stable):
    probability = np.asarray(weight_stable.probability)
    mask = np.asarray(planted.planted_mask())
    assert probability[mask].min() == 1.0
    assert probability[~mask].max() == 0.0
    np.testing.assert_array_equal(weight_stable.stable, mask)
    for j, dims in enumerate(planted.PLANTED):  # the majority sign raises Q_j, in every fit
        assert np.asarray(weight_stable.sign)[j, list(dims)].tolist() == [1.0, 1.0]
        assert np.asarray(weight_stable.sign_agreement)[j, list(dims)].tolist() == [1.0, 1.0]
    np.testing.assert_array_equal(lj.top_k_mask(stability.stable_ranking(weight_stable), planted.K), mask)


def test_method_a_stable_set_is_the_planted_set_and_its_codes_average_to_apcr(codes):
    result = lj.compute_apcr(planted.generate, planted.classify, codes, chunk_size=256)
    np.testing.assert_allclose(result.per_code.mean(0), result.apcr, rtol=1e-5, atol=1e-7)
    found = lj.apcr_stability(result.per_code, jax.random.key(0), pairs=4, q=planted.K, threshold=0.9,
                              directions=result.directions)
    np.testing.assert_array_equal(found.stable, planted.planted_mask())
    np.testing.assert_array_equal(found.sign, result.directions.T)


def test_stable_set_does_not_move_with_a_1e6_change_of_the_codes(codes, weight_stable):
    moved = lj.weight_stability(
        planted.generate, planted.classify, codes * (1 + 1e-6), jax.random.key(0), pairs=4, q=planted.K,
        threshold=0.9, **FITS,
    )
    np.testing.assert_array_equal(moved.stable, weight_stable.stable)
    np.testing.assert_array_equal(moved.probability, weight_stable.probability)


def test_one_compilation_for_any_key(codes):
    generate, traces = counting_traces(planted.generate)
    counts = []
    for seed in (1, 2):
        lj.weight_stability(generate, planted.classify, codes, jax.random.key(seed), pairs=2,
                            q=planted.K, steps=3, batch_size=4, loop="device")
        counts.append(len(traces))
    assert counts[0] > 0 and counts[1] == counts[0]  # the second key traced nothing


def test_the_pipeline_stage_is_the_estimator_seed_by_seed(codes):
    """Reproduce and sweep read Method B through stages.optimised_weights: every seed's answer
    is weight_stability with that seed's key, and Method A's halves are the same."""
    a = ml_collections.ConfigDict(dict(
        seeds=(4, 7), k=planted.K, stability=dict(pairs=2, q=0, threshold=0.9),
        method_b=dict(lam=0.2, xi_range=(1.0, 3.0), steps=6, batch_size=4, learning_rate=0.05, init=0.5,
                      parametrization="box", solver="adam", xi_nodes=0, smoothing=0.0, schedule="constant",
                      penalty="l2"),
    ))
    both = jnp.stack([codes, codes[:, ::-1]])
    stage = stages.optimised_weights(
        planted.generate, planted.classify, stages.method_b_settings(a), stages.stability_settings(a), a.seeds,
        lj.ClassLatents(both, None, None),
    )
    for index, key in enumerate(stages.seed_keys(a.seeds, 1)):
        alone = lj.weight_stability(
            planted.generate, planted.classify, both[index], key, pairs=2, q=planted.K, threshold=0.9,
            settings=stages.method_b_settings(a),
        )
        np.testing.assert_allclose(stage.stability.fit_scores[index], alone.fit_scores, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(stage.stability.probability[index], alone.probability)
        np.testing.assert_array_equal(
            lj.top_k_mask(jnp.abs(stage.weights[index]), planted.K), lj.top_k_mask(stability.stable_ranking(alone), planted.K)
        )
    assert stage.weights.shape == (2, planted.NUM_CLASSES, planted.LATENT_DIM)
    assert float(jnp.max(jnp.abs(stage.weights))) <= 1.0


def test_fits_split_over_devices_give_the_numbers_of_one(codes):
    # The suite runs with 8 CPU devices: 4 classes x 4 fits = 16 rows, 2 per device.
    assert jax.local_device_count() == 8
    options = dict(pairs=2, steps=4, batch_size=4, loop="device")
    spread = lj.weight_fits(planted.generate, planted.classify, codes, jax.random.key(9), **options)
    assert len(spread.weights.sharding.device_set) == 8  # each device ran its rows
    with jax.default_device(jax.devices()[0]):
        from latentjax.analysis import stability as module

        code_sets, keys, classes = module.fit_inputs(codes, jax.random.key(9), 2)
        one = lj.optimize_weights(planted.generate, planted.classify, code_sets, keys, classes=classes,
                                  steps=4, batch_size=4, loop="device")
    np.testing.assert_allclose(spread.weights, jnp.swapaxes(one.weights.reshape(4, 4, -1), 0, 1), rtol=1e-5, atol=1e-6)
