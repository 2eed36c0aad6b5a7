"""DEPTHWISE_CONV_2D -> a kernel chosen at compile time from the layer's geometry and quantisation.

* one input channel (a first layer): ``tk_conv2d_gemm_s8`` (it is a convolution with in_c = 1);
* depth multiplier 1, square 3x3/5x5/7x7 kernels, stride 1 or 2, no dilation: ``tk_dwconv2d_ch_s8``
  (channel by channel, SIMD over pairs of taps; 3x3 on int16 planes or rings of rows, see
  :func:`channelwise_layout`; in place at shift 0 unless a ring could not keep the input, see
  :func:`ring_keeps_input`);
* everything else, and layers whose requantisation the fast kernels cannot reproduce exactly
  (``lowering/fastrq.py``): ``tk_dwconv2d_s8`` (any depth multiplier; in-place channel-wise variant).
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
from tinyml_kit.engine.lowering.conv import bias_values, filter_scales, im2col_gemm_call
from tinyml_kit.engine.lowering.fastrq import acc_bound, fast_requant, halfword_pairs, pack_depthwise_filter
from tinyml_kit.engine.quant import per_channel_multipliers


def channelwise_layout(k_hw: tuple[int, int], padded_hw: tuple[int, int], dilation_h: int, channels: int,
                       in_bytes: int) -> tuple[int, int, int]:
    """(channel_group, ring_rows, scratch bytes) of ``tk_dwconv2d_ch_s8`` (tk_dwconv2d_ch.h).

    3x3: ``channel_group`` sets of ``ring_rows`` rows of halfwords (padded_w rounded up to even) and 16
    bytes of slack. The first that fits the budget (the byte plane of the other kernel sizes, or an
    eighth of the input: small late layers, far from the peak) of: four channels' planes, four
    channels' rings of 2 * dilation_h + 1 rows, one channel's plane, else one channel's ring. Groups of
    four (channels a multiple of 4) stage with one word load per pixel (the cheaper staging matters
    more than the per-row calls of a ring); planes run every output row of a channel in one call.
    Other sizes: one byte plane and 8 bytes of slack (ring_rows unused)."""
    (k_h, k_w), (padded_h, padded_w) = k_hw, padded_hw
    plane_bytes = (padded_h * padded_w + 8 + 3) // 4 * 4
    if (k_h, k_w) != (3, 3):
        return 1, padded_h, plane_bytes
    budget = max(plane_bytes, in_bytes // 8)
    row_bytes = 2 * (padded_w + padded_w % 2)
    ring = min(2 * dilation_h + 1, padded_h)
    choices = [(4, padded_h), (4, ring)] if channels % 4 == 0 else []
    for group, rows in [*choices, (1, padded_h)]:
        if group * rows * row_bytes + 16 <= budget:
            return group, rows, group * rows * row_bytes + 16
    return 1, ring, ring * row_bytes + 16


def pack_dw3_table(taps: np.ndarray, bias2: np.ndarray, rq: dict[str, np.ndarray]) -> np.ndarray:
    """The 3x3 ``dw3`` array of ``tk_dwconv2d_ch_s8`` (tk_dwconv2d_ch.h): per channel ten int32 words in
    the order the kernel's context keeps them, per kernel row the halfword pairs (2*w0, 2*w1) and
    (2*w1, 2*w2) (first value in the low half), then 2 * bias, rq_mult, rq_add, rq_shift. ``taps`` is
    [channels][3][3]."""
    doubled = 2 * taps.astype(np.int64)
    w01 = halfword_pairs(doubled[:, :, 0], doubled[:, :, 1])
    w12 = halfword_pairs(doubled[:, :, 1], doubled[:, :, 2])
    weights = np.stack([w01, w12], axis=2).reshape(taps.shape[0], 6)
    consts = np.stack([bias2, rq["rq_mult"], rq["rq_add"], rq["rq_shift"]], axis=1).astype(np.int32)
    return np.ascontiguousarray(np.concatenate([weights, consts], axis=1), dtype=np.int32).reshape(-1)


def ring_keeps_input(win: Window, in_hw: tuple[int, int], out_hw: tuple[int, int], k_h: int) -> bool:
    """Whether the 3x3 ring of ``tk_dwconv2d_ch_s8`` stays exact in place (output on the input, shift 0).

    A channel's output row ``oy`` overwrites that channel's input pixels ``[oy * out_w, (oy + 1) * out_w)``
    (raster order); the rows it reaches must be staged by then (the ring keeps what later rows read)
    or never be read."""
    (in_h, in_w), (out_h, out_w) = in_hw, out_hw
    last_read = (out_h - 1) * win.stride_h + (k_h - 1) * win.dilation_h - win.pad_top  # last input row read
    for oy in range(out_h):
        staged = oy * win.stride_h + (k_h - 1) * win.dilation_h - win.pad_top  # staged before row oy
        overwritten = ((oy + 1) * out_w - 1) // in_w
        if min(overwritten, last_read, in_h - 1) > staged:
            return False
    return True


def channelwise_overlaps(win: Window, in_hw: tuple[int, int], out_hw: tuple[int, int], k_hw: tuple[int, int],
                         ring_rows: int, padded_h: int, out_index: int, in_index: int) -> list[Overlap]:
    """In place at shift 0: always when a whole plane (``ring_rows >= padded_h``) is staged first; with a
    3x3 ring when :func:`ring_keeps_input`."""
    if k_hw == (3, 3) and ring_rows < padded_h and not ring_keeps_input(win, in_hw, out_hw, k_hw[0]):
        return []
    return [Overlap(output=out_index, input=in_index, exact=(0,))]


@register_lowering("DEPTHWISE_CONV_2D")
def lower_depthwise_conv2d(op: Op, graph: Graph) -> KernelCall:
    inp, out = activation(graph, op, 0), graph.tensors[op.outputs[0]]
    weights = constant(graph, op, 1)
    for t in (inp, weights, out):
        require_dtype(graph, op, t, "int8")
    in_h, in_w, in_c = nhwc(graph, op, inp)
    out_h, out_w, out_c = nhwc(graph, op, out)
    if len(weights.shape) != 4 or weights.shape[0] != 1 or weights.shape[3] != out_c:
        raise UnsupportedOpError(f"{graph.source}: {op.describe()} filter shape {weights.shape} does not "
                                 f"match {out_c} output channels (expected 1HWO).")
    if out_c % in_c:
        raise UnsupportedOpError(f"{graph.source}: {op.describe()} maps {in_c} to {out_c} channels; the "
                                 "output channels must be a multiple of the input channels.")
    multiplier_m = out_c // in_c
    declared = int(op.options.get("depth_multiplier", multiplier_m) or multiplier_m)
    if declared != multiplier_m and in_c != 1:
        raise UnsupportedOpError(f"{graph.source}: {op.describe()} declares depth_multiplier {declared} "
                                 f"but maps {in_c} to {out_c} channels.")
    k_h, k_w = int(weights.shape[1]), int(weights.shape[2])
    dilation = (int(op.options.get("dilation_h_factor", 1)), int(op.options.get("dilation_w_factor", 1)))
    win = window_geometry(graph, op, (in_h, in_w), (out_h, out_w), (k_h, k_w), dilation)

    in_scale, in_zp = per_tensor(graph, op, inp)
    out_scale, out_zp = per_tensor(graph, op, out)
    scales = filter_scales(graph, op, weights, out_c, channel_axis=3)
    multiplier, shift = per_channel_multipliers(in_scale, scales, out_scale, out_c)
    bias = bias_values(graph, op, 2, out_c)
    bias = bias if bias is not None else np.zeros(out_c, dtype=np.int32)
    filters = np.asarray(weights.data, dtype=np.int8)
    per_channel_taps = filters.reshape(k_h * k_w, out_c).T  # [out_c][taps]
    act_min, act_max = clamp_range(op)

    padded_h = (out_h - 1) * win.stride_h + (k_h - 1) * win.dilation_h + 1
    padded_w = (out_w - 1) * win.stride_w + (k_w - 1) * win.dilation_w + 1
    macs = out_h * out_w * out_c * k_h * k_w
    folded = folded_bias(graph, op, bias, per_channel_taps, -in_zp)
    if in_c == 1:  # a convolution with one input channel: im2col + GEMM over the out_c filters
        filters_ohwi = per_channel_taps.reshape(out_c, k_h, k_w, 1)
        overlap = Overlap(output=out.index, input=inp.index,
                          max_shift=window_max_shift(win, in_c, out_c, staged=True))
        call = im2col_gemm_call(op, inp.index, out.index, filters_ohwi, folded, multiplier, shift, win=win,
                                in_zp=in_zp, out_zp=out_zp, act_range=(act_min, act_max), macs=macs,
                                overlap=overlap)
        if call is not None:
            return call
    channelwise = (multiplier_m == 1 and k_h == k_w and k_w in (3, 5, 7) and win.stride_h == win.stride_w
                   and win.stride_w in (1, 2) and win.dilation_h == win.dilation_w == 1)
    rq = fast_requant(multiplier, shift, out_zp, acc_bound(folded, per_channel_taps)) if channelwise else None
    if rq is not None:
        taps = filters.reshape(k_h, k_w, out_c).transpose(2, 0, 1)
        group, ring_rows, scratch = channelwise_layout((k_h, k_w), (padded_h, padded_w), win.dilation_h, in_c,
                                                       in_h * in_w * in_c)
        bias2 = (2 * folded.astype(np.int64)).astype(np.int32)
        arrays = ({"dw3": pack_dw3_table(taps, bias2, rq)} if k_w == 3
                  else {"filter2": pack_depthwise_filter(taps), "bias2": bias2, **rq})
        return KernelCall(
            op=op, kernel="tk_dwconv2d_ch", function="tk_dwconv2d_ch_s8",
            params_type="tk_dwconv2d_ch_params_t",
            params={"in_h": in_h, "in_w": in_w, "channels": in_c, "out_h": out_h, "out_w": out_w,
                    "k_h": k_h, "k_w": k_w, "stride_h": win.stride_h, "stride_w": win.stride_w,
                    "dilation_h": win.dilation_h, "pad_top": win.pad_top, "pad_left": win.pad_left,
                    "padded_h": padded_h, "padded_w": padded_w, "pad_value": in_zp,
                    "act_min": act_min, "act_max": act_max, "channel_group": group,
                    "ring_rows": ring_rows},
            arrays=arrays, inputs=[inp.index], outputs=[out.index], scratch_bytes=scratch,
            overlaps=channelwise_overlaps(win, (in_h, in_w), (out_h, out_w), (k_h, k_w), ring_rows, padded_h,
                                          out.index, inp.index),
            macs=macs)
    # depth multiplier 1: channel by channel through a padded plane in scratch, in place at shift 0
    # (never worse than a raster overlap, since the plane is allocated anyway); otherwise raster order.
    if multiplier_m == 1:
        overlap = Overlap(output=out.index, input=inp.index, exact=(0,))
    else:
        overlap = Overlap(output=out.index, input=inp.index,
                          max_shift=window_max_shift(win, in_c, out_c, staged=False))
    arrays = {"filter": filters.reshape(-1), "bias": bias,
              "bias_folded": folded,
              "multiplier": multiplier, "shift": shift}
    single_channel = in_c == 1 and multiplier_m > 1 and k_w >= 4  # rows long enough for 4-wide dots
    if single_channel:  # one input channel: per-channel filter rows for dot products
        arrays["filter_t"] = np.ascontiguousarray(per_channel_taps).reshape(-1)
    return KernelCall(
        op=op, kernel="tk_dwconv2d", function="tk_dwconv2d_s8", params_type="tk_dwconv2d_params_t",
        params={
            "in_h": in_h, "in_w": in_w, "in_c": in_c, "out_h": out_h, "out_w": out_w,
            "depth_multiplier": multiplier_m, "k_h": k_h, "k_w": k_w,
            "stride_h": win.stride_h, "stride_w": win.stride_w,
            "dilation_h": win.dilation_h, "dilation_w": win.dilation_w,
            "pad_top": win.pad_top, "pad_left": win.pad_left,
            "padded_h": padded_h, "padded_w": padded_w,
            "input_offset": -in_zp, "output_offset": out_zp, "act_min": act_min, "act_max": act_max,
        },
        arrays=arrays,
        inputs=[inp.index], outputs=[out.index],
        # multiplier 1: padded plane (rounded up to a word) + one int32 row of sums; else int32 per channel
        scratch_bytes=(padded_h * padded_w + 3) // 4 * 4 + 4 * out_w if multiplier_m == 1
        else (0 if single_channel else 4 * out_c),
        overlaps=[overlap],
        macs=macs,
    )
