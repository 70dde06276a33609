"""Each analysis step's settings, defined once: a typed object that validates itself, travels into
jit with its floats traced, keys saved stages, and is what the config's analysis keys become."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import pytest

import latentjax as lj
from latentjax import config as config_lib
from latentjax.errors import ConfigError
from latentjax.experiment import stages


@pytest.fixture(scope="module")
def analysis():
    return config_lib.load_config("default").analysis


@pytest.mark.parametrize(
    "settings, message",
    [
        (lj.MethodBSettings(steps=0), "steps=0: expected a positive integer."),
        (lj.MethodBSettings(xi_range=(3.0, 1.0)), "xi_range=(3.0, 1.0): expected (xi_min, xi_max) with 0 < xi_min <= xi_max."),
        (lj.MethodBSettings(penalty="l3"), "penalty='l3': expected one of ('l2', 'l2_squared', 'l1')."),
        (lj.MethodBSettings(init=1.0, parametrization="tanh"), "init=1.0: expected a value in [-1, 1] ('box') or in (-1, 1) ('tanh')."),
        (lj.LatentSettings(threshold=1.5), "threshold=1.5: expected a number in [0, 1]."),
        (lj.APCRSettings(m=0), "m=0: expected a positive integer."),
        (lj.StabilitySettings(threshold=0.5), "threshold=0.5: expected a number in (0.5, 1]."),
        (lj.ManipulationSettings(num_alphas=0), "num_alphas=0: expected a positive integer."),
    ],
)
def test_validate_names_the_field_and_what_was_expected(settings, message):
    with pytest.raises(lj.SettingError) as info:
        settings.validate()
    assert str(info.value) == message


@pytest.mark.parametrize(
    "override, message",
    [
        ("analysis.method_b.steps=0", "config.analysis.method_b.steps=0: expected a positive integer."),
        ("analysis.method_b.penalty='l3'", "config.analysis.method_b.penalty='l3': expected one of ('l2', 'l2_squared', 'l1')."),
        ("analysis.method_b.xi_range=(4.0,3.0)", "config.analysis.method_b.xi_range=(4.0, 3.0): expected (xi_min, xi_max) with 0 < xi_min <= xi_max."),
        ("analysis.method_b.solver='lbfgs'",
         "config.analysis.method_b.solver='lbfgs' with config.analysis.method_b.batch_size=8, config.analysis.method_b.xi_nodes=0: "
         "L-BFGS's line search needs the deterministic loss, expected config.analysis.method_b.batch_size=0 and "
         "config.analysis.method_b.xi_nodes > 0 (or config.analysis.method_b.solver='adam')."),
        ("analysis.latents.batch_size=0", "config.analysis.latents.batch_size=0: expected a positive integer."),
        ("analysis.apcr.delta=0.0", "config.analysis.apcr.delta=0.0: expected a positive number."),
        ("analysis.manipulation.samples=0", "config.analysis.manipulation.samples=0: expected a positive integer."),
        ("analysis.k=0", "config.analysis.k=0: expected a positive integer."),
    ],
)
def test_a_config_is_checked_by_the_settings_own_rules_in_config_words(override, message):
    with pytest.raises(ConfigError) as info:
        config_lib.apply_overrides(config_lib.load_config("default"), [override])
    assert str(info.value) == message


def test_a_config_section_is_its_settings_object_by_the_same_names(analysis):
    for kind in (lj.LatentSettings, lj.MethodBSettings, lj.ManipulationSettings):
        settings = kind.from_config(analysis)
        for field in dataclasses.fields(kind):
            where = analysis if field.name in kind.SHARED else analysis[kind.SECTION]
            assert getattr(settings, field.name) == where[field.name], (kind.__name__, field.name)
    assert lj.APCRSettings.from_config(analysis).chunk_size is None  # the config's 0: the default
    assert stages.stability_settings(analysis) == lj.StabilitySettings(pairs=8, q=10, threshold=0.8)


def test_structure_is_static_and_floats_are_traced():
    settings = lj.MethodBSettings(steps=30, learning_rate=0.1)
    leaves, treedef = jax.tree.flatten(settings)
    assert sorted(leaves) == sorted([0.2, 1.0, 3.0, 0.1, 0.5, 0.0])  # lam, xi_range, learning_rate, init, smoothing
    hash(settings.static)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def scaled(s, x):
        return x * s.learning_rate * s.static.steps

    assert float(scaled(settings, 1.0)) == pytest.approx(3.0)
    assert float(scaled(settings.replace(learning_rate=0.2), 1.0)) == pytest.approx(6.0)  # no retrace
    stacked = jax.tree.map(lambda *x: jnp.stack(x), settings, settings.replace(lam=0.4))
    assert jax.vmap(lambda s: s.lam)(stacked).tolist() == pytest.approx([0.2, 0.4])


def test_the_keyword_form_is_the_settings_form():
    generate = lambda z: z
    classify = lambda x: jax.nn.softmax(jnp.stack([4 * x[:, 1], -4 * x[:, 1]], -1))
    codes = jax.random.normal(jax.random.key(0), (2, 16, 3))
    by_keywords = lj.optimize_weights(generate, classify, codes, jax.random.key(1), steps=4, batch_size=4, loop="device")
    by_settings = lj.optimize_weights(generate, classify, codes, jax.random.key(1),
                                      settings=lj.MethodBSettings(steps=4, batch_size=4), loop="device")
    chex.assert_trees_all_equal(by_keywords, by_settings)
    with pytest.raises(TypeError, match=r"unknown Method B setting\(s\) \['stepz'\]"):
        lj.optimize_weights(generate, classify, codes, jax.random.key(1), stepz=3)


def _another_value(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, str):
        return {"box": "tanh", "adam": "lbfgs", "constant": "cosine", "l2": "l1"}[value]
    if isinstance(value, tuple):
        return tuple(v * 1.5 for v in value)
    return value + 1 if isinstance(value, int) else value * 0.5 + 0.125


@pytest.mark.parametrize("stage, kind", [("latents", lj.LatentSettings), ("apcr", lj.APCRSettings), ("weights", lj.MethodBSettings)])
def test_a_saved_stage_is_keyed_by_every_field_that_shapes_it(analysis, stage, kind):
    """The sweep's stage cache key comes from the settings objects: a field added to them keys the
    stage without anyone listing it, so a cache can never serve a result computed otherwise."""
    before = stages.stage_identity(stage, analysis)
    base = kind.from_config(analysis)
    for field in dataclasses.fields(kind):
        if field.name in kind.EXECUTION:
            continue
        changed = analysis.copy_and_resolve_references()
        where = changed if field.name in kind.SHARED else changed[kind.SECTION]
        where[field.name] = _another_value(getattr(base, field.name))
        assert stages.stage_identity(stage, changed) != before, field.name


def test_a_float_may_come_as_a_python_number_a_numpy_scalar_or_a_0d_array():
    """What counts as a number is validation.scalar_value's, for the settings as for the functions."""
    import numpy as np

    settings = lj.MethodBSettings(lam=np.float32(0.2), learning_rate=jnp.asarray(0.01), xi_range=(jnp.float32(1.0), 3.0))
    assert settings.validate() is settings
    with pytest.raises(lj.SettingError, match=r"steps=3.0: expected a positive integer"):
        lj.MethodBSettings(steps=3.0).validate()
