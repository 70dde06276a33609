"""Directions as files: one portable ``.npz`` per set of directions, with what made them.

A file holds ``directions`` (``[C, N]``, one row per class or attribute, or ``[F, C, N]``, one
set per finder) and a JSON record beside them in the same archive: the finder(s), the class or
attribute names, the latent size, the settings, a fingerprint of the generator they were found
for, the library version and a SHA-256 of the array, which :func:`load_directions` checks.
Nothing else is needed to read one: ``numpy.load(path)["directions"]`` works anywhere.

>>> import tempfile, pathlib, numpy as np
>>> path = pathlib.Path(tempfile.mkdtemp()) / "sandal.npz"
>>> _ = save_directions(path, np.eye(3, 4), finder="apcr", names=["a", "b", "c"])
>>> found = load_directions(path, latent_dim=4)
>>> found.directions.shape, found.metadata["finder"], found.metadata["names"]
((3, 4), 'apcr', ['a', 'b', 'c'])
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import zipfile
from typing import Any, NamedTuple

import numpy as np

from latentjax.storage import files as storage
from latentjax.errors import IntegrityError

FORMAT = "latentjax-directions-1"


class Directions(NamedTuple):
    """``directions[..., C, N]`` (float32) and the ``metadata`` record saved with them."""

    directions: np.ndarray
    metadata: dict


def model_fingerprint(model: Any) -> str:
    """A short SHA-256 of a model pytree's weights (shapes, dtypes and values, in tree order):
    two models share it only when their weights are identical.

    >>> import numpy as np
    >>> one = model_fingerprint({"w": np.ones(3)})
    >>> one == model_fingerprint({"w": np.ones(3)}), one == model_fingerprint({"w": 2 * np.ones(3)})
    (True, False)
    """
    import jax

    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(model):
        array = np.asarray(leaf)
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def _array_digest(directions: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(directions).tobytes()).hexdigest()


def save_directions(
    path: str | os.PathLike,
    directions,
    *,
    finder: str | list[str] | None = None,
    names: list[str] | None = None,
    generator: Any = None,
    settings: dict | None = None,
    **metadata: Any,
) -> pathlib.Path:
    """Writes ``directions[..., C, N]`` and their record to a new ``.npz`` file; returns its path.

    ``finder``: the finder's name, or one name per leading set of ``[F, C, N]``. ``names``: the
    ``C`` class or attribute names. ``generator``: the model pytree they were found for (its
    :func:`model_fingerprint` is saved). ``settings`` and ``metadata``: anything JSON can hold.
    An existing file is never overwritten; the file appears whole or not at all.

    >>> import pathlib, tempfile, numpy as np
    >>> path = save_directions(pathlib.Path(tempfile.mkdtemp()) / "apcr.npz", np.eye(3)[:2],
    ...                        finder="apcr", names=["up", "down"])
    >>> path.name, load_directions(path, latent_dim=3).directions.shape
    ('apcr.npz', (2, 3))
    """
    from latentjax import __version__

    path = pathlib.Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"path {str(path)!r}: expected a file name ending in .npz.")
    array = np.asarray(directions, np.float32)
    if array.ndim not in (2, 3) or 0 in array.shape:
        raise ValueError(f"directions of shape {array.shape}: expected [C, N] or [F, C, N].")
    if not np.all(np.isfinite(array)):
        raise ValueError("directions hold NaN or infinite values: expected finite numbers.")
    if isinstance(finder, (list, tuple)) and (array.ndim != 3 or len(finder) != array.shape[0]):
        raise ValueError(f"finder={list(finder)!r}: expected one name per set, {array.shape[0] if array.ndim == 3 else 1}.")
    if names is not None and len(names) != array.shape[-2]:
        raise ValueError(f"names has {len(names)} entries: expected one per row, {array.shape[-2]}.")
    json_path = path.with_suffix(".json")  # a readable copy of the record; the archive is authoritative
    for existing in (path, json_path):
        if existing.exists():
            raise FileExistsError(f"{existing} exists; refusing to overwrite it.")
    record = {
        "format": FORMAT,
        "finder": list(finder) if isinstance(finder, (list, tuple)) else finder,
        "names": list(names) if names is not None else None,
        "latent_dim": int(array.shape[-1]),
        "shape": list(array.shape),
        "generator_fingerprint": model_fingerprint(generator) if generator is not None else None,
        "settings": settings or {},
        "latentjax_version": __version__,
        "sha256": _array_digest(array),
        **metadata,
    }
    text = json.dumps(record, sort_keys=True)  # fails here, before any file, if not JSON-able
    path.parent.mkdir(parents=True, exist_ok=True)
    with storage.atomic_path(path) as temporary:
        with open(temporary, "wb") as f:
            np.savez(f, directions=array, metadata=np.array(text))
    storage.atomic_write_text(json_path, json.dumps(record, indent=2, sort_keys=True))
    return path


def load_directions(
    path: str | os.PathLike, *, latent_dim: int | None = None, generator: Any = None
) -> Directions:
    """The directions and record of a file written by :func:`save_directions`.

    ``latent_dim``: the latent size of the model they will move (checked). ``generator``: a model
    pytree; a file saved for another generator is refused (its fingerprint differs). A damaged
    or foreign file fails with one line naming it.

    >>> import pathlib, tempfile, numpy as np
    >>> path = save_directions(pathlib.Path(tempfile.mkdtemp()) / "d.npz", np.eye(4)[:2], finder="sefa")
    >>> loaded = load_directions(path, latent_dim=4)
    >>> loaded.directions.tolist(), loaded.metadata["finder"]
    ([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]], 'sefa')
    """
    path = pathlib.Path(path)
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as archive:
            array = np.asarray(archive["directions"], np.float32)
            record = json.loads(str(archive["metadata"]))
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise IntegrityError(
            f"{path}: not a readable directions file ({type(exc).__name__}: {exc}); expected a "
            ".npz written by latentjax.save_directions."
        ) from None
    if record.get("format") != FORMAT or record.get("sha256") != _array_digest(array):
        raise IntegrityError(f"{path}: its directions do not match their recorded checksum: the file is damaged.")
    if latent_dim is not None and array.shape[-1] != latent_dim:
        raise ValueError(
            f"{path} holds directions of latent size {array.shape[-1]}: expected {latent_dim} "
            "(the model's latent size)."
        )
    saved = record.get("generator_fingerprint")
    if generator is not None and saved is not None and saved != model_fingerprint(generator):
        raise ValueError(
            f"{path} was saved for generator {saved}, not this one ({model_fingerprint(generator)}): "
            "directions of another model move other content."
        )
    return Directions(array, record)
