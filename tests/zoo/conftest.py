"""Shared fixtures for the zoo tests: the two real photos shipped with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def sample_photos() -> dict[str, np.ndarray]:
    """``{"china": ..., "flower": ...}`` uint8 RGB photos (427x640) from sklearn.datasets."""
    datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn ships the sample photos")
    bunch = datasets.load_sample_images()
    names = [name.replace("\\", "/").rsplit("/", 1)[-1].split(".")[0] for name in bunch.filenames]
    return dict(zip(names, bunch.images, strict=True))
