"""Turn photos into model inputs the way ImageNet evaluation does: centre crop, then resize."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyml_kit.zoo.errors import ZooError


def load_image(
    source: str | Path | np.ndarray, size: int | tuple[int, int] = 224, crop_fraction: float = 0.875
) -> np.ndarray:
    """An RGB photo as a float32 ``(height, width, 3)`` array with values in [0, 255].

    Args:
        source: an image file path, or an ``(H, W, 3)`` uint8/float array in [0, 255].
        size: output side (int) or ``(height, width)``.
        crop_fraction: side of the central square crop as a fraction of the shorter image side
            (0.875 = 224/256, the usual ImageNet evaluation crop); 1.0 keeps the whole short side.

    The crop is resized with bicubic interpolation (Pillow). Apply the model's
    ``preprocess_input`` afterwards.
    """
    from PIL import Image

    height, width = (size, size) if isinstance(size, int) else size
    if height < 1 or width < 1:
        raise ZooError(f"image size must be positive, got {size}")
    if not 0.0 < crop_fraction <= 1.0:
        raise ZooError(f"crop_fraction must be in (0, 1], got {crop_fraction}")
    if isinstance(source, np.ndarray):
        if source.ndim != 3 or source.shape[2] != 3:
            raise ZooError(f"image array must have shape (H, W, 3), got {source.shape}")
        image = Image.fromarray(np.clip(source, 0, 255).astype(np.uint8))
    else:
        path = Path(source)
        if not path.is_file():
            raise ZooError(f"image file {path} does not exist")
        try:
            image = Image.open(path).convert("RGB")
        except OSError as exc:
            raise ZooError(f"cannot read image {path}: {exc}") from exc
    crop = round(min(image.size) * crop_fraction)
    left, top = (image.width - crop) // 2, (image.height - crop) // 2
    image = image.crop((left, top, left + crop, top + crop)).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.float32)
