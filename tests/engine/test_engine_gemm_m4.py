"""The GEMM convolution kernels (tk_conv2d_1x1, tk_conv2d_gemm) on awkward shapes, against an exact
NumPy model of TFLite's ConvPerChannel: the portable C path (-DTK_NO_WIDE, pixel pairs) and the hosted wide
path in the default tier; the Cortex-M4 DSP path (3-pixel blocks, assembly loops) and the portable path
built for Cortex-M4 under QEMU (qemu marker). Synthetic IR graphs, no TensorFlow."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from test_engine_kernels_common import (
    DUMP_C,
    FlaggedLibrary,
    const_tensor,
    extreme_samples,
    int8_tensor,
    requantize_per_channel,
    run_m4_cases,
    single_op_graph,
)
from tk_testing import require_tool

from tinyml_kit.engine.ir import Graph, Op, Quantization, Tensor
from tinyml_kit.engine.lowering.base import KernelCall, lower_op
from tinyml_kit.engine.lowering.conv import gemm_scratch_bytes, row_padded_filter

IN_SCALE, IN_ZP, OUT_SCALE, OUT_ZP = 0.05, -3, 0.11, 5


@dataclass(frozen=True)
class ConvCase:
    """One convolution: input h x w x c, out_c filters k_h x k_w, stride, padding, clamp range."""

    name: str
    size: tuple[int, int]
    in_c: int
    out_c: int
    kernel: tuple[int, int] = (1, 1)
    stride: int = 1
    padding: str = "VALID"
    act: tuple[int, int] = (-128, 127)
    depthwise: bool = False  # DEPTHWISE_CONV_2D with one input channel (a first layer)
    out_zp: int = OUT_ZP
    out_scale: float = OUT_SCALE


CASES = [
    # pointwise: K not a multiple of 4, odd out_c, pixel counts 1, 2, 4, 5 (mod 3: 1, 2, 1, 2)
    ConvCase("pw_k5_oc7_px20", (4, 5), 5, 7),
    ConvCase("pw_k8_oc14_px25", (5, 5), 8, 14),  # out_c not a multiple of 4: not tk_conv2d_1x1_c8
    ConvCase("pw_k12_oc3_px1", (1, 1), 12, 3),
    ConvCase("pw_k16_oc2_px2", (1, 2), 16, 2),
    ConvCase("pw_k36_oc10_px7_relu", (1, 7), 36, 10, act=(OUT_ZP, 127)),
    ConvCase("pw_k64_oc9_px6", (2, 3), 64, 9),
    ConvCase("pw_k3_oc1_px11", (1, 11), 3, 1),
    # even out_c, full range (the Cortex-M4 loop run straight): 9 groups (the last without a loop test),
    # 10 and 18 groups (the loop repeated, entered part-way)
    ConvCase("pw_k36_oc4_px5", (1, 5), 36, 4),
    ConvCase("pw_k40_oc6_px4", (2, 2), 40, 6),
    ConvCase("pw_k72_oc2_px7", (1, 7), 72, 2),
    # im2col: first layers (one channel, rows padded to 4 taps; three channels), stride 2, padding
    ConvCase("c1_k3s2_same", (13, 11), 1, 8, (3, 3), 2, "SAME"),
    ConvCase("c1_k3s1_same_oc5", (7, 9), 1, 5, (3, 3), 1, "SAME"),
    ConvCase("c1_k3s2_valid_relu", (12, 10), 1, 6, (3, 3), 2, "VALID", act=(OUT_ZP, 120)),
    ConvCase("dw1_k3s2_same", (14, 9), 1, 8, (3, 3), 2, "SAME", depthwise=True),
    # one channel, even out_c <= 16, full range: the Cortex-M4 path that keeps a pixel in registers
    ConvCase("c1_k3s1_same_oc4", (6, 8), 1, 4, (3, 3), 1, "SAME"),
    ConvCase("c1_k3s2_valid_oc2_w5", (9, 5), 1, 2, (3, 3), 2, "VALID"),
    ConvCase("dw1_k3s1_valid_oc16", (7, 6), 1, 16, (3, 3), 1, "VALID", depthwise=True),
    ConvCase("c1_k3s2_same_oc18", (5, 7), 1, 18, (3, 3), 2, "SAME"),
    # the register path with kernel rows above and below the input (the table rebuilt per set of inside
    # rows), no inside run at all (every pixel on the border), and 16 outputs from the padded corners
    ConvCase("c1_k3s1_same_oc6_h2", (2, 3), 1, 6, (3, 3), 1, "SAME"),
    ConvCase("c1_k3s1_same_oc2_h1", (1, 10), 1, 2, (3, 3), 1, "SAME"),
    ConvCase("dw1_k3s2_same_oc16", (10, 12), 1, 16, (3, 3), 2, "SAME", depthwise=True),
    # output zero point -128 (ReLU-like first layers): the register path with the table scaled to one
    # shift (c1_scalable), and with shifts too small or too large for that
    ConvCase("c1_k3s2_same_zp_min", (13, 11), 1, 8, (3, 3), 2, "SAME", out_zp=-128),
    ConvCase("dw1_k3s1_same_oc14_zp_min", (6, 7), 1, 14, (3, 3), 1, "SAME", depthwise=True, out_zp=-128),
    ConvCase("c1_k3s2_same_zp_min_k7", (9, 10), 1, 8, (3, 3), 2, "SAME", out_zp=-128, out_scale=0.04),
    ConvCase("dw1_k3s2_same_oc10_zp_min_k1", (11, 14), 1, 10, (3, 3), 2, "SAME", depthwise=True, out_zp=-128,
             out_scale=0.8),
    ConvCase("c1_k3s2_same_zp_min_fine", (9, 8), 1, 4, (3, 3), 2, "SAME", out_zp=-128, out_scale=0.003),
    ConvCase("c1_k3s1_valid_zp_min_coarse", (6, 6), 1, 6, (3, 3), 1, "VALID", out_zp=-128, out_scale=9.0),
    ConvCase("c3_k3s2_same", (9, 9), 3, 8, (3, 3), 2, "SAME"),
    ConvCase("c5_k3s1_same_oc7", (6, 7), 5, 7, (3, 3), 1, "SAME"),
    ConvCase("c2_k5s2_valid", (11, 12), 2, 4, (5, 5), 2, "VALID"),
    ConvCase("c16_k3s1_same_oc11", (5, 4), 16, 11, (3, 3), 1, "SAME"),
]


def conv_graph(case: ConvCase, seed: int = 0) -> tuple[Graph, Op]:
    """A one-op graph with random weights, per-channel scales and biases."""
    rng = np.random.default_rng(seed)
    (h, w), (k_h, k_w), s = case.size, case.kernel, case.stride
    if case.padding == "SAME":
        out_h, out_w = -(-h // s), -(-w // s)
    else:
        out_h, out_w = (h - k_h) // s + 1, (w - k_w) // s + 1
    weights = rng.integers(-127, 128, size=(case.out_c, k_h, k_w, case.in_c), dtype=np.int8)
    w_scales = rng.uniform(0.004, 0.02, size=case.out_c)
    bias = rng.integers(-3000, 3000, size=case.out_c).astype(np.int32)
    if case.depthwise:
        weights = weights.transpose(3, 1, 2, 0)  # 1HWO
    w_tensor = Tensor(index=1, name="w", shape=weights.shape, dtype="int8", data=weights,
                      quant=Quantization(w_scales.astype(np.float64), np.zeros(case.out_c, dtype=np.int64),
                                         axis=3 if case.depthwise else 0))
    tensors = [int8_tensor(0, (1, h, w, case.in_c), IN_SCALE, IN_ZP), w_tensor, const_tensor(2, bias),
               int8_tensor(3, (1, out_h, out_w, case.out_c), case.out_scale, case.out_zp)]
    options = {"padding": case.padding, "stride_h": s, "stride_w": s}
    if case.depthwise:
        options["depth_multiplier"] = case.out_c
    graph, op = single_op_graph("DEPTHWISE_CONV_2D" if case.depthwise else "CONV_2D", tensors, [0, 1, 2], [3],
                                options)
    op.attrs["act_min"], op.attrs["act_max"] = case.act
    return graph, op


def reference(case: ConvCase, graph: Graph, x: np.ndarray) -> np.ndarray:
    """TFLite ConvPerChannel with exact integer arithmetic (padded taps contribute nothing)."""
    weights = graph.tensor(1).data.astype(np.int64)
    if case.depthwise:
        weights = weights.transpose(3, 1, 2, 0)
    bias = graph.tensor(2).data.astype(np.int64)
    out_h, out_w = graph.tensor(3).shape[1:3]
    (h, w), (k_h, k_w), s = case.size, case.kernel, case.stride
    pad_top = max((out_h - 1) * s + k_h - h, 0) // 2 if case.padding == "SAME" else 0
    pad_left = max((out_w - 1) * s + k_w - w, 0) // 2 if case.padding == "SAME" else 0
    padded = np.zeros((h + 2 * k_h + s * out_h, w + 2 * k_w + s * out_w, case.in_c), dtype=np.int64)
    padded[pad_top:pad_top + h, pad_left:pad_left + w] = x.reshape(h, w, case.in_c).astype(np.int64) - IN_ZP
    acc = np.zeros((out_h, out_w, case.out_c), dtype=np.int64)
    for ky in range(k_h):
        for kx in range(k_w):
            window = padded[ky:ky + s * out_h:s, kx:kx + s * out_w:s]
            acc += window @ weights[:, ky, kx, :].T
    acc += bias
    return requantize_per_channel(acc, IN_SCALE, graph.tensor(1).quant.scale, case.out_scale, case.out_zp,
                                  case.act)


def lowered(case: ConvCase) -> tuple[Graph, KernelCall]:
    graph, op = conv_graph(case)
    call = lower_op(op, graph)
    expected = "tk_conv2d_1x1" if case.kernel == (1, 1) else "tk_conv2d_gemm"
    assert call.kernel == expected, f"{case.name}: lowered to {call.kernel}"
    return graph, call


@pytest.fixture(scope="module")
def host_libraries(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], FlaggedLibrary]:
    require_tool("gcc")
    root = tmp_path_factory.mktemp("gemm_m4")
    return {(kernel, variant): FlaggedLibrary(kernel, root, flags)
            for kernel in ("tk_conv2d_1x1", "tk_conv2d_gemm")
            for variant, flags in (("portable", ("-DTK_NO_WIDE",)), ("wide", ()))}


@pytest.mark.parametrize("variant", ["portable", "wide"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_gemm_kernels_match_tflite_on_host(case: ConvCase, variant: str, host_libraries) -> None:
    graph, call = lowered(case)
    lib = host_libraries[(call.kernel, variant)]
    out_size = graph.tensor(3).num_elements
    for k, x in enumerate(extreme_samples(graph)):
        got = lib.run(call, [x], out_size)
        expected = reference(case, graph, x)
        bad = np.flatnonzero(got != expected)
        assert not bad.size, (f"{case.name} ({variant}) sample {k}: {bad.size} of {got.size} differ, first "
                              f"[{bad[0]}] {got[bad[0]]} != {expected[bad[0]]}")
        for rule in call.overlaps:  # in place at the largest shift the lowering declares safe
            shifted = lib.run_overlapped(call, [x], out_size, 0, rule.max_shift)
            assert np.array_equal(shifted, expected), f"{case.name} ({variant}) at shift {rule.max_shift}"


def test_first_layer_rows_are_padded_to_one_group_of_four_taps() -> None:
    filters = np.arange(1, 2 * 3 * 3 + 1, dtype=np.int8).reshape(2, 3, 3, 1)
    padded = row_padded_filter(filters, dilation_w=1)
    assert padded.shape == (2, 3, 4, 1)
    assert np.array_equal(padded[:, :, :3], filters) and not padded[:, :, 3].any()
    for shape, dilation in (((2, 3, 3, 3), 1), ((2, 5, 5, 1), 1), ((2, 3, 3, 1), 2)):
        unchanged = np.ones(shape, dtype=np.int8)
        assert row_padded_filter(unchanged, dilation) is unchanged  # more taps, RGB, or dilated: as is
    _, call = lowered(next(c for c in CASES if c.name == "c1_k3s2_same"))
    assert call.params["k_w"] == 4 and call.params["k4"] == 12
    assert call.params["c1_table"] == 1 and call.scratch_bytes == 32 * 8 + 24  # the Cortex-M4 table, > 72
    assert gemm_scratch_bytes(12) == 72


def test_only_even_full_range_one_channel_layers_take_the_register_path() -> None:
    takes = {case.name: lowered(case)[1] for case in CASES if case.in_c == 1 and case.kernel == (3, 3)}
    for name, call in takes.items():
        table = 32 * call.params["out_c"] + 24  # 8 words per output channel, 6 of loop state
        if name in ("c1_k3s2_same", "c1_k3s1_same_oc4", "c1_k3s2_valid_oc2_w5", "dw1_k3s2_same",
                    "dw1_k3s1_valid_oc16", "c1_k3s1_same_oc6_h2", "c1_k3s1_same_oc2_h1",
                    "dw1_k3s2_same_oc16", "c1_k3s2_same_zp_min", "dw1_k3s1_same_oc14_zp_min",
                    "c1_k3s2_same_zp_min_fine", "c1_k3s1_valid_zp_min_coarse", "c1_k3s2_same_zp_min_k7",
                    "dw1_k3s2_same_oc10_zp_min_k1"):
            assert call.params["c1_table"] == 1 and call.scratch_bytes == max(72, table), name
        else:  # odd out_c, a clamped activation, more than 16 filters: the column blocks
            assert call.params["c1_table"] == 0 and call.scratch_bytes == 72, name


def scaled_requantisation(call: KernelCall) -> bool:
    """Whether the Cortex-M4 register path takes its scaled table for this call (c1_scalable in
    tk_conv2d_gemm.c, apart from its bound on the sums: output zero point -128 and every shift 5 .. 11,
    1 .. 7 below TK_C1_R = 12)."""
    _, _, add, shift = np.asarray(call.arrays["rq"], dtype=np.int64).reshape(-1, 4).T
    return bool(np.all((add == (1 << (shift - 1)) - (128 << shift)) & (shift >= 5) & (shift <= 11)))


def test_zero_point_min_cases_take_both_requantisations() -> None:
    """With output zero point -128 the register path takes the scaled table when the shifts allow and the
    exact requantisation otherwise; the cases cover both (and the other cases take the exact one)."""
    taken = {case.name: scaled_requantisation(lowered(case)[1]) for case in CASES
             if case.in_c == 1 and case.kernel == (3, 3)}
    scaled = {name for name, scaled in taken.items() if scaled}
    assert scaled == {"c1_k3s2_same_zp_min", "dw1_k3s1_same_oc14_zp_min", "c1_k3s2_same_zp_min_k7",
                      "dw1_k3s2_same_oc10_zp_min_k1"}
    assert {"c1_k3s2_same_zp_min_fine", "c1_k3s1_valid_zp_min_coarse"} <= set(taken)


def test_the_sign_fix_changes_nothing_when_the_output_zero_point_is_min() -> None:
    """The Cortex-M4 register path drops the sign fix of tk_requant.h when the output zero point is -128:
    a negative doubled sum (positive multiplier, shift >= 1) saturates to -128 with or without it, while
    with zero point -127 a negative tie comes out differently (the fix is needed there)."""
    rng = np.random.default_rng(3)
    acc2 = np.arange(-(1 << 20), 1 << 12, 2, dtype=np.int64)

    def outputs(mult: int, shift: int, zero_point: int, fix: bool) -> np.ndarray:
        v = ((acc2 * mult + (1 << 31)) >> 32) + (1 << (shift - 1)) + (zero_point << shift)
        return np.clip((v + (acc2 >> 63 if fix else 0)) >> shift, -128, 127)

    for _ in range(10):
        mult, shift = int(rng.integers(1 << 30, 1 << 31)), int(rng.integers(1, 14))
        assert np.array_equal(outputs(mult, shift, -128, True), outputs(mult, shift, -128, False))
        assert not np.array_equal(outputs(mult, shift, -127, True), outputs(mult, shift, -127, False))


def test_the_scaled_table_requantises_exactly() -> None:
    """c1_run_scaled's arithmetic (tk_conv2d_gemm.c) against tk_requant.h's, for zero point -128: the sum
    times 2^k (k = 12 - shift), SMMLA with add * 2^k + 2^(k - 1), SSAT of ASR #12; int32 wrap-around as on
    the Cortex-M4."""
    rng = np.random.default_rng(5)
    acc2 = np.arange(-(1 << 20), 1 << 20, 2, dtype=np.int64)

    def int32(v: np.ndarray) -> np.ndarray:
        return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)

    for shift in range(5, 12):
        mult, k = int(rng.integers(1 << 30, 1 << 31)), 12 - shift
        add = (1 << (shift - 1)) - (128 << shift)
        v = ((acc2 * mult + (1 << 31)) >> 32) + add
        exact = np.clip((v + (acc2 >> 63)) >> shift, -128, 127)
        sums = int32(acc2 << k)
        scaled = np.clip(int32(((sums * mult) >> 32) + (add << k) + (1 << (k - 1))) >> 12, -128, 127)
        assert np.array_equal(exact, scaled), shift


# --- Cortex-M4 under QEMU -----------------------------------------------------------------------------

# the output is placed this many bytes after the input in one buffer (at most the declared max_shift)
HARNESS_GAP = 64


def c_values(values: np.ndarray) -> str:
    return ", ".join(str(int(v)) for v in values.reshape(-1)) or "0"


def harness_source(kernel: str, runs: list[tuple[KernelCall, np.ndarray, int, int]]) -> str:
    """A firmware that runs each (call, input, output size, output shift) and prints the output in hex."""
    from tinyml_kit.engine.codegen import render_arrays, render_struct

    lines = ["#include <stdint.h>", "#include <stdio.h>", '#include "tk_platform.h"',
             f'#include "{kernel}.h"',
             "#define TK_ALIGN(n) __attribute__((aligned(n)))", *DUMP_C]
    body = []
    for i, (call, x, out_size, shift) in enumerate(runs):
        lines += [render_arrays(call, f"run{i}"), render_struct(call, f"run{i}", f"run{i}_params", False)]
        in_off = max(0, -shift)
        arena = np.zeros(max(in_off + x.size, in_off + shift + out_size) + 16, dtype=np.int8)
        arena[in_off:in_off + x.size] = x
        lines.append(f"static int8_t arena{i}[{arena.size}] TK_ALIGN(16) = {{{c_values(arena)}}};")
        lines.append(f"static uint8_t scratch{i}[{max(call.scratch_bytes, 4)}] TK_ALIGN(8);")
        out = f"arena{i} + {in_off + shift}"
        body += [f"    {{ const void *in[1] = {{arena{i} + {in_off}}}; void *out[1] = {{{out}}};",
                 f"      {call.function}(&run{i}_params, in, out, scratch{i});",
                 f"      dump({i}, {out}, {out_size}); }}"]
    lines += ["int main(int argc, char **argv) {", "    (void)argc; (void)argv;", *body, "    return 0;", "}"]
    return "\n".join(lines) + "\n"


# Cortex-M4 builds: DSP 3-pixel blocks (default), DSP pixel pairs (-O0, frame pointer), portable C
M4_VARIANTS = {"dsp": [], "dsp_pairs": ["-DTK_GEMM_PAIRS"], "portable": ["-DTK_NO_DSP"]}


def run_on_qemu(kernel: str, runs: list[tuple[KernelCall, np.ndarray, int, int]], work: Path,
                variant: str) -> dict[int, np.ndarray]:
    source = work / f"{kernel}_{variant}.c"
    source.write_text(harness_source(kernel, runs))
    return run_m4_cases(source, kernel, M4_VARIANTS[variant], len(runs))


def check_on_qemu(kernel: str, cases: list[tuple[str, Graph, KernelCall, Callable[[np.ndarray], np.ndarray]]],
                  work: Path, variant: str) -> None:
    """Runs every (name, graph, call, reference) case of one kernel under QEMU on extreme samples, in place
    at the call's largest declared shift (capped near the input's end), and compares with reference(x)."""
    require_tool("arm-none-eabi-gcc")
    require_tool("qemu-system-arm")
    runs, expected = [], []
    for name, graph, call, ref in cases:
        out_size = graph.tensor(call.outputs[0]).num_elements
        shift = min(HARNESS_GAP + graph.tensor(call.inputs[0]).num_elements, call.overlaps[0].max_shift)
        for x in extreme_samples(graph, count=3):
            runs.append((call, x, out_size, shift))  # in place where the shift overlaps the input
            expected.append((name, ref(x)))
    got = run_on_qemu(kernel, runs, work, variant)
    for i, (name, want) in enumerate(expected):
        bad = np.flatnonzero(got[i] != want)
        assert not bad.size, (f"{name} run {i} ({variant}): {bad.size} of {want.size} differ, first "
                              f"[{bad[0]}] {got[i][bad[0]]} != {want[bad[0]]}")


@pytest.mark.qemu
@pytest.mark.parametrize("variant", list(M4_VARIANTS))
@pytest.mark.parametrize("kernel", ["tk_conv2d_1x1", "tk_conv2d_gemm"])
def test_gemm_kernels_match_tflite_on_cortex_m4(kernel: str, variant: str, tmp_path: Path) -> None:
    cases = []
    for case in CASES:
        graph, call = lowered(case)
        if call.kernel == kernel:
            cases.append((case.name, graph, call, functools.partial(reference, case, graph)))
    check_on_qemu(kernel, cases, tmp_path, variant)
