"""Datasets through tensorflow-datasets, online or from local files, with one code path.

``load_split('fashion_mnist', 'train')`` prepares TFDS's own ``fashion_mnist`` builder and reads
the split into memory. Where the dataset's canonical files are in a local folder (the argument
``local_dir``, or ``$LATENTJAX_DATA_DIR/<folder>``), that folder is TFDS's *manual* download
folder: TFDS takes the files from there instead of the network and verifies them against its
registered checksums. Otherwise TFDS downloads as usual. With neither, a
:class:`~latentjax.errors.DataUnavailableError` says within seconds what to put where, instead of
TFDS retrying for minutes. ``load_split('ut_zappos50k', ...)`` goes the same way through
latentjax's own TFDS builder (:mod:`latentjax.data.ut_zappos50k`), which builds from the manual
folder, or downloads the official release's zip.

Images come back as float32 in [-1, 1] (the generator's range), shape ``[n, H, W, C]``; labels as
int32. TensorFlow is imported only here, lazily, and is kept off GPUs and TPUs so that it never
competes with JAX for accelerator memory.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
import socket
import urllib.parse

import numpy as np

from latentjax.extras import require
from latentjax.storage.files import unwritable_ancestor
from latentjax.errors import DataUnavailableError

DATA_DIR_ENV = "LATENTJAX_DATA_DIR"
#: Set to ``1`` where no download can work (a cluster without internet): a dataset that is neither
#: prepared nor in a local folder fails at once with instructions, without trying the server.
OFFLINE_ENV = "LATENTJAX_OFFLINE"


def offline() -> bool:
    """Whether ``$LATENTJAX_OFFLINE`` forbids downloads (``1``, ``true`` or ``yes``)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes")


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What latentjax needs to know about one dataset."""

    tfds_name: str
    local_folder: str  # folder name under $LATENTJAX_DATA_DIR
    local_files: tuple[str, ...]  # the canonical files TFDS looks for in its manual folder
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    # True: the manual folder must hold *one* of local_files (alternative layouts; a name
    # ending in '/' is a folder). False: it must hold all of them.
    any_local_file: bool = False
    # What to put in the manual folder, where the builder's own instructions say too much.
    instructions: str = ""


DATASETS: dict[str, DatasetSpec] = {
    "fashion_mnist": DatasetSpec(
        tfds_name="fashion_mnist",
        local_folder="fashion-mnist",
        local_files=(
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
        ),
        image_shape=(28, 28, 1),
        class_names=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
    ),
    # latentjax's own TFDS builder (latentjax/data/ut_zappos50k.py): a manual folder, or the
    # official zip downloaded.
    "ut_zappos50k": DatasetSpec(
        tfds_name="ut_zappos50k/three_classes",
        local_folder="ut-zappos50k-subset",
        local_files=(
            "ut-zap50k-images-square/",
            "ut-zap50k-images-square.zip",
            "shoe_sandal_boot_original_jpegs.tar.gz",
        ),
        image_shape=(64, 64, 3),
        class_names=("Boot", "Sandal", "Shoe"),
        any_local_file=True,
    ),
    "ut_zappos50k_four_classes": DatasetSpec(
        tfds_name="ut_zappos50k/four_classes",
        local_folder="ut-zappos50k",
        local_files=("ut-zap50k-images-square/", "ut-zap50k-images-square.zip"),
        image_shape=(64, 64, 3),
        class_names=("Boot", "Sandal", "Shoe", "Slipper"),
        any_local_file=True,
        instructions=(
            "put the official release (ut-zap50k-images-square/ or ut-zap50k-images-square.zip "
            "from https://vision.cs.utexas.edu/projects/finegrained/utzap50k/) in the manual "
            "folder; the three-class archive has no Slippers"
        ),
    ),
}


def dataset_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DataUnavailableError(f"unknown dataset {name!r}; expected one of {sorted(DATASETS)}.")
    return DATASETS[name]


def _import_tfds():
    # TensorFlow only decodes records here: its INFO logs, and the notice that oneDNN's kernels
    # may round differently (they compute nothing of ours), are noise in a run's output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    tfds = require("tensorflow_datasets", "data", "Loading datasets")
    tf = require("tensorflow", "tf-cpu", "tensorflow-datasets (TensorFlow, or tensorflow-cpu)")

    # TensorFlow only decodes records here; JAX owns every accelerator.
    tf.config.set_visible_devices([], "GPU")
    try:
        tf.config.set_visible_devices([], "TPU")
    except (ValueError, RuntimeError):
        pass
    require("PIL", "data", "Decoding UT Zappos50K photos (Pillow)")
    from latentjax.data import ut_zappos50k  # noqa: F401  (registers the builder with TFDS)

    return tfds


def _present(folder: pathlib.Path, name: str) -> bool:
    return (folder / name).is_dir() if name.endswith("/") else (folder / name).is_file()


def resolve_local_dir(name: str, local_dir: str | os.PathLike | None = None) -> pathlib.Path | None:
    """The folder to take the canonical files from: ``local_dir``, else the env setting, else None."""
    if local_dir:
        return pathlib.Path(local_dir)
    root = os.environ.get(DATA_DIR_ENV)
    if root:
        return pathlib.Path(root) / dataset_spec(name).local_folder
    return None


def _host_reachable(url: str, timeout: float = 3.0) -> bool:
    parsed = urllib.parse.urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _download_url(builder) -> str:
    url = getattr(builder, "URL", None)
    return url or "https://storage.googleapis.com"


def prepare_dataset(
    name: str,
    *,
    tfds_data_dir: str | os.PathLike | None = None,
    local_dir: str | os.PathLike | None = None,
):
    """Prepares the TFDS builder for ``name`` (once) and returns it.

    Order: an already-prepared dataset is used as it is; else local canonical files (checksums
    verified by TFDS); else a TFDS download, after a quick check that the server answers (none
    when ``$LATENTJAX_OFFLINE`` is set: :func:`offline`).
    """
    spec = dataset_spec(name)
    tfds = _import_tfds()
    builder = tfds.builder(spec.tfds_name, data_dir=str(tfds_data_dir) if tfds_data_dir else None)
    if builder.is_prepared():
        return builder
    local = resolve_local_dir(name, local_dir)
    if local is not None:
        missing = [f for f in spec.local_files if not _present(local, f)]
        if spec.any_local_file and len(missing) == len(spec.local_files):
            raise DataUnavailableError(
                f"dataset {name!r}: the local folder {str(local)!r} holds none of "
                f"{list(spec.local_files)}; put one of them there "
                f"({spec.instructions or _manual_instructions(builder)})."
            )
        if missing and not spec.any_local_file:
            raise DataUnavailableError(
                f"dataset {name!r}: the local folder {str(local)!r} lacks {missing}. Put the "
                f"canonical files {list(spec.local_files)} there, or unset {DATA_DIR_ENV} and "
                "pass no local folder to download through tensorflow-datasets."
            )
    elif offline() or not _host_reachable(_download_url(builder)):
        why = (f"{OFFLINE_ENV} forbids downloads" if offline()
               else f"the download server ({_download_url(builder)}) cannot be reached")
        raise DataUnavailableError(
            f"dataset {name!r} is not prepared in {builder.data_dir!r}, no local folder was given, "
            f"and {why}. Either connect to the internet, or put the canonical files {list(spec.local_files)} in a folder "
            f"and point latentjax at it: set {DATA_DIR_ENV} to the folder that holds "
            f"'{spec.local_folder}/', or pass local_dir= (config.local_data_dir)."
        )
    _check_cache_writable(name, builder.data_dir)
    download_config = tfds.download.DownloadConfig(manual_dir=str(local) if local else None)
    try:
        builder.download_and_prepare(download_config=download_config)
    except PermissionError as exc:
        raise DataUnavailableError(
            f"dataset {name!r}: TFDS cannot write its prepared copy ({exc}); set "
            "config.tfds_data_dir (--config.tfds_data_dir=FOLDER) to a writable folder."
        ) from None
    except Exception as exc:
        if type(exc).__name__ != "NonMatchingChecksumError":
            raise
        raise DataUnavailableError(
            f"dataset {name!r}: the files in {str(local) if local else 'the download'!r} do not "
            "match the checksums TFDS registers for the official release (damaged or a "
            f"different version): replace them with the official files {list(spec.local_files)}."
        ) from None
    return builder


def _manual_instructions(builder) -> str:
    text = getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", "") or ""
    return " ".join(text.split()).rstrip(".")


def _check_cache_writable(name: str, data_dir: str) -> None:
    blocked = unwritable_ancestor(data_dir)
    if blocked is not None:
        raise DataUnavailableError(
            f"dataset {name!r}: TFDS keeps its prepared copy in {str(data_dir)!r}, but "
            f"{str(blocked)!r} is not a writable folder; set config.tfds_data_dir "
            "(--config.tfds_data_dir=FOLDER) to a writable folder."
        )


@functools.lru_cache(maxsize=8)
def _load_split_cached(name, split, tfds_data_dir, local_dir):
    builder = prepare_dataset(name, tfds_data_dir=tfds_data_dir, local_dir=local_dir)
    tfds = _import_tfds()
    arrays = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
    images = arrays["image"].astype(np.float32) / 127.5 - 1.0
    labels = arrays["label"].astype(np.int32)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_split(
    name: str,
    split: str,
    *,
    tfds_data_dir: str | os.PathLike | None = None,
    local_dir: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Loads a whole split: images float32 ``[n, H, W, C]`` in [-1, 1], labels int32 ``[n]``.

    The arrays are cached per process and read-only.
    """
    return _load_split_cached(
        name,
        split,
        str(tfds_data_dir) if tfds_data_dir else None,
        str(local_dir) if local_dir else None,
    )


def load_from_config(config, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``load_split`` with the dataset and folders named by an experiment config."""
    return load_split(
        config.dataset,
        split,
        tfds_data_dir=config.tfds_data_dir or None,
        local_dir=config.local_data_dir or None,
    )
