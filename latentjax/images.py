"""Writing image grids as PNG files."""

from __future__ import annotations

import os
import pathlib

import numpy as np

from latentjax._extras import require
from latentjax._storage import atomic_path


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
