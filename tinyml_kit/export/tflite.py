"""Keras 3 model -> full-integer (int8) .tflite through ``tf.lite.TFLiteConverter``.

Keras 3 models cannot go through ``TFLiteConverter.from_keras_model`` (it expects Keras 2) and a
``tf.function`` traced over them keeps its variables as resources the calibrator cannot read. The
path that works with Keras 3 and TF 2.20 is ``model.export(..., format="tf_saved_model")`` with a
batch-1 input signature, then ``TFLiteConverter.from_saved_model``. Batch 1 keeps every shape static
(``Flatten`` becomes a constant-shape RESHAPE), which microcontroller runtimes need.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_kit.export._io import atomic_write_bytes, captured_native_stderr
from tinyml_kit.export.errors import ExportError
from tinyml_kit.export.representative import InputShape, collect_samples

IO_TYPES = ("int8", "float32")


def to_tflite(model: Any, representative_data: Any = None, int8: bool = True, io: str | None = None,
              path: str | os.PathLike | None = None, *, max_samples: int = 256, verify: bool = True,
              verify_tflm: bool = False) -> bytes | Path:
    """Convert a Keras 3 model (or a :class:`~tinyml_kit.export.QATModel`) to a .tflite flatbuffer.

    Args:
        model: a built Keras 3 Functional/Sequential model (TensorFlow backend), or the object
            :func:`~tinyml_kit.export.quantize_aware` returns.
        representative_data: samples in the model's input scale, for calibrating activation ranges
            (numpy array, ``(x, y)``, tf.data.Dataset, tinyml-kit Dataset or generator). Required
            for ``int8=True`` with a float model; optional for QAT models.
        int8: full-integer quantisation (int8 weights and activations, int32 biases). ``False``
            gives a float32 model.
        io: type of the model's input and output tensors, ``"int8"`` (what MCU firmware feeds)
            or ``"float32"`` (QUANTIZE/DEQUANTIZE ops at the edges). Default: ``"int8"`` for int8
            models, ``"float32"`` for float ones.
        path: write the model there (atomically) and return the path; otherwise return bytes.
        max_samples: at most this many representative samples are used.
        verify: load the result in LiteRT and run one inference on zeros.
        verify_tflm: also run one inference in TensorFlow Lite Micro (child process).

    Example:
        >>> tflite_bytes = to_tflite(model, x_train[:256])                       # doctest: +SKIP
        >>> to_tflite(model, x_train[:256], path="model_int8.tflite")           # doctest: +SKIP
    """
    from tinyml_kit.export.qat import QATModel

    if isinstance(model, QATModel):
        return model.to_tflite(representative_data, io=io, path=path, max_samples=max_samples,
                               verify=verify, verify_tflm=verify_tflm)
    io = _check_options(int8, io)
    shapes = _keras_input_shapes(model)
    samples = collect_samples(representative_data, shapes, max_samples) if int8 else None
    with tempfile.TemporaryDirectory(prefix="tk-export-") as tmp:
        _export_saved_model(model, shapes, tmp)
        import tensorflow as tf

        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        flatbuffer = run_converter(converter, int8=int8, io=io, samples=samples, what=f"model '{model.name}'")
    return finish(flatbuffer, path, verify=verify, verify_tflm=verify_tflm, int8=int8)


def run_converter(converter: Any, *, int8: bool, io: str | None, samples: Sequence[list[np.ndarray]] | None,
                  what: str) -> bytes:
    """Configure a TFLiteConverter for full-integer (or float) output and convert, with clear errors."""
    import tensorflow as tf

    io = _check_options(int8, io)
    if int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if samples is not None:
            converter.representative_dataset = _generator(samples)
        if io == "int8":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    log: list[str] = []
    try:
        with captured_native_stderr() as log, quiet_tf_logging():  # the converter logs to fd 2 and Python
            return bytes(converter.convert())
    except Exception as exc:  # the converter raises ConverterError, RuntimeError, ValueError...
        lines = [ln for ln in str(exc).splitlines() if ln.strip()]
        lines += [ln for ln in "".join(log).splitlines() if "error" in ln.lower()]
        fallback = lines[-1] if lines else type(exc).__name__
        reason = next((ln.strip() for ln in lines if "error:" in ln), fallback)
        hint = (" Layers TFLite cannot quantise must be replaced (see the op named above), or use int8=False."
                if int8 else "")
        raise ExportError(f"TFLite conversion of {what} failed: {reason}.{hint}") from exc


def finish(flatbuffer: bytes, path: str | os.PathLike | None, *, verify: bool, verify_tflm: bool,
           int8: bool = True) -> bytes | Path:
    """Verify the flatbuffer (LiteRT, optionally TFLM) and return it or write it atomically."""
    if int8:
        check_fully_integer(flatbuffer)
    if verify:
        verify_litert(flatbuffer)
    if verify_tflm:
        verify_with_tflm(flatbuffer)
    if path is None:
        return flatbuffer
    return atomic_write_bytes(path, flatbuffer)


def check_fully_integer(flatbuffer: bytes) -> None:
    """Raise ExportError when an op computes in float (the converter silently keeps ops it cannot
    quantise in float32 between DEQUANTIZE/QUANTIZE, even with ``TFLITE_BUILTINS_INT8``).

    Allowed float tensors: a float model input feeding QUANTIZE and a DEQUANTIZE producing a model
    output (``io="float32"``).
    """
    from tinyml_kit.export.litert import load_interpreter

    interpreter = load_interpreter(flatbuffer)
    dtypes = {d["index"]: np.dtype(d["dtype"]) for d in interpreter.get_tensor_details()}
    graph_outputs = {d["index"] for d in interpreter.get_output_details()}
    floating = []
    for op in interpreter._get_ops_details():
        outputs = [t for t in op["outputs"] if t >= 0]
        if not any(np.issubdtype(dtypes[t], np.floating) for t in outputs):
            continue
        if op["op_name"] == "DEQUANTIZE" and set(outputs) <= graph_outputs:
            continue
        floating.append((op["op_name"], f"{op['op_name']} (op #{op['index']})"))
    compute = [label for name, label in floating if name not in ("QUANTIZE", "DEQUANTIZE")]
    floating = compute or [label for _, label in floating]
    if floating:
        raise ExportError(
            f"the converted model is not fully integer: {', '.join(floating)} run(s) in float32 "
            "because TFLite has no int8 kernel for them. Replace the layer(s) that produce these ops "
            "(e.g. a Lambda with keras.ops.sin), or convert with int8=False for a float model."
        )


def verify_litert(flatbuffer: bytes) -> None:
    """Load the model in LiteRT and run one inference on zeros; raise ExportError if that fails."""
    from tinyml_kit.export.litert import load_interpreter

    interpreter = load_interpreter(flatbuffer)
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], dtype=detail["dtype"]))
    try:
        interpreter.invoke()
    except RuntimeError as exc:
        raise ExportError(f"LiteRT loads the converted model but cannot run it: {exc}") from exc


def verify_with_tflm(flatbuffer: bytes) -> None:
    """Run one inference on zeros in TensorFlow Lite Micro (in a child process: TFLM may abort)."""
    from tinyml_kit.engine import tflm
    from tinyml_kit.engine.errors import EngineError

    with tempfile.TemporaryDirectory(prefix="tk-export-tflm-") as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(flatbuffer)
        try:
            tflm.run(path, tflm.zero_inputs(path))
        except EngineError as exc:
            raise ExportError(f"TFLite Micro cannot run the converted model: {exc}") from exc


@contextlib.contextmanager
def quiet_tf_logging() -> Iterator[None]:
    """Hide TensorFlow's Python INFO/WARNING lines (e.g. "Assets written to ...") while converting."""
    import tensorflow as tf

    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(level)


