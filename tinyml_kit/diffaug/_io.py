"""Atomic file output for DiffAugment: models and text (from ``tinyml_kit._atomic``) and ``.npz`` arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyml_kit._atomic import atomic_write, save_model
from tinyml_kit._atomic import write_text as save_text

__all__ = ["atomic_write", "save_model", "save_npz", "save_text"]


def save_npz(path: str | Path, **arrays: np.ndarray) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: numpy must not append another ".npz"
            np.savez(f, **arrays)

    return atomic_write(path, write)
