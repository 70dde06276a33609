"""Image grids written as PNG files, and photos read as a generator's images."""

from __future__ import annotations

import os
import pathlib

import numpy as np

from latentjax.extras import require
from latentjax.storage.files import atomic_path


def tile_images(images: np.ndarray, ncols: int) -> np.ndarray:
    """``[n, H, W, C]`` in [-1, 1] to one ``[rows*H, ncols*W, C]`` uint8 mosaic (1 px gaps)."""
    images = np.asarray(images, np.float32)
    n, h, w, c = images.shape
    nrows = -(-n // ncols)
    canvas = np.full((nrows * (h + 1) + 1, ncols * (w + 1) + 1, c), 255, np.uint8)
    pixels = np.clip((images + 1.0) * 127.5, 0, 255).round().astype(np.uint8)
    for i in range(n):
        r, col = divmod(i, ncols)
        canvas[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + col * (w + 1) : 1 + col * (w + 1) + w] = pixels[i]
    return canvas


def save_image_grid(
    path: str | os.PathLike, images: np.ndarray, ncols: int, scale: int = 2
) -> pathlib.Path:
    """Saves images (``[n, H, W, C]`` in [-1, 1]) as a PNG grid; refuses to overwrite a file."""
    matplotlib_image = require("matplotlib.image", "report", "save_image_grid")

    path = pathlib.Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists; refusing to overwrite it.")
    mosaic = tile_images(images, ncols)
    mosaic = np.kron(mosaic, np.ones((scale, scale, 1), np.uint8)) if scale > 1 else mosaic
    if mosaic.shape[-1] == 1:
        mosaic = np.repeat(mosaic, 3, axis=-1)
    with atomic_path(path) as tmp:
        matplotlib_image.imsave(tmp, mosaic, format="png")
    return path


def read_photos(paths, height: int, width: int, channels: int) -> np.ndarray:
    """Image files (PNG, JPEG, ...) as a generator's images: ``[M, height, width, channels]`` in [-1, 1].

    Each photo is converted to grey (``channels=1``) or RGB (``channels=3``) and resized, whole
    and without cropping, to ``height x width`` with a Lanczos filter; pixel ``p`` in 0..255 becomes
    ``p / 127.5 - 1``. Nothing else is changed: Fashion-MNIST draws light garments on black, so a
    photo of a garment on white should be inverted first.

    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "white.png"
    >>> Image.new("RGB", (40, 30), "white").save(path)
    >>> photos = read_photos([path], 28, 28, 1)
    >>> photos.shape, float(photos.min()), float(photos.max())
    ((1, 28, 28, 1), 1.0, 1.0)
    """
    image_module = require("PIL.Image", "data", "read_photos")
    if channels not in (1, 3):
        raise ValueError(f"channels={channels!r}: expected 1 (grey) or 3 (RGB).")
    photos = []
    for path in paths:
        try:
            with image_module.open(path) as photo:
                photo = photo.convert("L" if channels == 1 else "RGB")
                photo = photo.resize((width, height), image_module.Resampling.LANCZOS)
                pixels = np.asarray(photo, np.float32)
        except (OSError, image_module.UnidentifiedImageError) as exc:
            raise ValueError(
                f"{path}: not a readable image ({type(exc).__name__}); expected a photo (PNG, JPEG, ...) "
                "or one .npy of images."
            ) from None
        photos.append((pixels[..., None] if pixels.ndim == 2 else pixels) / 127.5 - 1.0)
    return np.stack(photos)
