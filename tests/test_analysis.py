"""The analysis core against planted answers, reference loops and mathematical properties."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentjax as lj
from latentjax.analysis import runner

import planted
from tracing import counting_traces


@pytest.fixture(scope="module", autouse=True)
def short_host_blocks():
    """Method B's host loop in blocks of 3 steps here, not 10: each block length is a program
    unrolled and compiled per device and group size, and these tests compare runs with each other,
    which holds for any block length (and shorter blocks put more block edges inside the runs)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "HOST_BLOCK_STEPS", 3)
        yield


@pytest.fixture(scope="module")
def codes():
    return planted.class_codes()


@pytest.fixture(scope="module")
def apcr_result(codes):
    return lj.compute_apcr(planted.generate, planted.classify, codes, chunk_size=256)


@pytest.fixture(scope="module")
def weight_result(codes):
    return lj.optimize_weights(planted.generate, planted.classify, codes, jax.random.key(0))


@pytest.fixture(scope="module")
def converged_result(codes):
    return lj.optimize_weights(planted.generate, planted.classify, codes, jax.random.key(0), settings=lj.CONVERGED_READING)


# ----------------------------------------------------------------------------- latent sets


def test_class_latents_are_confident_members_of_their_class(codes):
    probs = planted.classify(planted.generate(codes.reshape(-1, planted.LATENT_DIM)))
    probs = probs.reshape(planted.NUM_CLASSES, -1, planted.NUM_CLASSES)
    for j in range(planted.NUM_CLASSES):
        assert bool(jnp.all(jnp.argmax(probs[j], -1) == j))
        assert bool(jnp.all(probs[j, :, j] >= 0.9))
    assert len(np.unique(np.asarray(codes).reshape(-1, planted.LATENT_DIM), axis=0)) == codes.shape[0] * codes.shape[1]


def test_class_latents_report_short_classes():
    # No code reaches confidence 0.9999 with a single draw of 256: the message names the classes.
    with pytest.raises(RuntimeError, match=r"classes \[0, 1, 2, 3\] have only"):
        lj.sample_class_latents(
            planted.generate, planted.classify, jax.random.key(0), latent_dim=16, num_classes=4,
            samples_per_class=300, threshold=0.9, batch_size=256, max_draws=256,
        )


def test_inversion_recovers_semantic_codes_and_class():
    z_true = planted.class_codes(samples_per_class=2, seed=5).reshape(-1, planted.LATENT_DIM)
    images = planted.generate(z_true)
    inv = lj.invert_images(
        planted.generate, images, jax.random.key(1), latent_dim=16, beta=1e-4, steps=400,
        classify=planted.classify,
    )
    assert float(jnp.max(inv.reconstruction_error)) < 1e-3
    np.testing.assert_array_equal(inv.predicted, jnp.repeat(jnp.arange(4), 2))
    assert bool(jnp.all(inv.losses[:, -1] < inv.losses[:, 0]))


# ----------------------------------------------------------------------------- Method A


def test_apcr_ranks_planted_dimensions_first(apcr_result):
    high = lj.top_k_mask(apcr_result.apcr.T, planted.K)
    np.testing.assert_array_equal(high, planted.planted_mask())
    # Unplanted dimensions never change the class probabilities.
    np.testing.assert_allclose(apcr_result.apcr[np.array(planted.UNPLANTED)], 0.0, atol=1e-6)


def test_apcr_directions_and_curves(apcr_result, codes):
    m = 6
    assert apcr_result.curves.shape == (16, 2 * m + 1, 4)
    for j, dims in enumerate(planted.PLANTED):
        for i in dims:
            assert int(apcr_result.directions[i, j]) == 1  # raising z_i raises Q_j
            curve = apcr_result.curves[i, :, j]
            assert bool(jnp.all(jnp.diff(curve) >= -1e-6))  # monotone in the offset
    s0 = planted.classify(planted.generate(codes.reshape(-1, 16))).reshape(4, -1, 4)
    for j in range(4):
        np.testing.assert_allclose(apcr_result.curves[:, m, j], jnp.mean(s0[j, :, j]), rtol=1e-5)


