"""The sweep end to end (tiny grid, shipped models, real data) and its statistics."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from latentjax import config as config_lib
from latentjax.analysis.statistics import bootstrap_interval
from latentjax.errors import ConfigError, RunDirectoryError
from latentjax.experiment import sweep
from latentjax.models.pretrained import PRETRAINED_ROOT

# End to end (data, training, the reproduction, subprocesses): out of the quick tier, `-m "not slow"`.
pytestmark = pytest.mark.slow


def tiny_sweep_config(**overrides):
    from conftest import REPO

    return config_lib.apply_overrides(config_lib.load_config(REPO / "configs" / "tiny.py"), overrides)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    config = tiny_sweep_config()
    workdir = tmp_path_factory.mktemp("sweep") / "run"
    lines = []
    return config, sweep.run_sweep(config, workdir, log=lines.append), lines


def test_table_has_a_row_per_cell_and_class(finished):
    config, result, lines = finished
    cells = config_lib.sweep_cells(config)
    assert len(cells) == 4 and len(result.cells) == 4
    assert len(result.table) == 4 * config.num_classes
    assert [(r["cell"], r["class"]) for r in result.table] == [
        (f"cell{i:03d}", j) for i in range(4) for j in range(config.num_classes)
    ]
    on_disk = sweep.read_table(result.workdir / "table.csv")
    assert len(on_disk) == len(result.table)
    assert float(on_disk[5]["ir_mean"]) == pytest.approx(result.table[5]["ir_mean"])
    seeds = sweep.read_table(result.workdir / "seeds.csv")
    assert len(seeds) == 4 * 1 * 2 * config.num_classes  # cells x models x analysis seeds x classes
    for name in ("report.md", "cells.csv", "finders.csv", "convergence_k.png", "convergence_method_b_steps.png"):
        assert (result.workdir / name).is_file(), name
    assert any("ETA" in line for line in lines)
    # Cells that differ only in method_b.steps and k shared one computation of each stage.
    assert sum(line.strip().startswith("stage weights") for line in lines) == 1
    # Stability selection (configs/tiny.py: one pair): both stable sets per class and cell.
    for row in result.table:
        assert 0 <= row["stable_overlap"] <= min(row["stable_apcr"], row["stable_weights"])
    for cell in result.cells:
        assert cell["stable_weights_analysis_low"] <= cell["stable_weights"] <= cell["stable_weights_analysis_high"]


def test_every_cell_compares_the_finders_on_held_out_codes(finished):
    config, result, lines = finished
    rows = sweep.read_table(result.workdir / "finders.csv")
    names, distances = list(config.analysis.finders), list(config.analysis.finder_distances)
    assert len(rows) == 4 * len(names) * len(distances)
    assert sum(line.strip().startswith("stage held_out") for line in lines) == 1  # one draw, shared
    value = lambda cell, name, d, column: float(next(
        r[column] for r in rows if r["cell"] == cell and r["finder"] == name and float(r["distance"]) == d
    ))
    for r in rows:
        for column in ("same_flip_rate", "cross_target_share", "same_pixel_change"):
            assert float(r[f"{column}_analysis_low"]) <= float(r[column]) + 1e-9 <= float(r[f"{column}_analysis_high"]) + 2e-9
            if float(r["distance"]) == 0.0:
                assert float(r[column]) == 0.0
    far = distances[-1]
    cells = config_lib.sweep_cells(config)  # (k, method_b.steps): (2, 2), (2, 3), (3, 2), (3, 3)
    for name in ("sefa", "ganspace", "interfacegan", "random_dense"):  # read neither K nor Method B
        assert len({value(f"cell{i:03d}", name, far, "same_probability_drop") for i in range(4)}) == 1, name
    # Method A's sets depend on K only; Method B's also on its steps.
    assert value("cell000", "apcr", far, "same_probability_drop") == value("cell001", "apcr", far, "same_probability_drop")
    assert cells[0]["k"] == cells[1]["k"] and cells[0]["method_b.steps"] != cells[1]["method_b.steps"]
    report = (result.workdir / "report.md").read_text()
    assert "## Direction finders per cell" in report and "| `interfacegan` |" in report


def test_every_cell_writes_every_finders_directions_as_files(finished):
    import latentjax as lj

    config, result, _ = finished
    folder = result.workdir / "directions"
    cells = sorted(p.name for p in folder.iterdir())
    assert cells == [f"cell{i:03d}" for i in range(4)]
    finders = ["apcr", "weights", "weights_raw", *[n for n in config.analysis.finders if n not in ("apcr", "weights")]]
    names = sorted(p.name for p in (folder / "cell002" / "model0").glob("*.npz"))
    assert names == sorted(f"{f}-seed{s}.npz" for f in finders for s in config.sweep.analysis_seeds)
    # cell002 has K = 3: Method A's file is its signed top-3 set, with the cell's settings.
    loaded = lj.load_directions(folder / "cell002" / "model0" / "apcr-seed1.npz")
    k = config_lib.sweep_cells(config)[2]["k"]
    assert k == 3 and loaded.directions.shape == (config.num_classes, config.latent_dim)
    assert np.all(np.sum(loaded.directions != 0, axis=-1) == k) and loaded.metadata["settings"]["k"] == k
    assert set(np.unique(loaded.directions).tolist()) <= {-1.0, 0.0, 1.0}
    assert loaded.metadata["analysis_seed"] == 1 and loaded.metadata["pretrained"] == config.sweep.models[0]
    assert loaded.metadata["generator_fingerprint"] == lj.model_fingerprint(lj.load_pretrained(config.sweep.models[0]).generate)


def test_intervals_contain_the_cell_means(finished):
    _, result, _ = finished
    for row in [*result.table, *result.cells]:
        for over in ("model", "analysis"):
            assert row[f"ir_{over}_low"] <= row["ir_mean"] + 1e-9 <= row[f"ir_{over}_high"] + 2e-9
        # One model seed: its interval is the point; two analysis seeds that disagree: not.
        assert row["ir_model_low"] == row["ir_model_high"] == pytest.approx(row["ir_mean"])
    assert any(c["ir_analysis_low"] < c["ir_analysis_high"] for c in result.cells)


def test_cell_numbers_agree_with_the_seed_rows(finished):
    _, result, _ = finished
    seeds = sweep.read_table(result.workdir / "seeds.csv")
    for row in result.table[:10]:
        mine = [float(s["ir"]) for s in seeds if s["cell"] == row["cell"] and int(s["class"]) == row["class"]]
        assert np.mean(mine) == pytest.approx(row["ir_mean"], abs=1e-5)


def test_a_finished_sweep_is_never_overwritten(finished):
    config, result, _ = finished
    before = (result.workdir / "table.csv").read_bytes()
    with pytest.raises(RunDirectoryError, match="exists and is not empty; pass --resume"):
        sweep.run_sweep(config, result.workdir)
    changed = tiny_sweep_config(**{"sweep.analysis_seeds": (0, 5)})
    with pytest.raises(RunDirectoryError, match="with a different config"):
        sweep.run_sweep(changed, result.workdir, resume=True)
    assert (result.workdir / "table.csv").read_bytes() == before


def test_a_killed_sweep_resumes_without_recomputing(finished, tmp_path):
    from conftest import REPO

    _, reference, _ = finished
    workdir = tmp_path / "killed"
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    process = subprocess.Popen(
        [sys.executable, "-m", "latentjax.cli", "sweep", "--config", str(REPO / "configs" / "tiny.py"),
         "--workdir", str(workdir)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    stages = workdir / "stages"
    while time.time() < deadline and process.poll() is None:
        if stages.is_dir() and any(not p.name.endswith(".partial") for p in stages.iterdir()):
            break
        time.sleep(0.2)
    assert process.poll() is None, "the sweep finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (workdir / "table.csv").exists()
    # Stages are stored per analysis seed: whatever was finished before the kill is loaded, not
    # computed again (its folder is not rewritten).
    finished_before = {p: p.stat().st_mtime_ns for p in stages.iterdir() if not p.name.endswith(".partial")}
    assert finished_before
    lines = []
    sweep.run_sweep(tiny_sweep_config(), workdir, resume=True, log=lines.append)
    for path, mtime in finished_before.items():
        assert path.stat().st_mtime_ns == mtime, path.name
    assert (workdir / "table.csv").read_text() == (reference.workdir / "table.csv").read_text()
    assert (workdir / "finders.csv").read_text() == (reference.workdir / "finders.csv").read_text()


def test_sweeps_share_stages_per_seed_through_a_stages_dir(finished, tmp_path):
    """A sweep pointed at another sweep's stages, with one more analysis seed, computes only
    that seed's stages and gives the first seeds the same numbers."""
    _, reference, _ = finished
    config = tiny_sweep_config(**{
        "sweep.stages_dir": str(reference.workdir / "stages"), "sweep.analysis_seeds": (0, 1, 2),
        "analysis.finders": (),
    })
    lines = []
    sweep.run_sweep(config, tmp_path / "more", log=lines.append)
    computed = [line.strip() for line in lines if line.strip().startswith("stage ")]
    assert computed and all(line.split(" {")[0].endswith("seeds [2]") for line in computed), computed
    ours = json.loads((tmp_path / "more" / "cells" / "cell000.json").read_text())
    theirs = json.loads((reference.workdir / "cells" / "cell000.json").read_text())
    assert np.asarray(ours["ir"])[:, :2].tolist() == np.asarray(theirs["ir"]).tolist()


