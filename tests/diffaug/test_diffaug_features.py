"""Feature extractors for FID/KID: deterministic classifier training, caching, Inception weights path."""

from __future__ import annotations

import json

import h5py
import keras
import numpy as np
import pytest

from tinyml_kit.diffaug import features
from tinyml_kit.diffaug.errors import FeatureExtractorError


def blob_dataset(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """4 classes of 28x28 uint8 images: a bright square in one of the four quadrants, plus noise."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(4), n_per_class)
    x = rng.integers(0, 60, size=(len(y), 28, 28, 1)).astype(np.uint8)
    for i, label in enumerate(y):
        r, c = divmod(int(label), 2)
        x[i, 2 + 14 * r : 12 + 14 * r, 2 + 14 * c : 12 + 14 * c] = 220
    return x, y


def test_train_classifier_is_deterministic_and_learns():
    x, y = blob_dataset(40, 0)
    xt, yt = blob_dataset(10, 1)
    model_a, acc_a = features.train_classifier(x, y, xt, yt, epochs=2, batch_size=32, seed=3, verbose=0)
    model_b, acc_b = features.train_classifier(x, y, xt, yt, epochs=2, batch_size=32, seed=3, verbose=0)
    assert acc_a == acc_b and acc_a > 0.9
    for a, b in zip(model_a.get_weights(), model_b.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_classifier_extractor_trains_once_then_loads_from_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYML_KIT_HOME", str(tmp_path))
    splits = {"train": blob_dataset(30, 0), "test": blob_dataset(10, 1)}

    monkeypatch.setattr(features, "_load_split", lambda dataset, split: _Split(*splits[split]))
    extractor = features.classifier_extractor("blobs", epochs=1, verbose=0)
    info = json.loads((tmp_path / "diffaug" / "classifier-blobs-v1-e1s0.json").read_text())
    assert info["train_images"] == 120 and 0 <= info["test_accuracy"] <= 1 and info["feature_dim"] == 128
    images = features.to_gan_range(splits["test"][0])
    feats = extractor(images, batch_size=16)
    assert feats.shape == (40, 128) and feats.dtype == np.float64

    monkeypatch.setattr(features, "train_classifier", _must_not_train)
    cached = features.classifier_extractor("blobs", epochs=1, verbose=0)
    np.testing.assert_allclose(cached(images), feats, rtol=1e-5, atol=1e-5)

    reference = features.reference_features(cached, "blobs", "test")
    assert (tmp_path / "diffaug" / "classifier-blobs-v1-e1s0.blobs-test.npz").exists()
    scores = features.score_images(cached, reference, images, kid_subsets=5, kid_subset_size=20)
    assert scores["fid"] == pytest.approx(0.0, abs=1e-6) and abs(scores["kid"]) < 0.05
    noisy = np.clip(images + np.random.default_rng(0).normal(0, 0.5, images.shape), -1, 1)
    assert features.score_images(cached, reference, noisy, kid_subsets=5, kid_subset_size=20)["fid"] > 0.01


class _Split:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)


def _must_not_train(*args, **kwargs):
    raise AssertionError("the cached classifier should have been used")


def test_inception_extractor_needs_an_existing_weights_file(tmp_path):
    with pytest.raises(FeatureExtractorError, match="never downloads"):
        features.inception_extractor(tmp_path / "missing.h5")
    junk = tmp_path / "junk.weights.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(FeatureExtractorError, match="no InceptionV3 weights"):
        features.inception_extractor(junk)
    with h5py.File(tmp_path / "other.weights.h5", "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(FeatureExtractorError, match="no InceptionV3 weights Keras can load"):
        features.inception_extractor(tmp_path / "other.weights.h5")


@pytest.mark.slow
def test_inception_extractor_loads_local_weights(tmp_path):
    """Random-initialised weights stand in for the ImageNet file: loading and 2048-d output are checked."""
    net = keras.applications.InceptionV3(
        include_top=False, weights=None, input_shape=(299, 299, 3), pooling="avg"
    )
    path = tmp_path / "inception_notop.weights.h5"
    net.save_weights(path)
    extractor = features.inception_extractor(path)
    for a, b in zip(extractor.model.get_weights()[:4], net.get_weights()[:4], strict=True):
        np.testing.assert_array_equal(a, b)
    out = extractor(np.random.default_rng(0).uniform(-1, 1, (3, 28, 28, 1)).astype("float32"))
    assert out.shape == (3, 2048) and np.isfinite(out).all()
