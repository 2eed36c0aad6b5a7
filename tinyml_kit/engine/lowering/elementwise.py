"""ADD and MUL (int8, with broadcasting and fused activation) -> ``tk_add_s8`` / ``tk_mul_s8``.

The requantisation constants are computed exactly as TFLM's Prepare does (``CalculateOpDataAdd``,
``CalculateOpDataMul``); shapes are collapsed to at most 6 broadcast dimensions. Either input may be a
constant (it then goes to flash and is not a kernel input).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyml_kit.engine.ir import Graph, Op, Tensor
from tinyml_kit.engine.lowering._lowering_utils import (
    activation_bounds,
    contiguous_strides,
    int8_tensor,
    raster_overlap,
    scale_zero_point,
    unsupported,
)
from tinyml_kit.engine.lowering.base import KernelCall, register_lowering
from tinyml_kit.engine.quant import quantize_multiplier

BROADCAST_DIMS = 6  # TK_BCAST_DIMS in tk_bcast.h
ADD_LEFT_SHIFT = 20  # TFLM's headroom for int8 ADD


def quantize_multiplier_smaller_than_one(real: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplierSmallerThanOneExp``: :func:`quantize_multiplier` for 0 < real < 1."""
    if not 0.0 < real < 1.0:
        raise ValueError(f"Expected a multiplier in (0, 1). Received: real={real}")
    return quantize_multiplier(real)


@dataclass(frozen=True)
class BroadcastLayout:
    """Collapsed iteration space of a binary op: output shape and per-input strides (0 = broadcast)."""

    size: int
    broadcast: bool
    out_shape: list[int]
    strides: tuple[list[int], list[int]]

    def read_index(self, which: int) -> np.ndarray:
        """Input element read for each output element (raster order) of input ``which`` (0 or 1)."""
        index = np.zeros(self.out_shape, dtype=np.int64)
        for axis, (size, stride) in enumerate(zip(self.out_shape, self.strides[which], strict=True)):
            shape = [1] * len(self.out_shape)
            shape[axis] = size
            index += (np.arange(size, dtype=np.int64) * stride).reshape(shape)
        return index.reshape(-1)


def broadcast_layout(op: Op, graph: Graph, shape1: tuple[int, ...], shape2: tuple[int, ...],
                     out_shape: tuple[int, ...]) -> BroadcastLayout:
    """Collapse two input shapes broadcast to ``out_shape`` into at most 6 dimensions."""
    rank = len(out_shape)
    if len(shape1) > rank or len(shape2) > rank:
        raise unsupported(op, graph, f"has inputs of shapes {shape1} and {shape2} of higher rank than "
                          f"its output {out_shape}", "Check the model; it looks malformed.")
    ext1 = (1,) * (rank - len(shape1)) + tuple(shape1)
    ext2 = (1,) * (rank - len(shape2)) + tuple(shape2)
    size = int(np.prod(out_shape, dtype=np.int64)) if out_shape else 1
    for ext in (ext1, ext2):
        if any(e not in (1, o) for e, o in zip(ext, out_shape, strict=True)):
            raise unsupported(op, graph, f"cannot broadcast shapes {shape1} and {shape2} to {out_shape}",
                              "Check the model; it looks malformed.")
    if ext1 == tuple(out_shape) and ext2 == tuple(out_shape):
        return BroadcastLayout(size, False, [1] * (BROADCAST_DIMS - 1) + [size],
                               ([0] * (BROADCAST_DIMS - 1) + [1],) * 2)
    # Keep output dimensions larger than 1, then merge neighbours that broadcast the same way.
    groups: list[list[int]] = []  # [size, full1, full2]
    for o, e1, e2 in zip(out_shape, ext1, ext2, strict=True):
        if o == 1:
            continue
        full1, full2 = int(e1 == o), int(e2 == o)
        if groups and groups[-1][1:] == [full1, full2]:
            groups[-1][0] *= o
        else:
            groups.append([o, full1, full2])
    if len(groups) > BROADCAST_DIMS:
        raise unsupported(op, graph, f"broadcasts {shape1} with {shape2} in {len(groups)} separate "
                          f"dimension groups; at most {BROADCAST_DIMS} are supported",
                          "Insert RESHAPE/TILE ops to reduce the broadcast to fewer dimensions.")
    sizes = [g[0] for g in groups]
    strides: list[list[int]] = []
    for which in (1, 2):
        own = [g[0] if g[which] else 1 for g in groups]
        strides.append([s if g[which] else 0 for s, g in zip(contiguous_strides(own), groups, strict=True)])
    pad = BROADCAST_DIMS - len(groups)
    return BroadcastLayout(size, True, [1] * pad + sizes, ([0] * pad + strides[0], [0] * pad + strides[1]))


