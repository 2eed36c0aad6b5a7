"""Memory-lean gradients: same numbers as TensorFlow autodiff, fewer bytes alive."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tinyml_kit.tinytl import lean_ops
from tinyml_kit.tinytl.lean_layers import (
    FrozenBatchNormalization,
    LeanConv2D,
    LeanDense,
    LeanDepthwiseConv2D,
    LeanReLU,
)
from tinyml_kit.tinytl.measure import compile_for_measurement, measure_training_step
from tinyml_kit.tinytl.transform import prepare
from tinyml_kit.zoo import proxylessnas_mobile

RNG = np.random.default_rng(0)


def _t(*shape):
    return tf.constant(RNG.normal(size=shape).astype("float32"))


def _relative(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def _grads(fn, *args):
    with tf.GradientTape() as tape:
        tape.watch(args)
        y = fn(*args)
        loss = tf.reduce_sum(y * tf.sin(y))  # a non-trivial output gradient
    return y, tape.gradient(loss, args)


KERNEL = _t(3, 3, 6, 5)
DW_KERNEL = _t(5, 5, 6, 1)
MATRIX = _t(7, 4)
CASES = {
    "conv": (
        lambda x, b: lean_ops.frozen_conv2d(x, KERNEL, b, (2, 2), "same", activation="relu6"),
        lambda x, b: tf.nn.relu6(tf.nn.conv2d(x, KERNEL, 2, "SAME") + b),
        ((2, 9, 9, 6), (5,)),
    ),
    "depthwise": (
        lambda x, b: lean_ops.frozen_depthwise_conv2d(x, DW_KERNEL, b, (1, 1), "valid", activation="relu"),
        lambda x, b: tf.nn.relu(tf.nn.depthwise_conv2d(x, DW_KERNEL, [1, 1, 1, 1], "VALID") + b),
        ((2, 9, 9, 6), (6,)),
    ),
    "matmul": (
        lambda x, b: lean_ops.frozen_matmul(x, MATRIX, b),
        lambda x, b: tf.matmul(x, MATRIX) + b,
        ((3, 7), (4,)),
    ),
    "affine": (
        lambda x, b: lean_ops.frozen_affine(x, MATRIX[0, :4], b),
        lambda x, b: x * MATRIX[0, :4] + b,
        ((2, 5, 5, 4), (4,)),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_lean_ops_match_autodiff(name):
    lean, plain, shapes = CASES[name]
    args = [_t(*s) for s in shapes]
    y_lean, g_lean = _grads(lean, *args)
    y_plain, g_plain = _grads(plain, *args)
    assert _relative(y_lean, y_plain) < 1e-6
    for a, b in zip(g_lean, g_plain, strict=True):
        assert _relative(a, b) < 1e-6


@pytest.mark.parametrize("max_value", [None, 6.0])
def test_masked_relu_and_resize_match_autodiff(max_value):
    x = _t(2, 7, 5, 3) * 4
    plain = tf.nn.relu if max_value is None else tf.nn.relu6
    _, (g_lean,) = _grads(lambda x: lean_ops.masked_relu(x, max_value), x)
    _, (g_plain,) = _grads(plain, x)
    assert _relative(g_lean, g_plain) == 0.0
    _, (g_lean,) = _grads(lambda x: lean_ops.resize_bilinear(x, (13, 11)), x)
    _, (g_plain,) = _grads(lambda x: tf.image.resize(x, (13, 11)), x)
    assert _relative(g_lean, g_plain) < 1e-6


def test_bit_packing_round_trips_any_size():
    mask = tf.constant(RNG.random((3, 5, 7)) > 0.5)
    packed = lean_ops.pack_bits(mask)
    assert packed.dtype == tf.uint8 and packed.shape[0] == (3 * 5 * 7 + 7) // 8
    np.testing.assert_array_equal(lean_ops.unpack_bits(packed, tf.shape(mask)), mask)


def test_lean_layers_equal_their_parents_forward():
    x = RNG.normal(size=(2, 8, 8, 4)).astype("float32")
    pairs = [
        (
            LeanConv2D(3, 3, activation="relu6", padding="same"),
            keras.layers.Conv2D(3, 3, activation="relu6", padding="same"),
        ),
        (LeanDepthwiseConv2D(3, strides=2), keras.layers.DepthwiseConv2D(3, strides=2)),
        (LeanReLU(max_value=6.0), keras.layers.ReLU(max_value=6.0)),
    ]
    for lean, plain in pairs:
        lean.build(x.shape)
        plain.build(x.shape)
        plain.set_weights(lean.get_weights())
        lean.trainable = False
        for training in (False, True):
            np.testing.assert_allclose(lean(x, training=training), plain(x), atol=1e-6)
    dense = LeanDense(5, trainable=False)
    flat = x.reshape(2, -1)
    dense.build(flat.shape)
    np.testing.assert_allclose(dense(flat, training=True), flat @ dense.get_weights()[0], atol=1e-5)


def test_frozen_batch_norm_never_uses_batch_statistics():
    x = RNG.normal(3.0, 2.0, size=(16, 4, 4, 3)).astype("float32")
    layer = FrozenBatchNormalization()
    layer.build(x.shape)
    layer.gamma.trainable = False
    before = [w.copy() for w in layer.get_weights()]
    np.testing.assert_allclose(layer(x, training=True), layer(x, training=False), atol=1e-6)
    for a, b in zip(before, layer.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert FrozenBatchNormalization.from_config(layer.get_config()).lean


@pytest.fixture(scope="module")
def backbone():
    return proxylessnas_mobile((48, 48, 3), width_mult=0.35, include_top=False)


@pytest.mark.parametrize("method", ["bias", "lite_residual+bias", "norm+last"])
def test_prepared_model_gradients_match_plain_autodiff(backbone, method):
    """Lean layers (no folding) against the same model built from plain Keras layers."""
    keras.utils.set_random_seed(0)
    lean = prepare(backbone, method, 5, norm="batch", fold_norms=False)
    plain = prepare(backbone, method, 5, norm="batch", memory_lean=False)
    plain.set_weights(lean.get_weights())
    x = tf.constant(RNG.normal(size=(4, 48, 48, 3)).astype("float32"))

    def grads(model):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.sin(model(x, training=True)))
        return tape.gradient(loss, model.trainable_variables)

    assert [v.path for v in lean.trainable_variables] == [v.path for v in plain.trainable_variables]
    for a, b in zip(grads(lean), grads(plain), strict=True):
        assert _relative(a, b) < 1e-6


def test_folded_norms_train_like_betas(backbone):
    """Folding conv+BN(+ReLU): same outputs; the folded biases get the betas' gradients."""
    folded = prepare(backbone, "bias", 5)
    plain = prepare(backbone, "bias", 5, memory_lean=False)
    folded.get_layer("classifier").set_weights(plain.get_layer("classifier").get_weights())
    x = tf.constant(RNG.normal(size=(4, 48, 48, 3)).astype("float32"))
    assert len(folded.layers) < len(plain.layers)
    np.testing.assert_allclose(folded(x, training=True), plain(x, training=True), rtol=1e-4, atol=1e-5)

    def named_grads(model, names):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.sin(model(x, training=True)))
        variables = [model.get_layer(name).weights[1] for name in names]
        return tape.gradient(loss, variables)

    a = named_grads(folded, ["block3_expand", "block3_dw", "block3_project"])
    b = named_grads(plain, ["block3_expand_bn", "block3_dw_bn", "block3_project_bn"])
    for g_folded, g_beta in zip(a, b, strict=True):
        # beta is weights[1] of BN (gamma, beta, mean, var); the folded conv's bias is weights[1]
        assert _relative(g_folded, g_beta) < 1e-3


def _chain(lean: bool) -> keras.Model:
    conv, relu = (LeanConv2D, LeanReLU) if lean else (keras.layers.Conv2D, keras.layers.ReLU)
    x = inputs = keras.Input((48, 48, 32))
    for _ in range(8):
        x = conv(32, 1, use_bias=False)(x)
        x = FrozenBatchNormalization(lean=lean)(x)
        x = relu(6.0)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(4)(x))
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            layer.trainable = False
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.gamma.trainable = False
    return compile_for_measurement(model)


def test_lean_chain_keeps_far_less_alive():
    """Eight frozen conv-BN-ReLU6 layers of 2.4 MB each: plain autodiff keeps them, lean keeps masks."""
    x = RNG.normal(size=(8, 48, 48, 32)).astype("float32")
    y = np.zeros(8, dtype=int)
    plain = measure_training_step(_chain(False), x, y, device="CPU:0").step_bytes
    lean = measure_training_step(_chain(True), x, y, device="CPU:0").step_bytes
    activation = 8 * 48 * 48 * 32 * 4
    assert plain > 6 * activation
    assert lean < plain / 2
