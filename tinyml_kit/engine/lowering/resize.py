"""RESIZE_NEAREST_NEIGHBOR (int8, NHWC, constant size) -> ``tk_resize_nn_s8``.

The source row/column tables are TFLM's ``GetNearestNeighbor`` evaluated in float32 at compile time,
including ``align_corners`` and ``half_pixel_centers``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinyml_kit.engine.ir import Graph, Op
from tinyml_kit.engine.lowering._lowering_utils import const_ints, int8_tensor, raster_overlap, unsupported
from tinyml_kit.engine.lowering.base import KernelCall, register_lowering
from tinyml_kit.engine.quant import round_half_away


def nearest_sources(out_size: int, in_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """Input index read by each of ``out_size`` outputs, as TFLM's ``GetNearestNeighbor`` (float32)."""
    if align_corners and out_size > 1:
        scale = np.float32(in_size - 1) / np.float32(out_size - 1)
    else:
        scale = np.float32(in_size) / np.float32(out_size)
    offset = np.float32(0.5 if half_pixel_centers else 0.0)
    sources = []
    for i in range(out_size):
        position = float((np.float32(i) + offset) * scale)
        value = round_half_away(position) if align_corners else math.floor(position)
        value = min(value, in_size - 1)
        if half_pixel_centers:
            value = max(0, value)
        sources.append(value)
    return np.asarray(sources, dtype=np.int32)


def resize_operands(op: Op, graph: Graph) -> tuple[Any, Any, list[int]]:
    """Input, output and constant (height, width) of a RESIZE_* op, checked to be 4-D NHWC int8."""
    x = int8_tensor(op, graph, op.inputs[0], "input")
    y = int8_tensor(op, graph, op.outputs[0], "output")
    size = const_ints(op, graph, op.inputs[1], "size")
    if len(x.shape) != 4 or len(size) != 2 or tuple(y.shape) != (x.shape[0], size[0], size[1], x.shape[3]):
        raise unsupported(op, graph, f"resizes {x.shape} to size {size} with output {y.shape}; 4-D NHWC "
                          "tensors are required", "Resize 4-D (batch, height, width, channels) tensors.")
    return x, y, size


@register_lowering("RESIZE_NEAREST_NEIGHBOR")
def lower_resize_nearest_neighbor(op: Op, graph: Graph) -> KernelCall:
    """RESIZE_NEAREST_NEIGHBOR int8 to a constant (height, width)."""
    x, y, size = resize_operands(op, graph)
    align = bool(op.options.get("align_corners", False))
    half_pixel = bool(op.options.get("half_pixel_centers", False))
    n, in_h, in_w, c = (int(v) for v in x.shape)
    out_h, out_w = size
    src_y = nearest_sources(out_h, in_h, align, half_pixel)
    src_x = nearest_sources(out_w, in_w, align, half_pixel)
    call = KernelCall(op=op, kernel="tk_resize_nn", function="tk_resize_nn_s8",
                      params_type="tk_resize_nn_params_t", inputs=[x.index], outputs=[y.index])
    call.params.update(batches=n, in_h=in_h, in_w=in_w, channels=c, out_h=out_h, out_w=out_w)
    call.arrays.update(src_y=src_y, src_x=src_x)
    source = (np.arange(n, dtype=np.int64).reshape(-1, 1, 1, 1) * (in_h * in_w * c)
              + src_y.astype(np.int64).reshape(1, -1, 1, 1) * (in_w * c)
              + src_x.astype(np.int64).reshape(1, 1, -1, 1) * c + np.arange(c).reshape(1, 1, 1, -1))
    overlap = raster_overlap(y, x, source.reshape(-1))
    if overlap is not None:
        call.overlaps.append(overlap)
    return call