def _operands(op: Op, graph: Graph) -> tuple[Tensor, Tensor, Tensor]:
    if len(op.inputs) != 2 or len(op.outputs) != 1:
        raise unsupported(op, graph, f"has {len(op.inputs)} inputs and {len(op.outputs)} outputs; "
                          "expected 2 and 1", "Check the model; it looks malformed.")
    a = int8_tensor(op, graph, op.inputs[0], "input 1")
    b = int8_tensor(op, graph, op.inputs[1], "input 2")
    y = int8_tensor(op, graph, op.outputs[0], "output")
    if a.is_const and b.is_const:
        raise unsupported(op, graph, "has two constant inputs",
                          "Let the converter fold constant expressions (it does by default).")
    return a, b, y


def _binary_call(op: Op, graph: Graph, kernel: str, params: dict, a: Tensor, b: Tensor,
                 y: Tensor) -> KernelCall:
    layout = broadcast_layout(op, graph, a.shape, b.shape, y.shape)
    call = KernelCall(op=op, kernel=kernel, function=f"{kernel}_s8", params_type=f"{kernel}_params_t",
                      outputs=[y.index], macs=layout.size)
    call.params.update(size=layout.size, broadcast=int(layout.broadcast), out_shape=layout.out_shape,
                       in1_strides=layout.strides[0], in2_strides=layout.strides[1], **params)
    for which, (t, field) in enumerate(((a, "in1_const"), (b, "in2_const"))):
        if t.is_const:
            call.arrays[field] = np.asarray(t.data).astype(np.int8).reshape(-1)
            continue
        call.inputs.append(t.index)
        overlap = raster_overlap(y, t, layout.read_index(which))
        if overlap is not None and overlap.input not in [o.input for o in call.overlaps]:
            call.overlaps.append(overlap)
    return call


@register_lowering("ADD")
def lower_add(op: Op, graph: Graph) -> KernelCall:
    """ADD int8: TFLM's ``CalculateOpDataAdd`` constants (left shift 20) and activation range."""
    a, b, y = _operands(op, graph)
    (s1, z1), (s2, z2), (so, zo) = scale_zero_point(a), scale_zero_point(b), scale_zero_point(y)
    twice_max = 2.0 * max(s1, s2)
    real_out = twice_max / ((1 << ADD_LEFT_SHIFT) * so)
    try:
        m1, sh1 = quantize_multiplier_smaller_than_one(s1 / twice_max)
        m2, sh2 = quantize_multiplier_smaller_than_one(s2 / twice_max)
        mo, sho = quantize_multiplier_smaller_than_one(real_out)
    except ValueError as exc:
        raise unsupported(op, graph, f"has scales (inputs {s1:g}, {s2:g}, output {so:g}) that TFLM's "
                          "int8 ADD cannot represent", "Re-calibrate the model's quantisation.") from exc
    act_min, act_max = activation_bounds(op, graph, y)
    params = dict(in1_offset=-z1, in2_offset=-z2, out_offset=zo, left_shift=ADD_LEFT_SHIFT,
                  in1_multiplier=m1, in1_shift=sh1, in2_multiplier=m2, in2_shift=sh2,
                  out_multiplier=mo, out_shift=sho, act_min=act_min, act_max=act_max)
    return _binary_call(op, graph, "tk_add", params, a, b, y)


@register_lowering("MUL")
def lower_mul(op: Op, graph: Graph) -> KernelCall:
    """MUL int8: one multiplier ``s1 * s2 / s_out`` as in TFLM's ``CalculateOpDataMul``."""
    a, b, y = _operands(op, graph)
    (s1, z1), (s2, z2), (so, zo) = scale_zero_point(a), scale_zero_point(b), scale_zero_point(y)
    mo, sho = quantize_multiplier(s1 * s2 / so)
    act_min, act_max = activation_bounds(op, graph, y)
    params = dict(in1_offset=-z1, in2_offset=-z2, out_offset=zo, out_multiplier=mo, out_shift=sho,
                  act_min=act_min, act_max=act_max)
    return _binary_call(op, graph, "tk_mul", params, a, b, y)
