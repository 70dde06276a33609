"""The CLI's errors and the train -> evaluate -> export -> load path on the tiny config."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentjax as lj
from latentjax import cli

from conftest import REPO

# End to end (data, training, the reproduction, subprocesses): out of the quick tier, `-m "not slow"`.
pytestmark = pytest.mark.slow

TINY = str(REPO / "configs" / "tiny.py")


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--config.gan_training.batch_sise=3"], "config.gan_training.batch_sise: no such key in this config."),
        (["--config.gan_training.batch_size=-1"], "config.gan_training.batch_size=-1: expected a positive integer."),
        (["--config.latent_dim=0"], "config.latent_dim=0: expected a positive integer."),
        (["--config.analysis.apcr.delta=1e400"], "config.analysis.apcr.delta=inf: expected a finite number."),
        (["--config.analysis.apcr.chunk_size=-5"], "config.analysis.apcr.chunk_size=-5: expected a non-negative integer (0 = the backend's default)."),
        (["--config.classifier.pixel_mean=nan"], "config.classifier.pixel_mean=nan: expected a finite number."),
    ],
)
def test_cli_rejects_bad_config_values_before_work(tmp_path, capsys, extra, message):
    code = cli.main(["train-gan", "--config", TINY, "--workdir", str(tmp_path / "run"), *extra])
    assert code == 2
    assert capsys.readouterr().err.strip() == f"latentjax: error: {message}"
    assert not (tmp_path / "run").exists()


def test_cli_names_a_missing_config_file(tmp_path, capsys):
    code = cli.main(["evaluate", "--config", str(tmp_path / "nope.py")])
    assert code == 2
    assert "nope.py': no such file, and no shipped config of that name" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, message",
    [
        ("def get_config(:\n", "bad.py': syntax error at line 1"),
        ("import not_a_module\n", "bad.py' failed to load: ModuleNotFoundError: No module named 'not_a_module'"),
    ],
)
def test_cli_names_a_broken_config_file_in_one_line(tmp_path, capsys, text, message):
    (tmp_path / "bad.py").write_text(text)
    code = cli.main(["train-gan", "--config", str(tmp_path / "bad.py"), "--workdir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_cli_errors_are_one_line_and_debug_shows_the_traceback(tmp_path, capsys, tfds_dir):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    argv = ["train-classifier", "--config", TINY, "--workdir", str(blocker / "run"),
            f"--config.tfds_data_dir={tfds_dir}"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("latentjax: error: run directory") and "cannot be written" in err
    assert len(err.splitlines()) == 1
    from latentjax.errors import RunDirectoryError

    with pytest.raises(RunDirectoryError):
        cli.main([*argv, "--debug"])


def test_cli_refuses_an_existing_run_directory(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "x").write_text("")
    code = cli.main(["train-classifier", "--config", TINY, "--workdir", str(tmp_path / "run")])
    assert code == 2
    assert "exists and is not empty; pass --resume" in capsys.readouterr().err


def test_train_evaluate_export_and_load(tmp_path, tfds_dir, capsys):
    common = ["--config", TINY, f"--config.tfds_data_dir={tfds_dir}"]
    assert cli.main(["train-classifier", *common, "--workdir", str(tmp_path / "c")]) == 0
    assert cli.main(["train-gan", *common, "--workdir", str(tmp_path / "g")]) == 0
    runs = ["--classifier-run", str(tmp_path / "c"), "--gan-run", str(tmp_path / "g")]
    output = tmp_path / "quality.json"
    assert cli.main(["evaluate", *common, *runs, "--gan-weights", "last"]) == 0
    last_printed = capsys.readouterr().out
    grid = tmp_path / "samples.png"
    assert cli.main(["evaluate", *common, *runs, "--output", str(output), "--samples-grid", str(grid)]) == 0
    printed = capsys.readouterr().out
    import matplotlib.image

    assert matplotlib.image.imread(grid).shape[:2] == (2 * (10 * 29 + 1),) * 2  # 10x10 tiles of 28 + 1 px, doubled
    assert cli.main(["evaluate", *common, *runs, "--samples-grid", str(grid)]) == 2  # never overwritten
    assert "classifier test accuracy:" in printed and "untrained generator vs test" in printed
    # The tiny config averages from step 0 with decay 0.5: the two generators differ.
    assert last_printed.splitlines()[2:4] != printed.splitlines()[2:4]
    quality = json.loads(output.read_text())
    gan = quality["gan"]
    assert 0.0 <= quality["classifier_test_accuracy"] <= 1.0
    assert abs(sum(gan["class_histogram"]) - 1.0) < 1e-6 and gan["num_samples"] == 64
    assert gan["frechet_distance_train_vs_test"] >= 0.0

    destination = tmp_path / "exported"
    assert cli.main(["export", *common, *runs, "--destination", str(destination)]) == 0
    assert cli.main(["export", *common, *runs, "--destination", str(destination)]) == 2
    models = lj.load_pretrained(destination)
    assert models.metadata["quality"]["classifier_test_accuracy"] == quality["classifier_test_accuracy"]
    z = jax.random.normal(jax.random.key(0), (3, 100))
    probs = models.classify(models.generate(z))
    assert probs.shape == (3, 10)
    np.testing.assert_allclose(jnp.sum(probs, -1), 1.0, atol=1e-5)


def test_reproduce_names_missing_models_before_creating_the_run_directory(tmp_path, capsys):
    run = tmp_path / "run"
    code = cli.main(["reproduce", "--config", TINY, "--workdir", str(run), "--config.analysis.pretrained=nowhere"])
    assert code == 2
    assert "no pretrained models 'nowhere'" in capsys.readouterr().err
    assert not run.exists()


def test_unknown_pretrained_name_lists_the_shipped_ones():
    with pytest.raises(FileNotFoundError, match="no pretrained models 'cifar'"):
        lj.load_pretrained("cifar")
