"""Models are pytrees: one compile per shape, many seeds in one program, every device busy."""

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec

import latentjax as lj
from latentjax.analysis import runner
from latentjax.analysis import apcr as apcr_module
from latentjax.models import ModelSpec, make_classify, make_generate

import planted
from tracing import counting_traces

SPEC = ModelSpec(
    latent_dim=12, image_size=8, channels=1, num_classes=4, generator_width=4,
    discriminator_width=4, classifier_width=4, classifier_hidden=8, classifier_dropout=0.0,
)


def flax_models(seed):
    """A small Flax generator and classifier (the shipped architectures), weights from ``seed``."""
    g_key, c_key = jax.random.split(jax.random.key(seed))
    g_vars = SPEC.generator().init(g_key, jnp.zeros((1, SPEC.latent_dim)))
    c_vars = SPEC.classifier().init(c_key, jnp.zeros((1, 8, 8, 1)))
    return make_generate(SPEC, g_vars), make_classify(SPEC, c_vars)


@contextlib.contextmanager
def count_compilations():
    """Counts XLA compilations (every jit, including small eager ops) inside the block."""
    compiled = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiled.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield compiled
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def SEEDS_CODES():
    return jax.random.normal(jax.random.key(11), (4, 2, SPEC.latent_dim))


@pytest.fixture(scope="module")
def codes():
    return jax.random.normal(jax.random.key(7), (4, 3, SPEC.latent_dim))


@pytest.mark.slow  # compiles for over 10 s: make test runs it, the quick tier does not
def test_models_are_pytrees_of_their_weights():
    generate, classify = flax_models(0)
    other, _ = flax_models(1)
    assert len(jax.tree.leaves(generate)) > 0
    assert jax.tree.structure(generate) == jax.tree.structure(other)  # one architecture
    z = jnp.zeros((2, SPEC.latent_dim))
    probs = jax.jit(lambda g, c: c(g(z)))(generate, classify)  # models as jit arguments
    assert probs.shape == (2, 4)
    np.testing.assert_allclose(jnp.sum(probs, -1), 1.0, rtol=1e-6)


# ----------------------------------------------------------------------------- compile once


@pytest.mark.slow  # compiles for over 10 s: make test runs it, the quick tier does not
def test_apcr_compiles_once_for_new_weights_and_new_float_settings(codes):
    generate_a, classify_a = flax_models(0)
    generate_b, classify_b = flax_models(1)
    first = lj.compute_apcr(generate_a, classify_a, codes, m=2, delta=0.5, eps=1e-6)
    with count_compilations() as compiled:
        second = lj.compute_apcr(generate_b, classify_b, codes, m=2, delta=0.3, eps=1e-4)
    assert compiled == []
    assert not np.allclose(first.apcr, second.apcr)
    np.testing.assert_allclose(second.offsets, 0.3 * np.arange(-2, 3), rtol=1e-6)


def test_weights_compile_once_for_new_weights_and_float_settings_and_not_at_all_when_repeated(codes):
    generate_a, classify_a = flax_models(0)
    generate_b, classify_b = flax_models(1)
    key = jax.random.key(0)
    common = dict(steps=4, batch_size=2)
    lj.optimize_weights(generate_a, classify_a, codes, key, **common)
    with count_compilations() as compiled:
        again = lj.optimize_weights(generate_a, classify_a, codes, key, **common)
    assert compiled == []  # an identical second call compiles nothing
    with count_compilations() as compiled:
        other = lj.optimize_weights(
            generate_b, classify_b, codes, jax.random.key(1), lam=0.05, xi_range=(0.5, 2.0),
            learning_rate=0.03, init=0.25, **common,
        )
    assert compiled == []
    assert not np.allclose(again.weights, other.weights)