def _reference_apcr(generate, classify, codes, delta, m, relative, signed, eps):
    """A plain Python loop over classes, dimensions and offsets with a jitted forward."""
    forward = jax.jit(lambda z: classify(generate(z)))
    num_sets, _, n = codes.shape
    apcr = np.zeros((n, num_sets))
    curves = np.zeros((n, 2 * m + 1, num_sets))
    for j in range(num_sets):
        s0 = np.asarray(forward(codes[j])[:, j])
        for i in range(n):
            changes = []
            for idx, k in enumerate(range(-m, m + 1)):
                shifted = codes[j].at[:, i].add(k * delta)
                sk = np.asarray(forward(shifted)[:, j])
                curves[i, idx, j] = sk.mean()
                if k == 0:
                    continue
                change = sk - s0
                change = change if signed else np.abs(change)
                changes.append(change / (s0 + eps) if relative else change)
            apcr[i, j] = np.mean(changes)
    return apcr, curves


@pytest.mark.parametrize("relative, signed", [(True, False), (False, False), (True, True)])
def test_apcr_matches_a_python_loop(codes, relative, signed):
    small = codes[:, :8]
    result = lj.compute_apcr(
        planted.generate, planted.classify, small, delta=0.4, m=3, relative=relative,
        signed=signed, chunk_size=100,
    )
    apcr, curves = _reference_apcr(
        planted.generate, planted.classify, small, 0.4, 3, relative, signed, 1e-6
    )
    np.testing.assert_allclose(result.apcr, apcr, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(result.curves, curves, rtol=1e-5, atol=1e-7)


def test_permuting_latent_dimensions_permutes_apcr_rows(codes, apcr_result):
    perm = np.random.default_rng(0).permutation(16)
    inverse = np.argsort(perm)
    generate = lambda z: planted.generate(z[:, inverse])
    permuted = lj.compute_apcr(generate, planted.classify, codes[..., perm], chunk_size=256)
    np.testing.assert_allclose(permuted.apcr, apcr_result.apcr[perm], rtol=1e-5, atol=1e-7)


def test_chunk_size_does_not_change_results(codes, apcr_result):
    other = lj.compute_apcr(planted.generate, planted.classify, codes, chunk_size=97)
    np.testing.assert_allclose(other.apcr, apcr_result.apcr, rtol=1e-6, atol=1e-7)


def test_apcr_does_not_recompile_for_the_same_shapes(codes):
    generate, traces = counting_traces(planted.generate)
    lj.compute_apcr(generate, planted.classify, codes + 1.0, chunk_size=256)
    traced = len(traces)
    lj.compute_apcr(generate, planted.classify, codes - 1.0, chunk_size=256, delta=0.3)
    assert traced > 0 and len(traces) == traced  # the second call traced nothing: no new program


# ----------------------------------------------------------------------------- Method B


def test_weights_put_planted_dimensions_in_the_controlling_set(weight_result):
    control = lj.controlling_set(weight_result.weights, k=planted.K)
    np.testing.assert_array_equal(control, planted.planted_mask())
    for j, dims in enumerate(planted.PLANTED):
        assert bool(jnp.all(weight_result.weights[j, np.array(dims)] > 0))  # direction raising Q_j
    assert bool(jnp.all(weight_result.losses[:, -20:].mean(-1) < weight_result.losses[:, :20].mean(-1)))


def test_weights_stay_in_the_box(codes):
    result = lj.optimize_weights(
        planted.generate, planted.classify, codes, jax.random.key(3), steps=10,
        learning_rate=0.5, init=1.0, lam=0.0,
    )
    assert float(jnp.max(jnp.abs(result.weights))) <= 1.0
    assert float(jnp.max(jnp.abs(result.weights))) == 1.0  # planted dims push past 1 and are projected back


@pytest.mark.slow  # compiles for over 10 s: make test runs it, the quick tier does not
def test_tanh_parametrisation_finds_the_same_set(codes):
    result = lj.optimize_weights(
        planted.generate, planted.classify, codes, jax.random.key(0), parametrization="tanh",
        learning_rate=0.05, steps=300,
    )
    assert float(jnp.max(jnp.abs(result.weights))) < 1.0
    np.testing.assert_array_equal(lj.controlling_set(result.weights, k=2), planted.planted_mask())


#: The paper's reading of Method B: random batches and xi, exact |.| and max, constant rate.
SAMPLED = dict(solver="adam", batch_size=8, xi_nodes=0, smoothing=0.0, schedule="constant")


def test_weights_are_bit_identical_for_the_same_seed(codes, weight_result, converged_result):
    again = lj.optimize_weights(planted.generate, planted.classify, codes, jax.random.key(0))
    np.testing.assert_array_equal(again.weights, weight_result.weights)
    np.testing.assert_array_equal(again.losses, weight_result.losses)
    other = lj.optimize_weights(planted.generate, planted.classify, codes, jax.random.key(1))
    assert not np.array_equal(other.losses, weight_result.losses)
    # The converged reading draws nothing: another key gives the same run.
    converged = lj.optimize_weights(planted.generate, planted.classify, codes, jax.random.key(1), settings=lj.CONVERGED_READING)
    np.testing.assert_array_equal(converged.losses, converged_result.losses)


@pytest.mark.slow  # compiles for over 10 s: make test runs it, the quick tier does not
def test_weight_snapshots_equal_shorter_runs(codes):
    long = lj.optimize_weights(
        planted.generate, planted.classify, codes, jax.random.key(5), steps=12,
        snapshot_steps=(1, 5, 12), parametrization="tanh", **SAMPLED,
    )
    assert long.snapshots.shape == (codes.shape[0], 3, codes.shape[-1])
    np.testing.assert_array_equal(long.snapshots[:, 2], long.weights)
    for index, steps in enumerate((1, 5)):
        short = lj.optimize_weights(
            planted.generate, planted.classify, codes, jax.random.key(5), steps=steps,
            parametrization="tanh", **SAMPLED,
        )
        assert short.snapshots is None
        np.testing.assert_allclose(long.snapshots[:, index], short.weights, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(long.losses[:, :steps], short.losses)
    with pytest.raises(ValueError, match=r"snapshot_steps=\(0,\): expected integers in 1..steps=3"):
        lj.optimize_weights(planted.generate, planted.classify, codes, jax.random.key(5), steps=3,
                            snapshot_steps=(0,), **SAMPLED)
    with pytest.raises(ValueError, match=r"with schedule='cosine': expected schedule='constant'"):
        lj.optimize_weights(planted.generate, planted.classify, codes, jax.random.key(5), steps=3,
                            snapshot_steps=(2,), solver="adam", schedule="cosine")
    # L-BFGS has no schedule: its step t is a run of t steps.
    lbfgs = dict(solver="lbfgs", batch_size=0, xi_nodes=2, smoothing=0.01)
    converged = lj.optimize_weights(planted.generate, planted.classify, codes, jax.random.key(5),
                                    steps=6, snapshot_steps=(3, 6), **lbfgs)
    np.testing.assert_array_equal(converged.snapshots[:, 1], converged.weights)
    three = lj.optimize_weights(planted.generate, planted.classify, codes, jax.random.key(5), steps=3, **lbfgs)
    np.testing.assert_allclose(converged.snapshots[:, 0], three.weights, rtol=1e-6, atol=1e-7)


@pytest.mark.slow  # compiles for over 10 s: make test runs it, the quick tier does not
def test_weights_host_loop_equals_the_device_loop_and_keys_per_set(codes):
    make = jax.random.key
    common = dict(steps=13, snapshot_steps=(4, 13), **SAMPLED)
    device = lj.optimize_weights(planted.generate, planted.classify, codes, make(2), loop="device", **common)
    host = lj.optimize_weights(planted.generate, planted.classify, codes, make(2), loop="host", **common)
    for a, b in zip(device, host):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # One key per code set, fold_in(key, c): what a single key gives.
    keys = jax.vmap(lambda c: jax.random.fold_in(make(2), c))(jnp.arange(codes.shape[0]))
    per_set = lj.optimize_weights(planted.generate, planted.classify, codes, keys, **common)
    np.testing.assert_allclose(per_set.weights, host.weights, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"expected one key, or one per code set"):
        lj.optimize_weights(planted.generate, planted.classify, codes, keys[:1], steps=2)
    with pytest.raises(ValueError, match=r"loop='gpu': expected 'auto', 'device' or 'host'"):
        lj.optimize_weights(planted.generate, planted.classify, codes, make(2), steps=2, loop="gpu")


def test_weights_host_loop_gives_the_same_bits_on_one_device_and_on_many(codes, monkeypatch):
    """The host loop deals groups of HOST_GROUP_ROWS code sets to the devices in turn. Each
    group's numbers are its own: the same bits on 8 devices and on 1, and a group run alone
    gives its rows' bits."""
    from latentjax.analysis.parallel import usable_cores

    sets = jnp.concatenate([codes, 1.1 * codes, codes[:3]])  # 11 code sets: groups of 5, 5, 1
    classes = jnp.array([0, 1, 2, 3] * 2 + [0, 1, 2])
    keys = jax.vmap(lambda c: jax.random.fold_in(jax.random.key(2), c))(jnp.arange(11))
    run = lambda s, c, k: lj.optimize_weights(
        planted.generate, planted.classify, s, k, classes=c, loop="host", steps=13, snapshot_steps=(4, 13), **SAMPLED)
    assert runner.HOST_GROUP_ROWS == 5 and len(jax.local_devices()) == 8
    groups, _ = runner.device_groups(11)
    # Three groups on as many devices as there are cores (CPU devices beyond them only compile).
    assert {device for _, device in groups} == set(jax.local_devices()[: min(3, usable_cores())])
    many = run(sets, classes, keys)
    second_group = run(sets[5:10], classes[5:10], keys[5:10])
    chex.assert_trees_all_equal(jax.tree.map(lambda x: x[5:10], many), second_group)
    devices = jax.local_devices()
    monkeypatch.setattr(jax, "local_devices", lambda *args, **kwargs: devices[:1])
    chex.assert_trees_all_equal(run(sets, classes, keys), many)


def test_raw_prng_keys_work_as_one_key_or_one_per_set(codes):
    keys = jax.vmap(lambda c: jax.random.fold_in(jax.random.PRNGKey(4), c))(jnp.arange(codes.shape[0]))
    assert keys.shape == (codes.shape[0], 2)  # raw uint32 keys: a batch has two axes
    per_set = lj.optimize_weights(planted.generate, planted.classify, codes, keys, steps=2, **SAMPLED)
    single = lj.optimize_weights(planted.generate, planted.classify, codes, jax.random.PRNGKey(4), steps=2, **SAMPLED)
    np.testing.assert_array_equal(per_set.weights, single.weights)


@pytest.mark.slow  # compiles for over 10 s: make test runs it, the quick tier does not
def test_converged_weights_do_not_move_with_rounding(codes, converged_result):
    """The converged reading ends at one point: codes moved by 1e-6 (relative), and the host loop
    against the device loop, give the same sets and w to well under the set gaps."""
    run = lambda c, **kw: lj.optimize_weights(planted.generate, planted.classify, c, jax.random.key(0),
                                              settings=lj.CONVERGED_READING, **kw)
    for other in (run(codes * (1 + 1e-6)), run(codes, loop="device")):
        np.testing.assert_array_equal(
            lj.controlling_set(other.weights, k=planted.K), lj.controlling_set(converged_result.weights, k=planted.K)
        )
        np.testing.assert_allclose(other.weights, converged_result.weights, atol=1e-4)
    # The last steps barely move the loss: the learning rate has decayed to (almost) zero.
    assert float(jnp.max(jnp.abs(converged_result.losses[:, -1] - converged_result.losses[:, -2]))) < 1e-5
    # L-BFGS on the same loss: its perturbed and host/device runs agree as closely.
    lbfgs = dict(solver="lbfgs", batch_size=0, xi_nodes=2, smoothing=0.01, steps=40)
    first = lj.optimize_weights(planted.generate, planted.classify, codes, jax.random.key(0), **lbfgs)
    moved = lj.optimize_weights(planted.generate, planted.classify, codes * (1 + 1e-6), jax.random.key(0), **lbfgs)
    np.testing.assert_allclose(moved.weights, first.weights, atol=1e-4)


def test_lbfgs_needs_the_deterministic_loss(codes):
    with pytest.raises(ValueError, match="solver='lbfgs' with batch_size=8, xi_nodes=0: L-BFGS's line search needs"):
        lj.optimize_weights(planted.generate, planted.classify, codes, jax.random.key(0), solver="lbfgs", batch_size=8)


@pytest.mark.slow  # compiles for over 10 s: make test runs it, the quick tier does not
def test_sampled_weights_wander_with_rounding(codes):
    """The paper's reading at a constant rate does not settle: the same perturbation moves w by
    far more than it moves the converged reading (what the converged default is for)."""
    run = lambda c: lj.optimize_weights(planted.generate, planted.classify, c, jax.random.key(0),
                                        steps=150, learning_rate=0.05, **SAMPLED).weights
    assert float(jnp.max(jnp.abs(run(codes) - run(codes * (1 + 1e-6))))) > 1e-3


def test_xi_quadrature_and_smoothing_reduce_to_the_exact_objective():
    u, weights = lj.analysis.objective.xi_quadrature(3, 1.0, 3.0)
    cubic = lambda x: x ** 3 - 2 * x
    np.testing.assert_allclose(float(weights @ cubic(u)), (3 ** 4 - 1) / 4 / 2 - (9 - 1) / 2, rtol=1e-5)
    assert float(weights.sum()) == pytest.approx(1.0)
    x = jnp.array([-2.0, 0.5])
    np.testing.assert_allclose(lj.analysis.objective.smooth_abs(x, 0.0), jnp.abs(x))
    np.testing.assert_allclose(lj.analysis.objective.smooth_max(x[0], x[1], 0.0), 0.5)
    assert float(lj.analysis.objective.smooth_max(x[1], x[1], 0.1)) > 0.5  # rounded at the tie


def test_weight_objective_counts_the_better_sign():
    generate = lambda z: z
    classify = lambda x: jax.nn.softmax(jnp.stack([x[:, 0], -x[:, 0]], -1))
    codes = jnp.zeros((1, 2))
    w = jnp.array([1.0, 0.0])
    base = classify(codes)[:, 0]
    loss = lj.weight_objective(w, generate, classify, codes, jnp.array([1.0]), 0, base, 0.0)
    expected = 1.0 - abs(float(jax.nn.sigmoid(2.0)) - 0.5)
    assert abs(float(loss) - expected) < 1e-6


# ----------------------------------------------------------------------------- sets and IR


def test_intersection_ratio_is_one_for_planted_models(apcr_result, weight_result):
    high = lj.top_k_mask(apcr_result.apcr.T, planted.K)
    control = lj.controlling_set(weight_result.weights, k=planted.K)
    np.testing.assert_array_equal(lj.intersection_ratio(high, control, planted.K), [1.0] * 4)


def test_sets_have_size_k_and_random_sets_match_chance():
    scores = jax.random.normal(jax.random.key(0), (3, 50))
    for mask in (lj.top_k_mask(scores, 7), lj.bottom_k_mask(scores, 7)):
        np.testing.assert_array_equal(jnp.sum(mask, -1), [7, 7, 7])
    assert not bool(jnp.any(lj.top_k_mask(scores, 7) & lj.bottom_k_mask(scores, 7)))
    keys = jax.random.split(jax.random.key(1), 400)
    ratios = jax.vmap(
        lambda k: lj.intersection_ratio(
            lj.random_k_mask(jax.random.fold_in(k, 0), 3, 50, 5),
            lj.random_k_mask(jax.random.fold_in(k, 1), 3, 50, 5),
            5,
        )
    )(keys)
    assert abs(float(ratios.mean()) - lj.chance_level(5, 50)) < 0.01


def test_absolute_threshold_controlling_set():
    w = jnp.array([[0.9, -0.6, 0.1, 0.0]])
    np.testing.assert_array_equal(lj.controlling_set(w, threshold=0.5), [[True, True, False, False]])


def test_ranked_indices_and_signed_directions():
    scores = jnp.array([[0.2, 0.9, 0.5, 0.1]])
    assert lj.ranked_indices(scores) == [[1, 2, 0, 3]]
    assert lj.ranked_indices(scores, lj.top_k_mask(scores, 2)) == [[1, 2]]
    v = lj.signed_directions(jnp.array([[True, False, True, False]]), jnp.array([[-1.0, 1.0, 0.0, 1.0]]))
    np.testing.assert_array_equal(v, [[-1.0, 0.0, 1.0, 0.0]])


# ----------------------------------------------------------------------------- manipulation


def test_top_k_shift_flips_the_class_and_bottom_k_does_not(codes, apcr_result):
    scores = apcr_result.apcr.T
    top = lj.signed_directions(lj.top_k_mask(scores, 2), apcr_result.directions.T)
    bottom = lj.signed_directions(lj.bottom_k_mask(scores, 2), apcr_result.directions.T)
    alphas = jnp.array([0.0, 1.0, 3.0])
    for j in range(4):
        moved = lj.manipulate(planted.generate, planted.classify, codes[j], top[j], j, alphas=alphas)
        still = lj.manipulate(planted.generate, planted.classify, codes[j], bottom[j], j, alphas=alphas)
        assert float(moved.argmax_rate[0]) == 0.0 and float(moved.argmax_rate[-1]) == 1.0
        assert float(moved.mean_probability[-1]) < 0.05
        np.testing.assert_allclose(still.argmax_rate, 0.0)
        np.testing.assert_allclose(still.mean_probability, still.mean_probability[0], rtol=1e-6)
        assert moved.images.shape == (3, 8, 12)


def test_cross_class_shift_reaches_the_target(codes, weight_result):
    control = lj.controlling_set(weight_result.weights, k=2)
    toward_2 = lj.signed_directions(control, weight_result.weights)[2]
    result = lj.manipulate(
        planted.generate, planted.classify, codes[0], toward_2, 2, mode="cross",
        alphas=jnp.array([0.0, 4.0]),
    )
    assert float(result.argmax_rate[0]) == 0.0 and float(result.argmax_rate[1]) > 0.9


# ----------------------------------------------------------------------------- structure


def test_knn_accuracy_separates_planted_classes(codes):
    flat = codes.reshape(-1, 16)
    labels = jnp.repeat(jnp.arange(4), codes.shape[1])
    # The classes live in the planted coordinates; there the neighbours agree.
    semantic = flat @ planted.SELECT
    assert lj.knn_class_accuracy(semantic, labels, k=5) > 0.95
    shuffled = jax.random.permutation(jax.random.key(0), labels)
    assert lj.knn_class_accuracy(semantic, shuffled, k=5) < 0.5


def test_tsne_embedding_shape_and_seed():
    codes = jax.random.normal(jax.random.key(0), (40, 5))
    a = lj.tsne_embedding(codes, seed=0, perplexity=10.0)
    b = lj.tsne_embedding(codes, seed=0, perplexity=10.0)
    assert a.shape == (40, 2)
    np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- bad input


def _apcr(codes, **kw):
    return lj.compute_apcr(planted.generate, planted.classify, codes, **kw)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda c: _apcr(c[..., :7]), "generate failed on codes of shape (2, 7) (latent width 7)"),
        (lambda c: _apcr(c[0]), "codes has shape (32, 16): expected 3 dimensions."),
        (lambda c: _apcr(c[:3]), "codes has 3 code sets but classify returns 4 classes"),
        (lambda c: _apcr(c, m=0), "m=0: expected a positive integer."),
        (lambda c: _apcr(c, delta=0.0), "delta=0.0: expected a positive number."),
        (lambda c: _apcr(c, delta=-1.0), "delta=-1.0: expected a positive number."),
        (lambda c: _apcr(c[:1], classes=jnp.array([4])), "class index 4 is out of range: expected 0 <= class index < 4."),
        (lambda c: _apcr(c[:2], classes=jnp.array([0])), "classes has 1 entries for 2 code sets"),
        (lambda c: _apcr(c.at[1, 2, 3].set(jnp.nan)), "codes contains NaN or inf (first at index (1, 2, 3))."),
        (lambda c: lj.compute_apcr(planted.generate, lambda x: x[:, :4], c), "classify did not return probabilities"),
        (lambda c: lj.top_k_mask(c[0], 17), "k=17: expected an integer in [1, 16] (the latent width)."),
        (lambda c: lj.controlling_set(c[0], k=0), "k=0: expected an integer in [1, 16]"),
        (lambda c: lj.optimize_weights(planted.generate, planted.classify, c, jax.random.key(0), xi_range=(2.0, 1.0)), "xi_range=(2.0, 1.0): expected (xi_min, xi_max) with 0 < xi_min <= xi_max."),
        (lambda c: lj.optimize_weights(planted.generate, planted.classify, c, jax.random.key(0), parametrization="sigmoid"), "parametrization='sigmoid': expected one of ('box', 'tanh')."),
        (lambda c: lj.manipulate(planted.generate, planted.classify, c[0], jnp.ones(15), 0), "direction has shape (15,): expected (16,)"),
        (lambda c: lj.manipulate(planted.generate, planted.classify, c[0], jnp.ones(16), 9), "class index 9 is out of range"),
        (lambda c: lj.intersection_ratio(jnp.ones((4, 16), bool), jnp.ones((3, 16), bool), 2), "the sets have shapes (4, 16) and (3, 16)"),
        (lambda c: lj.intersection_ratio(lj.top_k_mask(c[:, 0], 1), lj.top_k_mask(c[:, 1], 2), 2), "high_set row 0 has 1 dimensions: expected k=2"),
        (lambda c: lj.intersection_ratio(lj.top_k_mask(c[:, 0], 2), lj.top_k_mask(c[:, 1], 3), 2), "control_set row 0 has 3 dimensions: expected k=2"),
        (lambda c: lj.intersection_ratio(lj.top_k_mask(c[:, 0], 2).astype(jnp.int32), lj.top_k_mask(c[:, 1], 2), 2), "high_set has dtype int32: expected a boolean mask"),
        (lambda c: _apcr(c.astype(jnp.int32)), "codes has dtype int32: expected floating point latent codes"),
        (lambda c: _apcr(np.asarray(c).tolist()), "codes is a list: expected a float array"),
        (lambda c: lj.manipulate(planted.generate, planted.classify, c[0].astype(jnp.int32), jnp.ones(16), 0), "codes has dtype int32"),
    ],
)
def test_bad_input_fails_before_compute_with_a_clear_message(codes, call, message):
    with pytest.raises(ValueError) as info:
        call(codes)
    assert message in str(info.value)


