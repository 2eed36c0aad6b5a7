"""Image resizing and channel conversion on uint8 NHWC arrays, in numpy (no TensorFlow).

Resizing is separable with a triangle (bilinear) filter and half-pixel centres, the scheme of PIL's
``BILINEAR`` and of ``tf.image.resize(..., antialias=True)``: upsampling interpolates between the two
nearest pixels; downsampling widens the filter so every source pixel contributes (no aliasing).
"""

from __future__ import annotations

import numpy as np

from tinyml_kit.data.errors import DatasetError

# ITU-R BT.601 luma, as PIL's convert("L") uses.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def image_size_tuple(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``96`` or ``(96, 96)`` as ``(height, width)``, validated."""
    pair = (size, size) if isinstance(size, int | np.integer) else tuple(size)
    if len(pair) != 2 or not all(isinstance(v, int | np.integer) and v >= 1 for v in pair):
        raise DatasetError(f"image size must be an int >= 1 or (height, width); received {size!r}")
    return int(pair[0]), int(pair[1])


def filter_matrix(in_size: int, out_size: int) -> np.ndarray:
    """The ``(out_size, in_size)`` weights of a 1-D triangle-filter resize; each row sums to 1."""
    scale = in_size / out_size
    support = max(scale, 1.0)  # filter half-width in source pixels
    centers = (np.arange(out_size) + 0.5) * scale
    distance = (np.arange(in_size)[None, :] + 0.5 - centers[:, None]) / support
    weights = np.clip(1.0 - np.abs(distance), 0.0, None)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def _resize_float(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize float32 NHWC ``x`` with two matrix products (one per axis)."""
    n, h, w, c = x.shape
    along_w = x.transpose(0, 1, 3, 2).reshape(-1, w) @ filter_matrix(w, width).T  # (n*h*c, width)
    along_w = along_w.reshape(n, h, c, width).transpose(0, 2, 3, 1).reshape(-1, h)  # (n*c*width, h)
    along_h = along_w @ filter_matrix(h, height).T  # (n*c*width, height)
    return along_h.reshape(n, c, width, height).transpose(0, 3, 2, 1)


def convert_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """uint8 NHWC with 1 or 3 channels to ``channels`` (1: BT.601 luma, 3: grey replicated)."""
    have = x.shape[-1]
    if channels not in (1, 3):
        raise DatasetError(f"channels must be 1 or 3; received channels={channels}")
    if have == channels:
        return x
    if have == 1:
        return np.repeat(x, 3, axis=-1)
    if have == 3:
        luma = x.astype(np.float32) @ LUMA_WEIGHTS
        return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]
    raise DatasetError(f"images have {have} channels; only 1 (grey) and 3 (RGB) are supported")


def resize_images(
    x: np.ndarray, size: int | tuple[int, int], channels: int | None = None, chunk: int = 2048
) -> np.ndarray:
    """Resize uint8 NHWC images to ``size`` (rounded back to uint8), then convert to ``channels``."""
    height, width = image_size_tuple(size)
    channels = x.shape[-1] if channels is None else channels
    if channels not in (1, 3):
        raise DatasetError(f"channels must be 1 or 3; received channels={channels}")
    out = np.empty((len(x), height, width, channels), dtype=np.uint8)
    same_size = x.shape[1:3] == (height, width)
    for start in range(0, len(x), chunk):
        part = x[start : start + chunk]
        if not same_size:
            # Rows of the filter matrices are convex weights, so values stay in [0, 255]: round half up.
            part = (_resize_float(part.astype(np.float32), height, width) + 0.5).astype(np.uint8)
        if part.shape[-1] in (1, channels):
            out[start : start + chunk] = part  # broadcasting replicates a grey channel
        else:
            out[start : start + chunk] = convert_channels(part, channels)
    return out
