"""Offline datasets for tinyml-kit: Fashion-MNIST, MNIST digits, scikit-learn digits, your own images.

>>> from tinyml_kit import data
>>> train = data.load("fashion_mnist", "train")      # doctest: +SKIP
>>> small = train.subset(per_class=100, seed=0)      # doctest: +SKIP
>>> ds = small.as_tf_dataset(64, image_size=96, channels=3, normalize="symmetric")  # doctest: +SKIP

Names resolve lazily, so ``import tinyml_kit.data.sources`` (used by ``tinyml-kit doctor``) stays
free of TensorFlow; TensorFlow is imported only by ``Dataset.as_tf_dataset``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinyml_kit._lazy import lazy_attributes

if TYPE_CHECKING:
    from tinyml_kit.data.datasets import NORMALIZATIONS, Dataset, load
    from tinyml_kit.data.errors import (
        ChecksumMismatchError,
        DatasetError,
        DatasetNotFoundError,
        ImageFolderError,
    )
    from tinyml_kit.data.image_folder import ImageFolder
    from tinyml_kit.data.sources import all_sources, dataset_names, get_source

_EXPORTS = {
    "Dataset": "tinyml_kit.data.datasets",
    "load": "tinyml_kit.data.datasets",
    "NORMALIZATIONS": "tinyml_kit.data.datasets",
    "ImageFolder": "tinyml_kit.data.image_folder",
    "all_sources": "tinyml_kit.data.sources",
    "dataset_names": "tinyml_kit.data.sources",
    "get_source": "tinyml_kit.data.sources",
    "DatasetError": "tinyml_kit.data.errors",
    "DatasetNotFoundError": "tinyml_kit.data.errors",
    "ChecksumMismatchError": "tinyml_kit.data.errors",
    "ImageFolderError": "tinyml_kit.data.errors",
}

__all__ = [
    "NORMALIZATIONS",
    "ChecksumMismatchError",
    "Dataset",
    "DatasetError",
    "DatasetNotFoundError",
    "ImageFolder",
    "ImageFolderError",
    "all_sources",
    "dataset_names",
    "get_source",
    "load",
]


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _EXPORTS)
