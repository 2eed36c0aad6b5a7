"""The channel-wise depthwise kernel (tk_dwconv2d_ch) on awkward shapes, against an exact NumPy model of
TFLite's DepthwiseConvPerChannel: the 3x3 layouts (one or four channels at a time, whole planes or rings
of rows), rows of 1 to 12 outputs (blocks of six, then 1 to 5 more), stride 2, clamped activations, 5x5
and 7x7, patches that start inside the frame (negative padding), in place. Host builds: the portable C
path (-DTK_NO_WIDE) and the hosted wide path (default tier); Cortex-M4 under QEMU: the DSP path (assembly
loops) and the portable path built for the M4 (qemu marker). Synthetic IR graphs, no TensorFlow."""

from __future__ import annotations

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
from tinyml_kit.engine.lowering.common import Window
from tinyml_kit.engine.lowering.depthwise import channelwise_layout, pack_dw3_table, ring_keeps_input

IN_SCALE, IN_ZP, OUT_SCALE, OUT_ZP = 0.05, -3, 0.11, 5
KERNEL = "tk_dwconv2d_ch"


@dataclass(frozen=True)
class DwCase:
    """One depthwise convolution (multiplier 1): input h x w x c, k x k, stride, padding, clamp range;
    ``patch``: (y0, x0, out_h, out_w), an output window of the layer computed from the whole frame."""

    name: str
    size: tuple[int, int]
    channels: int
    kernel: int = 3
    stride: int = 1
    padding: str = "SAME"
    act: tuple[int, int] = (-128, 127)
    layout: tuple[int, str] | None = None  # 3x3: (channel_group, "plane" | "ring") the case must get
    patch: tuple[int, int, int, int] | None = None


CASES = [
    # 3x3 stride 1: output widths 1..12 (blocks of six, then 0 to 5 outputs), channels 2..128, each layout
    DwCase("k3s1_w1_c3", (5, 1), 3, layout=(1, "ring")),
    DwCase("k3s1_w2_c5", (4, 2), 5),
    DwCase("k3s1_w3_c8", (3, 3), 8),
    DwCase("k3s1_w6_c128_plane4", (6, 6), 128, layout=(4, "plane")),
    DwCase("k3s1_w6_c34_plane1", (6, 6), 34, layout=(1, "plane")),
    DwCase("k3s1_w6_c64_ring4", (6, 6), 64, layout=(4, "ring")),
    DwCase("k3s1_w7_c6", (9, 7), 6),
    DwCase("k3s1_w9_c12_ring4", (30, 9), 12, layout=(4, "ring")),
    DwCase("k3s1_w5_c3_ring1", (40, 5), 3, layout=(1, "ring")),
    DwCase("k3s1_w8_c2", (8, 8), 2),
    DwCase("k3s1_w11_c8", (7, 11), 8),
    DwCase("k3s1_w12_c16_ring4", (20, 12), 16, layout=(4, "ring")),
    DwCase("k3s1_valid_w4_c4", (7, 6), 4, padding="VALID"),
    DwCase("k3s1_valid_w6_c4", (5, 8), 4, padding="VALID"),  # the last blocks read real columns
    DwCase("k3s1_valid_w5_c7", (6, 7), 7, padding="VALID"),
    DwCase("k3s1_relu_c8", (7, 7), 8, act=(OUT_ZP, 100)),
    DwCase("k3s1_relu_ring4", (28, 10), 8, act=(OUT_ZP, 127), layout=(4, "ring")),
    DwCase("k3s1_relu_plane4", (6, 7), 128, act=(-128, 90), layout=(4, "plane")),
    # 3x3 stride 2: odd and even sizes, SAME and VALID
    DwCase("k3s2_same_9x11_c8", (9, 11), 8, stride=2),
    DwCase("k3s2_same_6x6_c128", (6, 6), 128, stride=2, layout=(4, "plane")),
    DwCase("k3s2_same_12x10_c35", (12, 10), 35, stride=2, layout=(1, "plane")),
    DwCase("k3s2_valid_10x7_c5", (10, 7), 5, stride=2, padding="VALID"),
    DwCase("k3s2_valid_w6_c8", (7, 13), 8, stride=2, padding="VALID"),
    DwCase("k3s2_valid_w5_c4", (9, 11), 4, stride=2, padding="VALID"),
    DwCase("k3s2_valid_w7_c128", (5, 15), 128, stride=2, padding="VALID"),
    DwCase("k3s2_same_ring4_c4", (50, 13), 4, stride=2, layout=(4, "ring")),
    DwCase("k3s2_same_2x3_c3", (2, 3), 3, stride=2),
    DwCase("k3s2_same_w4_c8", (8, 8), 8, stride=2),
    DwCase("k3s2_same_w10_c4", (7, 20), 4, stride=2),
    DwCase("k3s2_same_w11_c16", (6, 22), 16, stride=2),
    DwCase("k3s2_valid_w12_c12", (5, 25), 12, stride=2, padding="VALID"),
    DwCase("k3s2_relu_c12", (11, 9), 12, stride=2, act=(-20, 60)),
    # 5x5 and 7x7 (the byte plane)
    DwCase("k5s1_same_c6", (9, 8), 6, kernel=5),
    DwCase("k5s2_valid_c4", (13, 12), 4, kernel=5, stride=2, padding="VALID"),
    DwCase("k7s1_same_c3", (10, 9), 3, kernel=7),
    DwCase("k7s2_same_c8", (11, 12), 8, kernel=7, stride=2),
    # patches of a larger frame (negative padding): inside, at a corner, at an edge
    DwCase("patch_k3s1_inside", (12, 13), 8, patch=(3, 4, 5, 6)),
    DwCase("patch_k3s1_corner", (10, 10), 5, patch=(0, 0, 4, 3)),
    DwCase("patch_k3s2_edge", (15, 14), 12, stride=2, patch=(2, 4, 4, 3)),
    DwCase("patch_k5s1_inside", (12, 12), 4, kernel=5, patch=(2, 3, 5, 5)),
]


