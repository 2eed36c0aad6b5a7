"""Sample grids: tile a batch of images in ``[-1, 1]`` into one PNG, written atomically."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from tinyml_kit.diffaug._io import atomic_write


def tile_images(images: np.ndarray, ncols: int | None = None, pad: int = 1) -> np.ndarray:
    """``(N, H, W, C)`` in ``[-1, 1]`` -> one uint8 ``(rows*(H+pad)+pad, cols*(W+pad)+pad, C)`` mosaic."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"Expected images of shape (N, H, W, C). Received shape {images.shape}")
    n, h, w, c = images.shape
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    pixels = np.round((np.clip(images, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), 255, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, ncols)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y : y + h, x : x + w] = pixels[i]
    return grid


def save_image_grid(images: np.ndarray, path: str | Path, ncols: int | None = None) -> Path:
    """Writes a PNG mosaic of ``images`` (``[-1, 1]``) to ``path`` atomically; returns the path."""
    from PIL import Image

    grid = tile_images(images, ncols)
    picture = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    return atomic_write(path, lambda tmp: picture.save(tmp, format="PNG"))
