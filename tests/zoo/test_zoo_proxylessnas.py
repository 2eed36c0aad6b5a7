"""ProxylessNAS-Mobile built from the packaged block list."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest

from tinyml_kit.zoo import inverted_residual_blocks, proxylessnas_mobile
from tinyml_kit.zoo.errors import ZooError


def _trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_block_list_ships_inside_the_package():
    text = (
        resources.files("tinyml_kit.zoo")
        .joinpath("resources")
        .joinpath("proxylessnas_mobile.json")
        .read_text()
    )
    config = json.loads(text)
    assert len(config["blocks"]) == 20 and config["feature_mix"]["out"] == 1280


def test_parameter_count_and_shapes_match_published_model():
    model = proxylessnas_mobile()
    assert _trainable(model) == pytest.approx(4.1e6, rel=0.01)  # published ProxylessNAS-Mobile: 4.1 M
    assert _trainable(model) == 4_080_512
    assert model.output_shape == (None, 1000)
    assert model.get_layer("feature_mix").output.shape == (None, 7, 7, 1280)
    assert model.get_layer("block19_project").output.shape == (None, 7, 7, 320)
    assert all(
        not layer.use_bias
        for layer in model.layers
        if hasattr(layer, "use_bias") and layer.name != "classifier"
    )
    assert all(
        layer.epsilon == 1e-3 and layer.momentum == pytest.approx(0.9)
        for layer in model.layers
        if layer.__class__.__name__ == "BatchNormalization"
    )


def test_blocks_are_named_for_later_transforms():
    model = proxylessnas_mobile((96, 96, 3), classes=10)
    blocks = inverted_residual_blocks(model)
    assert len(blocks) == 20
    assert blocks[0].expand is None  # expand ratio 1: no expand conv
    assert all(b.expand == f"block{b.index}_expand" for b in blocks[1:])
    with_add = [b.index for b in blocks if b.add]
    assert with_add == [2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 16, 17, 18]
    assert model.get_layer("block1_dw").kernel_size == (5, 5) and model.get_layer("block1_dw").strides == (
        2,
        2,
    )
    assert model.get_layer("block7_expand").filters == 40 * 6


def test_width_multiplier_and_symmetric_padding():
    slim = proxylessnas_mobile((64, 64, 3), width_mult=0.5, include_top=False)
    assert slim.get_layer("stem_conv").filters == 16
    assert slim.get_layer("block19_project").filters == 160
    assert slim.output_shape == (None, 2, 2, 1280)
    torch_like = proxylessnas_mobile((64, 64, 3), padding="symmetric", classes=5, classifier_activation=None)
    assert torch_like.get_layer("block3_dw_pad").padding == ((3, 3), (3, 3))
    assert torch_like.output_shape == (None, 5)
    y = torch_like(np.random.default_rng(0).random((2, 64, 64, 3), np.float32), training=False)
    assert np.isfinite(y).all()
    with pytest.raises(ZooError, match="padding"):
        proxylessnas_mobile(padding="reflect")
    with pytest.raises(ZooError, match="width_mult"):
        proxylessnas_mobile(width_mult=0)
