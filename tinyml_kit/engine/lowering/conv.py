"""CONV_2D -> a kernel chosen at compile time from the layer's geometry and quantisation.

* ``tk_conv2d_1x1_c8_s8``: pointwise with 8 input channels (a pixel in registers, the filters streamed);
* ``tk_conv2d_1x1_s8``: other pointwise layers (1x1, stride 1, no padding) as an int8 GEMM;
* ``tk_conv2d_gemm_s8``: any other kernel size, stride, dilation and padding (groups 1) as im2col + GEMM
  (:func:`im2col_gemm_call`, also used for depthwise layers with one input channel);
* ``tk_conv2d_s8``: grouped convolutions, and layers whose requantisation the fast kernels cannot
  reproduce exactly (a left shift, see ``lowering/fastrq.py``).
"""

from __future__ import annotations

import numpy as np

from tinyml_kit.engine.errors import UnsupportedOpError
from tinyml_kit.engine.ir import Graph, Op
from tinyml_kit.engine.lowering.base import KernelCall, Overlap, register_lowering
from tinyml_kit.engine.lowering.common import (
    Window,
    activation,
    clamp_range,
    constant,
    folded_bias,
    nhwc,
    per_tensor,
    require_dtype,
    window_geometry,
    window_max_shift,
)
from tinyml_kit.engine.lowering.fastrq import acc_bound, fast_requant, gemm_arrays, halfword_pairs
from tinyml_kit.engine.quant import per_channel_multipliers


def filter_scales(graph: Graph, op: Op, weights, channels: int, channel_axis: int) -> np.ndarray:
    """Per-channel (or broadcast per-tensor) filter scales, checking TFLite's constraints."""
    q = weights.quant
    if q is None:
        raise UnsupportedOpError(f"{graph.source}: {op.describe()} weights '{weights.name}' are not "
                                 "quantised; re-export with full-integer int8 quantisation.")
    if np.any(q.zero_point != 0):
        raise UnsupportedOpError(f"{graph.source}: {op.describe()} weights '{weights.name}' have a non-zero "
                                 "zero point; TFLite int8 weights are symmetric. Re-export the model.")
    if q.per_channel and (q.axis != channel_axis or q.scale.size != channels):
        raise UnsupportedOpError(
            f"{graph.source}: {op.describe()} weights are quantised per channel along axis {q.axis} with "
            f"{q.scale.size} scales; expected {channels} scales along axis {channel_axis}."
        )
    return q.scale


def bias_values(graph: Graph, op: Op, index: int, channels: int) -> np.ndarray | None:
    bias = constant(graph, op, index, optional=True)
    if bias is None:
        return None
    require_dtype(graph, op, bias, "int32")
    if bias.num_elements != channels:
        raise UnsupportedOpError(f"{graph.source}: {op.describe()} bias has {bias.num_elements} values "
                                 f"for {channels} output channels.")
    return np.asarray(bias.data, dtype=np.int32).reshape(-1)


