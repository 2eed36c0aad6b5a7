"""Offline feature extractors for FID/KID, and the evaluation of a generator against real data.

Two kinds:

* ``classifier_extractor(dataset)``: a small CNN trained once (deterministically, a few CPU epochs) on the
  full train split of a built-in 28x28 dataset (``fashion_mnist``, ``mnist``...) and cached in
  ``tinyml_kit._paths.cache_dir()/diffaug``. Its 128-d penultimate activations replace Inception's
  2048-d pool features. **FIDs computed with it are NOT comparable to Inception-FID** (the numbers in
  papers); they rank models on the same dataset and extractor only.
* ``inception_extractor(weights_path)``: Keras' InceptionV3 with weights from a file you provide
  (nothing is downloaded); images are resized to 299x299 and grey images replicated to RGB. This is
  the standard FID feature space (pool3, 2048-d), though the TF-Slim graph used by the official
  ``TTUR``/StyleGAN FID code differs slightly from ``keras.applications``.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_kit._paths import cache_dir
from tinyml_kit.diffaug._io import save_model, save_npz, save_text
from tinyml_kit.diffaug.errors import FeatureExtractorError
from tinyml_kit.diffaug.metrics import frechet_distance, gaussian_statistics, kid

CLASSIFIER_VERSION = 1  # bump when the classifier's architecture or training recipe changes
REFERENCE_KID_SAMPLES = 10_000
DEFAULT_EPOCHS = 3


def to_gan_range(x_uint8: np.ndarray) -> np.ndarray:
    """uint8 images -> float32 in ``[-1, 1]``."""
    return np.asarray(x_uint8, dtype=np.float32) / 127.5 - 1.0


@dataclass
class FeatureExtractor:
    """Maps images in ``[-1, 1]`` (NHWC) to feature vectors with a Keras model.

    Attributes:
        name: identifies the feature space in reports (``"classifier-fashion_mnist-v1"``, ``"inception-v3"``).
        model: Keras model from images to ``(N, D)`` features.
        preprocess: optional function applied to each batch before ``model`` (resize, channel tiling).
        info: facts to report, e.g. the classifier's test accuracy.
    """

    name: str
    model: Any
    preprocess: Callable[[Any], Any] | None = None
    info: dict = field(default_factory=dict)

    def __call__(self, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
        import keras

        images = np.asarray(images, dtype=np.float32)
        out = []
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            if self.preprocess is not None:
                batch = self.preprocess(batch)
            out.append(keras.ops.convert_to_numpy(self.model(batch, training=False)))
        return np.concatenate(out).astype(np.float64)

    def describe(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.info.items() if k in ("test_accuracy", "feature_dim"))
        return f"{self.name} ({extra})" if extra else self.name


# --------------------------------------------------------------------------------- classifier features
def build_classifier(image_shape: tuple[int, int, int], num_classes: int, feature_dim: int = 128) -> Any:
    """Conv(32)-pool-Conv(64)-pool, then a ``features`` dense layer (ReLU) and the logits."""
    import keras
    from keras import layers

    images = keras.Input(image_shape, name="images")
    x = images
    for i, filters in enumerate((32, 64)):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    features = layers.Dense(feature_dim, activation="relu", name="features")(x)
    logits = layers.Dense(num_classes, name="logits")(layers.Dropout(0.3)(features))
    return keras.Model(images, logits, name="fid_classifier")


def train_classifier(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    epochs: int = 3,
    batch_size: int = 128,
    seed: int = 0,
    verbose: int = 1,
) -> tuple[Any, float]:
    """Trains ``build_classifier`` on uint8 images (scaled to ``[-1, 1]``); returns ``(model, accuracy)``.

    Deterministic: Keras seeds are fixed and TensorFlow's op determinism is switched on for the
    duration of training (restored afterwards).
    """
    import keras
    from tensorflow.python.framework import config as tf_config

    keras.utils.set_random_seed(seed)
    was_deterministic = tf_config.is_op_determinism_enabled()
    tf_config.enable_op_determinism()
    try:
        num_classes = int(max(y_train.max(), y_test.max())) + 1
        model = build_classifier(tuple(x_train.shape[1:]), num_classes)
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        order = np.random.default_rng(seed).permutation(len(x_train))
        model.fit(
            to_gan_range(x_train[order]), y_train[order], epochs=epochs, batch_size=batch_size,
            shuffle=True, verbose=verbose,
        )  # fmt: skip
        _, accuracy = model.evaluate(to_gan_range(x_test), y_test, batch_size=500, verbose=0)
    finally:
        if not was_deterministic:
            tf_config.disable_op_determinism()
    return model, float(accuracy)


def _feature_model(classifier: Any) -> Any:
    import keras

    return keras.Model(classifier.input, classifier.get_layer("features").output, name="fid_features")


def features_dir() -> Path:
    """``cache_dir()/diffaug``: cached classifiers and reference feature statistics."""
    path = cache_dir() / "diffaug"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _load_split(dataset: str, split: str) -> Any:
    from tinyml_kit import data

    return data.load(dataset, split)


def classifier_extractor(
    dataset: str = "fashion_mnist",
    *,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = 0,
    retrain: bool = False,
    verbose: int = 1,
) -> FeatureExtractor:
    """The cached classifier feature extractor of a built-in dataset, trained on first use.

    Training uses the whole train split and reports accuracy on the test split (stored beside the
    model in ``<name>.json``). Any dataset ``tinyml_kit.data.load`` knows works, e.g. ``"mnist"``.
    """
    import keras

    name = f"classifier-{dataset}-v{CLASSIFIER_VERSION}"
    if (epochs, seed) != (DEFAULT_EPOCHS, 0):  # a different recipe is a different feature space
        name += f"-e{epochs}s{seed}"
    model_path, info_path = features_dir() / f"{name}.keras", features_dir() / f"{name}.json"
    if model_path.exists() and info_path.exists() and not retrain:
        info = json.loads(info_path.read_text())
        classifier = keras.saving.load_model(model_path, compile=False)
        return FeatureExtractor(name, _feature_model(classifier), info=info)
    train, test = _load_split(dataset, "train"), _load_split(dataset, "test")
    if verbose:
        print(f"tinyml-kit diffaug: training the FID/KID feature classifier on {len(train)} {dataset} images "
              f"({epochs} epochs, seed {seed}); cached in {model_path}", flush=True)  # fmt: skip
    start = time.perf_counter()
    classifier, accuracy = train_classifier(
        train.x, train.y, test.x, test.y, epochs=epochs, seed=seed, verbose=verbose
    )
    info = {
        "dataset": dataset,
        "train_images": len(train),
        "test_images": len(test),
        "epochs": epochs,
        "seed": seed,
        "test_accuracy": round(accuracy, 4),
        "feature_dim": 128,
        "train_seconds": round(time.perf_counter() - start, 1),
        "note": "classifier features: FID/KID not comparable to Inception-based values",
    }
    save_model(classifier, model_path)
    save_text(info_path, json.dumps(info, indent=2) + "\n")
    if verbose:
        print(f"tinyml-kit diffaug: feature classifier test accuracy {accuracy:.4f}", flush=True)
    return FeatureExtractor(name, _feature_model(classifier), info=info)


# ---------------------------------------------------------------------------------- Inception features
def inception_extractor(weights_path: str | Path) -> FeatureExtractor:
    """InceptionV3 pool features (2048-d) with weights read from ``weights_path`` (never downloaded).

    Accepts the ``notop`` or the full ImageNet weight file of ``keras.applications.InceptionV3``
    (``.h5`` or ``.weights.h5``). Images in ``[-1, 1]`` are resized to 299x299 (bilinear) and 1-channel
    images are replicated to 3 channels; InceptionV3 itself expects ``[-1, 1]``.
    """
    import keras

    path = Path(weights_path).expanduser()
    if not path.is_file():
        raise FeatureExtractorError(
            f"InceptionV3 weights file {path} not found. Pass the path of a local copy of "
            "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5 (tinyml-kit never downloads weights), "
            "or use the offline classifier extractor."
        )
    import h5py

    if not h5py.is_hdf5(path):
        raise FeatureExtractorError(
            f"{path} is not an HDF5 weights file (.h5 / .weights.h5) and holds no InceptionV3 weights."
        )
    errors = []
    for include_top in (False, True):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                net = keras.applications.InceptionV3(
                    include_top=include_top, weights=str(path), input_shape=(299, 299, 3), pooling="avg"
                )
            except (ValueError, OSError, KeyError) as exc:
                errors.append(f"include_top={include_top}: {exc}")
                continue
        skipped = [str(w.message) for w in caught if "Skipping" in str(w.message)]
        if skipped:  # Keras keeps random weights for layers missing from the file: refuse, never guess
            errors.append(f"include_top={include_top}: {len(skipped)} layers missing ({skipped[0][:120]})")
            continue
        model = net if not include_top else keras.Model(net.input, net.get_layer("avg_pool").output)
        info = {"feature_dim": 2048, "weights": str(path)}
        return FeatureExtractor("inception-v3", model, preprocess=_inception_preprocess, info=info)
    raise FeatureExtractorError(f"{path} holds no InceptionV3 weights Keras can load: {'; '.join(errors)}")


def _inception_preprocess(batch: np.ndarray) -> Any:
    import keras

    x = keras.ops.image.resize(batch, (299, 299), interpolation="bilinear")
    if batch.shape[-1] == 1:
        x = keras.ops.repeat(x, 3, axis=-1)
    return x


# --------------------------------------------------------------------------------------- evaluation
@dataclass
class ReferenceFeatures:
    """Statistics of the real images in an extractor's space: Gaussian fit (FID) and a sample (KID)."""

    mu: np.ndarray
    sigma: np.ndarray
    sample: np.ndarray
    count: int

    @classmethod
    def from_images(cls, extractor: FeatureExtractor, images: np.ndarray, seed: int = 0) -> ReferenceFeatures:
        features = extractor(images)
        mu, sigma = gaussian_statistics(features)
        rng = np.random.default_rng(seed)
        take = rng.choice(len(features), min(REFERENCE_KID_SAMPLES, len(features)), replace=False)
        return cls(mu, sigma, features[np.sort(take)], len(features))


