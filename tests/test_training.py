"""Training steps learn, runs resume exactly, and run directories are never overwritten."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latentjax import config as config_lib
from latentjax import data
from latentjax.experiment import training_runs
from latentjax.models import training
from latentjax.errors import RunDirectoryError
from latentjax.models import ModelSpec

# End to end (data, training, the reproduction, subprocesses): out of the quick tier, `-m "not slow"`.
pytestmark = pytest.mark.slow


def _fixed_batch(config, n=16):
    images, labels = data.load_from_config(config, "train")
    return jnp.asarray(images[:n]), jnp.asarray(labels[:n])


def test_classifier_step_lowers_the_loss_on_a_fixed_batch(tiny_config):
    # A schedule long enough that the learning rate stays up, and no dropout noise.
    config = config_lib.apply_overrides(
        tiny_config,
        {"classifier_training.augment": False, "classifier_training.epochs": 20, "classifier.dropout": 0.0},
    )
    images, labels = _fixed_batch(config)
    state = training.init_classifier_state(config, jax.random.key(0))
    step = jax.jit(training.make_classifier_step(config, 64))
    losses = []
    for i in range(15):
        state, metrics = step(state, images, labels, jax.random.key(i), i)
        losses.append(float(metrics["loss"]))
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3])


def test_gan_step_teaches_the_discriminator(tiny_config):
    real, labels = _fixed_batch(tiny_config)
    state = training.init_gan_state(tiny_config, jax.random.key(0))
    spec = ModelSpec.from_config(tiny_config)
    z = jax.random.normal(jax.random.key(9), (16, 100))
    fixed_fake = spec.generator().apply(state["generator"], z)

    def d_loss(d_vars):
        d = spec.discriminator()
        return float(
            jnp.mean(jax.nn.softplus(-d.apply(d_vars, real)))
            + jnp.mean(jax.nn.softplus(d.apply(d_vars, fixed_fake)))
        )

    before = d_loss(state["discriminator"])
    step = jax.jit(training.make_gan_step(tiny_config, 64))
    for i in range(10):
        state, metrics = step(state, real, labels, jax.random.key(i), i)
        assert np.isfinite(float(metrics["g_loss"]))
    assert d_loss(state["discriminator"]) < before


@pytest.mark.parametrize("start_epoch, decay", [(0, 0.5), (1, 0.5), (0, 0.0)])
def test_generator_average_follows_its_recursion(tiny_config, start_epoch, decay):
    config = config_lib.apply_overrides(
        tiny_config, {"gan_training.ema_start_epoch": start_epoch, "gan_training.ema_decay": decay}
    )
    start = training.ema_start_step(config, 64)
    assert start == start_epoch * 64 // 8  # 64 examples, batch 8
    real, labels = _fixed_batch(config, 8)
    state = training.init_gan_state(config, jax.random.key(0))
    step = jax.jit(training.make_gan_step(config, 64))
    expected = state["generator"]
    for i in range(3):
        state, _ = step(state, real, labels, jax.random.key(i), i)
        d = decay if i >= start else 0.0
        expected = jax.tree.map(lambda e, g: d * e + (1 - d) * g, expected, state["generator"])
    chex.assert_trees_all_close(expected, state["generator_ema"], rtol=1e-6, atol=1e-7)
    averaged = jax.tree.leaves(state["generator_ema"]["params"])[0]
    last = jax.tree.leaves(state["generator"]["params"])[0]
    assert np.array_equal(averaged, last) == (start > 0 or decay == 0.0)


def test_batch_indices_cover_each_epoch_once_and_depend_on_seed():
    idx = training.batch_indices(seed=3, start_step=0, num_steps=6, num_examples=25, batch_size=8)
    first_epoch = idx[:3].ravel()
    assert len(set(first_epoch.tolist())) == 24
    later = training.batch_indices(seed=3, start_step=4, num_steps=2, num_examples=25, batch_size=8)
    np.testing.assert_array_equal(later, idx[4:6])
    other = training.batch_indices(seed=4, start_step=0, num_steps=6, num_examples=25, batch_size=8)
    assert not np.array_equal(other, idx)


@pytest.mark.parametrize("kind", ["classifier", "gan"])
def test_interrupted_run_resumes_to_identical_parameters(tiny_config, tmp_path, kind):
    train = {"classifier": training_runs.train_classifier, "gan": training_runs.train_gan}[kind]
    uninterrupted = train(tiny_config, tmp_path / "a")
    # Stop after step 6: the last checkpoint is step 4, so steps 5 and 6 are lost and redone.
    train(tiny_config, tmp_path / "b", stop_after_steps=6)
    assert sorted(p.name for p in (tmp_path / "b" / "checkpoints").iterdir() if p.name.isdigit()) == ["4"]
    resumed = train(tiny_config, tmp_path / "b", resume=True)
    chex.assert_trees_all_equal(uninterrupted, resumed)
    # The rows after the checkpoint (step 6) are computed again, not logged twice.
    def rows(run):
        lines = (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if k not in ("time", "rate")} for line in lines]

    assert [r["step"] for r in rows("b")] == [2, 4, 6, 8]
    assert rows("b") == rows("a")
    if kind == "gan":
        assert (tmp_path / "a" / "samples_step0000008.png").is_file()


def test_existing_run_directory_is_never_overwritten(tiny_config, tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "keep.txt").write_text("mine")
    with pytest.raises(RunDirectoryError, match="exists and is not empty; pass --resume"):
        training_runs.train_classifier(tiny_config, workdir)
    assert (workdir / "keep.txt").read_text() == "mine"


def test_flipped_bytes_in_a_training_checkpoint_are_caught_and_resume_goes_back(tiny_config, tmp_path):
    import shutil

    from test_reliability import flip_bytes, largest_file

    from latentjax.errors import IntegrityError

    finished = training_runs.train_classifier(tiny_config, tmp_path / "run")
    shutil.copytree(tmp_path / "run", tmp_path / "damaged")
    victim = largest_file(tmp_path / "damaged" / "checkpoints" / "8")
    flip_bytes(victim)
    with pytest.raises(IntegrityError, match=victim.name):
        training_runs.load_run_state(tiny_config, tmp_path / "damaged", "classifier")
    # Resume sets the damaged step aside and retrains from step 4 to the same parameters.
    resumed = training_runs.train_classifier(tiny_config, tmp_path / "damaged", resume=True)
    chex.assert_trees_all_equal(finished, resumed)
    names = sorted(p.name for p in (tmp_path / "damaged" / "checkpoints").iterdir())
    assert "8" in names and any(n.startswith("8.damaged-") for n in names)


def test_missing_data_fails_before_the_run_directory_is_touched(tiny_config, tmp_path):
    from latentjax.errors import DataUnavailableError

    config = config_lib.apply_overrides(
        tiny_config, {"tfds_data_dir": str(tmp_path / "tfds"), "local_data_dir": str(tmp_path / "none")}
    )
    with pytest.raises(DataUnavailableError):
        training_runs.train_gan(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_second_process_on_a_run_folder_is_refused(tiny_config, tmp_path):
    import subprocess
    import sys
    import textwrap

    training_runs.train_classifier(tiny_config, tmp_path / "run", stop_after_steps=2)
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import time
            from latentjax.storage.files import FolderLock
            with FolderLock({str(tmp_path / "run")!r}):
                print("locked", flush=True)
                time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = (tmp_path / "run" / "run.json").read_text()
        with pytest.raises(RunDirectoryError, match="in use by another latentjax process"):
            training_runs.train_classifier(tiny_config, tmp_path / "run", resume=True)
        assert (tmp_path / "run" / "run.json").read_text() == before
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_a_gan_run_given_as_the_classifier_run_is_named(tiny_config, tmp_path):
    training_runs.train_gan(tiny_config, tmp_path / "gan", stop_after_steps=4)
    with pytest.raises(RunDirectoryError, match="is a 'gan' training run: expected a 'classifier' run"):
        training_runs.load_run_state(tiny_config, tmp_path / "gan", "classifier")
    (tmp_path / "gan" / "run.json").write_text("{truncated")
    with pytest.raises(RunDirectoryError, match="run.json' is not a valid run record"):
        training_runs.load_run_state(tiny_config, tmp_path / "gan", "gan")


def test_resume_refuses_a_different_config(tiny_config, tmp_path):
    training_runs.train_classifier(tiny_config, tmp_path / "run", stop_after_steps=2)
    changed = config_lib.apply_overrides(tiny_config, {"seed": 1})
    with pytest.raises(RunDirectoryError, match="different config"):
        training_runs.train_classifier(changed, tmp_path / "run", resume=True)


def test_a_finished_gan_run_extends_to_the_parameters_of_a_longer_run(tiny_config, tmp_path):
    longer = config_lib.apply_overrides(tiny_config, {"gan_training.epochs": 2})
    from_scratch = training_runs.train_gan(longer, tmp_path / "long")
    training_runs.train_gan(tiny_config, tmp_path / "extended")
    extended = training_runs.train_gan(longer, tmp_path / "extended", resume=True)
    chex.assert_trees_all_equal(from_scratch, extended)
    assert json.loads((tmp_path / "extended" / "run.json").read_text())["config"]["gan_training"]["epochs"] == 2
    # Shortening is not extending; and the classifier's schedule depends on its length.
    with pytest.raises(RunDirectoryError, match="different config"):
        training_runs.train_gan(tiny_config, tmp_path / "extended", resume=True)


def test_resume_ignores_sections_training_does_not_read(tiny_config, tmp_path):
    training_runs.train_classifier(tiny_config, tmp_path / "run", stop_after_steps=2)
    changed = config_lib.apply_overrides(tiny_config, {"analysis.k": 5, "evaluation.num_samples": 10})
    training_runs.train_classifier(changed, tmp_path / "run", resume=True)


# ----------------------------------------------------------------------------- many seeds, one program


@pytest.fixture(scope="module")
def stacked_runs(tmp_path_factory, tfds_dir):
    """Classifier and GAN runs of seeds (0, 1, 2) trained together, one vmapped step each."""
    from conftest import REPO

    config = config_lib.apply_overrides(
        config_lib.load_config(REPO / "configs" / "tiny.py"),
        {"tfds_data_dir": str(tfds_dir), "model_seeds": (0, 1, 2)},
    )
    root = tmp_path_factory.mktemp("stacked")
    states = {
        "classifier": training_runs.train_classifier(config, root / "classifier"),
        "gan": training_runs.train_gan(config, root / "gan"),
    }
    return config, root, states


@pytest.mark.parametrize("kind", ["classifier", "gan"])
def test_seeds_trained_together_equal_single_seed_runs(stacked_runs, tiny_config, tmp_path, kind):
    config, _, states = stacked_runs
    train = {"classifier": training_runs.train_classifier, "gan": training_runs.train_gan}[kind]
    stacked = states[kind]
    assert all(leaf.shape[0] == 3 for leaf in jax.tree.leaves(stacked))
    for index, seed in enumerate(config.model_seeds):
        single = train(config_lib.apply_overrides(tiny_config, {"seed": seed}), tmp_path / f"seed{seed}")
        for one, many in zip(jax.tree.leaves(single), jax.tree.leaves(stacked)):
            # The batched kernels of the stack round differently from the single run's, and Adam
            # turns a rounding-level change of a near-zero gradient into a fraction of a step
            # (learning rates 2e-3 and 2e-4 here): agreement to 1e-4 is agreement in float32.
            np.testing.assert_allclose(many[index], one, rtol=1e-3, atol=1e-4)
    first, second = (jax.tree.leaves(stacked)[0][i] for i in (0, 1))
    assert not np.allclose(first, second)


@pytest.mark.parametrize("kind", ["classifier", "gan"])
def test_an_interrupted_stack_of_seeds_resumes_to_identical_parameters(stacked_runs, tmp_path, kind):
    config, _, states = stacked_runs
    train = {"classifier": training_runs.train_classifier, "gan": training_runs.train_gan}[kind]
    train(config, tmp_path / "run", stop_after_steps=6)
    resumed = train(config, tmp_path / "run", resume=True)
    chex.assert_trees_all_equal(states[kind], resumed)
    if kind == "gan":
        assert (tmp_path / "run" / "samples_seed2_step0000008.png").is_file()


def test_a_stack_of_seeds_exports_one_model_pair_per_seed(stacked_runs, tmp_path):
    import latentjax as lj
    from latentjax.experiment import workflows

    config, root, states = stacked_runs
    quality = workflows.export_from_runs(config, root / "classifier", root / "gan", tmp_path / "out")
    assert sorted(quality) == [0, 1, 2]
    z = jax.random.normal(jax.random.key(0), (2, config.latent_dim))
    for index, seed in enumerate(config.model_seeds):
        models = lj.load_pretrained(tmp_path / "out" / f"seed{seed}")
        assert models.metadata["model_seed"] == seed
        expected = jax.tree.map(lambda x: x[index], states["gan"]["generator_ema"])
        chex.assert_trees_all_equal(expected, models.generator_variables)
        assert models.classify(models.generate(z)).shape == (2, config.num_classes)


def test_vmapped_and_unrolled_seed_steps_agree(tiny_config):
    """Both layouts of a stacked step (vmap on accelerators, unrolled on CPUs) take the same steps."""
    from latentjax.analysis.parallel import stack_pytrees

    config = config_lib.apply_overrides(tiny_config, {"gan_training.ema_start_epoch": 0})
    images, labels = _fixed_batch(config, 16)
    seeds = (0, 1)
    idx = jnp.asarray([[training.batch_indices(s, step, 1, 16, 8)[0] for s in seeds] for step in range(3)])
    root_keys = jax.vmap(jax.random.key)(jnp.asarray(seeds))
    results = {}
    for layout in ("vmap", "unroll"):
        state = stack_pytrees([training.init_gan_state(config, jax.random.key(s)) for s in seeds])
        chunk = training.loop._jit_steps(training.make_gan_step(config, 64), stacked=True, layout=layout)
        results[layout], _ = chunk(state, images, labels, idx, root_keys, 0)
    chex.assert_trees_all_close(results["vmap"], results["unroll"], rtol=1e-3, atol=1e-4)


def test_a_gan_run_pairs_with_a_shipped_classifier(stacked_runs, tmp_path):
    import latentjax as lj
    from latentjax.experiment import workflows

    config, root, states = stacked_runs
    with pytest.raises(ValueError, match=r"classifier_pretrained='fashion_mnist' has the classifier .* expected the config's"):
        workflows.export_from_runs(config, None, root / "gan", tmp_path / "out", classifier_pretrained="fashion_mnist")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="expected exactly one of them"):
        workflows.models_from_runs(config, root / "classifier", root / "gan", classifier_pretrained="fashion_mnist")
    shipped = lj.load_pretrained("fashion_mnist")
    matching = config_lib.apply_overrides(
        config, {"classifier.width": shipped.spec.classifier_width, "classifier.hidden": shipped.spec.classifier_hidden}
    )
    models = workflows.models_from_runs(matching, None, root / "gan", seed=1, classifier_pretrained="fashion_mnist")
    chex.assert_trees_all_equal(shipped.classifier_variables, models.classifier_variables)
    expected = jax.tree.map(lambda x: x[1], states["gan"]["generator_ema"])
    chex.assert_trees_all_equal(expected, models.generator_variables)


@pytest.mark.parametrize("fill", [-1.0, 1.0])
def test_augmentation_fills_shifted_borders_with_the_background(fill):
    images = jnp.zeros((64, 8, 8, 3))
    shifted = training.augment(images, jax.random.key(0), max_shift=2, fill=fill)
    values = np.unique(np.asarray(shifted))
    assert set(values.tolist()) == {0.0, fill}  # nothing but the image and its background
