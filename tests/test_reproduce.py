"""End to end: `reproduce` on the tiny config against the real data and the shipped models."""

import json

import numpy as np
import pytest

import latentjax as lj
from latentjax import config as config_lib
from latentjax.experiment import artefacts, reproduce, summaries
from latentjax.errors import RunDirectoryError

# End to end (data, training, the reproduction, subprocesses): out of the quick tier, `-m "not slow"`.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory, tfds_dir):
    from conftest import REPO

    config = config_lib.apply_overrides(
        config_lib.load_config(REPO / "configs" / "tiny.py"), {"tfds_data_dir": str(tfds_dir)}
    )
    workdir = tmp_path_factory.mktemp("reproduce") / "run"
    results = reproduce.reproduce(config, workdir)
    return config, workdir, results


def test_run_directory_holds_every_output(run):
    _, workdir, _ = run
    for name in ("results.json", "report.md", "report.html", "run.json", *reproduce_figures()):
        assert (workdir / name).is_file(), name
    for stage in ("latents", "apcr", "weights", "held_out", "manipulation", "dose_response", "finders", "structure"):
        assert (workdir / "artefacts" / stage).is_dir(), stage


def reproduce_figures():
    from latentjax.experiment.report import FIGURES, FINDER_FIGURES

    return (*FIGURES, *FINDER_FIGURES)


def test_results_are_consistent_with_the_saved_artefacts(run):
    config, workdir, results = run
    saved = json.loads((workdir / "results.json").read_text())
    assert saved["config"]["analysis"]["seeds"] == [0, 1]
    k = config.analysis.k
    all_apcr = artefacts.load_artefact(workdir, "apcr")
    all_weights = artefacts.load_artefact(workdir, "weights")
    assert isinstance(all_apcr, lj.APCRResult) and all_apcr.apcr.shape == (2, 100, 10)
    assert all_weights.weights.shape == (2, 10, 100)
    for index, seed in enumerate((0, 1)):
        apcr = all_apcr.apcr[index]
        weights = all_weights.weights[index]
        high = np.argsort(-apcr.T, axis=1)[:, :k]
        control = np.argsort(-np.abs(weights), axis=1)[:, :k]
        overlap = [len(set(h) & set(c)) / k for h, c in zip(high, control)]
        np.testing.assert_allclose(saved["intersection_ratio"]["per_seed"][str(seed)], overlap, atol=1e-6)
    per_seed = np.array([saved["intersection_ratio"]["per_seed"][s] for s in ("0", "1")])
    np.testing.assert_allclose(saved["intersection_ratio"]["mean_per_class"], per_seed.mean(0), atol=1e-6)
    assert saved["sets_seed0"]["high_correlated"][0] == sorted(np.argsort(-all_apcr.apcr[0][:, 0])[:k].tolist())
    manipulation = artefacts.load_artefact(workdir, "manipulation")
    assert isinstance(manipulation["weights"]["cross"]["random"], lj.ManipulationResult)
    assert saved["chance_level"] == k / 100
    assert saved["paper_table_1"] == list(summaries.PAPER_TABLE_1)
    assert "Table 1" in (workdir / "report.md").read_text()
    same = saved["manipulation"]["apcr_same"]
    for set_name in ("top", "bottom", "random"):
        rates = same[set_name]["rate_per_alpha"]
        assert len(rates) == config.analysis.manipulation.num_alphas and all(0.0 <= r <= 1.0 for r in rates)


def test_existing_run_is_refused_and_resume_recomputes_nothing(run, monkeypatch):
    config, workdir, results = run
    with pytest.raises(RunDirectoryError):
        reproduce.reproduce(config, workdir)

    def fail(*args, **kwargs):
        raise AssertionError("a finished stage was computed again")

    from latentjax.experiment import stages

    monkeypatch.setattr(stages, "compute_apcr", fail)
    monkeypatch.setattr(stages, "optimize_weights", fail)
    monkeypatch.setattr(stages, "sample_class_latents", fail)
    monkeypatch.setattr(stages, "find_directions", fail)
    monkeypatch.setattr(stages, "evaluate_directions", fail)
    again = reproduce.reproduce(config, workdir, resume=True)
    assert again["intersection_ratio"] == results["intersection_ratio"]
    assert again["finders"] == results["finders"]


