"""The fast kernels: exact fast requantisation, pre-packed filters, compile-time kernel choice, the DSP
(Cortex-M4) path against the portable C path under QEMU, and per-op profiling."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from tk_testing import require_tool

from tinyml_kit.engine import bench, compile
from tinyml_kit.engine import modelgen as mg
from tinyml_kit.engine.lowering.fastrq import fast_requant, pack_depthwise_filter, pack_gemm_filter
from tinyml_kit.engine.passes import run_passes
from tinyml_kit.engine.project import lower_graph
from tinyml_kit.engine.reader import read_tflite

KERNELS = Path(__file__).resolve().parents[2] / "firmware" / "kernels"

_REQUANT_CHECK = r"""
#include <stdio.h>
#include "tk_requant.h"
static uint64_t s = 88172645463325252ull;
static uint64_t next(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }
int main(void) {
    long bad = 0;
    for (long it = 0; it < 3000000; ++it) {
        const int32_t r = 1 + (int32_t)(next() % 20);
        int32_t m = (int32_t)((1u << 30) + (uint32_t)(next() % (1u << 30)));
        if (it % 7 == 0) m = (int32_t)(next() % 0x7fffffffu);
        const int32_t zp = (int32_t)(next() % 256) - 128;
        const int32_t lim = 1 << (int32_t)(next() % 30);
        int32_t acc = (int32_t)(next() % (2u * (uint32_t)lim)) - lim;
        if (it % 3 == 0) acc = (int32_t)(next() % 4001) - 2000;
        const int32_t lo = it % 5 == 0 ? zp : -128, hi = 127;
        int32_t want = tk_requantize(acc, m, -r) + zp;
        want = want < lo ? lo : (want > hi ? hi : want);
        const int32_t add = (1 << (r - 1)) + zp * (1 << r);
        const int32_t got = lo == -128 ? tk_rq_fast_sat8(2 * acc, m, add, r)
                                       : tk_rq_fast_s8(2 * acc, m, add, r, lo, hi);
        if (got != want && bad++ < 5) printf("acc %ld m %ld r %ld zp %ld: %ld != %ld\n", (long)acc,
                                             (long)m, (long)r, (long)zp, (long)got, (long)want);
    }
    printf("%ld mismatches\n", bad);
    return bad != 0;
}
"""


def test_fast_requantisation_equals_tflite_on_random_accumulators(tmp_path: Path) -> None:
    require_tool("gcc")
    source = tmp_path / "check.c"
    source.write_text(_REQUANT_CHECK)
    binary = tmp_path / "check"
    subprocess.run(["gcc", "-O2", "-std=c99", "-Wall", "-Werror", f"-I{KERNELS}", str(source), "-o",
                    str(binary)], check=True)
    done = subprocess.run([str(binary)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout


def test_fast_requantisation_is_refused_where_it_would_not_be_exact() -> None:
    mult = np.array([1 << 30, 1518500250], dtype=np.int32)
    rq = fast_requant(mult, np.array([-7, -1]), output_zero_point=-5, bound=1 << 20)
    assert rq is not None
    assert rq["rq_shift"].tolist() == [7, 1]
    assert rq["rq_add"].tolist() == [(1 << 6) - 5 * (1 << 7), 1 - 5 * 2]
    assert fast_requant(mult, np.array([-7, 0]), 0, 1 << 20) is None  # no right shift on one channel
    assert fast_requant(mult, np.array([-7, 2]), 0, 1 << 20) is None  # a left shift
    assert fast_requant(mult, np.array([-7, -1]), 0, 1 << 30) is None  # 2 * acc could overflow
    assert fast_requant(mult, np.array([-25, -1]), 127, 1 << 20) is None  # add could overflow


def test_filters_are_packed_in_the_order_the_kernels_read() -> None:
    rows = np.arange(1, 16, dtype=np.int8).reshape(3, 5)  # 3 output channels, 5 taps
    packed, k4 = pack_gemm_filter(rows)
    assert k4 == 8 and packed.size == 4 * 8
    # pair 0, group 0: channel 0 taps 0..3 stored w0 w2 w1 w3, then channel 1
    assert packed[:8].tolist() == [1, 3, 2, 4, 6, 8, 7, 9]
    assert packed[8:16].tolist() == [5, 0, 0, 0, 10, 0, 0, 0]  # group 1: tap 4, zero padding
    assert packed[16:24].tolist() == [11, 13, 12, 14, 0, 0, 0, 0]  # pair 1: channel 2 and a zero row
    taps = np.arange(1, 10, dtype=np.int8).reshape(1, 3, 3)
    assert pack_depthwise_filter(taps).tolist() == [2, 6, 4, 0, 8, 12, 10, 0, 14, 18, 16, 0]


def test_kernels_are_chosen_at_compile_time_from_the_graph(shared_models: Path) -> None:
    graph = run_passes(read_tflite(shared_models / "person_detect.tflite"))
    kernels = [c.kernel for c in lower_graph(graph)]
    assert kernels[0] == "tk_conv2d_gemm"  # depthwise with one input channel: a convolution
    assert kernels[1] == "tk_dwconv2d_ch" and kernels[3] == "tk_dwconv2d_ch"  # 3x3 stride 1 and 2
    assert kernels[2] == "tk_conv2d_1x1_c8"  # 8 input channels: a pixel in registers
    assert kernels[4] == "tk_conv2d_1x1"
    assert "tk_conv2d" not in kernels and "tk_dwconv2d" not in kernels


def test_projects_carry_only_the_kernels_they_call(shared_models: Path, tmp_path: Path) -> None:
    project = compile(shared_models / "person_detect.tflite", tmp_path / "p")
    files = {p.name for p in (project.out_dir / "kernels").iterdir()}
    assert {"tk_conv2d_1x1.c", "tk_conv2d_gemm.c", "tk_dwconv2d_ch.c", "tk_gemm.h", "tk_requant.h"} <= files
    assert not {"tk_conv2d.c", "tk_dwconv2d.c", "tk_fc.c", "tk_patch.c"} & files
    makefile = (project.out_dir / "Makefile").read_text()
    assert "-ffunction-sections" in makefile and "--gc-sections" in makefile


@pytest.fixture(scope="module")
def person_m4(shared_models: Path, tmp_path_factory: pytest.TempPathFactory):
    require_tool("arm-none-eabi-gcc")
    require_tool("qemu-system-arm")
    out = tmp_path_factory.mktemp("m4") / "p"
    return compile(shared_models / "person_detect.tflite", out, target="cortex-m4")


@pytest.mark.qemu
def test_dsp_and_portable_paths_are_both_bit_exact_on_cortex_m4(person_m4, shared_models: Path) -> None:
    path = shared_models / "person_detect.tflite"
    samples = mg.random_inputs(path, 2, seed=21)
    reference, _ = bench.reference_run(path, samples)
    dsp = person_m4.run_many(samples)
    dsp_instructions = person_m4.last_instructions
    portable = person_m4.run_many(samples, portable=True)
    assert bench.compare_outputs(dsp, reference)[0] and bench.compare_outputs(portable, reference)[0]
    assert portable_instructions_exceed(person_m4.last_instructions, dsp_instructions)


def portable_instructions_exceed(portable: int | None, dsp: int | None) -> bool:
    """The DSP build must really run other code (SMLAD...) than the portable one, and run faster."""
    return portable is not None and dsp is not None and portable > 1.5 * dsp


@pytest.mark.qemu
def test_profile_reports_every_op_with_its_instructions(person_m4, shared_models: Path) -> None:
    samples = mg.random_inputs(shared_models / "person_detect.tflite", 1, seed=22)
    rows = person_m4.profile(samples)
    assert len(rows) == len(person_m4.manifest["profile_slots"])
    assert all(r["unit"] == "instructions" and r["count"] > 0 for r in rows)
    person_m4.run_many(samples)
    total = person_m4.last_instructions
    assert 0.9 * total < sum(r["count"] for r in rows) <= 1.02 * total
    assert sum(r["macs"] for r in rows) == person_m4.manifest["executed_macs"]
    pointwise = [r for r in rows if r["function"] == "tk_conv2d_1x1_s8"]
    assert sum(r["macs"] for r in pointwise) / sum(r["count"] for r in pointwise) > 0.5


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.parametrize("name", ["mcunet_style", "patch_chain_same", "dwconv_k7_s2", "dwconv_k5_valid",
                                  "conv_k5_s2_same", "dwconv_k3_s2_relu6"])
def test_dsp_and_portable_paths_agree_on_generated_models(name: str, tmp_path: Path) -> None:
    require_tool("arm-none-eabi-gcc")
    require_tool("qemu-system-arm")
    path = mg.generate(name)
    project = compile(path, tmp_path / name, target="cortex-m4")
    samples = mg.random_inputs(path, 3, seed=23)
    reference, _ = bench.reference_run(path, samples)
    assert bench.compare_outputs(project.run_many(samples), reference)[0]
    assert bench.compare_outputs(project.run_many(samples, portable=True), reference)[0]
