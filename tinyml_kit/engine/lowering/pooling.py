"""AVERAGE_POOL_2D -> ``tk_avgpool_s8`` (MAX_POOL_2D lives in its own module)."""

from __future__ import annotations

from tinyml_kit.engine.errors import UnsupportedOpError
from tinyml_kit.engine.ir import Graph, Op
from tinyml_kit.engine.lowering.base import KernelCall, Overlap, register_lowering
from tinyml_kit.engine.lowering.common import (
    activation,
    clamp_range,
    nhwc,
    per_tensor,
    require_dtype,
    window_geometry,
    window_max_shift,
)


@register_lowering("AVERAGE_POOL_2D")
def lower_average_pool2d(op: Op, graph: Graph) -> KernelCall:
    inp, out = activation(graph, op, 0), graph.tensors[op.outputs[0]]
    for t in (inp, out):
        require_dtype(graph, op, t, "int8")
    in_h, in_w, channels = nhwc(graph, op, inp)
    out_h, out_w, out_c = nhwc(graph, op, out)
    if per_tensor(graph, op, inp) != per_tensor(graph, op, out) or out_c != channels:
        raise UnsupportedOpError(f"{graph.source}: {op.describe()} changes the quantisation or channel "
                                 "count; TFLite int8 average pooling keeps both.")
    k_h, k_w = int(op.options["filter_height"]), int(op.options["filter_width"])
    win = window_geometry(graph, op, (in_h, in_w), (out_h, out_w), (k_h, k_w))
    if win.has_empty_window():
        raise UnsupportedOpError(f"{graph.source}: {op.describe()} has an output whose window lies entirely "
                                 "in the padding (TFLM fails on it too).")
    act_min, act_max = clamp_range(op)
    return KernelCall(
        op=op, kernel="tk_avgpool", function="tk_avgpool_s8", params_type="tk_avgpool_params_t",
        params={"in_h": in_h, "in_w": in_w, "channels": channels, "out_h": out_h, "out_w": out_w,
                "k_h": k_h, "k_w": k_w, "stride_h": win.stride_h, "stride_w": win.stride_w,
                "pad_top": win.pad_top, "pad_left": win.pad_left, "act_min": act_min, "act_max": act_max},
        inputs=[inp.index], outputs=[out.index],
        overlaps=[Overlap(output=out.index, input=inp.index,
                          max_shift=window_max_shift(win, channels, channels, staged=False))],
        macs=out_h * out_w * channels * k_h * k_w,
    )