def layer_geometry(case: DwCase) -> tuple[int, int, int, int]:
    """(out_h, out_w, pad_top, pad_left) of the whole layer (TFLite padding)."""
    (h, w), k, s = case.size, case.kernel, case.stride
    if case.padding == "SAME":
        out_h, out_w = -(-h // s), -(-w // s)
        pad_top = max((out_h - 1) * s + k - h, 0) // 2
        pad_left = max((out_w - 1) * s + k - w, 0) // 2
        return out_h, out_w, pad_top, pad_left
    return (h - k) // s + 1, (w - k) // s + 1, 0, 0


def dw_graph(case: DwCase, seed: int = 0) -> tuple[Graph, Op]:
    """A one-op graph with random weights, per-channel scales and biases (a patch: the frame in, the
    patch's outputs out, with the padding that aligns them)."""
    rng = np.random.default_rng(seed)
    (h, w), k, c = case.size, case.kernel, case.channels
    out_h, out_w, pad_top, pad_left = layer_geometry(case)
    if case.patch is not None:
        out_h, out_w = case.patch[2:]
    weights = rng.integers(-127, 128, size=(1, k, k, c), dtype=np.int8)
    w_scales = rng.uniform(0.004, 0.02, size=c)
    bias = rng.integers(-3000, 3000, size=c).astype(np.int32)
    w_tensor = Tensor(index=1, name="w", shape=weights.shape, dtype="int8", data=weights,
                      quant=Quantization(w_scales.astype(np.float64), np.zeros(c, dtype=np.int64), axis=3))
    tensors = [int8_tensor(0, (1, h, w, c), IN_SCALE, IN_ZP), w_tensor, const_tensor(2, bias),
               int8_tensor(3, (1, out_h, out_w, c), OUT_SCALE, OUT_ZP)]
    options = {"padding": case.padding, "stride_h": case.stride, "stride_w": case.stride,
               "depth_multiplier": 1}
    graph, op = single_op_graph("DEPTHWISE_CONV_2D", tensors, [0, 1, 2], [3], options)
    op.attrs["act_min"], op.attrs["act_max"] = case.act
    if case.patch is not None:
        s = case.stride
        op.attrs["patch_pads"] = (pad_top - case.patch[0] * s, pad_left - case.patch[1] * s)
    return graph, op


def reference(case: DwCase, graph: Graph, x: np.ndarray) -> np.ndarray:
    """TFLite DepthwiseConvPerChannel with exact integer arithmetic (taps outside the input add nothing)."""
    (h, w), k, s, c = case.size, case.kernel, case.stride, case.channels
    out_h, out_w = graph.tensor(3).shape[1:3]
    _, _, pad_top, pad_left = layer_geometry(case)
    if case.patch is not None:
        pad_top, pad_left = pad_top - case.patch[0] * s, pad_left - case.patch[1] * s
    weights = graph.tensor(1).data.astype(np.int64).reshape(k, k, c)
    margin = k + s * max(out_h, out_w) + abs(pad_top) + abs(pad_left)
    padded = np.zeros((h + 2 * margin, w + 2 * margin, c), dtype=np.int64)
    padded[margin:margin + h, margin:margin + w] = x.reshape(h, w, c).astype(np.int64) - IN_ZP
    acc = np.zeros((out_h, out_w, c), dtype=np.int64) + graph.tensor(2).data.astype(np.int64)
    for ky in range(k):
        for kx in range(k):
            y, x0 = margin - pad_top + ky, margin - pad_left + kx
            acc += padded[y:y + s * out_h:s, x0:x0 + s * out_w:s] * weights[ky, kx]
    return requantize_per_channel(acc, IN_SCALE, graph.tensor(1).quant.scale, OUT_SCALE, OUT_ZP, case.act)


def lowered(case: DwCase) -> tuple[Graph, KernelCall]:
    graph, op = dw_graph(case)
    call = lower_op(op, graph)
    assert call.kernel == KERNEL, f"{case.name}: lowered to {call.kernel}"
    if case.layout is not None:
        group, kind = case.layout
        rows = call.params["padded_h"] if kind == "plane" else 3
        assert (call.params["channel_group"], call.params["ring_rows"]) == (group, rows), (
            f"{case.name}: layout {call.params['channel_group']} x {call.params['ring_rows']} rows")
    return graph, call


def output_shift(call: KernelCall) -> int | None:
    """Where the tests place the output: on the input (shift 0) when the kernel may run in place."""
    return 0 if any(0 in rule.exact for rule in call.overlaps) else None


def test_layouts_fit_the_old_plane_or_an_eighth_of_the_input() -> None:
    # person_detect's widest layer (48x48x16, stride 2, the peak): four rings, far below the byte plane
    assert channelwise_layout((3, 3), (49, 49), 1, 16, 48 * 48 * 16) == (4, 3, 4 * 3 * 100 + 16)
    # 6x6x128: four whole planes fit an eighth of the input
    assert channelwise_layout((3, 3), (8, 8), 1, 128, 6 * 6 * 128) == (4, 8, 4 * 8 * 16 + 16)
    # channels not a multiple of 4: one plane, else one ring
    assert channelwise_layout((3, 3), (8, 8), 1, 34, 6 * 6 * 34) == (1, 8, 8 * 16 + 16)
    assert channelwise_layout((3, 3), (8, 8), 1, 6, 6 * 6 * 6) == (1, 3, 3 * 16 + 16)
    assert channelwise_layout((5, 5), (10, 9), 1, 8, 6 * 5 * 8) == (1, 10, 100)  # byte plane


def test_3x3_table_holds_each_channel_in_the_context_order() -> None:
    taps = np.array([[[1, 2, 3], [4, 5, 6], [7, 8, 9]], [[-128, 127, 0], [0, 0, 0], [-1, 1, -1]]],
                    dtype=np.int8)
    rq = {"rq_mult": np.array([11, 21], dtype=np.int32), "rq_add": np.array([12, 22], dtype=np.int32),
          "rq_shift": np.array([13, 23], dtype=np.int32)}
    table = pack_dw3_table(taps, np.array([10, -20], dtype=np.int32), rq)
    assert table.dtype == np.int32 and table.shape == (20,)
    halves = table.view(np.uint32)
    low = (halves & 0xFFFF).astype(np.uint16).view(np.int16)
    high = (halves >> 16).astype(np.uint16).view(np.int16)
    # per kernel row (2*w0, 2*w1), (2*w1, 2*w2), first value in the low half
    assert low[:6].tolist() == [2, 4, 8, 10, 14, 16] and high[:6].tolist() == [4, 6, 10, 12, 16, 18]
    assert table[6:10].tolist() == [10, 11, 12, 13]
    assert low[10:16].tolist() == [-256, 254, 0, 0, -2, 2] and high[10:16].tolist() == [254, 0, 0, 0, 2, -2]
    assert table[16:].tolist() == [-20, 21, 22, 23]


def test_ring_in_place_needs_the_overwritten_rows_staged() -> None:
    def window(in_w: int, out_w: int, stride: int = 1, pad_top: int = 1) -> Window:
        return Window(in_h=8, in_w=in_w, out_h=8 // stride, out_w=out_w, k_h=3, k_w=3, stride_h=stride,
                      stride_w=stride, dilation_h=1, dilation_w=1, pad_top=pad_top, pad_left=1)

    assert ring_keeps_input(window(8, 8), (8, 8), (8, 8), 3)
    assert ring_keeps_input(window(8, 4, 2), (8, 8), (4, 4), 3)
    # output rows wider than input rows overwrite input rows the ring has not staged yet
    assert not ring_keeps_input(window(2, 4), (8, 2), (8, 4), 3)
    _, call = lowered(CASES[7])
    assert output_shift(call) == 0  # a SAME layer keeps running in place


@pytest.fixture(scope="module")
def host_libraries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FlaggedLibrary]:
    require_tool("gcc")
    root = tmp_path_factory.mktemp("dw_m4")
    flags = {"portable": ("-DTK_NO_WIDE",), "wide": ()}
    return {variant: FlaggedLibrary(KERNEL, root, f) for variant, f in flags.items()}


