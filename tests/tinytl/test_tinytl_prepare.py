"""prepare(): block recognition on four architecture families, head, trainable sets, clear errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tinyml_kit.tinytl import METHODS, prepare
from tinyml_kit.tinytl.errors import TinyTLError, UnknownMethodError, UnsupportedArchitectureError
from tinyml_kit.tinytl.graph import GraphView, find_inverted_residual_blocks
from tinyml_kit.tinytl.lean_layers import FrozenBatchNormalization, LeanConv2D, LeanReLU
from tinyml_kit.tinytl.lite_residual import LiteResidual
from tinyml_kit.zoo import efficientnet_lite0, proxylessnas_mobile


def mcunet_like(input_shape=(48, 48, 3)) -> keras.Model:
    """An MCUNet / TinyNAS-style MBConv net with its own naming and Activation layers."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="first_conv")(inputs)
    x = keras.layers.BatchNormalization(name="first_bn")(x)
    x = keras.layers.Activation("relu6", name="first_act")(x)
    settings = [(1, 3, 1, 8), (4, 5, 2, 16), (3, 7, 1, 16), (6, 3, 2, 24)]
    for i, (expand, kernel, stride, out) in enumerate(settings):
        skip = x
        if expand != 1:
            x = keras.layers.Conv2D(int(x.shape[-1]) * expand, 1, use_bias=False, name=f"mb{i}_pw1")(x)
            x = keras.layers.BatchNormalization(name=f"mb{i}_pw1_bn")(x)
            x = keras.layers.Activation("relu6", name=f"mb{i}_pw1_act")(x)
        x = keras.layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=f"mb{i}_dw")(x)
        x = keras.layers.BatchNormalization(name=f"mb{i}_dw_bn")(x)
        x = keras.layers.Activation("relu6", name=f"mb{i}_dw_act")(x)
        x = keras.layers.Conv2D(out, 1, use_bias=False, name=f"mb{i}_pw2")(x)
        x = keras.layers.BatchNormalization(name=f"mb{i}_pw2_bn")(x)
        if stride == 1 and int(skip.shape[-1]) == out:
            x = keras.layers.Add(name=f"mb{i}_add")([skip, x])
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="fc")(x), name="mcunet_like")


@pytest.fixture(scope="module")
def proxyless():
    return proxylessnas_mobile((48, 48, 3), 7, width_mult=0.35)


def _blocks(model):
    view = GraphView(model)
    return find_inverted_residual_blocks(view, view.ancestors(view.feature_tensor()))


def test_blocks_found_in_every_family(proxyless):
    found = _blocks(proxyless)
    assert len(found) == 20 and found[0].expand is None and found[1].expand == "block1_expand"
    assert [b.stride for b in found[:4]] == [1, 2, 1, 2] and found[2].add == "block2_add"
    mnv2 = keras.applications.MobileNetV2((64, 64, 3), alpha=0.35, include_top=False, weights=None)
    found = _blocks(mnv2)
    assert (
        len(found) == 17 and found[1].depthwise == "block_1_depthwise" and found[1].layers[3] == "block_1_pad"
    )
    lite0 = efficientnet_lite0((48, 48, 3), include_top=False, weights=None)
    assert len(_blocks(lite0)) == 16
    found = _blocks(mcunet_like())
    assert [b.depthwise for b in found] == ["mb0_dw", "mb1_dw", "mb2_dw", "mb3_dw"]
    assert found[2].add == "mb2_add" and found[1].expand == "mb1_pw1"


def test_lite_residual_everywhere_but_the_first_block(proxyless):
    model = prepare(proxyless, "lite_residual+bias", 5, norm="batch")
    branches = [layer for layer in model.layers if isinstance(layer, LiteResidual)]
    assert len(branches) == 19 and branches[0].name == "block1_dw_lite_residual"
    assert model.output.shape == (None, 5)
    x = np.random.default_rng(0).normal(size=(2, 48, 48, 3)).astype("float32")
    # zero-initialised branches: same outputs as the model without them
    without = prepare(proxyless, "bias", 5, norm="batch")
    without.get_layer("classifier").set_weights(model.get_layer("classifier").get_weights())
    np.testing.assert_allclose(model.predict(x, verbose=0), without.predict(x, verbose=0), atol=1e-5)
    first = prepare(proxyless, "lite_residual", 5, first_block=True)
    assert sum(isinstance(layer, LiteResidual) for layer in first.layers) == 20


def _trainable(model) -> set[str]:
    return {v.path for v in model.trainable_variables}


def test_trainable_sets_follow_the_method(proxyless):
    sets = {name: _trainable(prepare(proxyless, name, 5)) for name in METHODS}
    head = {"classifier/kernel", "classifier/bias"}
    assert sets["last"] == head
    assert head < sets["bias"] and all(p.endswith("/bias") for p in sets["bias"] - head)
    assert any(p.endswith("gamma") for p in sets["norm+last"])
    assert not any(p.endswith("kernel") for p in sets["norm+last"] - head)
    lite = sets["lite_residual"] - head
    assert lite and all("lite_residual" in p for p in lite)
    both = sets["lite_residual+bias"]
    assert not any(p.endswith("norm2/beta") for p in both)  # the block's own bias provides it
    assert sets["bias"] < both
    full = prepare(proxyless, "full", 5)
    assert len(full.trainable_weights) > len(sets["norm+last"])
    assert not any(isinstance(layer, LeanReLU) for layer in full.layers)
    assert all(not layer._lean_applies() for layer in full.layers if isinstance(layer, LeanConv2D))