def test_latents_inversion_and_manipulation_compile_once_for_new_models_and_settings(codes):
    generate_a, classify_a = flax_models(0)
    generate_b, classify_b = flax_models(1)
    images = generate_a(codes[0])

    def run(generate, classify, threshold, beta, learning_rate, alphas):
        lj.sample_class_latents(
            generate, classify, jax.random.key(0), latent_dim=SPEC.latent_dim, num_classes=4,
            samples_per_class=2, threshold=threshold, batch_size=64, max_draws=128,
            require_full=False,
        )
        lj.invert_images(
            generate, images, jax.random.key(1), latent_dim=SPEC.latent_dim, beta=beta, steps=3,
            learning_rate=learning_rate, classify=classify,
        )
        lj.manipulate(generate, classify, codes[0], jnp.ones(SPEC.latent_dim), 1, alphas=alphas)

    run(generate_a, classify_a, 0.3, 0.1, 0.05, jnp.array([0.0, 1.0]))
    with count_compilations() as compiled:
        run(generate_b, classify_b, 0.4, 0.2, 0.01, jnp.array([0.5, 2.0]))
    assert compiled == []


def test_a_plain_function_still_works_and_compiles_once_per_function(codes):
    generate, traces = counting_traces(planted.generate)  # a plain function, not a pytree
    lj.compute_apcr(generate, planted.classify, planted.class_codes(4), m=1)
    traced = len(traces)
    lj.compute_apcr(generate, planted.classify, planted.class_codes(4, seed=1), m=1, delta=0.2)
    assert traced > 0 and len(traces) == traced


# ----------------------------------------------------------------------------- seeds in one program


@pytest.mark.slow  # compiles for over 10 s: make test runs it, the quick tier does not
def test_vmap_over_stacked_generator_weights_equals_separate_calls(codes):
    generators = [flax_models(seed)[0] for seed in range(3)]
    _, classify = flax_models(0)
    stacked = lj.stack_pytrees(generators)
    key = jax.random.key(3)

    def analyse(generate):
        apcr = lj.compute_apcr(generate, classify, codes, m=2).apcr
        weights = lj.optimize_weights(generate, classify, codes, key, steps=5, batch_size=2).weights
        return apcr, weights

    apcr_all, weights_all = jax.vmap(analyse)(stacked)
    assert apcr_all.shape == (3, SPEC.latent_dim, 4)
    for seed, generate in enumerate(generators):
        apcr, weights = analyse(generate)
        np.testing.assert_allclose(apcr_all[seed], apcr, rtol=2e-4, atol=1e-6)
        np.testing.assert_allclose(weights_all[seed], weights, rtol=1e-4, atol=1e-5)
    assert not np.allclose(apcr_all[0], apcr_all[1])


def test_stack_pytrees_refuses_different_architectures():
    generate, classify = flax_models(0)
    with pytest.raises(ValueError, match="different structures: expected models of one architecture"):
        lj.stack_pytrees([generate, classify])


# ----------------------------------------------------------------------------- all devices


@pytest.mark.slow  # compiles for over 10 s: make test runs it, the quick tier does not
def test_apcr_rows_over_all_devices_equal_one_device(codes):
    generate, classify = flax_models(0)
    devices = jax.local_devices()
    assert len(devices) == 8  # conftest asks XLA for eight CPU devices
    one = lj.compute_apcr(generate, classify, codes, m=2, mesh=lj.local_mesh(devices=devices[:1]))
    every = lj.compute_apcr(generate, classify, codes, m=2, chunk_size=7)  # default: all devices
    for a, b in zip(one, every):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    # The results mix with arrays on the default device, such as weights restored by Orbax.
    on_device_0 = jax.device_put(jnp.ones((4, SPEC.latent_dim)), devices[0])
    high = lj.top_k_mask(every.apcr.T, 3)
    assert lj.intersection_ratio(high, lj.top_k_mask(on_device_0, 3), 3).shape == (4,)


