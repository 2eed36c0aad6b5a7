"""MEAN (int8, any axes, keep_dims or not) -> ``tk_mean_s8``, bit-exact with TFLM.

TFLM's int8 MEAN (``reference_ops::QuantizedMeanOrSum``) requantises the zero-point-corrected sum with
the ``in_scale / out_scale`` multiplier into which it folds ``1 / count`` at run time; the folding is
done here at compile time with the same integer steps. The tflite-micro package this was verified
against takes that path even when input and output share scale and zero point (older TFLM releases
divided the raw sum with truncation there; tests/engine/test_engine_kernels_pooling.py pins this).
"""

from __future__ import annotations

import numpy as np

from tinyml_kit.engine.ir import Graph, Op
from tinyml_kit.engine.lowering._lowering_utils import (
    const_ints,
    contiguous_strides,
    int8_tensor,
    raster_overlap,
    scale_zero_point,
    unsupported,
)
from tinyml_kit.engine.lowering.base import KernelCall, register_lowering
from tinyml_kit.engine.quant import quantize_multiplier

GROUPS = 3  # TK_MEAN_GROUPS in tk_mean.h


def resolve_axes(op: Op, graph: Graph, axes: list[int], rank: int) -> list[int]:
    """Axes made non-negative and unique, as TFLM's ``ResolveAxis``."""
    resolved: list[int] = []
    for axis in axes:
        a = axis + rank if axis < 0 else axis
        if not 0 <= a < rank:
            raise unsupported(op, graph, f"reduces axis {axis} of a rank-{rank} tensor",
                              "Check the model; it looks malformed.")
        if a not in resolved:
            resolved.append(a)
    return resolved


def dimension_groups(shape: tuple[int, ...], reduced: set[int]) -> list[tuple[bool, int, int]]:
    """Merge neighbouring dimensions of the same kind: (is_reduced, size, input stride) per group."""
    groups: list[list] = []
    for axis, (size, stride) in enumerate(zip(shape, contiguous_strides(shape), strict=True)):
        if size == 1:
            continue
        is_reduced = axis in reduced
        if groups and groups[-1][0] == is_reduced:
            groups[-1][1] *= size
            groups[-1][2] = stride
        else:
            groups.append([is_reduced, size, stride])
    return [(g[0], g[1], g[2]) for g in groups]


def mean_multiplier(in_scale: float, out_scale: float, count: int) -> tuple[int, int]:
    """TFLM's ``QuantizedMeanOrSum`` multiplier: ``QuantizeMultiplier(in/out)`` with ``1/count`` folded
    in by an integer division after a left shift of ``floor(log2(count))`` (at most 32, and at most
    ``31 + shift``)."""
    multiplier, shift = quantize_multiplier(in_scale / out_scale)
    headroom = min(count.bit_length() - 1, 32, 31 + shift)
    return (multiplier << headroom) // count, shift - headroom


@register_lowering("MEAN")
def lower_mean(op: Op, graph: Graph) -> KernelCall:
    """MEAN int8 over constant axes; outputs in raster order, no scratch."""
    x = int8_tensor(op, graph, op.inputs[0], "input")
    y = int8_tensor(op, graph, op.outputs[0], "output")
    axes = resolve_axes(op, graph, const_ints(op, graph, op.inputs[1], "axes"), len(x.shape))
    groups = dimension_groups(tuple(x.shape), set(axes))
    kept = [(size, stride) for is_reduced, size, stride in groups if not is_reduced]
    reduced = [(size, stride) for is_reduced, size, stride in groups if is_reduced]
    if len(kept) > GROUPS or len(reduced) > GROUPS:
        raise unsupported(op, graph, f"reduces axes {axes} of shape {x.shape}, which alternate between "
                          f"kept and reduced more than {GROUPS} times", "Split the MEAN into two.")
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64)) if axes else 1
    if count * y.num_elements != x.num_elements or count == 0:
        raise unsupported(op, graph, f"maps shape {x.shape} to {y.shape}, which does not match axes {axes}",
                          "Check the model; it looks malformed.")
    kept = [(1, 0)] * (GROUPS - len(kept)) + kept
    reduced = [(1, 0)] * (GROUPS - len(reduced)) + reduced

    (s_in, z_in), (s_out, z_out) = scale_zero_point(x), scale_zero_point(y)
    requantize = bool(axes)  # no axes: TFLM copies the input (ReduceIsCopy)
    multiplier, shift = mean_multiplier(s_in, s_out, count)
    call = KernelCall(op=op, kernel="tk_mean", function="tk_mean_s8", params_type="tk_mean_params_t",
                      inputs=[x.index], outputs=[y.index], macs=x.num_elements)
    call.params.update(kept_dims=[k[0] for k in kept], kept_strides=[k[1] for k in kept],
                       reduced_dims=[r[0] for r in reduced], reduced_strides=[r[1] for r in reduced],
                       count=count, requantize=int(requantize), sum_offset=-z_in * count,
                       multiplier=multiplier, shift=shift, out_zero_point=z_out)
    first_read = np.zeros([k[0] for k in kept], dtype=np.int64)
    for axis, (size, stride) in enumerate(kept):
        shape = [1] * GROUPS
        shape[axis] = size
        first_read = first_read + (np.arange(size, dtype=np.int64) * stride).reshape(shape)
    overlap = raster_overlap(y, x, first_read.reshape(-1))
    if overlap is not None:
        call.overlaps.append(overlap)
    return call
