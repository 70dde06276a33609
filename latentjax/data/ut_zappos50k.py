"""UT Zappos50K as a tensorflow-datasets builder that reads a manual folder.

UT Zappos50K (A. Yu and K. Grauman, CVPR 2014; academic, non-commercial use only) is a set of
catalog photos of shoes. TFDS has no builder for it and its site needs a manual download, so
latentjax registers its own, ``ut_zappos50k``, with two configs:

- ``ut_zappos50k/three_classes``: Boot, Sandal, Shoe (labels 0, 1, 2);
- ``ut_zappos50k/four_classes``: Boot, Sandal, Shoe, Slipper (the whole official release).

It reads, from TFDS's manual folder, whichever of these it finds first:

1. the official release, ``ut-zap50k-images-square/<Category>/<SubCategory>/<Brand>/*.jpg``
   (the folder, or the zip ``ut-zap50k-images-square.zip`` as downloaded); its size is checked
   against the release's 50,025 images;
2. the class-folder archive ``shoe_sandal_boot_original_jpegs.tar.gz`` (5,000 original
   136x102 photos each in ``Boot/``, ``Sandal/``, ``Shoe/``; three classes only), verified
   against its SHA-256.

With no manual folder, TFDS downloads the official zip from :data:`DOWNLOAD_URL` (or from the
address in ``$LATENTJAX_UT_ZAPPOS50K_URL``, a mirror) and reads it as in 1.

Each JPEG is decoded with Pillow, padded to a white square (centred, as the official "square"
variant is made) and resized to 64x64 RGB with Lanczos filtering. The train/test split (90/10)
is fixed by a seed and stratified by class; files with identical bytes always land in the same
split, so no test image has a copy in train.

>>> from latentjax import data
>>> images, labels = data.load_split("ut_zappos50k", "test")  # doctest: +SKIP
>>> images.shape, labels.max()                                 # doctest: +SKIP
((1500, 64, 64, 3), 2)
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import pathlib
import tarfile
import zipfile
from collections.abc import Callable, Iterator

import numpy as np
import tensorflow_datasets as tfds

from latentjax.storage.files import sha256_file
from latentjax.errors import DataUnavailableError

IMAGE_SIZE = 64
TEST_FRACTION = 0.1
SPLIT_SEED = 0

OFFICIAL_FOLDER = "ut-zap50k-images-square"
OFFICIAL_ZIP = OFFICIAL_FOLDER + ".zip"
OFFICIAL_CATEGORIES = ("Boots", "Sandals", "Shoes", "Slippers")
# Images in the official release (its readme); a tree with another count is partial or altered.
OFFICIAL_IMAGE_COUNT = 50_025

ARCHIVE = "shoe_sandal_boot_original_jpegs.tar.gz"
ARCHIVE_SHA256 = "d551f784f1fc8630215777a72ada51dbd4ebe7e8d6dfd04235698e112aaef7cb"
ARCHIVE_CATEGORIES = ("Boot", "Sandal", "Shoe")

VERSION = tfds.core.Version("1.0.0")
OFFICIAL_URL = "https://vision.cs.utexas.edu/projects/finegrained/utzap50k/"
#: The official release's zip, downloaded when no manual folder is given.
DOWNLOAD_URL = OFFICIAL_URL + OFFICIAL_ZIP
#: The environment variable that replaces :data:`DOWNLOAD_URL` (a mirror).
DOWNLOAD_URL_ENV = "LATENTJAX_UT_ZAPPOS50K_URL"

INSTRUCTIONS = (
    f"put either the official release ({OFFICIAL_FOLDER}/ or {OFFICIAL_ZIP}, from "
    f"{OFFICIAL_URL}) or the class-folder archive {ARCHIVE} (three classes: Boot, Sandal, Shoe) "
    "in the manual folder"
)


@dataclasses.dataclass(frozen=True)
class SourceFile:
    """One photo: where it came from, its class and how to read its bytes."""

    path: str
    label: int
    read: Callable[[], bytes]


def square_and_resize(jpeg: bytes, size: int = IMAGE_SIZE, name: str = "image") -> np.ndarray:
    """Decodes a JPEG, pads it to a centred white square and resizes it: uint8 ``[size, size, 3]``.

    >>> from PIL import Image
    >>> buffer = io.BytesIO()
    >>> Image.new("RGB", (136, 102), (0, 0, 0)).save(buffer, "JPEG")
    >>> x = square_and_resize(buffer.getvalue(), 64)
    >>> x.shape, x[0, 32].tolist(), x[32, 32].tolist()
    ((64, 64, 3), [255, 255, 255], [0, 0, 0])
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(jpeg)) as image:
            image = image.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise DataUnavailableError(
            f"ut_zappos50k: {name} is not a readable image ({exc}); replace the damaged file."
        ) from None
    side = max(image.size)
    square = Image.new("RGB", (side, side), (255, 255, 255))
    square.paste(image, ((side - image.size[0]) // 2, (side - image.size[1]) // 2))
    return np.asarray(square.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def download_url() -> str:
    """Where the official zip is downloaded from: ``$LATENTJAX_UT_ZAPPOS50K_URL`` or
    :data:`DOWNLOAD_URL`."""
    return os.environ.get(DOWNLOAD_URL_ENV) or DOWNLOAD_URL


def _official_files(
    root: pathlib.Path, class_folders: tuple[str, ...], archive: pathlib.Path | None = None
) -> list[SourceFile]:
    """The official tree: a folder, or the zip as downloaded (read without unpacking); ``archive``:
    the zip itself, wherever it is (a TFDS download)."""
    folder = root / OFFICIAL_FOLDER
    from_folder = archive is None and folder.is_dir()
    archive = archive or root / OFFICIAL_ZIP
    if from_folder:
        entries = {
            p.relative_to(root).as_posix(): (lambda p=p: p.read_bytes())
            for p in folder.glob("*/*/*/*.jpg")
        }
    else:
        try:
            handle = zipfile.ZipFile(archive)
        except zipfile.BadZipFile:
            raise DataUnavailableError(
                f"ut_zappos50k: {str(archive)!r} is not a complete zip file (a partial "
                f"download?); download it again from {OFFICIAL_URL}."
            ) from None
        entries = {
            name: (lambda name=name: handle.read(name))
            for name in handle.namelist()
            if name.lower().endswith(".jpg") and name.count("/") == 4
        }
    counts = {c: sum(p.split("/")[1] == c for p in entries) for c in OFFICIAL_CATEGORIES}
    if sum(counts.values()) != OFFICIAL_IMAGE_COUNT or not all(counts.values()):
        raise DataUnavailableError(
            f"ut_zappos50k: the official release in {str(root if from_folder else archive)!r} is incomplete: it has "
            f"{sum(counts.values())} images ({counts}) where the release has "
            f"{OFFICIAL_IMAGE_COUNT} in {list(OFFICIAL_CATEGORIES)} under "
            f"{OFFICIAL_FOLDER}/<Category>/<SubCategory>/<Brand>/; unpack or download {OFFICIAL_ZIP} again."
        )
    return [
        SourceFile(path, class_folders.index(path.split("/")[1]), read)
        for path, read in sorted(entries.items())
        if path.split("/")[1] in class_folders
    ]


def _archive_files(path: pathlib.Path) -> list[SourceFile]:
    """The class-folder archive, checked against its SHA-256 before a byte is used."""
    digest = sha256_file(path)
    if digest != ARCHIVE_SHA256:
        raise DataUnavailableError(
            f"ut_zappos50k: {str(path)!r} has SHA-256 {digest}, expected {ARCHIVE_SHA256} "
            f"(damaged, partial or a different archive); replace it with the original {ARCHIVE}."
        )
    files = []
    with tarfile.open(path, "r:gz") as archive:
        for member in archive.getmembers():
            parts = member.name.split("/")
            if member.isfile() and member.name.lower().endswith(".jpg") and parts[-2] in ARCHIVE_CATEGORIES:
                payload = archive.extractfile(member).read()
                files.append(
                    SourceFile(member.name, ARCHIVE_CATEGORIES.index(parts[-2]), lambda b=payload: b)
                )
    return sorted(files, key=lambda f: f.path)


def source_files(manual_dir: pathlib.Path, class_folders: tuple[str, ...]) -> list[SourceFile]:
    """Every photo of the classes in ``manual_dir``, from the first layout found there."""
    manual_dir = pathlib.Path(manual_dir)
    if (manual_dir / OFFICIAL_FOLDER).is_dir() or (manual_dir / OFFICIAL_ZIP).is_file():
        return _official_files(manual_dir, class_folders)
    if (manual_dir / ARCHIVE).is_file():
        if len(class_folders) > len(ARCHIVE_CATEGORIES):
            raise DataUnavailableError(
                f"ut_zappos50k/four_classes needs the official release (the archive {ARCHIVE} "
                f"in {str(manual_dir)!r} has no Slippers): put {OFFICIAL_FOLDER}/ or "
                f"{OFFICIAL_ZIP} from {OFFICIAL_URL} there, or use ut_zappos50k/three_classes."
            )
        return _archive_files(manual_dir / ARCHIVE)
    raise DataUnavailableError(
        f"ut_zappos50k: the manual folder {str(manual_dir)!r} holds none of {OFFICIAL_FOLDER}/, "
        f"{OFFICIAL_ZIP} or {ARCHIVE}; {INSTRUCTIONS}."
    )


def stratified_split(
    labels: np.ndarray,
    contents: list[bytes] | list[str],
    *,
    test_fraction: float = TEST_FRACTION,
    seed: int = SPLIT_SEED,
) -> np.ndarray:
    """A boolean test mask: ``round(test_fraction * n_c)`` items of each class ``c``.

    Items with equal ``contents`` (for example equal file digests) form one group and land in
    the same split; groups are taken in an order drawn from ``seed``, so the mask depends only
    on the seed and the data.

    >>> mask = stratified_split(np.array([0] * 10 + [1] * 20), [str(i) for i in range(30)])
    >>> int(mask[:10].sum()), int(mask[10:].sum())
    (1, 2)
    """
    labels = np.asarray(labels)
    test = np.zeros(labels.shape, dtype=bool)
    rng = np.random.default_rng(seed)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        groups: dict = {}
        for i in members:
            groups.setdefault(contents[i], []).append(i)
        ordered = [groups[key] for key in sorted(groups, key=lambda k: groups[k][0])]
        wanted = int(round(test_fraction * members.size))
        taken = 0
        for g in rng.permutation(len(ordered)):
            group = ordered[g]
            if taken + len(group) <= wanted:
                test[group] = True
                taken += len(group)
            if taken == wanted:
                break
    return test


class UtZappos50kConfig(tfds.core.BuilderConfig):
    def __init__(self, *, class_names: tuple[str, ...], official_folders: tuple[str, ...], **kwargs):
        super().__init__(version=VERSION, **kwargs)
        self.class_names = class_names
        self.official_folders = official_folders


class UtZappos50k(tfds.core.GeneratorBasedBuilder):
    """UT Zappos50K shoes, 64x64 RGB on white, from a manual folder (see the module docs)."""

    VERSION = VERSION
    RELEASE_NOTES = {"1.0.0": "64x64 white-padded squares; seeded stratified 90/10 split."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = INSTRUCTIONS + "."
    BUILDER_CONFIGS = [
        UtZappos50kConfig(
            name="three_classes",
            description="Boot, Sandal, Shoe: the official release without Slippers, or the archive.",
            class_names=("Boot", "Sandal", "Shoe"),
            official_folders=OFFICIAL_CATEGORIES[:3],
        ),
        UtZappos50kConfig(
            name="four_classes",
            description="Boot, Sandal, Shoe, Slipper: the official release.",
            class_names=("Boot", "Sandal", "Shoe", "Slipper"),
            official_folders=OFFICIAL_CATEGORIES,
        ),
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(IMAGE_SIZE, IMAGE_SIZE, 3)),
                    "label": tfds.features.ClassLabel(names=list(self.builder_config.class_names)),
                    "file_name": tfds.features.Text(),
                }
            ),
            supervised_keys=("image", "label"),
            homepage=OFFICIAL_URL,
            citation=(
                "@inproceedings{yu2014finegrained, title={Fine-Grained Visual Comparisons with "
                "Local Learning}, author={Yu, Aron and Grauman, Kristen}, booktitle={CVPR}, "
                "year={2014}}"
            ),
        )

    @property
    def URL(self) -> str:  # noqa: N802  (the name latentjax.data probes before a download)
        return download_url()

    def _split_generators(self, dl_manager):
        folders = self.builder_config.official_folders
        try:
            manual_dir = pathlib.Path(dl_manager.manual_dir)
        except AssertionError:  # TFDS's way of saying there is no manual folder, or it is empty
            manual_dir = None
        if manual_dir is not None:
            files = source_files(manual_dir, folders)
        else:
            archive = pathlib.Path(dl_manager.download(self.URL))
            files = _official_files(archive.parent, folders, archive=archive)
        labels = np.array([f.label for f in files])
        digests = [hashlib.sha256(f.read()).hexdigest() for f in files]
        test = stratified_split(labels, digests)
        return {
            "train": self._generate_examples([f for f, t in zip(files, test) if not t]),
            "test": self._generate_examples([f for f, t in zip(files, test) if t]),
        }

    def _generate_examples(self, files: list[SourceFile]) -> Iterator[tuple[str, dict]]:
        for f in files:
            yield f.path, {
                "image": square_and_resize(f.read(), name=f.path),
                "label": f.label,
                "file_name": f.path,
            }