@register_lowering("CONV_2D")
def lower_conv2d(op: Op, graph: Graph) -> KernelCall:
    inp, out = activation(graph, op, 0), graph.tensors[op.outputs[0]]
    weights = constant(graph, op, 1)
    for t in (inp, weights, out):
        require_dtype(graph, op, t, "int8")
    in_h, in_w, in_c = nhwc(graph, op, inp)
    out_h, out_w, out_c = nhwc(graph, op, out)
    if len(weights.shape) != 4 or weights.shape[0] != out_c:
        raise UnsupportedOpError(f"{graph.source}: {op.describe()} filter shape {weights.shape} does not "
                                 f"match {out_c} output channels (expected OHWI).")
    k_h, k_w, group_in = (int(d) for d in weights.shape[1:])
    if in_c % group_in or out_c % (in_c // group_in):
        raise UnsupportedOpError(f"{graph.source}: {op.describe()} has {in_c} input channels but filters of "
                                 f"depth {group_in}; channels must split into equal groups.")
    groups = in_c // group_in
    dilation = (int(op.options.get("dilation_h_factor", 1)), int(op.options.get("dilation_w_factor", 1)))
    win = window_geometry(graph, op, (in_h, in_w), (out_h, out_w), (k_h, k_w), dilation)

    in_scale, in_zp = per_tensor(graph, op, inp)
    out_scale, out_zp = per_tensor(graph, op, out)
    scales = filter_scales(graph, op, weights, out_c, channel_axis=0)
    multiplier, shift = per_channel_multipliers(in_scale, scales, out_scale, out_c)
    filters = np.asarray(weights.data, dtype=np.int8)
    bias = folded_bias(graph, op, bias_values(graph, op, 2, out_c), filters, -in_zp)
    act_min, act_max = clamp_range(op)
    macs = out_h * out_w * out_c * k_h * k_w * group_in
    overlap = Overlap(output=out.index, input=inp.index,
                      max_shift=window_max_shift(win, in_c, out_c, staged=True))
    if groups == 1 and is_pointwise(win):
        stream = pointwise_c8_stream(filters.reshape(out_c, -1), bias, multiplier, shift, out_zp,
                                     (act_min, act_max))
        if stream is not None:
            return KernelCall(
                op=op, kernel="tk_conv2d_1x1_c8", function="tk_conv2d_1x1_c8_s8",
                params_type="tk_conv2d_1x1_c8_params_t",
                params={"pixels": out_h * out_w, "out_c": out_c}, arrays={"stream": stream},
                inputs=[inp.index], outputs=[out.index], overlaps=[overlap], macs=macs)
        fast = gemm_arrays(filters.reshape(out_c, -1), bias, multiplier, shift, out_zp)
        if fast is not None:
            arrays, k4 = fast
            return KernelCall(
                op=op, kernel="tk_conv2d_1x1", function="tk_conv2d_1x1_s8",
                params_type="tk_conv2d_1x1_params_t",
                params={"pixels": out_h * out_w, "in_c": in_c, "out_c": out_c, "k4": k4,
                        "act_min": act_min, "act_max": act_max},
                arrays=arrays, inputs=[inp.index], outputs=[out.index], scratch_bytes=gemm_scratch_bytes(k4),
                overlaps=[overlap], macs=macs)
    elif groups == 1:
        call = im2col_gemm_call(op, inp.index, out.index, filters, bias, multiplier, shift,
                                win=win, in_zp=in_zp, out_zp=out_zp, act_range=(act_min, act_max), macs=macs,
                                overlap=overlap)
        if call is not None:
            return call

    return KernelCall(
        op=op, kernel="tk_conv2d", function="tk_conv2d_s8", params_type="tk_conv2d_params_t",
        params={
            "in_h": in_h, "in_w": in_w, "in_c": in_c, "out_h": out_h, "out_w": out_w, "out_c": out_c,
            "k_h": k_h, "k_w": k_w, "stride_h": win.stride_h, "stride_w": win.stride_w,
            "dilation_h": win.dilation_h, "dilation_w": win.dilation_w,
            "pad_top": win.pad_top, "pad_left": win.pad_left, "groups": groups,
            "input_zero_point": in_zp, "output_offset": out_zp, "act_min": act_min, "act_max": act_max,
        },
        arrays={"filter": filters.reshape(-1), "bias": bias, "multiplier": multiplier, "shift": shift},
        inputs=[inp.index], outputs=[out.index],
        scratch_bytes=2 * k_h * k_w * in_c,
        overlaps=[overlap],
        macs=macs,
    )


C8_LAST = 256  # TK_C8_LAST (tk_conv2d_1x1_c8.h): marks the last channel's shift word


def pointwise_c8_stream(rows: np.ndarray, bias: np.ndarray, multiplier: np.ndarray, shift: np.ndarray,
                        output_zero_point: int, act_range: tuple[int, int]) -> np.ndarray | None:
    """The ``stream`` of ``tk_conv2d_1x1_c8`` (per output channel the doubled weights as halfword pairs
    (2w0, 2w2), (2w1, 2w3), (2w4, 2w6), (2w5, 2w7), then 2 * bias, multiplier, add, shift; the last
    shift word marked with C8_LAST), or None when the layer does not qualify: 8 input channels, a
    multiple of 4 output channels, the full int8 range and an exact fast requantisation."""
    out_c, k = rows.shape
    if k != 8 or out_c % 4 or out_c == 0 or tuple(act_range) != (-128, 127):
        return None
    rq = fast_requant(multiplier, shift, output_zero_point, acc_bound(bias, rows))
    if rq is None:
        return None
    doubled = 2 * rows.astype(np.int64)
    words = halfword_pairs(doubled[:, [0, 1, 4, 5]], doubled[:, [2, 3, 6, 7]])
    stream = np.concatenate([words, (2 * bias.astype(np.int64))[:, None], rq["rq_mult"][:, None],
                             rq["rq_add"][:, None], rq["rq_shift"][:, None]], axis=1).astype(np.int64)
    stream[-1, 7] += C8_LAST
    return np.ascontiguousarray(stream.astype(np.int32)).reshape(-1)


def gemm_scratch_bytes(k4: int) -> int:
    """Scratch of ``tk_conv2d_1x1`` and ``tk_conv2d_gemm``: three int16 columns of k4 values
    (``TK_GEMM_SCRATCH`` in tk_gemm.h; Cortex-M4 computes 3 pixels per block, other builds use two)."""
    return 6 * k4


C1_TABLE_WORDS = 8  # TK_C1_WORDS (tk_conv2d_gemm.c): bias, 5 filter pairs (one with the shift), mult, add
C1_STATE_WORDS = 6  # c1_state_t (tk_conv2d_gemm.c): the loop state after the table
C1_MAX_OUT = 16  # TK_C1_MAX_OUT


def c1_table_bytes(padded: np.ndarray, dilation: tuple[int, int], act_range: tuple[int, int]) -> int:
    """Scratch of the Cortex-M4 path of ``tk_conv2d_gemm`` for one-channel 3x3 first layers (a table of
    int16 filter pairs and requantisation words per output channel and the loop state after it, each
    pixel's 9 values kept in registers): its bytes when the layer takes it (``padded`` OHWI rows of 4
    taps, dilation 1, an even count of at most C1_MAX_OUT filters, the full int8 range), else 0."""
    out_c, k_h, k_w, in_c = padded.shape
    takes = (in_c == 1 and (k_h, k_w) == (3, 4) and dilation == (1, 1) and out_c % 2 == 0
             and out_c <= C1_MAX_OUT and tuple(act_range) == (-128, 127))
    return 4 * (C1_TABLE_WORDS * out_c + C1_STATE_WORDS) if takes else 0


def row_padded_filter(filters: np.ndarray, dilation_w: int) -> np.ndarray:
    """``filters`` (OHWI) with a zero fourth column when each kernel row is 3 values of one channel
    (k_w 3, in_c 1, dilation 1) and that adds no group of 4 taps (k_h <= 3): tk_conv2d_gemm then converts
    each row from one word of the input. Other filters are returned as they are."""
    out_c, k_h, k_w, in_c = filters.shape
    if in_c != 1 or k_w != 3 or dilation_w != 1 or -(-k_h * k_w // 4) != k_h:
        return filters
    padded = np.zeros((out_c, k_h, 4, in_c), dtype=filters.dtype)
    padded[:, :, :k_w] = filters
    return padded


def im2col_gemm_call(op: Op, inp: int, out: int, filters: np.ndarray, bias: np.ndarray,
                     multiplier: np.ndarray, shift: np.ndarray, *, win: Window, in_zp: int, out_zp: int,
                     act_range: tuple[int, int], macs: int, overlap: Overlap) -> KernelCall | None:
    """The ``tk_conv2d_gemm_s8`` call of a convolution with groups 1 (``filters`` OHWI int8, ``bias``
    already folded with the input offset), or None when its fast requantisation is not exact (the
    caller then picks a generic kernel). Also used for depthwise layers with one input channel."""
    out_c, _, _, in_c = filters.shape
    padded = row_padded_filter(filters, win.dilation_w)
    fast = gemm_arrays(padded.reshape(out_c, -1), bias, multiplier, shift, out_zp)
    if fast is None:
        return None
    arrays, k4 = fast
    table = c1_table_bytes(padded, (win.dilation_h, win.dilation_w), act_range)
    return KernelCall(
        op=op, kernel="tk_conv2d_gemm", function="tk_conv2d_gemm_s8",
        params_type="tk_conv2d_gemm_params_t",
        params={
            "in_h": win.in_h, "in_w": win.in_w, "in_c": in_c, "out_h": win.out_h, "out_w": win.out_w,
            "out_c": out_c, "k_h": padded.shape[1], "k_w": padded.shape[2],
            "stride_h": win.stride_h, "stride_w": win.stride_w,
            "dilation_h": win.dilation_h, "dilation_w": win.dilation_w,
            "pad_top": win.pad_top, "pad_left": win.pad_left, "input_zero_point": in_zp, "k4": k4,
            "act_min": act_range[0], "act_max": act_range[1], "c1_table": int(table > 0),
        },
        arrays=arrays, inputs=[inp], outputs=[out], scratch_bytes=max(gemm_scratch_bytes(k4), table),
        overlaps=[overlap], macs=macs)


def is_pointwise(win: Window) -> bool:
    """A 1x1, stride-1, unpadded window over the whole frame: output pixel i reads input pixel i."""
    return (win.k_h == win.k_w == 1 and win.stride_h == win.stride_w == 1 and win.pad_top == win.pad_left == 0
            and (win.in_h, win.in_w) == (win.out_h, win.out_w))