def reference_features(extractor: FeatureExtractor, dataset: str, split: str = "train") -> ReferenceFeatures:
    """``ReferenceFeatures`` of a built-in split, cached beside the extractor when it is a classifier."""
    cache = features_dir() / f"{extractor.name}.{dataset}-{split}.npz"
    if cache.exists():
        stored = np.load(cache)
        return ReferenceFeatures(stored["mu"], stored["sigma"], stored["sample"], int(stored["count"]))
    ref = ReferenceFeatures.from_images(extractor, to_gan_range(_load_split(dataset, split).x))
    if extractor.name.startswith("classifier-"):
        save_npz(cache, mu=ref.mu, sigma=ref.sigma, sample=ref.sample, count=np.array(ref.count))
    return ref


def score_images(
    extractor: FeatureExtractor,
    reference: ReferenceFeatures,
    fake_images: np.ndarray,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """``{"fid", "kid", "kid_std"}`` of generated images (``[-1, 1]``) against the reference features."""
    fake = extractor(fake_images)
    mu, sigma = gaussian_statistics(fake)
    kid_mean, kid_std = kid(reference.sample, fake, kid_subsets, kid_subset_size, seed)
    return {
        "fid": frechet_distance(reference.mu, reference.sigma, mu, sigma),
        "kid": kid_mean,
        "kid_std": kid_std,
        "n_fake": len(fake),
    }


__all__ = [
    "FeatureExtractor",
    "ReferenceFeatures",
    "build_classifier",
    "classifier_extractor",
    "inception_extractor",
    "reference_features",
    "score_images",
    "train_classifier",
]
