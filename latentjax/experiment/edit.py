"""``latentjax edit``: a saved direction applied to codes, written as a picture, a clip and numbers.

Codes come from the prior (seeded), from a ``.npy`` file of codes ``[M, N]``, or from real
images inverted first (:func:`latentjax.invert_images`): photos (PNG, JPEG, ..., converted and
resized to the generator's images by :func:`latentjax.images.read_photos`) or one ``.npy`` of
``[M, H, W, C]`` in [-1, 1].
The output folder holds ``grid.png`` (one row per code, one column per distance), ``edit.gif``
(one frame per distance), ``edited.npz`` (the moved codes and the classifier's outputs) and
``edit.json`` (what was done). It appears whole or not at all, and never replaces a folder.
"""

from __future__ import annotations

import json
import os
import pathlib

import jax
import numpy as np

from latentjax.storage import files as storage
from latentjax.analysis import edit_codes, invert_images
from latentjax.directions import load_directions
from latentjax.images import read_photos, save_image_grid, tile_images

#: Distances along the unit direction when none are given (the finder comparison's range).
DEFAULT_DISTANCES = (-6.0, -4.0, -2.0, 0.0, 2.0, 4.0, 6.0)


def pick_direction(directions, metadata: dict, row: str | int, finder: str | None = None) -> tuple[np.ndarray, dict]:
    """The row ``row`` (an index, or a class or attribute name) of the set ``finder`` (needed
    when the file holds several); returns it with ``{'finder', 'row', 'name'}``."""
    finders = metadata.get("finder")
    if directions.ndim == 3:
        names = list(finders or [])
        if finder not in names:
            raise ValueError(f"finder={finder!r}: this file holds the sets {names}; expected one of them (--finder).")
        directions = directions[names.index(finder)]
    elif finder is not None and finder != finders:
        raise ValueError(f"finder={finder!r}: this file holds only {finders!r}'s directions.")
    names = list(metadata.get("names") or [])
    index = None
    if isinstance(row, int) or str(row).lstrip("-").isdigit():
        index = int(row)
    elif str(row) in names:
        index = names.index(str(row))
    if index is None or not 0 <= index < directions.shape[0]:
        raise ValueError(
            f"row={row!r}: expected an index in [0, {directions.shape[0]}) or one of the names {names}."
        )
    return directions[index], {
        "finder": finder or finders, "row": index, "name": names[index] if index < len(names) else None,
    }


def edit_to_folder(
    directions_path: str | os.PathLike,
    row: str | int,
    output: str | os.PathLike,
    *,
    models: str = "fashion_mnist",
    finder: str | None = None,
    codes_path: str | os.PathLike | None = None,
    images_path=None,
    seed: int = 0,
    num_codes: int = 8,
    distances=DEFAULT_DISTANCES,
    gif: bool = True,
) -> pathlib.Path:
    """Moves codes along one saved direction and writes the edit into the new folder ``output``.

    Codes: ``codes_path`` (a ``.npy`` of ``[M, N]``), or ``images_path`` (one path or a list: photo
    files, or one ``.npy`` of images) inverted first, or else ``num_codes`` prior codes from
    ``seed``. Bad input is refused before any folder is written.
    """
    from latentjax.models.pretrained import load_pretrained

    output = pathlib.Path(output)
    if output.exists():
        raise FileExistsError(f"{output} exists; refusing to overwrite it (choose a new --output).")
    if codes_path is not None and images_path is not None:
        raise ValueError("codes and images given: expected one source of codes (--codes or --images), or neither for the prior.")
    if num_codes < 1:
        raise ValueError(f"num_codes={num_codes!r}: expected a positive integer.")
    pretrained = load_pretrained(models)
    latent_dim = pretrained.spec.latent_dim
    saved = load_directions(directions_path, latent_dim=latent_dim, generator=pretrained.generate)
    direction, picked = pick_direction(saved.directions, saved.metadata, row, finder)
    codes, source = _codes(pretrained, latent_dim, codes_path, images_path, seed, num_codes)
    edit = edit_codes(pretrained.generate, pretrained.classify, codes, direction, distances)
    images = np.asarray(edit.images)  # [T, M, H, W, C]
    record = {
        "directions": str(directions_path), **picked, "models": models, "codes": source,
        "distances": np.asarray(edit.distances).tolist(),
        "direction_metadata": {k: saved.metadata.get(k) for k in ("finder", "names", "settings", "version")},
    }
    with storage.committed_directory(output) as folder:
        folder.mkdir()
        # Rows: codes; columns: distances.
        save_image_grid(folder / "grid.png", images.transpose(1, 0, 2, 3, 4).reshape(-1, *images.shape[2:]), ncols=images.shape[0])
        if gif:
            _save_gif(folder / "edit.gif", images)
        np.savez(
            folder / "edited.npz", distances=np.asarray(edit.distances), codes=np.asarray(edit.codes),
            probabilities=np.asarray(edit.probabilities),
        )
        (folder / "edit.json").write_text(json.dumps(record, indent=2) + "\n")
    return output


def _codes(pretrained, latent_dim, codes_path, images_path, seed, num_codes):
    if codes_path is not None:
        codes = np.load(codes_path, allow_pickle=False)
        if codes.ndim != 2 or codes.shape[1] != latent_dim or not np.all(np.isfinite(codes)):
            raise ValueError(
                f"{codes_path}: codes of shape {codes.shape}: expected finite codes [M, {latent_dim}]."
            )
        return codes.astype(np.float32), {"file": str(codes_path)}
    key = jax.random.key(seed)
    if images_path is not None:
        paths = [images_path] if isinstance(images_path, (str, os.PathLike)) else list(images_path)
        expected = tuple(jax.eval_shape(pretrained.generate, jax.numpy.zeros((1, latent_dim))).shape[1:])
        if len(paths) == 1 and str(paths[0]).endswith(".npy"):
            images = np.load(paths[0], allow_pickle=False).astype(np.float32)
            if images.ndim != 4 or images.shape[1:] != expected or images.min() < -1 or images.max() > 1:
                raise ValueError(
                    f"{paths[0]}: images of shape {images.shape} in [{images.min():.3g}, {images.max():.3g}]: "
                    f"expected [M, {', '.join(map(str, expected))}] in [-1, 1]."
                )
        else:
            images = read_photos(paths, *expected)
        inverted = invert_images(pretrained.generate, images, key, latent_dim=latent_dim)
        return np.asarray(inverted.codes), {"images": [str(p) for p in paths], "inverted_with_seed": seed}
    return np.asarray(jax.random.normal(key, (num_codes, latent_dim))), {"prior_seed": seed, "num_codes": num_codes}


def _save_gif(path: pathlib.Path, images: np.ndarray, scale: int = 3) -> None:
    """One frame per distance, each a row of the codes' images; played forth and back."""
    from PIL import Image

    frames = []
    for step in images:
        mosaic = tile_images(step, ncols=min(len(step), 8))
        mosaic = np.kron(mosaic, np.ones((scale, scale, 1), np.uint8))
        frames.append(Image.fromarray(mosaic[..., 0] if mosaic.shape[-1] == 1 else mosaic))
    frames = frames + frames[-2:0:-1]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=250, loop=0)
