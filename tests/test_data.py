"""The data path on the real Fashion-MNIST files, through TFDS, and its error messages."""

import time

import numpy as np
import pytest

from latentjax import data
from latentjax.errors import DataUnavailableError

# End to end (data, training, the reproduction, subprocesses): out of the quick tier, `-m "not slow"`.
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("split, per_class", [("train", 6000), ("test", 1000)])
def test_fashion_mnist_split_counts_and_range(tfds_dir, split, per_class):
    images, labels = data.load_split("fashion_mnist", split, tfds_data_dir=tfds_dir)
    assert images.shape == (10 * per_class, 28, 28, 1)
    assert images.dtype == np.float32 and labels.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), [per_class] * 10)
    assert images.min() == -1.0 and images.max() == 1.0
    # The published pixel mean (x / 255) of each split, mapped to [-1, 1].
    expected_mean = {"train": 0.28604, "test": 0.28685}[split]
    assert abs((images.mean() + 1) / 2 - expected_mean) < 1e-4


def test_loaded_arrays_are_read_only(tfds_dir):
    images, _ = data.load_split("fashion_mnist", "test", tfds_data_dir=tfds_dir)
    with pytest.raises(ValueError):
        images[0, 0, 0, 0] = 0.0


def test_missing_local_files_name_folder_and_files(tmp_path):
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(DataUnavailableError) as info:
        data.prepare_dataset("fashion_mnist", tfds_data_dir=tmp_path / "tfds", local_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    assert "t10k-labels-idx1-ubyte.gz" in message
    assert "train-images-idx3-ubyte.gz'" not in message.split("lacks")[1].split("]")[0]


def test_no_network_and_no_files_fails_fast_with_instructions(tmp_path, monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV)
    monkeypatch.setenv(data.OFFLINE_ENV, "1")
    start = time.perf_counter()
    with pytest.raises(DataUnavailableError) as info:
        data.prepare_dataset("fashion_mnist", tfds_data_dir=tmp_path)
    assert time.perf_counter() - start < 10
    message = str(info.value)
    assert data.DATA_DIR_ENV in message and data.OFFLINE_ENV in message
    assert "train-images-idx3-ubyte.gz" in message and "fashion-mnist/" in message


def test_unreachable_host_is_detected_quickly():
    start = time.perf_counter()
    assert not data._host_reachable("http://127.0.0.1:9/", timeout=2.0)
    assert time.perf_counter() - start < 3


def test_unknown_dataset_is_rejected():
    with pytest.raises(DataUnavailableError, match="unknown dataset 'mnist'"):
        data.prepare_dataset("mnist")


def test_a_damaged_local_file_is_named_in_one_clear_error(tmp_path, fashion_data_root):
    import shutil

    from test_reliability import flip_bytes

    local = tmp_path / "fashion-mnist"
    shutil.copytree(fashion_data_root / "fashion-mnist", local)
    flip_bytes(local / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DataUnavailableError, match="do not match the checksums TFDS registers") as info:
        data.prepare_dataset("fashion_mnist", tfds_data_dir=tmp_path / "tfds", local_dir=local)
    assert len(str(info.value).splitlines()) == 1


def test_an_unwritable_tfds_folder_is_refused_before_preparing(tmp_path, fashion_data_root):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(DataUnavailableError, match="not a writable folder; set config.tfds_data_dir"):
        data.prepare_dataset(
            "fashion_mnist", tfds_data_dir=blocker / "tfds", local_dir=fashion_data_root / "fashion-mnist"
        )
