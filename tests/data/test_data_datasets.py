"""The Dataset API on real Fashion-MNIST and scikit-learn digits: shapes, counts, subsets, resizing."""

from __future__ import annotations

import numpy as np
import pytest

from tinyml_kit import data
from tinyml_kit.data import sources
from tinyml_kit.data.datasets import IMAGENET_MEAN, IMAGENET_STD
from tinyml_kit.data.errors import DatasetError
from tinyml_kit.data.splits import stratified_indices


@pytest.fixture(autouse=True, scope="module")
def isolated_cache(tmp_path_factory):
    """A private cache for this module (set before any module-scoped fixture loads data)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TINYML_KIT_HOME", str(tmp_path_factory.mktemp("tk-home-datasets")))
        mp.delenv(sources.FASHION_DIR_ENV, raising=False)
        yield


@pytest.fixture(scope="module")
def fashion():
    if not sources.FashionMnistDebian().status().ok:
        pytest.skip("Fashion-MNIST not installed (Debian package dataset-fashion-mnist)")
    return {split: data.load("fashion_mnist", split) for split in ("train", "test")}


def test_fashion_mnist_shapes_labels_and_class_counts(fashion):
    train, test = fashion["train"], fashion["test"]
    assert train.x.shape == (60000, 28, 28, 1) and test.x.shape == (10000, 28, 28, 1)
    assert train.x.dtype == np.uint8 and train.y.dtype == np.int64
    assert train.class_counts().tolist() == [6000] * 10
    assert test.class_counts().tolist() == [1000] * 10
    assert train.num_classes == 10 and train.class_names[0] == "T-shirt/top"
    assert train.class_names[9] == "Ankle boot"
    # First labels of the official files, and the dataset's well-known pixel mean (0.2860).
    assert train.y[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert test.y[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert train.x.mean() / 255 == pytest.approx(0.2860, abs=1e-4)
    assert repr(test) == "Dataset('fashion_mnist', split='test': 10000 images 28x28x1, 10 classes)"


def test_second_load_comes_from_the_npz_cache(fashion):
    from tinyml_kit._paths import cache_dir

    cached = list((cache_dir() / "datasets" / "fashion-mnist").glob("*.npz"))
    assert {p.name.split("-")[0] for p in cached} == {"train", "test"}
    again = data.load("fashion_mnist", "test")
    np.testing.assert_array_equal(again.x, fashion["test"].x)


def test_subset_fraction_is_stratified_exact_and_deterministic(fashion):
    train = fashion["train"]
    small = train.subset(fraction=0.1, seed=3)
    assert len(small) == 6000 and small.class_counts().tolist() == [600] * 10
    again = train.subset(fraction=0.1, seed=3)
    np.testing.assert_array_equal(small.x, again.x)
    np.testing.assert_array_equal(small.y, again.y)
    other = train.subset(fraction=0.1, seed=4)
    assert not np.array_equal(small.x, other.x)


def test_subset_per_class_exact_counts_and_nesting(fashion):
    test = fashion["test"]
    sub = test.subset(per_class=7, seed=0)
    assert len(sub) == 70 and sub.class_counts().tolist() == [7] * 10
    smaller = set(stratified_indices(test.y, 10, per_class=5, seed=0).tolist())
    larger = set(stratified_indices(test.y, 10, per_class=7, seed=0).tolist())
    assert smaller < larger
    with pytest.raises(DatasetError, match="per_class=1001"):
        test.subset(per_class=1001)
    with pytest.raises(DatasetError, match="exactly one"):
        test.subset(fraction=0.5, per_class=3)
    with pytest.raises(DatasetError, match="exactly one"):
        test.subset()
    with pytest.raises(DatasetError, match="fraction must be in"):
        test.subset(fraction=1.5)


def test_subset_of_unequal_classes_keeps_proportions():
    train = data.load("digits", "train")
    counts = train.class_counts()
    sub = train.subset(fraction=0.25, seed=1)
    assert len(sub) == int(np.floor(0.25 * len(train) + 0.5))
    assert np.all(np.abs(sub.class_counts() - 0.25 * counts) < 1)


def test_split_off_is_disjoint_stratified_and_complete(fashion):
    test = fashion["test"]
    rest, held = test.split_off(0.2, seed=0)
    assert len(rest) == 8000 and len(held) == 2000
    assert held.class_counts().tolist() == [200] * 10
    held_idx = stratified_indices(test.y, 10, fraction=0.2, seed=0)
    np.testing.assert_array_equal(test.x[held_idx], held.x)
    assert len(np.union1d(held_idx, np.setdiff1d(np.arange(10000), held_idx))) == 10000
    assert len(rest) + len(held) == len(test)


def test_resized_replicates_grey_into_three_equal_channels(fashion):
    from PIL import Image

    sub = fashion["test"].subset(per_class=3)
    big = sub.resized(32, channels=3)
    assert big.x.shape == (30, 32, 32, 3) and big.x.dtype == np.uint8
    np.testing.assert_array_equal(big.x[..., 0], big.x[..., 1])
    np.testing.assert_array_equal(big.x[..., 0], big.x[..., 2])
    for image, ours in zip(sub.x[:5], big.x[:5], strict=True):
        pil = np.asarray(Image.fromarray(image[..., 0]).resize((32, 32), Image.Resampling.BILINEAR))
        assert np.abs(ours[..., 0].astype(int) - pil).max() <= 1  # PIL rounds in fixed point
    shrunk = sub.resized((14, 20), channels=1)
    assert shrunk.x.shape == (30, 14, 20, 1)
    np.testing.assert_array_equal(big.y, sub.y)


def test_resized_keeps_constant_images_and_converts_rgb_to_luma():
    rgb = np.zeros((2, 10, 10, 3), dtype=np.uint8)
    rgb[0] = (200, 100, 50)
    rgb[1] = (0, 255, 0)
    ds = data.Dataset(rgb, np.array([0, 1]), ["a", "b"])
    up = ds.resized(23, channels=3)
    assert np.all(up.x[0] == (200, 100, 50)) and np.all(up.x[1] == (0, 255, 0))
    grey = ds.resized(10, channels=1)
    assert grey.x.shape == (2, 10, 10, 1)
    assert np.all(grey.x[0] == round(0.299 * 200 + 0.587 * 100 + 0.114 * 50))
    assert np.all(grey.x[1] == round(0.587 * 255))


def test_resized_refuses_to_blow_up_memory(fashion):
    with pytest.raises(DatasetError, match="as_tf_dataset"):
        fashion["train"].resized(224, channels=3)


def test_as_numpy_normalisations(fashion):
    sub = fashion["test"].subset(per_class=2)
    x = sub.x
    unit, y = sub.as_numpy()
    assert unit.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(unit, x / 255.0, rtol=1e-6)
    sym, _ = sub.as_numpy("symmetric")
    np.testing.assert_allclose(sym, x / 127.5 - 1, atol=1e-6)
    q, _ = sub.as_numpy("int8")
    assert q.dtype == np.int8 and np.array_equal(q.astype(int), x.astype(int) - 128)
    raw, onehot = sub.as_numpy(None, one_hot=True)
    assert raw is x and onehot.shape == (20, 10) and np.array_equal(onehot.argmax(1), sub.y)
    with pytest.raises(DatasetError, match="3-channel"):
        sub.as_numpy("imagenet")
    rgb, _ = sub.resized(28, channels=3).as_numpy("imagenet")
    expected = (x / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(rgb, expected, atol=1e-5)
    with pytest.raises(DatasetError, match="unit"):
        sub.as_numpy("zscore")


def test_digits_deterministic_stratified_split():
    from sklearn.datasets import load_digits

    train, test = data.load("digits", "train"), data.load("digits", "test")
    assert train.x.shape == (1438, 8, 8, 1) and test.x.shape == (359, 8, 8, 1)
    bunch = load_digits()
    assert np.array_equal(train.class_counts() + test.class_counts(), np.bincount(bunch.target))
    assert np.all(np.abs(test.class_counts() - 0.2 * np.bincount(bunch.target)) < 1)
    expected = np.rint(bunch.images * 255 / 16).astype(np.uint8)[..., None]
    every = {im.tobytes() for im in expected}
    assert all(im.tobytes() in every for im in train.x) and all(im.tobytes() in every for im in test.x)
    assert train.x.max() == 255
    again = data.load("digits", "test")
    np.testing.assert_array_equal(again.x, test.x)


def test_unknown_dataset_split_and_bad_arrays():
    with pytest.raises(DatasetError, match="valid names: fashion_mnist, mnist, digits"):
        data.load("imagenet")
    with pytest.raises(DatasetError, match="valid splits: train, test"):
        data.load("digits", "val")
    with pytest.raises(DatasetError, match="uint8"):
        data.Dataset(np.zeros((2, 4, 4, 1), np.float32), np.array([0, 1]), ["a", "b"])
    with pytest.raises(DatasetError, match="class names"):
        data.Dataset(np.zeros((2, 4, 4, 1), np.uint8), np.array([0, 2]), ["a", "b"])
