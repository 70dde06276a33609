"""The manipulation claim as a dose-response: a flip is not a concept change unless it lands
cleanly, alpha_50 reads where half the codes flip, and the intervals resample seeds and codes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentjax as lj
from latentjax.analysis.dose_response import dose_response, flip_outcomes, half_point

import planted

ALPHAS = np.linspace(0.0, 3.0, 13).astype(np.float32)


def smearing_classifier(z):
    """Three classes on codes z = (z0, z1, z2): z0 and z1 are classes 0 and 1; moving z2 away
    from 0 fades both into a weak vote for class 2 (a 'broken image' that leaves its class)."""
    fade = jnp.exp(-z[:, 2] ** 2)[:, None]
    logits = fade * jnp.stack([4 * z[:, 0], 4 * z[:, 1], jnp.zeros_like(z[:, 0])], -1)
    return jax.nn.softmax(logits + (1 - fade) * jnp.array([[0.0, 0.0, 0.5]]), axis=-1)


def class0_codes(n=16):
    return jnp.array([[1.0, 0.0, 0.0]]) + 0.05 * jax.random.normal(jax.random.key(0), (n, 3))


def moved(direction):
    return lj.manipulate(lambda z: z, smearing_classifier, class0_codes(), jnp.array(direction), 0,
                         alphas=ALPHAS, num_images=0).probabilities  # [A, M, K]


def test_a_smeared_code_flips_but_not_cleanly_a_concept_change_does_both():
    concept, smear = moved([1.0, -1.0, 0.0]), moved([0.0, 0.0, 1.0])
    for probabilities, clean_at_the_end in ((concept, 1.0), (smear, 0.0)):
        flip, clean = flip_outcomes(probabilities, jnp.int32(0), threshold=0.9)
        assert float(flip[-1].mean()) == 1.0  # both leave class 0 at alpha 3
        assert float(clean[-1].mean()) == clean_at_the_end


def test_cross_class_outcomes_ask_for_the_target_and_its_confidence():
    p = jnp.array([[0.05, 0.95, 0.0], [0.3, 0.6, 0.1], [0.9, 0.05, 0.05]])
    reach, clean = flip_outcomes(p, jnp.int32(1), mode="cross", threshold=0.9)
    assert reach.tolist() == [True, True, False] and clean.tolist() == [True, False, False]
    with pytest.raises(ValueError, match="mode='sideways'"):
        flip_outcomes(p, jnp.int32(1), mode="sideways")


def test_attribute_outcomes_read_each_attribute_on_its_own():
    q = jnp.array([[0.05, 0.9], [0.4, 0.9], [0.8, 0.1]])  # attribute 0 of three moved codes
    flip, clean = flip_outcomes(q, jnp.int32(0), threshold=0.9, independent=True)
    assert flip.tolist() == [True, True, False] and clean.tolist() == [True, False, False]


def test_alpha_50_interpolates_between_grid_points_and_is_infinite_when_never_reached():
    assert half_point([0.0, 1.0, 2.0], [0.0, 0.2, 0.8]) == pytest.approx(1.5)
    assert half_point([0.0, 1.0], [0.0, 0.49]) == float("inf")
    assert half_point([-1.0, 0.0, 1.0], [1.0, 0.0, 0.5]) == 1.0  # negative shifts move the other way


def test_the_interval_covers_the_curve_and_resamples_codes_even_with_one_seed():
    rng = np.random.default_rng(0)
    hits = rng.random((1, 3, 5, 20)) < np.linspace(0, 1, 5)[None, None, :, None]
    r = dose_response(hits, np.linspace(0, 2, 5))
    assert np.all(r.low <= r.rate) and np.all(r.rate <= r.high)
    assert np.any(r.high - r.low > 0.05)  # one seed: the codes still vary
    assert r.alpha_50_low <= r.alpha_50 <= r.alpha_50_high
    with pytest.raises(ValueError, match="expected \\[seeds, classes, 4 strengths, codes\\]"):
        dose_response(hits, np.linspace(0, 2, 4))


def test_planted_top_k_flips_cleanly_where_bottom_k_never_moves_and_a_nudge_of_1e6_changes_nothing():
    codes = planted.class_codes(samples_per_class=8)
    scores, signs = planted.planted_mask().astype(jnp.float32), planted.planted_mask().astype(jnp.float32)

    def curves(codes):
        sets = lj.compare_sets(planted.generate, planted.classify, codes, scores, signs, planted.K,
                               jax.random.key(0), alphas=ALPHAS, num_images=0)
        classes = jnp.arange(planted.NUM_CLASSES)[:, None]
        out = {}
        for name, result in sets.items():
            _, clean = flip_outcomes(result.probabilities, classes, threshold=0.9)
            out[name] = dose_response(np.asarray(clean)[None], ALPHAS)
        return out

    found = curves(codes)
    assert found["top"].rate[-1] > 0.5 and found["top"].alpha_50 < 3.0  # some land between two classes
    assert found["bottom"].rate.max() == 0.0 and found["bottom"].alpha_50 == float("inf")
    nudged = curves(codes + 1e-6)
    for name in found:
        np.testing.assert_array_equal(nudged[name].rate, found[name].rate)
        assert nudged[name].alpha_50 == found[name].alpha_50


def test_the_finders_evaluation_counts_clean_flips_at_the_latent_sets_confidence():
    codes = jnp.stack([class0_codes(), class0_codes()[:, [1, 0, 2]], class0_codes()[:, [1, 1, 0]] * 0])  # 3 sets
    directions = jnp.stack([jnp.array([[1.0, -1.0, 0.0]] * 3), jnp.array([[0.0, 0.0, 1.0]] * 3)])  # concept, smear
    e = lj.evaluate_directions(lambda z: z, smearing_classifier, codes, directions, [4.0], threshold=0.9)
    assert float(e.flip_rate[0, 0, 0]) == 1.0 and float(e.clean_rate[0, 0, 0]) == 1.0
    assert float(e.flip_rate[1, 0, 0]) == 1.0 and float(e.clean_rate[1, 0, 0]) == 0.0
    with pytest.raises(ValueError, match="threshold=1.5: expected a probability in \\(0, 1\\]"):
        lj.evaluate_directions(lambda z: z, smearing_classifier, codes, directions, [4.0], threshold=1.5)