def test_absolute_threshold_sets_need_not_have_k_members():
    high = jnp.array([[True, True, False, False]])
    wide = jnp.array([[True, True, True, False]])
    assert lj.intersection_ratio(high, wide, 2, exact_control_size=False).tolist() == [1.0]


def _broken_far_out(x):
    """The planted classifier, except that rows far along class 0's pixel are not normalised."""
    probs = planted.classify(x)
    return jnp.where((x[:, :1] > 2.5), 2.0 * probs, probs)


@pytest.mark.slow  # compiles for over 10 s: make test runs it, the quick tier does not
def test_outputs_that_are_not_probabilities_are_caught_on_any_batch(codes):
    # The first two codes (what the up-front probe sees) are fine; later rows are not.
    codes = codes.at[:, :2].set(0.0)
    where = "rows that are not probabilities"
    with pytest.raises(ValueError, match=where + r".*while computing APCR"):
        lj.compute_apcr(planted.generate, _broken_far_out, codes)
    with pytest.raises(ValueError, match=where + r".*while sampling the latent sets"):
        lj.sample_class_latents(
            planted.generate, _broken_far_out, jax.random.key(0), latent_dim=planted.LATENT_DIM,
            num_classes=planted.NUM_CLASSES, samples_per_class=4, batch_size=256,
        )
    with pytest.raises(ValueError, match=where + r".*while optimising Method B"):
        lj.optimize_weights(planted.generate, _broken_far_out, 3.0 * codes, jax.random.key(0), steps=3)
    scores = jnp.ones((planted.NUM_CLASSES, planted.LATENT_DIM))
    with pytest.raises(ValueError, match=where + r".*while moving codes along the top-K sets"):
        lj.compare_sets(planted.generate, _broken_far_out, codes, scores, scores, 2, jax.random.key(0))


