"""Configs are locked against typos and reject impossible values, naming key and value."""

import pytest

from latentjax import config as config_lib
from latentjax.errors import ConfigError

from conftest import REPO


@pytest.mark.parametrize("name", ["default", "tiny"])
def test_shipped_configs_load_and_validate(name):
    config = config_lib.load_config(REPO / "configs" / f"{name}.py")
    assert config.latent_dim == 100 and config.dataset == "fashion_mnist"


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("[!_]*.py")), ids=lambda p: p.stem)
def test_every_config_loads_and_validates(path):
    config = config_lib.load_config(path)
    config_lib.validate_config(config)
    if path.stem in ("sweep", "sweep_gans", "sweep_steps"):
        assert tuple(config.analysis.finders) == ()  # their recorded times are without the finders
    if path.stem == "sweep_finders":
        assert len(config_lib.sweep_cells(config)) == 1 and len(config.sweep.models) == 3
        assert tuple(config.analysis.finders) == tuple(config_lib.load_config(REPO / "configs" / "default.py").analysis.finders)


@pytest.mark.parametrize("name", ["zappos", "zappos_tiny"])
def test_zappos_configs_describe_64x64_rgb_shoes(name):
    config = config_lib.load_config(REPO / "configs" / f"{name}.py")
    assert config.dataset == "ut_zappos50k" and (config.image_size, config.channels, config.num_classes) == (64, 3, 3)
    assert config.analysis.pretrained == "ut_zappos50k" and tuple(config.analysis.cross_targets) == (2, 2, 0)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"classifier.pixel_mean": (0.5, 0.5)}, "config.classifier.pixel_mean=(0.5, 0.5): expected one number or config.channels=3 numbers (one per channel)."),
        ({"classifier.pixel_std": (0.3, 0.0, 0.3)}, "config.classifier.pixel_std[1]=0.0: expected a positive number."),
    ],
)
def test_per_channel_statistics_are_checked(overrides, message):
    config = config_lib.load_config(REPO / "configs" / "zappos.py")
    with pytest.raises(ConfigError) as info:
        config_lib.apply_overrides(config, overrides)
    assert str(info.value) == message


def test_tiny_config_derives_from_default():
    tiny = config_lib.load_config(REPO / "configs" / "tiny.py")
    default = config_lib.load_config(REPO / "configs" / "default.py")
    assert tiny.gan_training.beta1 == default.gan_training.beta1
    assert tiny.train_examples == 64


@pytest.mark.parametrize(
    "override, message",
    [
        ("gan_training.batch_size=-8", "config.gan_training.batch_size=-8: expected a positive integer."),
        ("latent_dim=0", "config.latent_dim=0: expected a positive integer."),
        ("classifier.dropout=1.5", "config.classifier.dropout=1.5: expected a number in [0, 1)."),
        ("classifier_training.learning_rate=0.0", "config.classifier_training.learning_rate=0.0: expected a positive number."),
        ("seed=-1", "config.seed=-1: expected a non-negative integer."),
        ("dataset='mnist'", "config.dataset='mnist': expected one of ['fashion_mnist', 'ut_zappos50k', 'ut_zappos50k_four_classes']."),
        ("classifier.blocks=5", "config.classifier.blocks=5: its 2x2 poolings shrink config.image_size=28 below one pixel; expected at most 4."),
        ("classifier_training.augment_fill=2.0", "config.classifier_training.augment_fill=2.0: expected a number in [-1, 1]."),
        ("gan_training.batch_sise=8", "config.gan_training.batch_sise: no such key in this config."),
        ("latent_dim='big'", "config.latent_dim='big': wrong type, expected int."),
        ("latent_dim", "override 'latent_dim': expected KEY=VALUE, e.g. seed=3."),
        ("analysis.pretrained=''", "config.analysis.pretrained='': expected a shipped name or an exported folder (or config.analysis.train_models=True)."),
        ("analysis.train_models=1", "config.analysis.train_models=1: wrong type, expected bool."),
        ("analysis.finders=('apcr','pca')", "config.analysis.finders=('apcr', 'pca'): expected distinct names among ['apcr', 'ganspace', 'interfacegan', 'random', 'random_dense', 'sefa', 'weights'] (register your own with latentjax.register_finder), or () to skip the comparison."),
        ("analysis.finders=('sefa','sefa')", "config.analysis.finders=('sefa', 'sefa'): expected distinct names among ['apcr', 'ganspace', 'interfacegan', 'random', 'random_dense', 'sefa', 'weights'] (register your own with latentjax.register_finder), or () to skip the comparison."),
        ("analysis.finder_distances=(0.0,3.0,1.0)", "config.analysis.finder_distances=(0.0, 3.0, 1.0): expected increasing non-negative latent distances (L2 norms of the shift)."),
        ("analysis.finder_distances=(-1.0,3.0)", "config.analysis.finder_distances=(-1.0, 3.0): expected increasing non-negative latent distances (L2 norms of the shift)."),
        ("analysis.finder_table_distances=(4.0,9.0)", "config.analysis.finder_table_distances=(4.0, 9.0): expected two of config.analysis.finder_distances=(1.5, 3.0, 4.5, 6.0, 7.5, 9.0)."),
        ("analysis.finder_prior_samples=0", "config.analysis.finder_prior_samples=0: expected a positive integer."),
        ("analysis.finder_choice_distance=0.0", "config.analysis.finder_choice_distance=0.0: expected a positive number."),
        ("analysis.stability.pairs=-1", "config.analysis.stability.pairs=-1: expected a non-negative integer (0 = one run of Method B per seed)."),
        ("analysis.stability.threshold=0.5", "config.analysis.stability.threshold=0.5: expected a number in (0.5, 1]."),
        ("analysis.stability.q=101", "config.analysis.stability.q=101: expected at most config.latent_dim=100 (0 = analysis.k)."),
        ("analysis.latents.samples_per_class=1", "config.analysis.latents.samples_per_class=1 with stability.pairs=8: stability selection splits the codes into two halves, expected at least 2 (or stability.pairs=0)."),
    ],
)
def test_bad_overrides_name_key_and_value(default_config, override, message):
    with pytest.raises(ConfigError) as info:
        config_lib.apply_overrides(default_config, [override])
    assert str(info.value) == message


def test_overrides_parse_values_and_leave_the_original_alone(default_config):
    changed = config_lib.apply_overrides(
        default_config, ["seed=3", "classifier_training.learning_rate=1", "local_data_dir=/x/y"]
    )
    assert changed.seed == 3 and default_config.seed == 0
    assert changed.classifier_training.learning_rate == 1.0
    assert isinstance(changed.classifier_training.learning_rate, float)
    assert changed.local_data_dir == "/x/y"


def test_config_is_locked_against_new_keys(default_config):
    with pytest.raises(AttributeError):
        default_config.gan_training.epochz = 3


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file, and no shipped config of that name"):
        config_lib.load_config(tmp_path / "nope.py")
    with pytest.raises(ConfigError, match=r"'defualt'.*one of \[.*'default'"):
        config_lib.load_config("defualt")


def test_every_shipped_config_loads_by_name():
    names = config_lib.shipped_configs()
    assert {"default", "tiny", "full", "zappos", "sweep"} <= set(names)
    for name, path in names.items():
        by_name = config_lib.load_config(name)
        assert by_name.to_dict() == config_lib.load_config(path).to_dict(), name


def test_config_file_without_get_config(tmp_path):
    path = tmp_path / "empty.py"
    path.write_text("x = 1\n")
    with pytest.raises(ConfigError, match="defines no get_config"):
        config_lib.load_config(path)