def run_guarded(lib: FlaggedLibrary, call: KernelCall, x: np.ndarray, out_size: int,
                in_place: bool) -> np.ndarray:
    """Run with the output on the input (in place) or apart, the scratch between guard bytes that must
    survive (the declared scratch size is all the kernel may touch)."""
    guard = 64
    arena = np.full(x.size + out_size + 2 * guard, 0x55, dtype=np.int8)
    arena[guard:guard + x.size] = x
    out_at = guard if in_place else guard + x.size
    before = arena.copy()
    scratch = np.full(call.scratch_bytes + 2 * guard, 0xA5, dtype=np.uint8)
    lib.invoke(call, [arena.ctypes.data + guard], [arena.ctypes.data + out_at], scratch.ctypes.data + guard)
    assert (scratch[:guard] == 0xA5).all() and (scratch[guard + call.scratch_bytes:] == 0xA5).all(), (
        f"{call.op.describe()}: the kernel wrote outside its {call.scratch_bytes} scratch bytes")
    outside = np.ones(arena.size, dtype=bool)
    outside[out_at:out_at + out_size] = False
    assert np.array_equal(arena[outside], before[outside]), f"{call.op.describe()}: wrote outside its output"
    return arena[out_at:out_at + out_size].copy()


def check(case: DwCase, got: np.ndarray, want: np.ndarray, what: str) -> None:
    bad = np.flatnonzero(got != want)
    assert not bad.size, (f"{case.name} ({what}): {bad.size} of {want.size} differ, first [{bad[0]}] "
                          f"{got[bad[0]]} != {want[bad[0]]}")