# ----------------------------------------------------------------------------- seeds and devices


@pytest.mark.slow  # compiles for over 10 s: make test runs it, the quick tier does not
def test_weights_vmap_over_seeds_matches_single_runs(codes):
    keys = jax.vmap(jax.random.key)(jnp.arange(2))
    run = lambda key: lj.optimize_weights(planted.generate, planted.classify, codes, key).weights
    stacked = jax.vmap(run)(keys)
    for s in range(2):
        single = run(jax.random.key(s))
        # Batched kernels round differently, and from the symmetric start w = 0.5 the loop
        # amplifies rounding, so the weights agree in their sets, not to the last bit.
        np.testing.assert_array_equal(lj.controlling_set(stacked[s], k=2), lj.controlling_set(single, k=2))


def test_apcr_runs_unchanged_on_codes_sharded_across_devices(codes, apcr_result):
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    assert len(jax.devices()) == 8  # conftest asks XLA for eight CPU devices
    mesh = Mesh(np.array(jax.devices()[:4]), ("classes",))  # one device per class
    sharded = jax.device_put(codes, NamedSharding(mesh, PartitionSpec("classes")))
    result = lj.compute_apcr(planted.generate, planted.classify, sharded, chunk_size=256)
    np.testing.assert_allclose(result.apcr, apcr_result.apcr, rtol=1e-5, atol=1e-7)


def test_compare_sets_top_flips_bottom_does_not_random_in_between(codes, apcr_result):
    results = lj.compare_sets(
        planted.generate, planted.classify, codes, apcr_result.apcr.T, apcr_result.directions.T,
        2, jax.random.key(0), alphas=jnp.array([0.0, 3.0]),
    )
    assert set(results) == {"top", "bottom", "random"}
    assert results["top"].argmax_rate.shape == (4, 2)
    np.testing.assert_array_equal(results["top"].argmax_rate[:, -1], [1.0] * 4)
    np.testing.assert_array_equal(results["bottom"].argmax_rate, 0.0)
    assert results["top"].images.shape == (4, 2, 8, 12)
    # Cross-class: class 0's codes along class 2's top set become class 2.
    cross = lj.compare_sets(
        planted.generate, planted.classify, codes, apcr_result.apcr.T, apcr_result.directions.T,
        2, jax.random.key(0), mode="cross", targets=jnp.array([2, 3, 0, 1]),
        alphas=jnp.array([0.0, 4.0]),
    )
    assert float(jnp.min(cross["top"].argmax_rate[:, -1])) > 0.9
    np.testing.assert_array_equal(cross["bottom"].argmax_rate, 0.0)