def test_the_finder_comparison_matches_its_artefact_and_the_methods_sets(run):
    config, workdir, results = run
    a = config.analysis
    comparison = artefacts.load_artefact(workdir, "finders")
    names = list(a.finders)
    num_seeds, num_finders, num_classes, latent_dim = comparison.directions.shape
    assert (num_seeds, num_finders, num_classes, latent_dim) == (2, len(names), 10, 100)
    directions = np.asarray(comparison.directions)
    apcr = artefacts.load_artefact(workdir, "apcr")
    weights = artefacts.load_artefact(workdir, "weights")
    for s in range(num_seeds):
        for j in range(num_classes):
            # Methods A and B: their stage's K-sets, with their signs (not run again).
            row = directions[s, names.index("apcr"), j]
            assert set(np.flatnonzero(row)) == set(np.argsort(-apcr.apcr[s][:, j])[: a.k])
            row = directions[s, names.index("weights"), j]
            assert set(np.flatnonzero(row)) == set(np.argsort(-np.abs(weights.weights[s][j]))[: a.k])
            np.testing.assert_array_equal(row[row != 0], np.sign(weights.weights[s][j][row != 0]))
    for f, name in enumerate(names):
        norms = np.linalg.norm(directions[:, f], axis=-1)
        expected = np.sqrt(a.k) if lj.FINDERS[name].sparse else 1.0
        np.testing.assert_allclose(norms, expected, atol=1e-5, err_msg=name)
    # Held-out codes: a new draw, confident for their class, none of them a latent-set code.
    held_out = np.asarray(comparison.held_out_codes)
    assert held_out.shape == (2, 10, a.finder_samples_per_class, 100)
    seen = np.asarray(artefacts.load_artefact(workdir, "latents").codes)
    assert not np.isin(held_out.round(5), seen.round(5)).all(axis=-1).any()
    models = lj.load_pretrained(a.pretrained)
    probs = np.asarray(models.classify(models.generate(held_out.reshape(-1, 100)))).reshape(2, 10, -1, 10)
    own = np.take_along_axis(probs, np.arange(10)[None, :, None, None], axis=-1)[..., 0]
    assert (own >= a.latents.threshold - 1e-4).all()
    # results.json: the artefact's class means, zero effect at distance zero.
    f = results["finders"]
    assert f["names"] == names and f["distances"] == list(a.finder_distances)
    for mode, measures in summaries.FINDER_MEASURES.items():
        for measure in measures:
            values = np.asarray(getattr(getattr(comparison, mode), measure))  # [A, F, C, T]
            for i, name in enumerate(names):
                entry = f[mode][measure][name]
                np.testing.assert_allclose(entry["mean"], values[:, i].mean(axis=(0, 1)), atol=1e-6)
                assert entry["mean"][0] == pytest.approx(0.0, abs=1e-6)
                assert all(lo - 1e-9 <= m <= hi + 1e-9 for lo, m, hi in zip(entry["low"], entry["mean"], entry["high"]))
    report = (workdir / "report.md").read_text()
    assert "## Direction finders side by side" in report
    assert all(f"| `{name}` |" in report for name in names)


def test_a_run_from_before_the_finders_resumes_and_adds_them(run, tmp_path, monkeypatch):
    import shutil

    config, workdir, results = run
    old = tmp_path / "old"
    shutil.copytree(workdir, old)
    shutil.rmtree(old / "artefacts" / "finders")
    (old / "results.json").unlink()
    record = json.loads((old / "run.json").read_text())
    for key in [k for k in record["config"]["analysis"] if k.startswith("finder")]:
        del record["config"]["analysis"][key]
    (old / "run.json").write_text(json.dumps(record))

    def fail(*args, **kwargs):
        raise AssertionError("a finished stage was computed again")

    from latentjax.experiment import stages

    monkeypatch.setattr(stages, "compute_apcr", fail)
    monkeypatch.setattr(stages, "optimize_weights", fail)
    resumed = reproduce.reproduce(config, old, resume=True)
    assert resumed["finders"] == results["finders"]  # same seeds, same numbers
    assert json.loads((old / "run.json").read_text())["config"]["analysis"]["finders"] == list(config.analysis.finders)