def test_stacked_models_vmapped_equal_the_loop(finished, tmp_path):
    """Two models stacked and vmapped give, for each, what the loop gave the one model: the
    fixture's cell003 (K = 3, 3 steps), analysis seed 0 (stages are per seed)."""
    config, reference, _ = finished
    models = ("fashion_mnist", str(PRETRAINED_ROOT / "fashion_mnist"))
    grid = {"sweep.models": models, "sweep.grid.k": (3,), "sweep.grid.method_b.steps": (3,),
            "sweep.analysis_seeds": (0,), "analysis.finders": ("apcr",), "sweep.model_layout": "vmap"}
    result = sweep.run_sweep(tiny_sweep_config(**grid), tmp_path / "vmap", log=lambda _: None)
    vmapped = json.loads((result.workdir / "cells" / "cell000.json").read_text())
    loop = json.loads((reference.workdir / "cells" / "cell003.json").read_text())
    assert config_lib.sweep_cells(config)[3] == {"k": 3, "method_b.steps": 3}
    apcr = loop["finders"]["names"].index("apcr")
    for model in (0, 1):
        np.testing.assert_allclose(vmapped["ir"][model][0], loop["ir"][0][0])
        for method in ("apcr", "weights"):
            np.testing.assert_allclose(vmapped["flip"][method]["top"][model][0], loop["flip"][method]["top"][0][0])
        # Held-out codes drawn under vmap score the finders as the loop's do.
        np.testing.assert_allclose(
            vmapped["finders"]["cross"]["target_share"][model][0][0],
            loop["finders"]["cross"]["target_share"][0][0][apcr],
        )


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"sweep.grid": {"inversion_steps": (1, 2)}}, "config.sweep.grid.inversion_steps: not a swept setting"),
        ({"sweep.grid.k": (3, 3)}, r"config.sweep.grid.k=\(3, 3\): expected a non-empty tuple of distinct"),
        ({"sweep.grid.k": (3, 500)}, r"config.sweep.grid cell \{'k': 500, 'method_b.steps': 2\}: config.analysis.k=500"),
        ({"sweep.analysis_seeds": ()}, r"config.sweep.analysis_seeds=\(\): expected distinct"),
        ({"sweep.model_layout": "pmap"}, "config.sweep.model_layout='pmap': expected one of"),
    ],
)
def test_bad_sweep_configs_are_refused_before_work(overrides, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        sweep.run_sweep(tiny_sweep_config(**overrides), tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_bootstrap_of_two_values_is_their_range():
    # Resampling {0, 1} twice: means 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4.
    low, high = bootstrap_interval(np.array([[0.0], [1.0]]), "model", num_resamples=4000)
    assert (float(low), float(high)) == (0.0, 1.0)
    low, high = bootstrap_interval(np.array([[0.0], [1.0]]), "model", confidence=0.4, num_resamples=4000)
    assert (float(low), float(high)) == (0.5, 0.5)


def test_bootstrap_matches_the_normal_theory_interval():
    sigma, n = 2.0, 900
    values = np.random.default_rng(0).normal(3.0, sigma, (1, n))
    low, high = bootstrap_interval(values, "analysis", num_resamples=4000, seed=1)
    half = 1.96 * values.std() / np.sqrt(n)
    assert (high - low) / 2 == pytest.approx(half, rel=0.08)
    assert (low + high) / 2 == pytest.approx(values.mean(), abs=0.1 * half)


def test_bootstrap_separates_the_two_variances():
    # Models differ (0, 10), a model's analysis seeds agree: all variance is between models.
    values = np.array([[0.0, 0.0, 0.0], [10.0, 10.0, 10.0]])
    model = bootstrap_interval(values, "model")
    analysis = bootstrap_interval(values, "analysis")
    assert float(model[0]) == 0.0 and float(model[1]) == 10.0
    assert float(analysis[0]) == float(analysis[1]) == 5.0
    assert bootstrap_interval(values, "model", seed=3)[0] == bootstrap_interval(values, "model", seed=3)[0]
    with pytest.raises(ValueError, match="over='seeds': expected one of"):
        bootstrap_interval(values, "seeds")
