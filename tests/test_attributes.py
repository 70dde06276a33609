"""Attribute classifiers: independent per-attribute probabilities, checked as strictly as softmax.

The graded plant (tests/graded.py) read as four independent attributes,
``Q_a = sigmoid(3 tanh(s_a / 3))``: a code may have several attributes, and its rows do not sum
to one. The answer is the plant's, as for classes. Each reading that is specific to attributes is
also shown failing when the softmax reading (argmax) is used in its place.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.tree_util import Partial

import latentjax as lj

import graded
from tracing import counting_traces

ATTRIBUTES = lj.attribute_classifier(graded.attribute_probabilities)


@pytest.fixture(scope="module")
def codes():
    return graded.class_codes(samples_per_class=16, classify=ATTRIBUTES)


@pytest.fixture(scope="module")
def apcr(codes):
    return lj.compute_apcr(graded.generate, ATTRIBUTES, codes, m=3)


@pytest.fixture(scope="module")
def weights(codes):
    return lj.optimize_weights(graded.generate, ATTRIBUTES, codes, jax.random.key(0), settings=lj.CONVERGED_READING).weights


def probabilities(codes):
    return graded.attribute_probabilities(graded.generate(codes.reshape(-1, graded.LATENT_DIM))).reshape(*codes.shape[:2], -1)


def test_each_attribute_set_holds_codes_that_have_it_and_a_code_can_join_several(codes):
    p = probabilities(codes)  # [A, S, A]
    own = np.asarray(p[jnp.arange(graded.NUM_CLASSES), :, jnp.arange(graded.NUM_CLASSES)])
    assert own.shape == (4, 16) and own.min() >= 0.9
    # With the softmax reading a code would join only its argmax's set; here some codes of Z_a
    # also have another attribute, and some of those have it more strongly than a.
    others = np.asarray(p).copy()
    others[np.arange(4), :, np.arange(4)] = 0.0
    assert np.any(others >= 0.5)
    assert np.any(np.argmax(np.asarray(p), axis=-1) != np.arange(4)[:, None])


def test_methods_a_and_b_rank_and_sign_the_attribute_plant(apcr, weights):
    assert graded.ranks_like_the_plant(apcr.apcr.T) and graded.signs_like_the_plant(apcr.directions.T)
    assert graded.ranks_like_the_plant(jnp.abs(weights)) and graded.signs_like_the_plant(weights)
    ir = lj.intersection_ratio(lj.top_k_mask(apcr.apcr.T, 3), lj.top_k_mask(jnp.abs(weights), 3), 3)
    assert np.asarray(ir).tolist() == [1.0] * 4


def test_moving_against_an_attribute_removes_it_and_nothing_flips_before_the_move(codes, apcr):
    direction = lj.signed_directions(lj.top_k_mask(apcr.apcr.T, 3), apcr.directions.T)[0]
    result = lj.manipulate(graded.generate, ATTRIBUTES, codes[0], direction, 0, alphas=[0.0, 3.0])
    assert result.argmax_rate.tolist() == [0.0, 1.0]  # Q_0 below 0.5 only after the move
    # The softmax reading (argmax leaves 0) counts codes with a stronger other attribute as
    # flipped before any move.
    assert float(jnp.mean(jnp.argmax(result.probabilities[0], -1) != 0)) > 0.0


def test_directions_are_scored_with_attribute_decisions(codes, apcr):
    directions = lj.signed_directions(lj.top_k_mask(apcr.apcr.T, 3), apcr.directions.T)
    same = lj.evaluate_directions(graded.generate, ATTRIBUTES, codes, directions, [0.0, 4.0])
    np.testing.assert_array_equal(same.flip_rate, [[0.0, 1.0]] * 4)
    cross = lj.evaluate_directions(graded.generate, ATTRIBUTES, codes, directions, [0.0, 6.0], mode="cross", targets=[1, 2, 3, 0])
    assert np.all(np.asarray(cross.target_share)[:, 1] >= 0.9)


def test_interfacegan_separates_each_attribute_by_its_own_boundary(codes):
    normals = lj.find_directions("interfacegan", graded.generate, ATTRIBUTES, codes, jax.random.key(0), k=3)
    planted = np.asarray(graded.MIX).T / np.linalg.norm(np.asarray(graded.MIX), axis=0)[:, None]
    cosines = np.sum(np.asarray(normals) * planted, axis=-1)
    assert cosines.min() > 0.95, cosines  # Q_a >= 0.5 is exactly s_a >= 0: a linear boundary


def test_a_sigmoid_classifier_is_refused_as_classes_with_a_pointer_to_attributes(codes):
    with pytest.raises(ValueError, match=r"attribute_classifier"):
        lj.compute_apcr(graded.generate, graded.attribute_probabilities, codes, m=2)


@pytest.mark.parametrize("bad, what", [
    (lambda x: 3.0 * x[:, :4], "logits"),
    (lambda x: jnp.where(x[:, :4] > 100.0, 0.5, jnp.nan), "NaN"),
])
def test_outputs_that_are_not_attribute_probabilities_are_refused(codes, bad, what):
    with pytest.raises(ValueError, match=r"attribute probabilities.*expected each in \[0, 1\]"):
        lj.compute_apcr(graded.generate, lj.attribute_classifier(bad), codes, m=2)


def test_values_above_one_inside_the_loops_are_counted_and_refused(codes):
    # Valid on the two codes the probe sees (the first two), above 1 on some of the others.
    level = float(jnp.max(jnp.abs(graded.generate(codes[0, :2])[:, :4]))) + 1e-3
    above = lj.attribute_classifier(lambda x: jax.nn.sigmoid(x[:, :4]) * jnp.where(jnp.abs(x[:, :4]) > level, 1.5, 1.0))
    with pytest.raises(ValueError, match=r"rows that are not attribute probabilities .*while computing APCR"):
        lj.compute_apcr(graded.generate, above, codes, m=2)


def test_an_attribute_classifier_is_a_pytree_of_its_weights_and_compiles_once(codes):
    scaled, traces = counting_traces(lambda w, x: graded.attribute_probabilities(w * x))
    first = lj.attribute_classifier(Partial(scaled, jnp.float32(1.0)))
    second = lj.attribute_classifier(Partial(scaled, jnp.float32(0.7)))
    assert jax.tree.leaves(first) == [jnp.float32(1.0)] and lj.is_attribute_classifier(first)
    a = lj.compute_apcr(graded.generate, first, codes, m=2)
    traced = len(traces)
    b = lj.compute_apcr(graded.generate, second, codes, m=2)
    assert traced > 0 and len(traces) == traced  # new weights, the same program
    assert not np.allclose(a.apcr, b.apcr)
    stacked = lj.stack_pytrees([first, second])
    assert lj.is_attribute_classifier(stacked) and jax.tree.leaves(stacked)[0].shape == (2,)


def test_a_saved_attribute_direction_edits_codes_and_scores_every_attribute(codes, apcr, tmp_path):
    direction = lj.signed_directions(lj.top_k_mask(apcr.apcr.T, 3), apcr.directions.T)
    path = lj.save_directions(tmp_path / "attributes.npz", direction, finder="apcr", names=["a", "b", "c", "d"])
    loaded = lj.load_directions(path, latent_dim=graded.LATENT_DIM)
    edit = lj.edit_codes(graded.generate, ATTRIBUTES, codes[2, :5], loaded.directions[2], [-4.0, 0.0, 4.0])
    q = np.asarray(edit.probabilities[:, :, 2])  # [T, M]: attribute 2 along its own direction
    assert edit.probabilities.shape == (3, 5, 4) and np.all(q[0] < 0.5) and np.all(q[1:] >= 0.5)
    assert np.all(np.diff(q, axis=0) > 0)
    with pytest.raises(ValueError, match="not attribute probabilities|did not return attribute probabilities"):
        lj.edit_codes(graded.generate, lj.attribute_classifier(lambda x: 2.0 * jax.nn.sigmoid(x[:, :4])), codes[2, :5], loaded.directions[2], [0.0])


def test_inverted_images_report_which_attributes_they_have(codes):
    images = graded.generate(codes[:, 0])  # one code of each attribute's set
    inversion = lj.invert_images(graded.generate, images, jax.random.key(0), latent_dim=graded.LATENT_DIM, steps=200, classify=ATTRIBUTES)
    assert inversion.predicted.shape == (4, 4) and inversion.predicted.dtype == jnp.bool_
    np.testing.assert_array_equal(inversion.predicted, graded.attribute_probabilities(images) >= 0.5)