def test_interrupted_run_resumes_from_the_last_finished_stage(run, tmp_path):
    import shutil

    config, workdir, results = run
    partial = tmp_path / "partial"
    shutil.copytree(workdir, partial)
    # Simulate a run killed after Method A: later stages and outputs never written.
    for name in ("weights", "manipulation", "structure"):
        shutil.rmtree(partial / "artefacts" / name)
    (partial / "results.json").unlink()
    resumed = reproduce.reproduce(config, partial, resume=True)
    assert resumed["intersection_ratio"] == results["intersection_ratio"]



def test_train_and_export_resumes_an_interrupted_training_and_export(tiny_config, tmp_path):
    from latentjax.experiment import workflows
    from latentjax.experiment import training_runs

    models_dir = tmp_path / "models"
    # Killed while the classifier trained, after an earlier export had begun writing.
    training_runs.train_classifier(tiny_config, models_dir / "classifier", stop_after_steps=4)
    (models_dir / "exported.partial" / "generator").mkdir(parents=True)

    exported = workflows.train_and_export(tiny_config, models_dir, log=lambda message: None)

    assert exported == models_dir / "exported" and not (models_dir / "exported.partial").exists()
    for run in ("classifier", "gan"):
        steps = [json.loads(line)["step"] for line in (models_dir / run / "metrics.jsonl").read_text().splitlines()]
        assert steps == [2, 4, 6, 8], run  # 64 examples / batch 8, one epoch; no step twice
    models = lj.load_pretrained(exported)
    assert 0.0 <= models.metadata["quality"]["classifier_test_accuracy"] <= 1.0
    # A finished export is reused, not trained or written again.
    assert workflows.train_and_export(tiny_config, models_dir, log=lambda message: None) == exported


def test_reproduce_trains_models_when_asked_and_analyses_them(tiny_config, tmp_path, monkeypatch):
    from latentjax.experiment import workflows
    from latentjax.models import pretrained

    calls = []

    def train_and_export(config, directory, *, log):
        calls.append(directory)
        # Models trained for a few steps find no confident codes, so stand in the shipped ones.
        return pretrained.PRETRAINED_ROOT / "fashion_mnist"

    monkeypatch.setattr(workflows, "train_and_export", train_and_export)
    config = config_lib.apply_overrides(tiny_config, {"analysis.train_models": True, "analysis.seeds": (0,)})
    results = reproduce.reproduce(config, tmp_path / "run")
    assert calls == [tmp_path / "run" / "models"]
    assert results["models"]["trained_here"] and results["models"]["pretrained"].endswith("fashion_mnist")
    assert "(trained by this run)" in (tmp_path / "run" / "report.md").read_text()


def _copy(run, tmp_path, name="copy"):
    import shutil

    _, workdir, _ = run
    target = tmp_path / name
    shutil.copytree(workdir, target)
    (target / "results.json").unlink()
    return target


def test_half_written_stages_are_discarded_and_recomputed_on_resume(run, tmp_path):
    import shutil

    config, _, results = run
    copy = _copy(run, tmp_path)
    artefacts = copy / "artefacts"
    # Killed inside the save of Method B: only the staging folder exists, holding part of it.
    shutil.move(artefacts / "weights", artefacts / "weights.partial")
    next(p for p in (artefacts / "weights.partial").rglob("*") if p.is_file()).unlink()
    # As an older latentjax left it: the stage folder exists but Orbax never committed a step.
    shutil.rmtree(artefacts / "apcr")
    (artefacts / "apcr" / "0.orbax-checkpoint-tmp-1234").mkdir(parents=True)
    log = []
    resumed = reproduce.reproduce(config, copy, resume=True, log=log.append)
    assert resumed["intersection_ratio"] == results["intersection_ratio"]
    assert resumed["manipulation"] == results["manipulation"]
    assert not (artefacts / "weights.partial").exists()
    assert any(p.name.startswith("apcr.damaged-") for p in artefacts.iterdir())
    assert any("stage apcr: the saved result is unusable" in line for line in log)


def test_flipped_bytes_in_an_artefact_are_caught_and_the_stage_recomputed(run, tmp_path):
    from test_reliability import flip_bytes, largest_file

    from latentjax.errors import IntegrityError

    config, _, results = run
    copy = _copy(run, tmp_path)
    victim = largest_file(copy / "artefacts" / "apcr")
    flip_bytes(victim)
    with pytest.raises(IntegrityError, match=victim.name):
        artefacts.load_artefact(copy, "apcr")
    resumed = reproduce.reproduce(config, copy, resume=True, log=lambda _: None)
    assert resumed["intersection_ratio"] == results["intersection_ratio"]
    original = artefacts.load_artefact(run[1], "apcr")
    recomputed = artefacts.load_artefact(copy, "apcr")
    np.testing.assert_array_equal(recomputed.curves, original.curves)


