"""Strict settings for the whole suite (as equinox's conftest) and shared fixtures."""

import atexit
import fcntl
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

# One temporary folder for the whole run, shared by the test processes and the processes they
# start (command-line runs, a killed sweep, the notebook's kernel); the process that makes it
# (pytest's first, before it starts its workers) removes it at exit. It holds:
# - the on-disk cache of compiled programs: most of the suite's time is XLA compiling, often the
#   same program in several processes. Every program is cached, not only those over JAX's default
#   1 s: the many sub-second ones, compiled again in each process, add up to minutes;
# - the datasets as tensorflow-datasets prepares them, prepared once, not once per worker.
if "LATENTJAX_TESTS_SHARED_DIR" not in os.environ:
    os.environ["LATENTJAX_TESTS_SHARED_DIR"] = tempfile.mkdtemp(prefix="latentjax-tests-")
    atexit.register(shutil.rmtree, os.environ["LATENTJAX_TESTS_SHARED_DIR"], ignore_errors=True)
SHARED_DIR = pathlib.Path(os.environ["LATENTJAX_TESTS_SHARED_DIR"])
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(SHARED_DIR / "xla"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

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


def prepared_once(name: str) -> pathlib.Path:
    """A TFDS data dir holding ``name``, prepared from the real files by the first test process
    that asks (the others wait for it); tests read it and never write to it."""
    directory = SHARED_DIR / f"tfds-{name}"
    with open(SHARED_DIR / f"tfds-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data.prepare_dataset(name, tfds_data_dir=directory)  # a no-op once prepared
    return directory


@pytest.fixture(scope="session")
def tfds_dir(fashion_data_root) -> pathlib.Path:
    """A TFDS data dir with Fashion-MNIST, prepared once per run from the local canonical files."""
    return prepared_once("fashion_mnist")


@pytest.fixture
def tiny_config(tfds_dir):
    config = config_lib.load_config(REPO / "configs" / "tiny.py")
    return config_lib.apply_overrides(config, {"tfds_data_dir": str(tfds_dir)})


@pytest.fixture(scope="session")
def default_config():
    return config_lib.load_config(REPO / "configs" / "default.py")


@pytest.fixture(scope="session")
def zappos_tfds_dir(zappos_data_root) -> pathlib.Path:
    """A TFDS data dir with UT Zappos50K (three classes) built once per run from the real archive."""
    return prepared_once("ut_zappos50k")
