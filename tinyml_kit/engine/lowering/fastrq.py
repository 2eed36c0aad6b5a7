"""Compile-time side of the fast kernels: exact fast requantisation constants and pre-packed filters.

The fast kernels (``tk_conv2d_1x1``, ``tk_conv2d_gemm``, ``tk_dwconv2d_ch``) requantise with
``firmware/kernels/tk_requant.h``: ``out = clamp((SMMLAR(2*acc, M, add) + sign(acc)) >> r)`` with
``add = 2^(r-1) + zero_point * 2^r``, which equals TFLite's MultiplyByQuantizedMultiplier for every
accumulator when every channel shifts right (``r >= 1``) and nothing can overflow. :func:`fast_requant`
checks exactly that, from bounds on the accumulators derived from the weights; when it returns None
the lowering keeps the generic kernels. The filters are packed here in the order the kernels read
them (see ``tk_gemm.h`` and ``tk_dwconv2d_ch.h``), so no kernel reorders weights at run time.
"""

from __future__ import annotations

import numpy as np

ACC_LIMIT = 1 << 30  # |acc| must stay below this: the kernels double it (2 * acc fits int32)


def acc_bound(bias: np.ndarray, rows: np.ndarray, input_range: int = 128) -> int:
    """Largest |accumulator| of any channel: |bias| + input_range * sum|w| (inputs in [-128, 127], or
    [-255, 255] with ``input_range=255`` for kernels that add the input offset before multiplying)."""
    weights = np.abs(rows.reshape(rows.shape[0], -1).astype(np.int64)).sum(axis=1)
    return int(np.max(np.abs(bias.astype(np.int64)) + input_range * weights, initial=0))


def fast_requant(multiplier: np.ndarray, shift: np.ndarray, output_zero_point: int,
                 bound: int) -> dict[str, np.ndarray] | None:
    """``rq_mult``, ``rq_add``, ``rq_shift`` for tk_requant.h, or None when the fast form is not exact
    for this layer (a left shift or no shift, or accumulators that could overflow)."""
    mult = np.asarray(multiplier, dtype=np.int64).reshape(-1)
    right = -np.asarray(shift, dtype=np.int64).reshape(-1)
    if mult.size == 0 or np.any(right < 1) or np.any(right > 30) or np.any(mult < 0):
        return None
    if bound >= ACC_LIMIT:
        return None
    add = (np.int64(1) << (right - 1)) + np.int64(output_zero_point) * (np.int64(1) << right)
    if bound + 2 + int(np.max(np.abs(add))) >= 1 << 31:
        return None
    return {"rq_mult": mult.astype(np.int32), "rq_add": add.astype(np.int32),
            "rq_shift": right.astype(np.int32)}


def halfword_pairs(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """int32 words holding int16 values ``lo`` in the low and ``hi`` in the high halfword (the layout
    SMLAD and SMLAxy read)."""
    lo, hi = np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64)
    return ((lo & 0xFFFF) | ((hi & 0xFFFF) << 16)).astype(np.uint32).view(np.int32)


def pad_even(values: np.ndarray, fill: int) -> np.ndarray:
    """``values`` with one ``fill`` appended when its length is odd (the kernels work on channel pairs)."""
    if values.size % 2 == 0:
        return values
    return np.concatenate([values, np.array([fill], dtype=values.dtype)])


def pack_gemm_filter(rows: np.ndarray) -> tuple[np.ndarray, int]:
    """``(packed, k4)``: rows [out_c][K] int8 as ``[out_c/2][k4/4][2][4]`` with the bytes of each group of
    4 taps stored as w0, w2, w1, w3 (tk_gemm.h); K is zero-padded to k4, an odd out_c gets a zero row."""
    out_c, k = rows.shape
    k4 = -(-k // 4) * 4
    oc2 = out_c + out_c % 2
    padded = np.zeros((oc2, k4), dtype=np.int8)
    padded[:out_c, :k] = rows
    groups = padded.reshape(oc2 // 2, 2, k4 // 4, 4)[..., [0, 2, 1, 3]]
    return np.ascontiguousarray(groups.transpose(0, 2, 1, 3)).reshape(-1), k4


def gemm_arrays(rows: np.ndarray, bias: np.ndarray, multiplier: np.ndarray, shift: np.ndarray,
                output_zero_point: int) -> tuple[dict[str, np.ndarray], int] | None:
    """Arrays of tk_conv2d_1x1 / tk_conv2d_gemm (packed filter; per channel {2 * bias, multiplier, add,
    shift}) and k4, or None when the fast requantisation is not exact for this layer."""
    rows = np.asarray(rows, dtype=np.int8).reshape(rows.shape[0], -1)
    rq = fast_requant(multiplier, shift, output_zero_point, acc_bound(bias, rows))
    if rq is None:
        return None
    packed, k4 = pack_gemm_filter(rows)
    bias2 = (2 * bias.astype(np.int64)).astype(np.int32)
    table = np.stack([bias2, rq["rq_mult"], rq["rq_add"], rq["rq_shift"]], axis=1)
    if table.shape[0] % 2:
        table = np.concatenate([table, np.array([[0, 0, 0, 1]], dtype=np.int32)])
    return {"filter": packed, "rq": np.ascontiguousarray(table, dtype=np.int32).reshape(-1)}, k4


def pack_depthwise_filter(taps: np.ndarray) -> np.ndarray:
    """Per channel and kernel row, the doubled weights as halfword pairs (2*w[4m], 2*w[4m+2]),
    (2*w[4m+1], 2*w[4m+3]) for m < ceil(k_w/4): ``filter2`` of the 5x5 and 7x7 tk_dwconv2d_ch (3x3 uses
    ``pack_dw3_table`` in lowering/depthwise.py); ``taps`` is [channels][k_h][k_w]."""
    channels, k_h, k_w = taps.shape
    groups = -(-k_w // 4)
    padded = np.zeros((channels, k_h, 4 * groups), dtype=np.int16)
    padded[:, :, :k_w] = 2 * taps.astype(np.int16)
    quads = padded.reshape(channels, k_h, groups, 4)
    packed = quads[..., [0, 2, 1, 3]]  # (w0, w2), (w1, w3) per group of 4 taps
    return np.ascontiguousarray(packed).reshape(-1)
