"""MAX_POOL_2D (int8, NHWC) -> ``tk_maxpool_s8``, padding and activation range as in TFLM's Prepare."""

from __future__ import annotations

import numpy as np

from tinyml_kit.engine.ir import Graph, Op
from tinyml_kit.engine.lowering._lowering_utils import (
    activation_bounds,
    int8_tensor,
    raster_overlap,
    unsupported,
)
from tinyml_kit.engine.lowering.base import KernelCall, register_lowering
from tinyml_kit.engine.lowering.common import tflite_out_size, tflite_padding


def _window_starts(out_size: int, stride: int, pad: int) -> np.ndarray:
    """First input row/column read by each output row/column (the window clipped to the input)."""
    return np.maximum(np.arange(out_size, dtype=np.int64) * stride - pad, 0)


@register_lowering("MAX_POOL_2D")
def lower_max_pool(op: Op, graph: Graph) -> KernelCall:
    """MAX_POOL_2D int8 with SAME/VALID padding, any window and stride, fused activation."""
    x = int8_tensor(op, graph, op.inputs[0], "input")
    y = int8_tensor(op, graph, op.outputs[0], "output")
    if len(x.shape) != 4 or len(y.shape) != 4:
        raise unsupported(op, graph, f"has input shape {x.shape} and output shape {y.shape}; 4-D NHWC "
                          "tensors are required", "Pool 4-D (batch, height, width, channels) tensors.")
    if any(op.attrs.get("extra_padding", ())):
        raise unsupported(op, graph, "received a PAD folded in by a graph pass; max pooling ignores padded "
                          "positions while PAD inserts zero-point values, so the fusion is not exact",
                          "Do not fold PAD into MAX_POOL_2D (internal error).")
    opts = op.options
    padding = str(opts.get("padding", "VALID")).upper()
    stride_h, stride_w = int(opts.get("stride_h", 1)), int(opts.get("stride_w", 1))
    filter_h, filter_w = int(opts.get("filter_height", 1)), int(opts.get("filter_width", 1))
    n, in_h, in_w, c = x.shape
    if "patch_pads" in op.attrs:  # one patch of a patch stage: local geometry given by the stage
        out_h, out_w = int(y.shape[1]), int(y.shape[2])
        pad_h, pad_w = (int(v) for v in op.attrs["patch_pads"])
    else:
        out_h = tflite_out_size(padding, in_h, filter_h, stride_h, 1)
        out_w = tflite_out_size(padding, in_w, filter_w, stride_w, 1)
        if (n, out_h, out_w, c) != tuple(y.shape):
            raise unsupported(op, graph, f"has output shape {y.shape} but {padding} pooling of {x.shape} "
                              f"with a {filter_h}x{filter_w} window and stride {stride_h}x{stride_w} gives "
                              f"{(n, out_h, out_w, c)}", "Check the model; it looks malformed.")
        pad_h = tflite_padding(stride_h, 1, in_h, filter_h, out_h)
        pad_w = tflite_padding(stride_w, 1, in_w, filter_w, out_w)
    act_min, act_max = activation_bounds(op, graph, y)

    call = KernelCall(op=op, kernel="tk_maxpool", function="tk_maxpool_s8", params_type="tk_maxpool_params_t",
                      inputs=[x.index], outputs=[y.index], macs=y.num_elements * filter_h * filter_w)
    call.params.update(batches=n, in_h=in_h, in_w=in_w, channels=c, out_h=out_h, out_w=out_w,
                       filter_h=filter_h, filter_w=filter_w, stride_h=stride_h, stride_w=stride_w,
                       pad_h=pad_h, pad_w=pad_w, act_min=act_min, act_max=act_max)
    rows = _window_starts(out_h, stride_h, pad_h).reshape(1, -1, 1, 1)
    cols = _window_starts(out_w, stride_w, pad_w).reshape(1, 1, -1, 1)
    first_read = (np.arange(n).reshape(-1, 1, 1, 1) * (in_h * in_w * c) + rows * (in_w * c) + cols * c
                  + np.arange(c).reshape(1, 1, 1, -1))
    overlap = raster_overlap(y, x, first_read.reshape(-1))
    if overlap is not None:
        call.overlaps.append(overlap)
    return call