def test_missing_data_fails_before_the_run_directory_exists(run, tmp_path):
    from latentjax.errors import DataUnavailableError

    config = config_lib.apply_overrides(
        run[0], {"tfds_data_dir": str(tmp_path / "tfds"), "local_data_dir": str(tmp_path / "empty")}
    )
    with pytest.raises(DataUnavailableError, match="lacks"):
        reproduce.reproduce(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_reproduce_killed_at_a_random_moment_resumes_to_the_same_numbers(run, tmp_path):
    """A real process, killed with SIGKILL while it saves its stages; then ``--resume``."""
    import os
    import random
    import subprocess
    import sys
    import time

    from conftest import REPO

    config, _, results = run
    workdir = tmp_path / "killed"
    command = [
        sys.executable, "-m", "latentjax.cli", "reproduce", "--config", str(REPO / "configs" / "tiny.py"),
        "--workdir", str(workdir), f"--config.tfds_data_dir={config.tfds_data_dir}",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    artefacts = workdir / "artefacts"
    # Kill within a save when one is seen in flight, else after a random number of stages.
    stages_before_kill = random.Random(os.getpid()).randint(1, 3)
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        names = [p.name for p in artefacts.iterdir()] if artefacts.is_dir() else []
        saving = any(n.endswith(".partial") for n in names)
        if saving or sum(not n.endswith(".partial") for n in names) >= stages_before_kill:
            process.kill()
            break
        time.sleep(0.002)
    process.wait()
    assert process.returncode != 0, "the run finished before it could be killed"
    resumed = reproduce.reproduce(config, workdir, resume=True, log=lambda _: None)
    assert resumed["intersection_ratio"] == results["intersection_ratio"]
    assert resumed["manipulation"] == results["manipulation"]


def test_the_run_writes_its_directions_as_files_and_the_cli_exports_them(run, tmp_path, capsys):
    from latentjax import cli

    config, workdir, _ = run
    files = sorted(p.name for p in (workdir / "directions").glob("*.npz"))
    finders = set(config.analysis.finders) | {"apcr", "weights", "weights_raw"}
    assert files == sorted(f"{f}-seed{s}.npz" for f in finders for s in config.analysis.seeds)
    sefa = lj.load_directions(workdir / "directions" / f"sefa-seed{config.analysis.seeds[0]}.npz",
                              latent_dim=config.latent_dim, generator=lj.load_pretrained().generate)
    assert sefa.directions.shape == (config.num_classes, config.latent_dim)
    assert sefa.metadata["names"][0] == "T-shirt/top"
    # The same files from the finished run, by the command; an existing folder is refused.
    assert cli.main(["directions", "--run", str(workdir), "--output", str(tmp_path / "out")]) == 0
    for name in files:
        np.testing.assert_array_equal(lj.load_directions(tmp_path / "out" / name).directions,
                                      lj.load_directions(workdir / "directions" / name).directions)
    assert cli.main(["directions", "--run", str(workdir), "--output", str(tmp_path / "out")]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err


def test_results_record_what_they_were_computed_with(run):
    import jax

    config, _, results = run
    record = results["provenance"]
    assert record["versions"]["jax"] == jax.__version__ and record["versions"]["latentjax"] == lj.__version__
    assert record["backend"] == jax.default_backend() and record["devices"]["count"] == jax.device_count()
    stages_run = {"latents", "apcr", "weights", "manipulation", "dose_response", "structure"} | ({"held_out", "finders"} if config.analysis.finders else set())
    assert set(record["stage_seconds"]) == stages_run
    assert all(seconds >= 0 for seconds in record["stage_seconds"].values())


def test_the_html_report_carries_its_figures(run):
    _, workdir, _ = run
    html = (workdir / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= len(reproduce_figures()) - 1
    assert 'src="figure' not in html and 'src="table1' not in html  # no link left to a file beside it
    assert "](figure1_tsne.png)" in (workdir / "report.md").read_text()  # the Markdown keeps its links
