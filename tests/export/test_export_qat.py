"""quantize_aware: a trainable QAT copy of a Keras 3 model, fit with numpy/tf.data, int8 .tflite out."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
if importlib.util.find_spec("tensorflow_model_optimization") is None:  # not imported here: see the last test
    pytest.skip("tensorflow-model-optimization is not installed", allow_module_level=True)

from tinyml_kit.export import QATModel, UnsupportedLayerError, quantize_aware  # noqa: E402
from tinyml_kit.export.errors import ExportError  # noqa: E402
from tinyml_kit.export.litert import io_details, load_interpreter, predict_tflite  # noqa: E402


def small_mobilenet(classes: int = 4) -> keras.Model:
    """Rescaling, conv/BN/ReLU6, depthwise, residual add, pooling, dense: what QAT must handle."""
    layers = keras.layers
    inputs = keras.Input((16, 16, 1))
    x = layers.Rescaling(1 / 255.0)(inputs)
    x = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.8)(x)
    x = layers.ReLU(6.0)(x)
    y = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    y = layers.BatchNormalization(momentum=0.8)(y)
    y = layers.ReLU(6.0)(y)
    y = layers.Conv2D(8, 1)(y)
    x = layers.Add()([x, y])
    x = layers.MaxPooling2D(2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.1)(x)
    outputs = layers.Dense(classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def _data(n: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.uniform(0, 50, (n, 16, 16, 1))
    for i, label in enumerate(y):
        r, c = divmod(int(label), 2)
        x[i, 8 * r:8 * r + 8, 8 * c:8 * c + 8] += 200
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def qat_and_data() -> tuple[QATModel, keras.Model, np.ndarray, np.ndarray]:
    keras.utils.set_random_seed(0)
    model = small_mobilenet()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    x, y = _data()
    model.fit(x, y, epochs=5, batch_size=16, verbose=0)
    return quantize_aware(model), model, x, y


def test_qat_copy_starts_from_the_float_weights(qat_and_data):
    qat, model, _, _ = qat_and_data
    qat_weights = {w.name.split(":")[0]: w.numpy() for w in qat.keras_model.weights}
    checked = 0
    for layer in model.layers:
        for weight in layer.weights:
            key = f"{layer.name}/{weight.name}"
            if layer.name.startswith("depthwise"):
                key = f"{layer.name}/depthwise_{weight.name}"  # tf_keras's name for the same variable
            np.testing.assert_array_equal(qat_weights[key], weight.numpy(), err_msg=key)
            checked += 1
    assert checked == 14  # 3 conv kernels, 1 conv bias, 2x4 BN vectors, dense kernel + bias
    assert qat.source is model


def test_fit_takes_numpy_and_tf_data_and_keras3_callbacks(qat_and_data):
    qat, _, x, y = qat_and_data
    history = qat.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert set(history.history) >= {"loss", "accuracy"}  # compile settings copied from the Keras 3 model
    assert np.isfinite(history.history["loss"][0])
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
    history = qat.fit(dataset, epochs=5, verbose=0, callbacks=[stopper])
    assert len(history.history["loss"]) == 2  # the Keras 3 callback stopped the tf_keras loop
    assert qat.evaluate(x, y, verbose=0)[1] > 0.5


def test_to_tflite_gives_a_full_integer_model(qat_and_data, tmp_path):
    qat, _, x, y = qat_and_data
    path = qat.to_tflite(x[:64], path=tmp_path / "qat.tflite")
    interpreter = load_interpreter(path)
    (inp,), (out,) = io_details(interpreter)
    assert inp.dtype == np.int8 and out.dtype == np.int8 and inp.shape == (1, 16, 16, 1)
    assert {d["dtype"] for d in interpreter.get_tensor_details()} <= {np.int8, np.int32}
    int8_pred = predict_tflite(path, x).argmax(-1)
    assert np.mean(int8_pred == qat.predict(x, verbose=0).argmax(-1)) >= 0.95
    assert np.mean(int8_pred == y) > 0.5
    with pytest.raises(ExportError, match="needs representative_data"):
        qat.to_tflite()


def test_compile_translates_keras3_objects(qat_and_data):
    qat, model, _, _ = qat_and_data
    copy = QATModel(qat.keras_model, model)
    copy.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.5),
                 loss=keras.losses.SparseCategoricalCrossentropy(from_logits=False),
                 metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")])
    optimizer = copy.keras_model.optimizer
    assert type(optimizer).__module__.startswith("tf_keras")
    assert float(optimizer.learning_rate) == pytest.approx(0.05)
    assert float(optimizer.momentum) == pytest.approx(0.5)
    assert type(copy.keras_model.loss).__name__ == "SparseCategoricalCrossentropy"
    qat.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])


def test_unsupported_layers_raise_before_any_tfmot_work():
    inputs = keras.Input((5, 3))
    x = keras.layers.LSTM(4, name="rnn")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    with pytest.raises(UnsupportedLayerError, match=r"'rnn'.*LSTM"):
        quantize_aware(model)


def test_tfmot_import_does_not_switch_tf_keras_globally():
    """tfmot sets TF_USE_LEGACY_KERAS=1 when imported, which would turn later `tf.keras` into Keras 2."""
    code = ("import os; from tinyml_kit.export.qat import _tfmot; _tfmot(); "
            "import tensorflow as tf; print(os.environ.get('TF_USE_LEGACY_KERAS'), tf.keras.__version__)")
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    legacy, version = done.stdout.split()
    assert legacy == "None" and version.startswith("3."), done.stdout


@pytest.mark.slow
def test_every_mapped_layer_goes_through_qat_to_int8(tmp_path):
    """One graph using all of SUPPORTED_LAYERS: bridge, fake-quantise, train a step, convert to int8."""
    from tinyml_kit.export import SUPPORTED_LAYERS

    layers = keras.layers
    inputs = keras.Input((8, 8, 2))
    x = layers.Rescaling(1 / 255.0)(inputs)
    a = layers.Conv2D(4, 3, padding="same")(x)
    a = layers.BatchNormalization()(a)
    a = layers.ReLU(6.0)(a)
    b = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(x)
    b = layers.Activation("relu")(b)
    c = layers.SeparableConv2D(4, 3, padding="same")(x)
    merged = [layers.Add()([a, b]), layers.Subtract()([a, c]), layers.Multiply()([b, c]),
              layers.Average()([a, c]), layers.Maximum()([b, c])]
    x = layers.Concatenate()(merged)
    x = layers.LeakyReLU(0.1)(x)
    x = layers.ZeroPadding2D(1)(x)
    x = layers.Cropping2D(1)(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.UpSampling2D(2)(x)
    x = layers.AveragePooling2D(2)(x)
    x = layers.Dropout(0.1)(x)
    pooled = [layers.GlobalAveragePooling2D()(x), layers.GlobalMaxPooling2D()(x)]
    x = layers.Flatten()(layers.Reshape((2, 20))(layers.Concatenate()(pooled)))
    outputs = layers.Softmax()(layers.Dense(3)(x))
    model = keras.Model(inputs, outputs)
    used = {type(layer).__name__ for layer in model.layers}
    assert set(SUPPORTED_LAYERS) <= used, set(SUPPORTED_LAYERS) - used
    x_train = np.random.default_rng(0).uniform(0, 255, (32, 8, 8, 2)).astype(np.float32)
    qat = quantize_aware(model, optimizer="adam", loss="sparse_categorical_crossentropy")
    qat.fit(x_train, np.arange(32) % 3, epochs=1, batch_size=16, verbose=0)
    interpreter = load_interpreter(qat.to_tflite(x_train, path=tmp_path / "all.tflite"))
    assert {d["dtype"] for d in interpreter.get_tensor_details()} <= {np.int8, np.int32}
