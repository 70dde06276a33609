"""Installing where the users are: a lean import, clear messages, and the wheel."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO

# End to end (data, training, the reproduction, subprocesses): out of the quick tier, `-m "not slow"`.
pytestmark = pytest.mark.slow


def _python(code: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, **kwargs
    )


def test_import_latentjax_loads_only_the_analysis_core():
    result = _python("""
        import sys
        import latentjax
        heavy = ["flax", "orbax", "tensorflow", "tensorflow_datasets", "matplotlib", "sklearn",
                 "ml_collections", "markdown"]
        loaded = [m for m in heavy if m in sys.modules]
        import jax
        jax.config.update("jax_num_cpu_devices", 3)  # refused once a backend has started
        print({"loaded": loaded, "devices": len(jax.devices("cpu"))})
    """, env={**os.environ, "XLA_FLAGS": ""})
    assert result.returncode == 0, result.stderr
    report = eval(result.stdout.strip().splitlines()[-1])
    assert report == {"loaded": [], "devices": 3}


def test_a_missing_extra_names_the_extra_to_install():
    # Hide flax from a fresh interpreter, as if only the core had been installed.
    result = _python("""
        import sys
        sys.modules["flax"] = None
        import latentjax
        try:
            latentjax.load_pretrained("fashion_mnist")
        except ImportError as exc:
            print(exc)
    """)
    assert "needs the package 'flax', which is not installed: pip install 'latentjax[models]'" in result.stdout


@pytest.mark.slow
def test_the_wheel_carries_the_models_and_runs_reproduce(tmp_path, tfds_dir):
    """Builds the wheel from the tracked files, installs it apart from the checkout, runs it."""
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True)
    source = tmp_path / "source"
    for name in files.stdout.split():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((REPO / name).read_bytes())
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path / "dist")],
        cwd=source, check=True, capture_output=True, text=True,
    )
    # The shipped models are data, not packages: setuptools has nothing to warn about.
    assert "absent from the `packages` configuration" not in build.stdout + build.stderr
    (wheel,) = (tmp_path / "dist").glob("latentjax-*.whl")
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
        check=True, capture_output=True,
    )
    shipped = sorted(p.name for p in (site / "latentjax" / "pretrained-models" / "fashion_mnist").iterdir())
    assert shipped == ["classifier", "generator"]
    assert (site / "latentjax" / "configs" / "default.py").is_file()
    # The wheel's latentjax, not the checkout's: the wheel's folder comes first on the path.
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = _python("import latentjax; print(latentjax.__file__)", env=env, cwd=tmp_path)
    assert where.stdout.strip().startswith(str(site)), where.stdout + where.stderr
    run = subprocess.run(
        # A shipped config by name: the wheel carries configs/ as latentjax.configs.
        [sys.executable, "-m", "latentjax.cli", "reproduce", "--config", "tiny",
         "--workdir", str(tmp_path / "run"), f"--config.tfds_data_dir={tfds_dir}"],
        env=env, cwd=tmp_path, capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert len(results["intersection_ratio"]["mean_per_class"]) == 10


@pytest.mark.parametrize("ci, expected_code", [(None, 0), ("true", 1)])
def test_data_tests_skip_without_the_data_and_fail_under_ci(tmp_path, ci, expected_code):
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["LATENTJAX_DATA_DIR"] = str(tmp_path)  # an empty folder: no dataset in it
    if ci:
        env["CI"] = ci
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         "tests/test_data.py::test_loaded_arrays_are_read_only"],
        capture_output=True, text=True, cwd=REPO, env=env,
    )
    assert result.returncode == expected_code, result.stdout[-2000:]
    assert f"real data missing: {tmp_path / 'fashion-mnist'} is not a folder" in result.stdout


def test_the_package_list_names_every_package():
    """pyproject lists the packages (configs/ installs as latentjax.configs): none may be missing."""
    import tomllib

    import setuptools

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set(setuptools.find_packages(str(REPO), include=["latentjax", "latentjax.*"]))
    assert found | {"latentjax.configs"} == listed
