"""to_tflite: full-integer conversion of Keras 3 models, representative data forms, LiteRT evaluation."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from tinyml_kit.export import ExportError, evaluate_tflite, predict_tflite, quantize_input, to_tflite  # noqa: E402
from tinyml_kit.export.litert import io_details, load_interpreter  # noqa: E402
from tinyml_kit.export.representative import collect_samples  # noqa: E402


def _blobs(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three separable classes of 8x8x1 'images' in 0..255 (bright quadrant = class)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.uniform(0, 60, (n, 8, 8, 1))
    for i, label in enumerate(y):
        r, c = divmod(int(label), 2)
        x[i, 4 * r:4 * r + 4, 4 * c:4 * c + 4] += 180
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def trained() -> tuple[keras.Model, np.ndarray, np.ndarray]:
    keras.utils.set_random_seed(0)
    x, y = _blobs()
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Rescaling(1 / 255.0),
        keras.layers.Conv2D(4, 3, padding="same", use_bias=False),
        keras.layers.BatchNormalization(),
        keras.layers.ReLU(6.0),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    return model, x, y


@pytest.fixture(scope="module")
def int8_model(trained, tmp_path_factory) -> bytes:
    model, x, _ = trained
    path = tmp_path_factory.mktemp("tflite") / "model.tflite"
    assert to_tflite(model, x[:100], path=path) == path
    return path.read_bytes()


def test_int8_model_is_fully_integer_and_runs_in_litert(int8_model):
    interpreter = load_interpreter(int8_model)
    (inp,), (out,) = io_details(interpreter)
    assert inp.dtype == np.int8 and out.dtype == np.int8
    assert inp.shape == (1, 8, 8, 1)
    activations = {d["dtype"] for d in interpreter.get_tensor_details()}
    assert activations <= {np.int8, np.int32}, activations  # no float tensor left anywhere
    ops = {d["op_name"] for d in interpreter._get_ops_details()}
    assert {"CONV_2D", "MAX_POOL_2D", "FULLY_CONNECTED", "SOFTMAX"} <= ops
    assert "QUANTIZE" not in ops and "DEQUANTIZE" not in ops


def test_int8_accuracy_tracks_float_accuracy(trained, int8_model):
    model, x, y = trained
    float_pred = model.predict(x, verbose=0).argmax(-1)
    float_acc = float(np.mean(float_pred == y))
    int8_acc = evaluate_tflite(int8_model, x, y)
    assert float_acc > 0.9, "the fixture model did not learn its easy task"
    assert abs(int8_acc - float_acc) <= 0.03
    int8_pred = predict_tflite(int8_model, x).argmax(-1)
    assert np.mean(int8_pred == float_pred) >= 0.95
    onehot = np.eye(3)[y]
    assert evaluate_tflite(int8_model, x, onehot) == int8_acc


def test_predict_raw_and_dequantized_agree(int8_model, trained):
    _, x, _ = trained
    raw = predict_tflite(int8_model, x[:10], raw=True)
    assert raw.dtype == np.int8
    (_, ), (out,) = io_details(load_interpreter(int8_model))
    deq = predict_tflite(int8_model, x[:10])
    np.testing.assert_allclose(deq, (raw.astype(np.float32) - out.zero_point) * out.scale, rtol=1e-6)
    xq = quantize_input(int8_model, x[:10])
    assert xq.dtype == np.int8
    np.testing.assert_array_equal(predict_tflite(int8_model, xq, raw=True, already_quantized=True), raw)


def test_quantize_input_rounds_half_away_from_zero(int8_model):
    interpreter = load_interpreter(int8_model)
    (spec,), _ = io_details(interpreter)
    halves = np.array([[0.5, 1.5, 2.5, 255.0]], np.float32) * np.float32(spec.scale)
    q = quantize_input(interpreter, halves)
    expected = np.clip(np.array([1, 2, 3, 255]) + spec.zero_point, -128, 127)
    np.testing.assert_array_equal(q.reshape(-1), expected)


def test_float32_io_and_float_model(trained):
    model, x, y = trained
    with_float_io = to_tflite(model, x[:50], io="float32")
    (inp,), (out,) = io_details(load_interpreter(with_float_io))
    assert inp.dtype == np.float32 and out.dtype == np.float32
    float_model = to_tflite(model, int8=False)
    acc = evaluate_tflite(float_model, x, y)
    assert acc == pytest.approx(float(np.mean(model.predict(x, verbose=0).argmax(-1) == y)), abs=0.01)


def test_representative_data_forms_give_identical_samples():
    x, y = _blobs(20)
    shapes = [(8, 8, 1)]
    reference = collect_samples(x, shapes)
    assert len(reference) == 20 and reference[0][0].shape == (1, 8, 8, 1)
    forms = {
        "(x, y)": (x, y),
        "tf.data unbatched": tf.data.Dataset.from_tensor_slices((x, y)),
        "tf.data batched": tf.data.Dataset.from_tensor_slices((x, y)).batch(7),
        "generator function": lambda: ([x[i:i + 1]] for i in range(len(x))),
        "list of samples": list(x),
    }
    for name, form in forms.items():
        samples = collect_samples(form, shapes)
        assert len(samples) == 20, name
        np.testing.assert_array_equal(np.concatenate([s[0] for s in samples]), x, err_msg=name)
    assert len(collect_samples(x, shapes, max_samples=5)) == 5


def test_errors_name_the_problem(trained):
    model, x, _ = trained
    with pytest.raises(ExportError, match="representative data"):
        to_tflite(model, None)
    with pytest.raises(ExportError, match=r"shape \(20, 9, 9, 1\).*\(batch, 8, 8, 1\)"):
        to_tflite(model, np.zeros((20, 9, 9, 1), np.float32))
    with pytest.raises(ExportError, match="io in"):
        to_tflite(model, x[:10], io="uint8")
    inputs = keras.Input((None, None, 1))
    fcn = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs))
    with pytest.raises(ExportError, match="unknown dimension"):
        to_tflite(fcn, x[:10])

    class Subclassed(keras.Model):
        def call(self, inputs):
            return inputs * 2

    with pytest.raises(ExportError, match=r"no known inputs|Keras 3 model"):
        to_tflite(Subclassed(), x[:10])
    with pytest.raises(ExportError, match="not found"):
        evaluate_tflite("/nonexistent/model.tflite", x, np.zeros(len(x)))


def sine(t):
    return keras.ops.sin(t)


def test_ops_left_in_float_are_refused_by_name():
    inputs = keras.Input((4,))
    x = keras.layers.Lambda(sine)(keras.layers.Dense(4)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    data = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    with pytest.raises(ExportError, match=r"not fully integer: SIN \(op #\d+\) run"):
        to_tflite(model, data)
    assert to_tflite(model, int8=False)[4:8] == b"TFL3"


def test_tflm_verification_runs_in_a_child_process(trained):
    pytest.importorskip("tflite_micro")
    model, x, _ = trained
    data = to_tflite(model, x[:50], verify_tflm=True)
    assert isinstance(data, bytes) and data[4:8] == b"TFL3"


def test_written_file_is_complete_and_no_temp_files_remain(trained, tmp_path):
    model, x, _ = trained
    path = to_tflite(model, x[:30], path=tmp_path / "sub" / "m.tflite")
    assert path.read_bytes()[4:8] == b"TFL3"
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.tflite"]
