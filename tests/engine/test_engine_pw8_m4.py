"""The pointwise kernel for 8 input channels (tk_conv2d_1x1_c8) against the exact NumPy model of TFLite's
ConvPerChannel of test_engine_gemm_m4: its C path on the host (also in place at the largest declared
shift), its Cortex-M4 assembly and its C path built for Cortex-M4 under QEMU, and which layers the
lowering gives it. Synthetic IR graphs, no TensorFlow."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from test_engine_gemm_m4 import OUT_ZP, ConvCase, check_on_qemu, conv_graph, reference
from test_engine_kernels_common import FlaggedLibrary, extreme_samples
from tk_testing import require_tool

from tinyml_kit.engine.lowering.base import lower_op
from tinyml_kit.engine.lowering.conv import C8_LAST, pointwise_c8_stream

KERNEL = "tk_conv2d_1x1_c8"
CASES = [
    ConvCase("c8_oc16_px25", (5, 5), 8, 16),
    ConvCase("c8_oc4_px1", (1, 1), 8, 4),
    ConvCase("c8_oc12_px7", (1, 7), 8, 12),
    ConvCase("c8_oc48_px6", (2, 3), 8, 48),
]


def lowered(case: ConvCase):
    graph, op = conv_graph(case)
    call = lower_op(op, graph)
    assert call.kernel == KERNEL, f"{case.name}: lowered to {call.kernel}"
    return graph, call


@pytest.fixture(scope="module")
def host_library(tmp_path_factory: pytest.TempPathFactory) -> FlaggedLibrary:
    require_tool("gcc")
    return FlaggedLibrary(KERNEL, tmp_path_factory.mktemp("pw8"), ())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_pointwise_c8_matches_tflite_on_host(case: ConvCase, host_library: FlaggedLibrary) -> None:
    graph, call = lowered(case)
    out_size = graph.tensor(3).num_elements
    for k, x in enumerate(extreme_samples(graph)):
        expected = reference(case, graph, x)
        got = host_library.run(call, [x], out_size)
        assert np.array_equal(got, expected), f"{case.name} sample {k}"
        shift = call.overlaps[0].max_shift
        assert np.array_equal(host_library.run_overlapped(call, [x], out_size, 0, shift), expected), (
            f"{case.name} sample {k} in place at shift {shift}")


def test_only_full_range_8_channel_layers_with_4n_filters_take_the_kernel() -> None:
    for case in (ConvCase("k7", (2, 2), 7, 8), ConvCase("oc6", (2, 2), 8, 6), ConvCase("k16", (2, 2), 16, 8),
                 ConvCase("relu", (2, 2), 8, 8, act=(OUT_ZP, 127))):
        graph, op = conv_graph(case)
        assert lower_op(op, graph).kernel == "tk_conv2d_1x1", case.name
    graph, call = lowered(CASES[0])
    assert call.scratch_bytes == 0 and call.arrays["stream"].size == 8 * 16


def test_stream_packs_doubled_weight_pairs_and_marks_the_last_channel() -> None:
    rows = np.arange(-16, 16, dtype=np.int8).reshape(4, 8)
    bias = np.array([5, -6, 7, -8], dtype=np.int32)
    stream = pointwise_c8_stream(rows, bias, np.full(4, 1 << 30), np.full(4, -3), 2, (-128, 127))
    words = stream.reshape(4, 8)
    lo = (words[:, :4] << 16 >> 16).astype(np.int64)  # low halfwords, sign-extended
    hi = words[:, :4] >> 16
    assert np.array_equal(lo, 2 * rows[:, [0, 1, 4, 5]]) and np.array_equal(hi, 2 * rows[:, [2, 3, 6, 7]])
    assert np.array_equal(words[:, 4], 2 * bias) and list(words[:, 7]) == [3, 3, 3, 3 + C8_LAST]
    assert pointwise_c8_stream(rows, bias, np.full(4, 1 << 30), np.full(4, 1), 2, (-128, 127)) is None


@pytest.mark.qemu
@pytest.mark.parametrize("variant", ["dsp", "portable"])
def test_pointwise_c8_matches_tflite_on_cortex_m4(variant: str, tmp_path: Path) -> None:
    cases = []
    for case in CASES:
        graph, call = lowered(case)
        cases.append((case.name, graph, call, functools.partial(reference, case, graph)))
    check_on_qemu(KERNEL, cases, tmp_path, variant)
