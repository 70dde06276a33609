"""Strict settings for the whole suite (as equinox's conftest) and shared fixtures."""

import atexit
import os
import pathlib
import shutil
import tempfile

# Eight fake CPU devices (a TPU host's count) so sharding code paths run here too; must precede the first jax import.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = pathlib.Path(__file__).resolve().parents[1]
# The one setting through which tests find the real data (the library reads it too).
os.environ.setdefault("LATENTJAX_DATA_DIR", str(REPO.parent / "shared" / "data"))

# One on-disk cache of compiled programs for the whole run, shared by the test processes and the
# processes they start (command-line runs, a killed sweep, the notebook's kernel): most of the
# suite's time is XLA compiling, often the same program in several processes. The process that
# makes the folder (pytest's first, before it starts its workers) removes it at exit.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="latentjax-tests-xla-")
    atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

from latentjax import config as config_lib  # noqa: E402
from latentjax import data  # noqa: E402


def require_data(folder: str) -> pathlib.Path:
    """The real-data root when it holds ``folder``; else the test skips, naming what is missing,
    or fails where ``CI`` is set (CI always has the data, so it never skips silently)."""
    root = pathlib.Path(os.environ["LATENTJAX_DATA_DIR"])
    if not (root / folder).is_dir():
        reason = (
            f"real data missing: {root / folder} is not a folder (set LATENTJAX_DATA_DIR to the "
            f"folder that holds {folder}/)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, and CI must have the data", pytrace=False)
        pytest.skip(reason)
    return root


@pytest.fixture(scope="session")
def fashion_data_root() -> pathlib.Path:
    return require_data("fashion-mnist")


@pytest.fixture(scope="session")
def zappos_data_root() -> pathlib.Path:
    return require_data("ut-zappos50k-subset")


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory, fashion_data_root) -> pathlib.Path:
    """A fresh TFDS data dir, prepared once per session from the local canonical files."""
    directory = tmp_path_factory.mktemp("tfds")
    data.prepare_dataset("fashion_mnist", tfds_data_dir=directory)
    return directory


@pytest.fixture
def tiny_config(tfds_dir):
    config = config_lib.load_config(REPO / "configs" / "tiny.py")
    return config_lib.apply_overrides(config, {"tfds_data_dir": str(tfds_dir)})


@pytest.fixture(scope="session")
def default_config():
    return config_lib.load_config(REPO / "configs" / "default.py")


@pytest.fixture(scope="session")
def zappos_tfds_dir(tmp_path_factory, zappos_data_root) -> pathlib.Path:
    """A fresh TFDS data dir with UT Zappos50K (three classes) built from the real archive."""
    directory = tmp_path_factory.mktemp("tfds-zappos")
    data.prepare_dataset("ut_zappos50k", tfds_data_dir=directory)
    return directory
