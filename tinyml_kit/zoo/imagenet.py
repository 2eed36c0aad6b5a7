"""ImageNet-1k class names, offline: ``imagenet_labels()`` and a Keras-like ``decode_predictions``."""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

import numpy as np

from tinyml_kit.zoo._resources import load_json_resource
from tinyml_kit.zoo.errors import ZooError

NUM_IMAGENET_CLASSES = 1000


class ImageNetClass(NamedTuple):
    """One ILSVRC2012 class: its index in model outputs, WordNet id, short name and synonyms."""

    index: int
    wnid: str
    name: str
    synonyms: str


class Prediction(NamedTuple):
    """One of the top-k classes of one image."""

    index: int
    wnid: str
    name: str
    score: float


@cache
def imagenet_classes() -> tuple[ImageNetClass, ...]:
    """The 1000 ImageNet-1k classes in the standard output order (index 0 = tench, 999 = toilet tissue)."""
    rows = load_json_resource("imagenet_classes.json")["classes"]
    if len(rows) != NUM_IMAGENET_CLASSES:
        raise ZooError(
            f"imagenet_classes.json holds {len(rows)} classes, expected 1000; reinstall tinyml-kit"
        )
    return tuple(ImageNetClass(i, wnid, name, synonyms) for i, (wnid, name, synonyms) in enumerate(rows))


def imagenet_labels() -> list[str]:
    """Short human-readable names of the 1000 classes, indexed like a 1000-way classifier's output."""
    return [c.name for c in imagenet_classes()]


@cache
def imagenet_index(wnid: str) -> int:
    """Output index of the class with WordNet id ``wnid`` (e.g. ``"n02085620"`` -> 151)."""
    for c in imagenet_classes():
        if c.wnid == wnid:
            return c.index
    raise ZooError(f"'{wnid}' is not an ImageNet-1k WordNet id (ids look like 'n01440764')")


def decode_predictions(preds: np.ndarray, top: int = 5) -> list[list[Prediction]]:
    """Top-``top`` classes of each row of a ``(batch, 1000)`` array of scores, best first.

    Works on probabilities or logits (the order is the same; ``score`` is the value given).
    """
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != NUM_IMAGENET_CLASSES:
        raise ZooError(
            f"decode_predictions expects scores of shape (batch, 1000), got {preds.shape}; "
            "pass the output of a model built with include_top=True and classes=1000"
        )
    if not 1 <= top <= NUM_IMAGENET_CLASSES:
        raise ZooError(f"top must be in [1, 1000], got {top}")
    classes = imagenet_classes()
    order = np.argsort(-preds, axis=1, kind="stable")[:, :top]
    return [
        [Prediction(int(i), classes[i].wnid, classes[i].name, float(row[i])) for i in idx]
        for row, idx in zip(preds, order, strict=True)
    ]