def test_lean_layers_and_folds_where_weights_are_frozen(proxyless):
    bias = prepare(proxyless, "bias", 5)
    kinds = {type(layer) for layer in bias.layers}
    assert LeanConv2D in kinds and not any(
        isinstance(layer, keras.layers.BatchNormalization) for layer in bias.layers
    )
    assert bias.get_layer("block1_expand").activation is keras.activations.relu6
    norm = prepare(proxyless, "norm+last", 5)
    assert isinstance(norm.get_layer("block1_expand_bn"), FrozenBatchNormalization)
    plain = prepare(proxyless, "bias", 5, memory_lean=False)
    assert not any(isinstance(layer, LeanReLU) for layer in plain.layers)
    assert not any(getattr(layer, "lean", False) for layer in plain.layers)
    assert proxyless.get_layer("classifier").units == 7  # the original is untouched


def test_nested_backbone_and_sequential_heads():
    base = keras.applications.MobileNetV2((64, 64, 3), alpha=0.35, include_top=False, weights=None)
    inputs = keras.Input((64, 64, 3))
    x = keras.layers.GlobalAveragePooling2D()(base(inputs, training=False))
    outer = keras.Model(inputs, keras.layers.Dense(3)(x))
    model = prepare(outer, "lite_residual")
    assert model.output.shape == (None, 3)
    assert sum(isinstance(layer, LiteResidual) for layer in model.layers) == 16
    seq = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(8, 3), keras.layers.ReLU(),
                            keras.layers.Flatten(), keras.layers.Dense(4)])  # fmt: skip
    assert prepare(seq, "bias", 2).output.shape == (None, 2)


def test_errors_name_the_problem(proxyless):
    with pytest.raises(UnknownMethodError, match="lite_residual\\+bias"):
        prepare(proxyless, "tinytl-b", 5)
    with pytest.raises(TinyTLError, match="already has lite residual"):
        prepare(prepare(proxyless, "lite_residual", 5), "bias", 5)
    features = proxylessnas_mobile((48, 48, 3), width_mult=0.35, include_top=False)
    with pytest.raises(TinyTLError, match="num_classes"):
        prepare(features, "bias")
    # squeeze-and-excite between depthwise and projection: not an inverted-residual chain
    inputs = keras.Input((16, 16, 8))
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="se_dw")(inputs)
    scale = keras.layers.Dense(8, activation="sigmoid")(keras.layers.GlobalAveragePooling2D()(x))
    x = keras.layers.Multiply()([x, keras.layers.Reshape((1, 1, 8))(scale)])
    x = keras.layers.Conv2D(8, 1)(x)
    se = keras.Model(inputs, x)
    with pytest.raises(UnsupportedArchitectureError, match="'se_dw'"):
        prepare(se, "lite_residual", 2)
    assert prepare(se, "bias", 2).output.shape == (None, 2)  # no blocks needed without branches
    plain = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
                              keras.layers.Dense(2)])  # fmt: skip
    with pytest.raises(UnsupportedArchitectureError, match="no inverted-residual block"):
        prepare(plain, "lite_residual")
    prelu = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3),
                              keras.layers.PReLU(name="act"), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2)])  # fmt: skip
    with pytest.raises(UnsupportedArchitectureError, match=r"'act' \(PReLU\).*'alpha'"):
        prepare(prelu, "bias")


def test_non_trainable_state_and_frozen_layers_stay_frozen():
    """keras.applications-style preprocessing (Normalization) and a user-frozen PReLU."""
    norm = keras.layers.Normalization(name="norm")
    norm.adapt(np.random.default_rng(0).normal(size=(16, 16, 16, 3)).astype("float32"))
    prelu = keras.layers.PReLU(name="act")
    model = keras.Sequential([keras.Input((16, 16, 3)), norm, keras.layers.Conv2D(4, 3, name="conv"), prelu,
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])  # fmt: skip
    prelu.trainable = False
    prepared = prepare(model, "full")
    assert _trainable(prepared) == {"conv/kernel", "conv/bias", "classifier/kernel", "classifier/bias"}


@pytest.mark.parametrize("method", ["lite_residual+bias", "bias"])
def test_reloaded_model_keeps_what_trains(tmp_path, method):
    """Keras saves only layer-level flags; ours keep frozen kernels frozen after load_model."""
    model = prepare(mcunet_like(), method, 3, norm="batch", memory_lean=method == "bias")
    model.compile("adam", "sparse_categorical_crossentropy", jit_compile=False)
    x = np.random.default_rng(0).normal(size=(4, 48, 48, 3)).astype("float32")
    model.fit(x, np.array([0, 1, 2, 0]), epochs=1, verbose=0)
    path = tmp_path / "tinytl.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    assert _trainable(restored) == _trainable(model)
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
