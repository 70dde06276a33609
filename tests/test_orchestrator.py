"""reproduce and sweep run their shared stages through one driver; where the results are kept
(one run folder, or one artefact per seed shared between sweeps) changes nothing in them."""

import types

import jax
import numpy as np
import pytest

from latentjax import config as config_lib
from latentjax.experiment import orchestrator

import planted

SHAPES = dict(latent_dim=planted.LATENT_DIM, num_classes=planted.NUM_CLASSES)
MODEL = types.SimpleNamespace(generate=planted.generate, classify=planted.classify)


@pytest.fixture(scope="module")
def analysis():
    a = config_lib.load_config("configs/tiny.py").analysis
    a.k, a.finders = planted.K, ("apcr", "weights")
    a.latents.samples_per_class = 4
    a.method_b.update(dict(steps=4, batch_size=4))
    return a


def stages_of(store, a, seeds, **options):
    return orchestrator.shared_stages(store, [MODEL], "loop", a, seeds, log=lambda _: None, **SHAPES, **options)


def assert_same(x, y):
    assert jax.tree.structure(x) == jax.tree.structure(y)
    for p, q in zip(jax.tree.leaves(x), jax.tree.leaves(y)):
        np.testing.assert_array_equal(p, q)


@pytest.fixture(scope="module")
def kept(analysis, tmp_path_factory):
    """Seeds 0 and 1 kept as a sweep keeps them: ``(root, stages)``."""
    root = tmp_path_factory.mktemp("stages")
    return root, stages_of(orchestrator.SeedStore(root, ["planted"], (0, 1), lambda _: None), analysis, (0, 1))


def computed_stages(lines):
    return [line for line in lines if line.startswith("  stage ")]


def test_a_run_folder_and_per_seed_artefacts_hold_the_same_stages(analysis, kept, tmp_path):
    run = stages_of(orchestrator.RunStore(tmp_path, (0, 1), lambda name: print), analysis, (0, 1))
    assert_same(run, kept[1])
    assert run.held_out is not None and np.asarray(run.latents.codes).shape[:3] == (1, 2, planted.NUM_CLASSES)
    assert sorted(p.name for p in (tmp_path / "artefacts").iterdir()) == ["apcr", "held_out", "latents", "weights"]


def test_stages_already_kept_are_loaded_and_new_seeds_compute_only_themselves(analysis, kept):
    root, first = kept
    lines = []
    store = orchestrator.SeedStore(root, ["planted"], (0, 1, 2, 3), lines.append)
    more = stages_of(store, analysis, (0, 1, 2, 3))
    assert len(computed_stages(lines)) == 4 and all("seeds [2, 3]" in line for line in computed_stages(lines))
    assert_same(first, jax.tree.map(lambda x: x[:, :2], more))
    lines.clear()
    assert_same(stages_of(store, analysis, (0, 1, 2, 3)), more)
    assert not computed_stages(lines)


def test_the_settings_a_stage_reads_key_its_saved_result(analysis, kept):
    other = analysis.copy_and_resolve_references()
    other.method_b.learning_rate *= 2  # Method B's settings: only the weights are computed again
    lines = []
    stages_of(orchestrator.SeedStore(kept[0], ["planted"], (0, 1), lines.append), other, (0, 1))
    assert [line.split()[1] for line in computed_stages(lines)] == ["weights"]
