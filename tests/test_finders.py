"""Direction finders recover planted answers; the evaluation compares them at equal distances."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.tree_util import Partial

import latentjax as lj
from latentjax.analysis import finders

import planted

N = 12


def unit(v):
    return v / jnp.linalg.norm(v)


def cosine(a, b):
    return float(jnp.dot(unit(a), unit(b)))


def two_class_codes(direction, per_class=16, seed=0):
    """Codes on either side of ``direction``: class 0 where z·u > 1, class 1 where z·u < -1."""
    z = jax.random.normal(jax.random.key(seed), (4096, N))
    side = np.asarray(z @ direction)
    return jnp.stack([z[side > 1.0][:per_class], z[side < -1.0][:per_class]])


def linear_classifier(direction, gain=4.0):
    return Partial(lambda u, x: jax.nn.softmax(jnp.stack([gain * x @ u, -gain * x @ u], -1)), direction)


U = unit(jax.random.normal(jax.random.key(7), (N,)))


# A class-neutral direction, orthogonal to U: the plants make it the *top* component, so a
# chooser that always took candidate 0 would return it.
_R = jax.random.normal(jax.random.key(17), (N,))
NEUTRAL = unit(_R - jnp.dot(_R, U) * U)


def sefa_plant():
    """A first layer whose top singular direction is class-neutral and whose second is U."""
    d = 20
    v = unit(jax.random.normal(jax.random.key(8), (d,)))
    r = jax.random.normal(jax.random.key(10), (d,))
    v_neutral = unit(r - jnp.dot(r, v) * v)  # the classifier reads v only
    weight = 14.0 * jnp.outer(NEUTRAL, v_neutral) + 8.0 * jnp.outer(U, v) + 0.1 * jax.random.normal(jax.random.key(9), (N, d))
    generate = Partial(lambda w, z: z @ w, weight)  # the only [N, D] leaf: its first layer
    return generate, linear_classifier(v, gain=0.5), weight


def ganspace_plant():
    """An early layer that stretches the class-neutral direction most and U second."""
    stretch = jnp.eye(N) + 12.0 * jnp.outer(NEUTRAL, NEUTRAL) + 6.0 * jnp.outer(U, U)
    return Partial(lambda m, z: z @ m, stretch), linear_classifier(U)


def finds_u(directions) -> bool:
    return cosine(directions[0], U) > 0.99 and cosine(directions[1], -U) > 0.99


def test_sefa_chooses_the_class_direction_below_a_neutral_top_component():
    generate, classify, weight = sefa_plant()
    _, vectors = jnp.linalg.eigh(weight @ weight.T)
    assert abs(cosine(vectors[:, -1], NEUTRAL)) > 0.99  # the top component is the neutral one
    directions = lj.find_directions("sefa", generate, classify, two_class_codes(U), jax.random.key(0), k=2)
    assert finds_u(directions)


def always_candidate_zero(generate, classify, codes, candidates, *, distance=3.0):
    """A wrong chooser: the first (top) candidate for every class, whatever it does to Q_j."""
    return jnp.broadcast_to(finders._unit_rows(jnp.asarray(candidates))[0], (codes.shape[0], codes.shape[-1]))


def test_a_chooser_that_always_takes_candidate_zero_fails_the_plants(monkeypatch):
    monkeypatch.setattr(finders, "choose_per_class", always_candidate_zero)
    generate, classify, _ = sefa_plant()
    codes = two_class_codes(U)
    assert not finds_u(lj.find_directions("sefa", generate, classify, codes, jax.random.key(0), k=2))
    layer, classify = ganspace_plant()
    assert not finds_u(lj.find_directions("ganspace", layer, classify, codes, jax.random.key(2), k=2, layer=layer))
    # The earlier plants put U on top, where this wrong chooser finds it for class 0.
    stretch = jnp.eye(N) + 9.0 * jnp.outer(U, U)
    layer = Partial(lambda m, z: z @ m, stretch)
    old = lj.find_directions("ganspace", layer, linear_classifier(U), codes, jax.random.key(2), k=2, layer=layer)
    assert abs(cosine(old[0], U)) > 0.99


def test_interfacegan_finds_the_normal_of_a_planted_linear_boundary():
    generate = lambda z: z
    codes = two_class_codes(U)
    directions = lj.find_directions("interfacegan", generate, linear_classifier(U), codes, jax.random.key(1), k=2)
    assert cosine(directions[0], U) > 0.99 and cosine(directions[1], -U) > 0.99


def test_ganspace_chooses_the_class_direction_below_a_neutral_top_component():
    layer, classify = ganspace_plant()
    codes = two_class_codes(U)
    top = finders.principal_latent_directions(layer, jax.random.normal(jax.random.key(3), (4096, N)), 2)
    assert abs(cosine(top[0], NEUTRAL)) > 0.99  # the top component is the neutral one
    directions = lj.find_directions("ganspace", layer, classify, codes, jax.random.key(2), k=2, layer=layer)
    assert finds_u(directions)


@pytest.mark.parametrize("name", ["apcr", "weights"])
def test_the_papers_methods_find_the_planted_dimensions(name):
    codes = planted.class_codes(samples_per_class=16)
    options = dict(m=3) if name == "apcr" else {}
    directions = lj.find_directions(name, planted.generate, planted.classify, codes, jax.random.key(3), k=planted.K, **options)
    np.testing.assert_array_equal(np.asarray(directions != 0), np.asarray(planted.planted_mask()))
    if name == "apcr":  # every planted dimension raises its class: measured signs are all +1
        assert bool(jnp.all(directions[planted.planted_mask()] == 1.0))


def test_random_sets_overlap_the_planted_sets_at_chance():
    codes = jnp.zeros((planted.NUM_CLASSES, 2, planted.LATENT_DIM))
    overlaps = []
    for seed in range(300):
        d = lj.find_directions("random", None, None, codes, jax.random.key(seed), k=planted.K)
        assert bool(jnp.all(jnp.sum(d != 0, axis=-1) == planted.K))
        overlaps.append(np.asarray(lj.intersection_ratio(d != 0, planted.planted_mask(), planted.K)))
    chance = lj.chance_level(planted.K, planted.LATENT_DIM)
    assert abs(np.mean(overlaps) - chance) < 0.02
    dense = lj.find_directions("random_dense", None, None, codes, jax.random.key(0), k=planted.K)
    np.testing.assert_allclose(jnp.linalg.norm(dense, axis=-1), 1.0, atol=1e-6)


def test_sparse_and_dense_directions_move_codes_by_equal_distances():
    generate = lambda z: jnp.linalg.norm(z, axis=-1, keepdims=True)  # the image is the distance
    classify = lambda x: jax.nn.softmax(jnp.concatenate([x, -x], -1))
    codes = jnp.zeros((2, 3, N))
    sparse = jnp.zeros((2, N)).at[:, :4].set(jnp.array([1.0, -1.0, 1.0, 1.0]))  # a signed 4-set
    dense = jnp.stack([U, -U])
    distances = [0.0, 1.0, 2.5]
    for directions in (sparse, dense):
        e = lj.evaluate_directions(generate, classify, codes, directions, distances)
        # pixel change on the [0, 1] scale is half the change in [-1, 1]: distance / 2
        np.testing.assert_allclose(e.pixel_change, [[0.0, 0.5, 1.25]] * 2, atol=1e-5)


def test_on_the_planted_model_the_papers_sets_beat_random_at_equal_distance():
    codes = planted.class_codes(samples_per_class=16)
    apcr = lj.find_directions("apcr", planted.generate, planted.classify, codes, jax.random.key(0), k=planted.K, m=3)
    random = lj.find_directions("random", None, None, codes, jax.random.key(0), k=planted.K)
    distances = [2.0, 4.0]
    found = lj.evaluate_directions(planted.generate, planted.classify, codes, apcr, distances)
    chance = lj.evaluate_directions(planted.generate, planted.classify, codes, random, distances)
    # Stacked finders are scored in one program, with the numbers of one call each.
    both = lj.evaluate_directions(planted.generate, planted.classify, codes, jnp.stack([apcr, random]), distances)
    for field in ("probability_drop", "flip_rate", "off_target_change", "pixel_change"):
        np.testing.assert_allclose(getattr(both, field)[0], getattr(found, field), atol=1e-6)
        np.testing.assert_allclose(getattr(both, field)[1], getattr(chance, field), atol=1e-6)
    assert float(found.flip_rate[:, -1].mean()) > 0.9
    assert float(found.flip_rate[:, -1].mean()) > float(chance.flip_rate[:, -1].mean()) + 0.3
    targets = jnp.array([1, 2, 3, 0])
    cross = lj.evaluate_directions(planted.generate, planted.classify, codes, apcr, distances, mode="cross", targets=targets)
    assert float(cross.target_share[:, -1].mean()) > 0.9
    # Planted sets touch only the source and target logits: the other classes barely move.
    assert float(cross.off_target_change[:, -1].mean()) < 0.05


def test_registering_a_finder_and_bad_input():
    @finders.register_finder("everything", sparse=False)
    def everything(generate, classify, codes, key, *, k):
        return jnp.ones((codes.shape[0], codes.shape[-1]))

    try:
        codes = jnp.zeros((2, 3, N))
        assert lj.find_directions("everything", None, None, codes, jax.random.key(0), k=1).shape == (2, N)
        with pytest.raises(ValueError, match="already registered"):
            finders.register_finder("everything", sparse=False)(lambda *a, **k: None)
    finally:
        del finders.FINDERS["everything"]
    with pytest.raises(ValueError, match="finder 'pca': expected one of"):
        lj.find_directions("pca", None, None, jnp.zeros((2, 3, N)), jax.random.key(0))
    with pytest.raises(ValueError, match=r"direction 1 is zero"):
        lj.evaluate_directions(lambda z: z, lambda x: jax.nn.softmax(x), jnp.zeros((2, 3, N)),
                               jnp.zeros((2, N)).at[0, 0].set(1.0), [1.0])
    with pytest.raises(ValueError, match=r"direction \(1, 0\) is zero"):
        lj.evaluate_directions(lambda z: z, lambda x: jax.nn.softmax(x), jnp.zeros((2, 3, N)),
                               jnp.ones((2, 2, N)).at[1, 0].set(0.0), [1.0])
    with pytest.raises(ValueError, match=r"expected \(\.\.\., 2, 12\)"):
        lj.evaluate_directions(lambda z: z, lambda x: jax.nn.softmax(x), jnp.zeros((2, 3, N)),
                               jnp.ones((3, N)), [1.0])


@pytest.mark.slow  # compiles for over 10 s: make test runs it, the quick tier does not
def test_the_shipped_generator_exposes_its_first_linear_layer():
    models = lj.load_pretrained("fashion_mnist")
    kernel = finders.first_linear_kernel(models.generate, 100)
    np.testing.assert_array_equal(kernel, models.generator_variables["params"]["Dense_0"]["kernel"])


@pytest.mark.slow  # compiles for over 10 s: make test runs it, the quick tier does not
def test_the_shipped_generators_first_block_is_its_batch_normalised_dense_output():
    from latentjax.models import make_generator_layer

    models = lj.load_pretrained("fashion_mnist")
    layer = make_generator_layer(models.spec, models.generator_variables)
    z = jax.random.normal(jax.random.key(0), (3, 100))
    # Flax's own BatchNorm output inside the whole generator, captured, then the ReLU.
    _, state = models.spec.generator().apply(
        models.generator_variables, z, train=False, capture_intermediates=True
    )
    expected = jax.nn.relu(state["intermediates"]["BatchNorm_0"]["__call__"][0])
    np.testing.assert_allclose(layer(z), expected, atol=1e-4)
    assert float(jnp.mean(layer(z) == 0)) > 0.1  # the ReLU is there: GANSpace's PCA is not SeFa's


def test_randomized_principal_axes_equal_the_full_svd():
    # A 600 x 300 matrix with a decaying spectrum, like a generator layer's activations.
    u, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(0), (600, 300)))
    v, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(1), (300, 300)))
    x = (u * (0.9 ** jnp.arange(300.0))[None, :]) @ v.T
    fast = finders.top_principal_axes(x, 10, jax.random.key(2))
    _, _, exact = jnp.linalg.svd(x, full_matrices=False)
    np.testing.assert_allclose(jnp.abs(jnp.sum(fast * exact[:10], axis=-1)), 1.0, atol=1e-3)