@pytest.mark.parametrize("variant", ["portable", "wide"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_depthwise_matches_tflite_on_host(case: DwCase, variant: str, host_libraries) -> None:
    graph, call = lowered(case)
    lib = host_libraries[variant]
    out_size = graph.tensor(3).num_elements
    for k, x in enumerate(extreme_samples(graph)):
        want = reference(case, graph, x)
        check(case, run_guarded(lib, call, x, out_size, in_place=False), want, f"{variant}, sample {k}")
        if output_shift(call) == 0:
            got = run_guarded(lib, call, x, out_size, in_place=True)
            check(case, got, want, f"{variant} in place, sample {k}")


# --- Cortex-M4 under QEMU -----------------------------------------------------------------------------

APART = 64  # bytes between the input and the output when the kernel may not run in place
TAIL = 16  # bytes after the output that the firmware prints too: they must keep their values


def arena_before(x: np.ndarray, out_size: int, offset: int) -> np.ndarray:
    """The firmware's buffer for one run: the input, then zeros past the output and its tail."""
    arena = np.zeros(max(x.size, offset + out_size) + TAIL, dtype=np.int8)
    arena[:x.size] = x
    return arena


def firmware_source(runs: list[tuple[KernelCall, np.ndarray, int, int]]) -> str:
    """Firmware that runs each (call, input, output size, output offset from the input) on an arena and
    prints the outputs; the scratch sits between canaries that must survive."""
    from tinyml_kit.engine.codegen import render_arrays, render_struct

    lines = ["#include <stdint.h>", "#include <stdio.h>", "#include <string.h>", '#include "tk_platform.h"',
             f'#include "{KERNEL}.h"', "#define TK_ALIGN(n) __attribute__((aligned(n)))", *DUMP_C,
             "static uint32_t scratch[4096 + 8] TK_ALIGN(16);"]
    body = []
    for i, (call, x, out_size, offset) in enumerate(runs):
        lines += [render_arrays(call, f"run{i}"), render_struct(call, f"run{i}", f"run{i}_params", False)]
        arena = arena_before(x, out_size, offset)
        words = (call.scratch_bytes + 3) // 4
        assert words <= 4096, f"run {i}: scratch {call.scratch_bytes} bytes"
        lines.append(f"static int8_t arena{i}[{arena.size}] TK_ALIGN(16) = {{{', '.join(map(str, arena))}}};")
        body += [f"    {{ const void *in[1] = {{arena{i}}}; void *out[1] = {{arena{i} + {offset}}};",
                 "      memset(scratch, 0xA5, sizeof scratch);",
                 f"      {call.function}(&run{i}_params, in, out, scratch + 4);",
                 f"      if (scratch[3] != 0xA5A5A5A5u || scratch[4 + {words}] != 0xA5A5A5A5u) return 1;",
                 f"      dump({i}, arena{i} + {offset}, {out_size + TAIL}); }}"]
    lines += ["int main(int argc, char **argv) {", "    (void)argc; (void)argv;", *body, "    return 0;", "}"]
    return "\n".join(lines) + "\n"


def run_on_qemu(runs: list[tuple[KernelCall, np.ndarray, int, int]], work: Path,
                portable: bool) -> dict[int, np.ndarray]:
    source = work / f"dw_{int(portable)}.c"
    source.write_text(firmware_source(runs))
    return run_m4_cases(source, KERNEL, ["-DTK_NO_DSP"] if portable else [], len(runs),
                        exit_hint=" (1: scratch guard overwritten)")


@pytest.mark.qemu
@pytest.mark.parametrize("portable", [False, True], ids=["dsp", "portable"])
def test_depthwise_matches_tflite_on_cortex_m4(portable: bool, tmp_path: Path) -> None:
    require_tool("arm-none-eabi-gcc")
    require_tool("qemu-system-arm")
    runs, expected = [], []
    for case in CASES:
        graph, call = lowered(case)
        out_size = graph.tensor(3).num_elements
        shift = output_shift(call)
        offset = shift if shift is not None else graph.tensor(0).num_elements + APART
        for x in extreme_samples(graph, count=3):
            runs.append((call, x, out_size, offset))  # in place whenever the lowering allows it
            tail = arena_before(x, out_size, offset)[offset + out_size:offset + out_size + TAIL]
            expected.append((case, np.concatenate([reference(case, graph, x), tail])))
    got = run_on_qemu(runs, tmp_path, portable)
    variant = "portable" if portable else "dsp"
    for i, (case, want) in enumerate(expected):
        check(case, got[i], want, f"{variant} run {i}: the output, then {TAIL} bytes after it")
