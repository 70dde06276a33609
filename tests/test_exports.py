"""Every function latentjax exports shows how it is called: a runnable example in its docstring
(the suite runs them as doctests, so they stay true)."""

import inspect

import pytest

import latentjax as lj

FUNCTIONS = sorted(n for n in lj.__all__ if inspect.isfunction(getattr(lj, n)))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_exported_function_carries_a_runnable_example(name):
    doc = inspect.getdoc(getattr(lj, name)) or ""
    assert ">>>" in doc, f"latentjax.{name} has no example in its docstring"


def test_the_settings_objects_are_exported_with_examples():
    for kind in (lj.LatentSettings, lj.APCRSettings, lj.MethodBSettings, lj.StabilitySettings, lj.ManipulationSettings):
        assert ">>>" in (inspect.getdoc(kind) or ""), kind.__name__
