"""The Keras 3 -> tf_keras bridge: same outputs after rebuilding, clear errors for unmappable layers."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf_keras = pytest.importorskip("tf_keras")

from tinyml_kit.export import SUPPORTED_LAYERS, UnsupportedLayerError, to_tf_keras  # noqa: E402
from tinyml_kit.export.errors import ExportError  # noqa: E402


def _randomize_batchnorm(model: keras.Model, seed: int = 0) -> None:
    """Non-trivial BN statistics, so that a wrong weight order would show in the outputs."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.get_weights()[0].shape
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.2, n), rng.normal(0, 0.2, n),
                               rng.uniform(0.5, 2.0, n)])


def mobilenet_style(input_shape=(32, 32, 3), classes: int = 10) -> keras.Model:
    """Conv, depthwise, BN, ReLU6, residual add, padding, pooling (avg/max/global), dropout, dense."""
    layers = keras.layers
    inputs = keras.Input(input_shape)
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    x = layers.ZeroPadding2D(((0, 1), (0, 1)))(x)
    x = layers.Conv2D(8, 3, strides=2, padding="valid", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(6.0)(x)
    y = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    y = layers.BatchNormalization()(y)
    y = layers.ReLU(6.0)(y)
    y = layers.Conv2D(8, 1, use_bias=False)(y)
    y = layers.BatchNormalization()(y)
    x = layers.Add()([x, y])
    x = layers.Activation("relu6")(x)
    x = layers.SeparableConv2D(16, 3, padding="same", activation="relu")(x)
    x = layers.AveragePooling2D(2)(x)
    x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.Concatenate()([x, layers.Conv2D(4, 1)(x)])
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Reshape((1, 20))(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name="mobilenet_style")
    _randomize_batchnorm(model)
    return model


def _images(n: int = 8, shape=(32, 32, 3)) -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 255, (n, *shape)).astype(np.float32)


def test_mobilenet_style_round_trip_matches_within_1e_5():
    model = mobilenet_style()
    rebuilt = to_tf_keras(model)
    assert isinstance(rebuilt, tf_keras.Model)
    x = _images()
    np.testing.assert_allclose(rebuilt(x, training=False).numpy(), model(x, training=False).numpy(),
                               atol=1e-5, rtol=0)
    separable = {layer.name for layer in model.layers if isinstance(layer, keras.layers.SeparableConv2D)}
    expected = {layer.name for layer in model.layers} - separable
    expected |= {f"{name}_{part}" for name in separable for part in ("depthwise", "pointwise")}
    assert {layer.name for layer in rebuilt.layers} == expected
    assert rebuilt.count_params() == model.count_params()


def test_sequential_nested_and_shared_layers():
    inner = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="relu"),
                              keras.layers.Dense(4)], name="inner")
    shared = keras.layers.Dense(4, name="shared")
    a, b = keras.Input((6,), name="a"), keras.Input((6,), name="b")
    out = keras.layers.Add()([shared(inner(a)), shared(inner(b))])
    model = keras.Model([a, b], out)
    rebuilt = to_tf_keras(model)
    xa, xb = np.random.default_rng(2).normal(size=(2, 3, 6)).astype(np.float32)
    np.testing.assert_allclose(rebuilt([xa, xb]).numpy(), model([xa, xb]).numpy(), atol=1e-5)
    # the nested model is inlined and its layers stay shared: 2 inner Dense + shared Dense + Add
    assert sum(isinstance(layer, tf_keras.layers.Dense) for layer in rebuilt.layers) == 3


def test_trainable_flags_and_l2_regularizer_carry_over():
    dense = keras.layers.Dense(3, kernel_regularizer=keras.regularizers.L2(1e-3), name="head")
    frozen = keras.layers.Dense(3, name="frozen", trainable=False)
    model = keras.Sequential([keras.Input((4,)), frozen, dense])
    rebuilt = to_tf_keras(model)
    assert not rebuilt.get_layer("frozen").trainable
    assert rebuilt.get_layer("head").kernel_regularizer.get_config()["l2"] == pytest.approx(1e-3)
    assert len(rebuilt.trainable_weights) == 2


class Doubler(keras.layers.Layer):
    def call(self, x):
        return 2.0 * x


def test_unmappable_layers_are_all_named_in_one_error():
    inputs = keras.Input((10, 4))
    x = keras.layers.LSTM(8, return_sequences=True, name="my_lstm")(inputs)
    x = Doubler(name="my_doubler")(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    with pytest.raises(UnsupportedLayerError) as info:
        to_tf_keras(model)
    message = str(info.value)
    assert "'my_lstm' (keras.src.layers.rnn.lstm.LSTM)" in message
    assert "'my_doubler'" in message and "Doubler" in message
    assert "Conv2D" in message and "post-training quantisation" in message  # what is supported, and a way out
    assert "Flatten" not in message.split("cannot map")[1].split("Supported")[0]


def test_subclass_of_a_builtin_is_not_silently_mapped():
    class MyConv(keras.layers.Conv2D):
        def call(self, x):
            return super().call(x) + 1.0

    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, MyConv(2, 3, name="myconv")(inputs))
    with pytest.raises(UnsupportedLayerError, match="'myconv'"):
        to_tf_keras(model)


def triple(t):
    return t * 3


def test_custom_activation_and_unbuilt_models_are_rejected():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation=triple, name="odd")(inputs))
    with pytest.raises(UnsupportedLayerError, match="custom activation"):
        to_tf_keras(model)
    with pytest.raises(ExportError, match="no layer graph yet"):
        to_tf_keras(keras.Sequential([keras.layers.Dense(2)]))


def test_supported_layer_table_names_real_tf_keras_classes():
    for name in SUPPORTED_LAYERS:
        assert hasattr(keras.layers, name) and hasattr(tf_keras.layers, name), name
