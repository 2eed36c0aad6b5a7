"""RESIZE_BILINEAR (int8, NHWC, constant size) -> ``tk_resize_bilinear_s8``.

TFLM's int8 kernel (``ResizeBilinearInteger``) works in integers with 10 fractional bits: a scale
``round(1024 * in / out)`` (or ``(in - 1) / (out - 1)`` with ``align_corners``), per output row/column
a scaled source coordinate (shifted by half a pixel with ``half_pixel_centers``), two source indices
clamped to the image and the weight of the second one. Those depend only on the shapes, so they are
computed here into tables; the kernel only blends. Input and output share scale and zero point (the
converter guarantees it; TFLM copies the integers regardless, so anything else is refused).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyml_kit.engine.ir import Graph, Op
from tinyml_kit.engine.lowering._lowering_utils import (
    REQUANTIZE_HINT,
    raster_overlap,
    scale_zero_point,
    unsupported,
)
from tinyml_kit.engine.lowering.base import KernelCall, register_lowering
from tinyml_kit.engine.lowering.resize import resize_operands

ONE = 1 << 10  # TFLM's fixed-point unit for source coordinates
INT16_MAX = 2**15 - 1
ACCUMULATOR_LIMIT = 2**31 - 1 - (1 << 19)  # the kernel's int32 sum plus its rounding term


@dataclass(frozen=True)
class Axis:
    """Source indices and weights of every output row (or column) along one axis."""

    lower: np.ndarray  # int64, first source index
    upper: np.ndarray  # int64, second source index
    weight: np.ndarray  # int64, weight of ``upper`` in 1/1024 (negative: extrapolating the border)


def _c_div(a: int, b: int) -> int:
    """C integer division (truncates toward zero), as in TFLM's integer kernel."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def axis_scale(in_size: int, out_size: int, align_corners: bool) -> int:
    """TFLM's ``*_scale_10``: the source step per output step in 1/1024, rounded to nearest."""
    if align_corners and out_size > 1:
        return (ONE * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    return (ONE * in_size + out_size // 2) // out_size


def bilinear_axis(out_size: int, in_size: int, align_corners: bool, half_pixel_centers: bool) -> Axis:
    """TFLM's ``ComputeInterpolationValuesInteger`` for every output index along one axis."""
    scale = axis_scale(in_size, out_size, align_corners)
    lower, upper, weight = [], [], []
    for i in range(out_size):
        scaled = i * scale + (_c_div(scale, 2) - ONE // 2 if half_pixel_centers else 0)
        first = max(_c_div(scaled, ONE), 0)
        lower.append(first)
        upper.append(min(_c_div(scaled + ONE - 1, ONE), in_size - 1))
        weight.append(scaled - ONE * first)
    return Axis(np.asarray(lower, np.int64), np.asarray(upper, np.int64), np.asarray(weight, np.int64))


def _check_axis(op: Op, graph: Graph, axis: Axis, in_size: int, what: str) -> None:
    """Refuse tables that would make TFLM read outside the image (extreme downscales of tiny maps)."""
    bad = np.flatnonzero((axis.lower > axis.upper) | (axis.lower >= in_size) | (axis.upper < 0))
    if bad.size:
        raise unsupported(op, graph, f"resizes {in_size} {what} so that output {what[:-1]} {int(bad[0])} "
                          f"reads source index {int(axis.lower[bad[0]])} outside the input (TFLM's "
                          "integer kernel would read out of bounds)",
                          "Use a resize whose output size is closer to the input size.")


def _weight_span(axis: Axis) -> int:
    """Largest ``|1024 - w| + |w|`` along the axis: bounds the absolute sum of the blend's weights."""
    return int(np.max(np.abs(ONE - axis.weight) + np.abs(axis.weight))) if axis.weight.size else ONE


@register_lowering("RESIZE_BILINEAR")
def lower_resize_bilinear(op: Op, graph: Graph) -> KernelCall:
    """RESIZE_BILINEAR int8 to a constant (height, width), any align_corners / half_pixel_centers."""
    x, y, size = resize_operands(op, graph)
    if min(size) < 1:
        raise unsupported(op, graph, f"has output size {size}", "Resize to a size of at least 1x1.")
    if scale_zero_point(x) != scale_zero_point(y):
        raise unsupported(op, graph, f"has input quantisation {scale_zero_point(x)} (scale, zero point) "
                          f"but output quantisation {scale_zero_point(y)}; TFLM's int8 kernel does not "
                          "requantise, so they must be equal", REQUANTIZE_HINT)
    align = bool(op.options.get("align_corners", False))
    half_pixel = bool(op.options.get("half_pixel_centers", False))
    if align and half_pixel:
        raise unsupported(op, graph, "sets both align_corners and half_pixel_centers (TFLM rejects this)",
                          "Export the resize with at most one of the two options.")
    n, in_h, in_w, c = (int(v) for v in x.shape)
    out_h, out_w = size
    if max(in_h, in_w, out_h, out_w) > INT16_MAX:
        raise unsupported(op, graph, f"resizes {in_h}x{in_w} to {out_h}x{out_w}; the kernel's tables hold "
                          f"sizes up to {INT16_MAX}", "Resize smaller maps.")
    rows = bilinear_axis(out_h, in_h, align, half_pixel)
    cols = bilinear_axis(out_w, in_w, align, half_pixel)
    _check_axis(op, graph, rows, in_h, "rows")
    _check_axis(op, graph, cols, in_w, "columns")
    if 128 * _weight_span(rows) * _weight_span(cols) > ACCUMULATOR_LIMIT:
        raise unsupported(op, graph, "has blending weights whose int8 sums could overflow int32",
                          "Use a resize whose output size is closer to the input size.")

    call = KernelCall(op=op, kernel="tk_resize_bilinear", function="tk_resize_bilinear_s8",
                      params_type="tk_resize_bilinear_params_t", inputs=[x.index], outputs=[y.index],
                      macs=4 * y.num_elements)
    call.params.update(batches=n, in_h=in_h, in_w=in_w, channels=c, out_h=out_h, out_w=out_w)
    call.arrays.update(y0=rows.lower.astype(np.int16), y1=rows.upper.astype(np.int16),
                       fy=rows.weight.astype(np.int16), x0=cols.lower.astype(np.int16),
                       x1=cols.upper.astype(np.int16), fx=cols.weight.astype(np.int16))
    # Output byte o is written right after its four reads, the smallest of which is (b, y0, x0, k).
    first_read = (np.arange(n, dtype=np.int64).reshape(-1, 1, 1, 1) * (in_h * in_w * c)
                  + rows.lower.reshape(1, -1, 1, 1) * (in_w * c)
                  + cols.lower.reshape(1, 1, -1, 1) * c + np.arange(c).reshape(1, 1, 1, -1))
    overlap = raster_overlap(y, x, first_read.reshape(-1))
    if overlap is not None:
        call.overlaps.append(overlap)
    return call
