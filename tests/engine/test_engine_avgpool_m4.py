"""AVERAGE_POOL_2D on Cortex-M4 under QEMU (the DSP path that sums four channels per word in halfwords,
and the portable C path built for Cortex-M4) against an exact NumPy model of TFLite's integer average
pool: borders cut windows, channel counts not a multiple of 4 and above the 64-channel chunk, in place at
the largest shift the lowering declares. Host builds are checked against TFLM in
test_engine_kernels_pooling.py."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from test_engine_gemm_m4 import check_on_qemu
from test_engine_kernels_common import int8_tensor, single_op_graph

from tinyml_kit.engine.lowering.base import lower_op

# (input h, w, channels), pool k, stride, padding, clamp range
CASES = [((9, 8, 5), 3, 2, "SAME", (-128, 127)), ((3, 3, 256), 3, 3, "VALID", (-128, 127)),
         ((5, 5, 131), 2, 1, "SAME", (-128, 127)), ((6, 7, 12), 2, 2, "VALID", (-20, 90))]


def pool_graph(case):
    (h, w, c), k, s, padding, act = case
    out_h, out_w = ((h + s - 1) // s, (w + s - 1) // s) if padding == "SAME" else ((h - k) // s + 1,
                                                                                  (w - k) // s + 1)
    tensors = [int8_tensor(0, (1, h, w, c)), int8_tensor(1, (1, out_h, out_w, c))]
    graph, op = single_op_graph("AVERAGE_POOL_2D", tensors, [0], [1], {
        "padding": padding, "stride_h": s, "stride_w": s, "filter_height": k, "filter_width": k,
        "fused_activation_function": "NONE"})
    op.attrs["act_min"], op.attrs["act_max"] = act
    return graph, op


def reference(case, graph, x: np.ndarray) -> np.ndarray:
    """Average over the taps inside the input, rounded half away from zero, clamped."""
    (h, w, c), k, s, padding, (lo, hi) = case
    out_h, out_w = graph.tensor(1).shape[1:3]
    pad_top = max((out_h - 1) * s + k - h, 0) // 2 if padding == "SAME" else 0
    pad_left = max((out_w - 1) * s + k - w, 0) // 2 if padding == "SAME" else 0
    image = x.reshape(h, w, c).astype(np.int64)
    out = np.zeros((out_h, out_w, c), dtype=np.int64)
    for oy in range(out_h):
        for ox in range(out_w):
            y0, x0 = oy * s - pad_top, ox * s - pad_left
            window = image[max(y0, 0):min(y0 + k, h), max(x0, 0):min(x0 + k, w)].reshape(-1, c)
            total, count = window.sum(axis=0), window.shape[0]
            half = count // 2
            rounded = np.where(total > 0, (total + half) // count, -((-total + half) // count))
            out[oy, ox] = np.clip(rounded, lo, hi)
    return out.reshape(-1).astype(np.int8)


@pytest.mark.qemu
@pytest.mark.parametrize("variant", ["dsp", "portable"])
def test_avgpool_matches_tflite_on_cortex_m4(variant: str, tmp_path: Path) -> None:
    cases = []
    for case in CASES:
        graph, op = pool_graph(case)
        call = lower_op(op, graph)
        assert call.kernel == "tk_avgpool"
        cases.append((str(case), graph, call, functools.partial(reference, case, graph)))
    check_on_qemu("tk_avgpool", cases, tmp_path, variant)
