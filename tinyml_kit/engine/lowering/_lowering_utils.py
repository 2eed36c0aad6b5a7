"""Helpers shared by the op lowerings: tensor checks with actionable errors, and overlap analysis."""

from __future__ import annotations

import numpy as np

from tinyml_kit.engine.errors import UnsupportedOpError
from tinyml_kit.engine.ir import Graph, Op, Tensor
from tinyml_kit.engine.lowering.base import Overlap
from tinyml_kit.engine.quant import activation_range

_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
REQUANTIZE_HINT = (
    "Re-export the model with full-integer int8 quantisation (TFLiteConverter with "
    "optimizations=[tf.lite.Optimize.DEFAULT], a representative_dataset and "
    "target_spec.supported_ops=[tf.lite.OpsSet.TFLITE_BUILTINS_INT8])."
)


def unsupported(op: Op, graph: Graph, problem: str, fix: str) -> UnsupportedOpError:
    """An error naming the model, the op (type and index), what is wrong and what to do."""
    return UnsupportedOpError(f"{graph.source}: {op.describe()} {problem}. {fix}")


def int8_tensor(op: Op, graph: Graph, index: int, role: str) -> Tensor:
    """The tensor ``index`` of ``op``, checked to be int8 with per-tensor quantisation."""
    t = graph.tensor(index)
    if t.dtype != "int8":
        raise unsupported(op, graph, f"has {role} tensor '{t.name}' of type {t.dtype}; the engine "
                          "implements this op for int8 only", REQUANTIZE_HINT)
    if t.quant is None or t.quant.scale.size != 1:
        kind = "no quantisation" if t.quant is None else "per-channel quantisation"
        raise unsupported(op, graph, f"has {role} tensor '{t.name}' with {kind}; per-tensor "
                          "quantisation is required", REQUANTIZE_HINT)
    return t


def scale_zero_point(t: Tensor) -> tuple[float, int]:
    """Per-tensor (scale, zero point); the scale is the float32 value stored in the model."""
    assert t.quant is not None
    return float(np.float32(t.quant.scale.reshape(-1)[0])), int(t.quant.zero_point.reshape(-1)[0])


def fused_activation(op: Op) -> str:
    """The op's fused activation as a TFLite enum name ("NONE", "RELU", ...)."""
    value = op.options.get("fused_activation_function", "NONE")
    if isinstance(value, int):
        return _ACTIVATIONS.get(value, str(value))
    return str(value or "NONE").upper()


def activation_bounds(op: Op, graph: Graph, output: Tensor) -> tuple[int, int]:
    """The int8 clamp of the op's fused activation: ``attrs["act_min"/"act_max"]`` when the passes set
    them (possibly narrowed by a fusion), else TFLite's ``CalculateActivationRangeQuantized``."""
    if "act_min" in op.attrs and "act_max" in op.attrs:
        return int(op.attrs["act_min"]), int(op.attrs["act_max"])
    activation = fused_activation(op)
    try:
        return activation_range(activation, *scale_zero_point(output))
    except ValueError:
        raise unsupported(op, graph, f"has fused activation {activation}; supported: NONE, RELU, RELU6, "
                          "RELU_N1_TO_1", "Use a separate activation op instead.") from None


def const_ints(op: Op, graph: Graph, index: int, role: str) -> list[int]:
    """Values of a constant integer input (axes, paddings, sizes...), or an error if it is computed."""
    t = graph.tensor(index)
    if t.data is None:
        raise unsupported(op, graph, f"takes its {role} from the computed tensor '{t.name}'; the engine "
                          "needs it as a constant in the model",
                          "Make this value a constant when exporting (fixed shapes, constant arguments).")
    return [int(v) for v in np.asarray(t.data).reshape(-1)]


def contiguous_strides(shape: tuple[int, ...] | list[int]) -> list[int]:
    """Row-major element strides of ``shape``."""
    strides, step = [], 1
    for size in reversed(list(shape)):
        strides.append(step)
        step *= int(size)
    return strides[::-1]


def max_safe_shift(first_read: np.ndarray, input_size: int) -> int:
    """Largest output-minus-input shift (bytes) at which an int8 kernel still reads correct values.

    The kernel must write output element ``o`` at byte ``o`` (raster order, one element per step) after
    reading the input elements of that step; ``first_read[o]`` is the smallest input index read for
    output ``o`` (-1 when none). A write at ``o + shift`` is harmless if it lies below every input
    element still to be read by later steps, so any ``shift <= min_o(min(later reads) - o) - 1`` is safe
    (capped at ``input_size``, where the two no longer overlap at all).
    """
    n = first_read.size
    never = np.int64(2**62)
    reads = np.where(first_read < 0, never, first_read.astype(np.int64))
    suffix_min = np.minimum.accumulate(reads[::-1])[::-1]
    later = np.append(suffix_min[1:], never)
    bound = int((later - np.arange(n, dtype=np.int64)).min()) - 1 if n else input_size
    return min(bound, input_size)


def raster_overlap(output: Tensor, input_: Tensor, first_read: np.ndarray) -> Overlap | None:
    """The :class:`Overlap` rule for one input, or None when no overlapping placement is safe."""
    shift = max_safe_shift(first_read, input_.nbytes)
    if shift <= -output.nbytes:
        return None
    return Overlap(output=output.index, input=input_.index, max_shift=shift)