def test_apcr_program_reduces_rows_on_their_device_and_never_gathers_them(codes):
    generate, classify = flax_models(0)
    mesh = lj.local_mesh()
    m, chunk = 2, 16
    lowered = apcr_module._compute_apcr_jit.lower(
        generate, classify, codes, jnp.arange(4), jnp.float32(0.5), jnp.float32(1e-6),
        m=m, relative=True, signed=False, chunk_size=chunk, mesh=mesh,
    )
    hlo = lowered.compile().as_text()
    assert "all-gather" not in hlo and "all-to-all" not in hlo
    # The only values that cross devices are the [C * N] and [C * N * 2m] sums and the scalar
    # count of rows that were not probabilities.
    reduced = {line.split("=")[1].split()[0] for line in hlo.splitlines() if " all-reduce(" in line}
    sizes = {4 * SPEC.latent_dim, 4 * SPEC.latent_dim * 2 * m}
    allowed = [f"[{n}]" for n in sizes] + ["s32[]"]
    assert reduced and all(any(a in shape for a in allowed) for shape in reduced), reduced


def test_each_device_sums_its_own_block_of_rows_exactly_once():
    mesh = lj.local_mesh()
    num_rows = 1001

    def who_took_each_row(_, rows, valid):
        device = jax.lax.axis_index("devices") + 1
        return jnp.zeros((num_rows,), jnp.int32).at[rows].add(valid.astype(jnp.int32) * device)

    taken = runner.sum_over_rows(who_took_each_row, None, num_rows, 40, mesh)
    chunk, chunks = runner.row_blocks(num_rows, 40, mesh.size)
    expected = np.minimum(np.arange(num_rows) // (chunk * chunks), mesh.size - 1) + 1
    np.testing.assert_array_equal(taken, expected)


def test_seed_axis_is_sharded_over_devices_and_outputs_stay_sharded(codes):
    generators = [flax_models(seed)[0] for seed in range(8)]
    _, classify = flax_models(0)
    stacked = lj.shard_leading_axis(lj.stack_pytrees(generators))
    run = jax.jit(jax.vmap(lambda g: lj.compute_apcr(g, classify, codes[:, :2], m=1).apcr))
    out = run(stacked)
    assert out.sharding.spec == PartitionSpec("seeds")
    assert len(out.addressable_shards) == 8
    for shard in out.addressable_shards:
        seed = shard.index[0].start
        assert shard.data.shape == (1, SPEC.latent_dim, 4)
        single = lj.compute_apcr(generators[seed], classify, codes[:, :2], m=1).apcr
        np.testing.assert_allclose(shard.data[0], single, rtol=2e-4, atol=1e-6)


def test_shard_leading_axis_names_a_bad_seed_count():
    with pytest.raises(ValueError, match=r"shape \(3, 2\) cannot be split over 8 devices"):
        lj.shard_leading_axis(jnp.zeros((3, 2)))


@pytest.mark.slow  # compiles for over 10 s: make test runs it, the quick tier does not
def test_two_processes_each_analyse_their_share_of_the_seeds(tmp_path):
    """The multi-host path on one machine: two CPU processes joined by jax.distributed."""
    import os
    import socket
    import subprocess
    import sys

    from conftest import REPO

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one device per process
    env["PYTHONPATH"] = str(REPO / "tests")
    workers = [
        subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "multihost_worker.py"), str(port), str(i),
             str(tmp_path / f"process{i}.npz")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for i in range(2)
    ]
    for worker in workers:
        output, _ = worker.communicate(timeout=300)
        assert worker.returncode == 0, output[-3000:]
    shares = [dict(np.load(tmp_path / f"process{i}.npz")) for i in range(2)]
    assert sorted(shares[0]) == ["seed0", "seed2"] and sorted(shares[1]) == ["seed1", "seed3"]
    _, classify = flax_models(0)
    for share in shares:
        for name, apcr in share.items():
            generate = flax_models(int(name[4:]))[0]
            expected = lj.compute_apcr(generate, classify, SEEDS_CODES(), m=1).apcr
            np.testing.assert_allclose(apcr, expected, rtol=1e-5, atol=1e-7)


def test_importing_latentjax_starts_no_backend():
    """So that use_host_cores() (and the CLI) can still choose the devices after the import."""
    import os
    import subprocess
    import sys

    code = (
        "import latentjax, latentjax.cli, latentjax.experiment.reproduce\n"
        "import jax\n"
        "print(latentjax.use_host_cores(3), len(jax.devices('cpu')))"
    )
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip().splitlines()[-1] == "3 3"
