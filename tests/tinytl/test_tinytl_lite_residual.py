"""LiteResidual: structure of the official branch, zero start, serialisation, fit/predict."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tinyml_kit.tinytl.lite_residual import (
    GroupConv2D,
    LiteResidual,
    branch_kernel_size,
    branch_mid_channels,
)


def _block(in_shape=(32, 32, 16), out_channels=24, strides=2, **kwargs):
    x = keras.Input(in_shape)
    main = keras.layers.Conv2D(out_channels, 3, strides=strides, padding="same", name="main")(x)
    layer = LiteResidual(strides=strides, name="lr", **kwargs)
    return keras.Model(x, layer([x, main])), layer


def test_official_rules_for_kernel_and_width():
    assert branch_kernel_size(5, 56) == 5
    assert branch_kernel_size(5, 4) == 3
    assert branch_kernel_size(5, 3) == 3
    assert branch_kernel_size(5, 2) == 1
    assert branch_mid_channels(16, 1.0) == 16
    assert branch_mid_channels(20, 1.0) == 24  # rounded up to a multiple of 8
    assert branch_mid_channels(96, 0.5) == 48


def test_structure_follows_the_official_branch():
    model, layer = _block()
    assert model.output.shape == (None, 16, 16, 24)
    assert (layer.pooled_size, layer.effective_kernel_size, layer.mid_channels) == ((16, 16), 5, 16)
    assert isinstance(layer.pool, keras.layers.AveragePooling2D)
    assert isinstance(layer.conv1, GroupConv2D)
    assert layer.conv1.groups == 2 and layer.conv1.strides == (2, 2) and not layer.conv1.use_bias
    assert tuple(layer.conv1.kernel.shape) == (5, 5, 8, 16)
    assert isinstance(layer.norm1, keras.layers.GroupNormalization) and layer.norm1.groups == 2
    assert tuple(layer.conv2.kernel.shape) == (1, 1, 16, 24)
    assert layer.branch_shape == (None, 8, 8, 24)  # then resized to the main branch's 16 x 16
    assert np.all(keras.ops.convert_to_numpy(layer.norm2.gamma) == 0)


def test_kernel_shrinks_and_tiny_maps_use_global_pooling():
    _, layer = _block(in_shape=(7, 7, 16), strides=1)
    assert layer.pooled_size == (3, 3) and layer.effective_kernel_size == 3
    _, tiny = _block(in_shape=(3, 3, 16), strides=1)
    assert tiny.global_pool and tiny.effective_kernel_size == 1


def test_new_branch_leaves_the_block_unchanged_then_learns():
    model, _ = _block(norm="batch")
    x = np.random.default_rng(0).normal(size=(4, 32, 32, 16)).astype("float32")
    main = keras.Model(model.input, model.get_layer("main").output)
    np.testing.assert_allclose(model.predict(x, verbose=0), main.predict(x, verbose=0), atol=1e-6)
    model.compile("adam", "mse", jit_compile=False)
    target = np.random.default_rng(1).normal(size=(4, 16, 16, 24)).astype("float32")
    model.fit(x, target, epochs=3, batch_size=4, verbose=0)
    assert not np.allclose(model.predict(x, verbose=0), main.predict(x, verbose=0), atol=1e-4)


def test_config_round_trip_and_keras_file(tmp_path):
    model, layer = _block(
        kernel_size=3, groups=1, expand=2.0, downsample=2, norm="batch", padding="symmetric"
    )
    clone = LiteResidual.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    model.compile("adam", "mse", jit_compile=False)
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 16)).astype("float32")
    model.fit(x, np.zeros((2, 16, 16, 24), "float32"), epochs=1, verbose=0)
    path = tmp_path / "lite.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert isinstance(restored.get_layer("lr").pad, keras.layers.ZeroPadding2D)


def test_group_conv_matches_keras_conv():
    x = np.random.default_rng(0).normal(size=(2, 9, 9, 8)).astype("float32")
    ours = GroupConv2D(6, 3, strides=2, padding="same", groups=2)
    reference = keras.layers.Conv2D(6, 3, strides=2, padding="same", groups=2)
    ours.build(x.shape)
    reference.build(x.shape)
    reference.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours(x), reference(x), atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kernel_size": 4}, "odd"),
        ({"groups": 0}, "groups"),
        ({"norm": "layer"}, "norm"),
        ({"padding": "reflect"}, "padding"),
        ({"expand": -1}, "expand"),
    ],
)
def test_invalid_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LiteResidual(**kwargs)


def test_indivisible_channels_name_the_fix():
    x = keras.Input((8, 8, 15))
    main = keras.layers.Conv2D(8, 1)(x)
    with pytest.raises(ValueError, match="groups=1"):
        LiteResidual(name="odd")([x, main])
