"""Training-time augmentation of ``run_transfer``: what each choice does, seeds, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from tinyml_kit.tinytl.errors import TinyTLError
from tinyml_kit.tinytl.train import AUGMENTATIONS, augmented_batches


def _images(n: int = 16, size: int = 24) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (n, size, size, 3)).astype("float32")
    return x, np.eye(4, dtype="float32")[np.arange(n) % 4]


def _epoch(augment: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = _images()
    batches = list(augmented_batches(x, y, 8, augment, seed))
    return (np.concatenate([b[0].numpy() for b in batches]), np.concatenate([b[1].numpy() for b in batches]))


def test_none_only_shuffles_and_keeps_pairs() -> None:
    x, y = _images()
    xs, ys = _epoch("none", 0)
    assert xs.shape == x.shape
    order = [int(np.flatnonzero((x == img).all(axis=(1, 2, 3)))[0]) for img in xs]
    assert sorted(order) == list(range(len(x)))  # every image once, unchanged
    assert order != list(range(len(x)))  # shuffled
    np.testing.assert_array_equal(ys, y[order])  # labels travel with their images


@pytest.mark.parametrize("augment", [a for a in AUGMENTATIONS if a != "none"])
def test_augmentations_change_images_reproducibly(augment: str) -> None:
    x, _ = _images()
    first, second = _epoch(augment, 3), _epoch(augment, 3)
    np.testing.assert_allclose(first[0], second[0])
    assert first[0].shape == x.shape
    unchanged = [(x == img).all(axis=(1, 2, 3)).any() for img in first[0]]
    assert not all(unchanged)
    assert np.abs(first[0]).max() <= 1.0 + 1e-5  # edges repeated, no values outside the input range


@pytest.mark.parametrize("augment", ["none", "shift"])
def test_each_epoch_draws_new_transforms(augment: str) -> None:
    x, _ = _images()
    ids = np.eye(len(x), dtype="float32")  # one label per image: undoes the shuffle
    dataset = augmented_batches(x, ids, len(x), augment, 0)
    epochs = []
    for xb, yb in (next(iter(dataset)), next(iter(dataset))):
        epochs.append(xb.numpy()[np.argsort(np.argmax(yb.numpy(), axis=1))])
    assert np.allclose(epochs[0], epochs[1]) == (augment == "none")


def test_unknown_augmentation_names_the_choices() -> None:
    from tinyml_kit.tinytl.train import run_transfer

    with pytest.raises(TinyTLError, match="shift\\+flip"):
        run_transfer("mobilenet_v2", "last", data=None, augment="mixup")  # type: ignore[arg-type]