def _keras_input_shapes(model: Any) -> list[InputShape]:
    import keras

    if not isinstance(model, keras.Model):
        raise ExportError(f"expected a Keras 3 model (keras.Model), got {type(model).__name__}.")
    if keras.backend.backend() != "tensorflow":
        raise ExportError(f"TFLite export needs the TensorFlow backend; Keras runs on "
                          f"'{keras.backend.backend()}'. Set KERAS_BACKEND=tensorflow before importing "
                          "keras.")
    try:
        inputs = keras.tree.flatten(model.inputs)
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise ExportError(f"model '{model.name}' has no known inputs: build it with `keras.Input(shape=...)` "
                          "or call it once on data before exporting.")
    shapes = [tuple(t.shape[1:]) for t in inputs]
    for i, shape in enumerate(shapes):
        if any(d is None for d in shape):
            raise ExportError(
                f"input {i} of model '{model.name}' has an unknown dimension {('batch', *shape)}; "
                "microcontroller models need a fixed input shape, e.g. keras.Input(shape=(28, 28, 1))."
            )
    return shapes


def _export_saved_model(model: Any, shapes: list[InputShape], folder: str) -> None:
    import tensorflow as tf

    signature = [tf.TensorSpec((1, *shape), tf.float32) for shape in shapes]
    try:
        with quiet_tf_logging():
            model.export(folder, format="tf_saved_model", verbose=False, input_signature=signature)
    except Exception as exc:
        raise ExportError(f"Keras could not export model '{model.name}' as a SavedModel: {exc}") from exc


def _generator(samples: Sequence[list[np.ndarray]]) -> Callable[[], Any]:
    def generate() -> Any:
        yield from samples

    return generate


def _check_options(int8: bool, io: str | None) -> str:
    if io is None:
        return "int8" if int8 else "float32"
    if io not in IO_TYPES:
        raise ExportError(f"Expected io in {IO_TYPES}. Received: io={io!r}")
    if not int8 and io != "float32":
        raise ExportError("a float model (int8=False) has float32 inputs and outputs; pass io='float32'.")
    return io
