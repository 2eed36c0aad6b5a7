"""PAD and PADV2 (int8, constant padding, up to 6 dimensions) -> ``tk_pad_s8``.

As in TFLM, PAD fills with the output zero point and PADV2 with its ``constant_values`` input.
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

PAD_DIMS = 6  # TK_PAD_DIMS in tk_pad.h


def merge_unpadded(dims: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Fold every dimension without padding into its outer neighbour: (size, before, after) each."""
    merged: list[tuple[int, int, int]] = []
    for size, before, after in dims:
        if merged and before == 0 and after == 0:
            outer_size, outer_before, outer_after = merged[-1]
            merged[-1] = (outer_size * size, outer_before * size, outer_after * size)
        else:
            merged.append((size, before, after))
    return merged


def _first_read(dims: list[tuple[int, int, int]]) -> np.ndarray:
    """Input element copied into each output element (raster order), -1 for padding."""
    index = np.zeros([b + s + a for s, b, a in dims], dtype=np.int64)
    inside = np.ones(index.shape, dtype=bool)
    strides = contiguous_strides([s for s, _, _ in dims])
    for axis, ((size, before, after), stride) in enumerate(zip(dims, strides, strict=True)):
        shape = [1] * len(dims)
        shape[axis] = before + size + after
        pos = np.arange(before + size + after, dtype=np.int64) - before
        index = index + (pos * stride).reshape(shape)
        inside = inside & ((pos >= 0) & (pos < size)).reshape(shape)
    return np.where(inside, index, -1).reshape(-1)


def _lower_pad(op: Op, graph: Graph) -> KernelCall:
    x = int8_tensor(op, graph, op.inputs[0], "input")
    y = int8_tensor(op, graph, op.outputs[0], "output")
    flat = const_ints(op, graph, op.inputs[1], "paddings")
    rank = len(x.shape)
    if len(flat) != 2 * rank or min(flat, default=0) < 0:
        raise unsupported(op, graph, f"has paddings {flat} for a rank-{rank} input; expected {rank} "
                          "non-negative (before, after) pairs", "Check the model; it looks malformed.")
    dims = [(int(s), flat[2 * i], flat[2 * i + 1]) for i, s in enumerate(x.shape)]
    if tuple(b + s + a for s, b, a in dims) != tuple(y.shape):
        raise unsupported(op, graph, f"pads {x.shape} by {flat} but its output has shape {y.shape}",
                          "Check the model; it looks malformed.")
    if op.type == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        pad_value = const_ints(op, graph, op.inputs[2], "constant_values")[0]
    else:
        pad_value = scale_zero_point(y)[1]
    merged = merge_unpadded(dims)
    if len(merged) > PAD_DIMS:
        raise unsupported(op, graph, f"pads {len(merged)} separate dimensions; at most {PAD_DIMS} are "
                          "supported", "Split the padding into two ops.")
    merged = [(1, 0, 0)] * (PAD_DIMS - len(merged)) + merged
    call = KernelCall(op=op, kernel="tk_pad", function="tk_pad_s8", params_type="tk_pad_params_t",
                      inputs=[x.index], outputs=[y.index])
    call.params.update(in_dims=[m[0] for m in merged], pad_before=[m[1] for m in merged],
                       pad_after=[m[2] for m in merged], pad_value=int(pad_value))
    overlap = raster_overlap(y, x, _first_read(merged))
    if overlap is not None:
        call.overlaps.append(overlap)
    return call


@register_lowering("PAD")
def lower_pad(op: Op, graph: Graph) -> KernelCall:
    """PAD int8: pads with the output zero point (real value 0)."""
    return _lower_pad(op, graph)


@register_lowering("PADV2")
def lower_padv2(op: Op, graph: Graph) -> KernelCall:
    """PADV2 int8: pads with the quantised constant_values input."""
    return _lower_pad(op, graph)
