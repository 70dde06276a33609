"""The shipped UT Zappos50K models, and `reproduce` on shoes end to end against the real photos."""

import json

import jax
import numpy as np
import pytest

import latentjax as lj
from latentjax import config as config_lib
from latentjax import data
from latentjax.experiment import artefacts, reproduce
from latentjax.models.quality import classifier_accuracy

# End to end (data, training, the reproduction, subprocesses): out of the quick tier, `-m "not slow"`.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models():
    return lj.load_pretrained("ut_zappos50k")


def test_shipped_classifier_reaches_the_recorded_accuracy(models, zappos_tfds_dir):
    recorded = models.metadata["quality"]["classifier_test_accuracy"]
    assert recorded >= 0.97  # the aim for three classes of catalog photos
    images, labels = data.load_split("ut_zappos50k", "test", tfds_data_dir=zappos_tfds_dir)
    measured = classifier_accuracy(models.classify, images, labels, batch_size=500)
    assert abs(measured - recorded) < 1e-3


def test_shipped_generator_draws_every_class_in_colour(models):
    z = jax.random.normal(jax.random.key(123), (1000, models.spec.latent_dim))
    images = models.generate(z)
    assert images.shape == (1000, 64, 64, 3)
    assert float(images.min()) >= -1.0 and float(images.max()) <= 1.0
    # Colour, not grey: the channels of a sample differ.
    assert float(np.abs(np.asarray(images[..., 0] - images[..., 2])).mean()) > 0.01
    histogram = np.bincount(np.asarray(models.classify(images).argmax(-1)), minlength=3) / 1000
    recorded = models.metadata["quality"]["gan"]["class_histogram"]
    np.testing.assert_allclose(histogram, recorded, atol=0.05)
    assert histogram.min() >= 0.2 and histogram.max() <= 0.47


def test_shipped_models_record_their_config_and_fit_the_size_budget(models):
    from latentjax.models.pretrained import PRETRAINED_ROOT

    config = models.metadata["config"]
    assert config["dataset"] == "ut_zappos50k" and config["channels"] == 3
    assert models.spec.image_size == 64 and models.spec.classifier_blocks == 3
    shipped = sum(p.stat().st_size for p in PRETRAINED_ROOT.rglob("*") if p.is_file())
    assert shipped <= 20 * 2**20, shipped


@pytest.fixture(scope="module")
def run(tmp_path_factory, zappos_tfds_dir):
    from conftest import REPO

    config = config_lib.apply_overrides(
        config_lib.load_config(REPO / "configs" / "zappos_tiny.py"),
        {"tfds_data_dir": str(zappos_tfds_dir)},
    )
    workdir = tmp_path_factory.mktemp("reproduce-zappos") / "run"
    return config, workdir, reproduce.reproduce(config, workdir)


def test_reproduce_on_shoes_writes_colour_figures_and_a_report(run):
    import matplotlib.image

    config, workdir, results = run
    saved = json.loads((workdir / "results.json").read_text())
    assert saved["class_names"] == ["Boot", "Sandal", "Shoe"]
    assert saved["paper_table_1"] is None
    assert len(saved["intersection_ratio"]["mean_per_class"]) == 3
    assert saved["chance_level"] == config.analysis.k / config.latent_dim
    report = (workdir / "report.md").read_text()
    assert "none for `ut_zappos50k`" in report and "Shoe" in report
    for figure in ("figure5_same_class.png", "figure6_cross_class.png"):
        pixels = matplotlib.image.imread(workdir / figure)[..., :3]
        assert np.abs(pixels[..., 0] - pixels[..., 2]).max() > 0.1, figure  # colour survived
    manipulation = artefacts.load_artefact(workdir, "manipulation")
    top = manipulation["apcr"]["cross"]["top"]
    assert np.asarray(top.images).shape[-3:] == (64, 64, 3)
