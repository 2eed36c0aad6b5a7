"""Run a .tflite model with LiteRT (``ai_edge_litert``): quantise inputs, predict, measure accuracy.

By default the interpreter uses TFLite's *reference* kernels (``BUILTIN_REF``, no XNNPACK), whose
integer arithmetic is the one TFLite Micro and tinyml-kit's engine reproduce bit for bit; the
optimised kernels round some requantisations differently and would show spurious mismatches.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_kit.errors import MissingDependencyError
from tinyml_kit.export.errors import ExportError

ModelSource = bytes | str | os.PathLike


@dataclass(frozen=True)
class TensorIO:
    """Shape, dtype and affine quantisation of one model input or output."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float  # 0.0 when the tensor is not quantised
    zero_point: int

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and np.issubdtype(self.dtype, np.integer)


def load_interpreter(model: ModelSource, reference_kernels: bool = True) -> Any:
    """A LiteRT interpreter with tensors allocated; ``model`` is .tflite bytes or a path."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError as exc:
        raise MissingDependencyError(
            "LiteRT is not installed (`pip install ai-edge-litert`); check with `tinyml-kit doctor`."
        ) from exc
    resolver = OpResolverType.BUILTIN_REF if reference_kernels else OpResolverType.AUTO
    source = {"model_content": bytes(model)} if isinstance(model, (bytes, bytearray)) else \
        {"model_path": str(_existing(model))}
    try:
        interpreter = Interpreter(**source, experimental_op_resolver_type=resolver)
        interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as exc:
        raise ExportError(f"LiteRT cannot load {_describe(model)}: {exc}") from exc
    return interpreter


def io_details(interpreter: Any) -> tuple[list[TensorIO], list[TensorIO]]:
    """Inputs and outputs of a loaded interpreter, with their quantisation."""
    def convert(detail: dict) -> TensorIO:
        scale, zero_point = detail["quantization"]
        return TensorIO(detail["name"], tuple(int(d) for d in detail["shape"]), np.dtype(detail["dtype"]),
                        float(scale), int(zero_point))

    return ([convert(d) for d in interpreter.get_input_details()],
            [convert(d) for d in interpreter.get_output_details()])


def quantize_input(model: ModelSource | Any, x: np.ndarray, index: int = 0) -> np.ndarray:
    """``x`` (in the Keras model's input scale) converted to the .tflite model's input type.

    int8 inputs become ``clip(round(x / scale) + zero_point)`` (float32 arithmetic, halves rounded
    away from zero like TFLite's QUANTIZE); float inputs are cast. The same array
    then feeds LiteRT, TFLite Micro and the engine's firmware, so all three see identical bytes.
    """
    interpreter = model if hasattr(model, "get_input_details") else load_interpreter(model)
    spec = io_details(interpreter)[0][index]
    return _quantize(np.asarray(x), spec)


def predict_tflite(model: ModelSource, x: np.ndarray, *, raw: bool = False, reference_kernels: bool = True,
                   already_quantized: bool = False,
                   progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Outputs of the model's first output for every sample of ``x`` (one invocation per sample).

    Args:
        model: .tflite bytes or path.
        x: samples with a leading batch axis, in the Keras model's input scale (e.g. raw 0-255
            pixels when the model starts with ``Rescaling``), or already in the input's dtype when
            ``already_quantized``.
        raw: return the output tensor as stored (int8) instead of dequantised float32.
        reference_kernels: use TFLite's reference kernels (bit-exact with TFLite Micro).
        progress: called as ``progress(done, total)`` after each sample.
    """
    interpreter = load_interpreter(model, reference_kernels)
    (spec_in, *others), (spec_out, *_) = io_details(interpreter)
    if others:
        raise ExportError(f"{_describe(model)} has {1 + len(others)} inputs; predict_tflite feeds one.")
    x = np.asarray(x)
    if x.shape[1:] != spec_in.shape[1:]:
        raise ExportError(f"input samples have shape {x.shape[1:]}, {_describe(model)} expects "
                          f"{spec_in.shape[1:]} (batch axis first).")
    xq = x.astype(spec_in.dtype) if already_quantized else _quantize(x, spec_in)
    in_index = interpreter.get_input_details()[0]["index"]
    out_index = interpreter.get_output_details()[0]["index"]
    outputs = np.empty((len(xq), *spec_out.shape[1:]), dtype=spec_out.dtype)
    for i in range(len(xq)):
        interpreter.set_tensor(in_index, xq[i:i + 1])
        interpreter.invoke()
        outputs[i] = interpreter.get_tensor(out_index)[0]
        if progress is not None:
            progress(i + 1, len(xq))
    if raw or not spec_out.quantized:
        return outputs
    return ((outputs.astype(np.float32) - spec_out.zero_point) * spec_out.scale).astype(np.float32)


def evaluate_tflite(model: ModelSource, x: np.ndarray, y: np.ndarray, *, reference_kernels: bool = True,
                    progress: Callable[[int, int], None] | None = None) -> float:
    """Top-1 accuracy of a classifier .tflite on ``(x, y)`` (``y``: integer labels or one-hot)."""
    y = np.asarray(y)
    labels = y.argmax(axis=-1) if y.ndim > 1 else y.astype(np.int64)
    if len(labels) != len(x):
        raise ExportError(f"x has {len(x)} samples but y has {len(labels)} labels.")
    predictions = predict_tflite(model, x, raw=True, reference_kernels=reference_kernels, progress=progress)
    return float(np.mean(predictions.reshape(len(x), -1).argmax(axis=-1) == labels))


def _quantize(x: np.ndarray, spec: TensorIO) -> np.ndarray:
    if not spec.quantized:
        return x.astype(spec.dtype)
    if np.issubdtype(x.dtype, np.integer) and x.dtype == spec.dtype:
        raise ExportError(
            f"input is already {x.dtype}; pass it in the Keras model's input scale (float or uint8 "
            "pixels) or use already_quantized=True."
        )
    info = np.iinfo(spec.dtype)
    scaled = x.astype(np.float32) / np.float32(spec.scale)
    rounded = np.trunc(scaled + np.copysign(np.float32(0.5), scaled))  # half away from zero, as TFLite
    return np.clip(rounded + spec.zero_point, info.min, info.max).astype(spec.dtype)


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"model file not found: {path}")
    return path


def _describe(model: Any) -> str:
    return "the model bytes" if isinstance(model, (bytes, bytearray)) else str(model)
