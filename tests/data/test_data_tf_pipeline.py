"""``Dataset.as_tf_dataset``: batch shapes, dtypes, seeded shuffling, in-pipeline resizing."""

from __future__ import annotations

import numpy as np
import pytest

from tinyml_kit import data
from tinyml_kit.data import sources


@pytest.fixture(autouse=True, scope="module")
def isolated_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TINYML_KIT_HOME", str(tmp_path_factory.mktemp("tk-home-tf")))
        mp.delenv(sources.FASHION_DIR_ENV, raising=False)
        yield


@pytest.fixture(scope="module")
def fashion_small():
    if not sources.FashionMnistDebian().status().ok:
        pytest.skip("Fashion-MNIST not installed (Debian package dataset-fashion-mnist)")
    return data.load("fashion_mnist", "test").subset(per_class=20, seed=0)  # 200 images


def _batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def test_batch_shapes_dtypes_and_remainder(fashion_small):
    batches = _batches(fashion_small.as_tf_dataset(64, shuffle=False))
    assert [len(y) for _, y in batches] == [64, 64, 64, 8]
    x, y = batches[0]
    assert x.shape == (64, 28, 28, 1) and x.dtype == np.float32 and y.dtype == np.int32
    np.testing.assert_allclose(x, fashion_small.x[:64] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, fashion_small.y[:64])
    dropped = _batches(fashion_small.as_tf_dataset(64, shuffle=False, drop_remainder=True))
    assert [len(y) for _, y in dropped] == [64, 64, 64]


def test_in_pipeline_resize_matches_eager_resized(fashion_small):
    ds = fashion_small.as_tf_dataset(50, shuffle=False, image_size=40, channels=3, one_hot=True)
    x, y = next(iter(ds))
    assert x.shape == (50, 40, 40, 3) and y.shape == (50, 10)
    eager, _ = fashion_small.resized(40, channels=3).as_numpy("unit")
    assert np.abs(x.numpy() - eager[:50]).max() <= 1 / 255 + 1e-6  # both round to 0..255; filters agree
    np.testing.assert_array_equal(y.numpy().argmax(1), fashion_small.y[:50])
    q, _ = next(iter(fashion_small.as_tf_dataset(8, shuffle=False, image_size=(20, 24), normalize="int8")))
    assert q.shape == (8, 20, 24, 1) and q.dtype.name == "int8"


def test_shuffle_is_seeded_and_reshuffles_each_epoch(fashion_small):
    first = np.concatenate([y for _, y in _batches(fashion_small.as_tf_dataset(32, seed=7))])
    again = np.concatenate([y for _, y in _batches(fashion_small.as_tf_dataset(32, seed=7))])
    other = np.concatenate([y for _, y in _batches(fashion_small.as_tf_dataset(32, seed=8))])
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert sorted(first.tolist()) == sorted(fashion_small.y.tolist())
    two_epochs = fashion_small.as_tf_dataset(200, seed=7)
    epoch1, epoch2 = (next(iter(two_epochs))[1].numpy() for _ in range(2))
    assert not np.array_equal(epoch1, epoch2)


def test_trains_a_keras_model_for_one_step(fashion_small):
    import keras

    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(
        fashion_small.as_tf_dataset(100, image_size=16, channels=3), epochs=1, verbose=0, shuffle=False
    )
    assert np.isfinite(history.history["loss"][0])
