"""The wide paths of hosted 64-bit builds (TK_WIDE in tk_simd.h: blocked GEMM, channel-vectorised
depthwise, 8-output fully connected, vector requantisation): bit-exact with the scalar requantisation
and with TFLM, through ctypes (generic 8-lane code, -O2) and through whole host projects (-march=native,
AVX2 where the machine has it), on the shapes that hit their edges: pixel counts that are not a multiple
of the 16-pixel block, channel counts that are not a multiple of 4 or 8, odd output channels, every
depthwise kernel size and stride, in-place placement; and the same models on Cortex-M4 (slow tier)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_engine_kernels_common import (
    KERNEL_DIR,
    KernelLab,
    ModelSpec,
    assert_same,
    random_samples,
    read_graph,
)
from tk_testing import require_tool

from tinyml_kit.engine import tflm
from tinyml_kit.engine.lowering import lower_op
from tinyml_kit.engine.project import compile

_VECTOR_REQUANT_CHECK = r"""
#include <stdio.h>
#include "tk_requant.h"
#if !TK_WIDE
int main(void) { puts("no wide path"); return 2; }
#else
static uint64_t s = 88172645463325252ull;
static uint64_t next(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }
static int32_t any_acc(long it) {
    const int32_t lim = 1 << (int32_t)(next() % 31);
    int32_t acc = (int32_t)(next() % (2u * (uint32_t)lim)) - lim;
    if (it % 3 == 0) acc = (int32_t)(next() % 4001) - 2000;
    return acc;
}
int main(void) {
    long bad = 0;
    for (long it = 0; it < 200000; ++it) {
        tk_v8i acc, acc2, mult, add, shift, lshift;
        int32_t zp[8];
        for (int i = 0; i < 8; ++i) {
            const int32_t r = 1 + (int32_t)(next() % 20);
            mult[i] = (int32_t)((1u << 30) + (uint32_t)(next() % (1u << 30)));
            zp[i] = (int32_t)(next() % 256) - 128;
            const int32_t a = any_acc(it) / 2;
            acc[i] = a, acc2[i] = 2 * a, shift[i] = r;
            add[i] = (1 << (r - 1)) + zp[i] * (1 << r);
            lshift[i] = (int32_t)(next() % 32) - 31 + (it % 4 == 0 ? (int32_t)(next() % 8) : 0);
            if (lshift[i] > 0) acc[i] /= 1 << lshift[i]; /* keep x << left inside int32, as TFLite does */
        }
        const int32_t lo = it % 5 == 0 ? -20 : -128, hi = it % 7 == 0 ? 90 : 127;
        const tk_v8i lanes = tk_v8i_rq_fast_lanes(acc2, mult, add, shift, lo, hi);
        const tk_v8i general = tk_v8i_requantize(acc, mult, lshift);
        for (int i = 0; i < 8; ++i) {
            const tk_v8i one = tk_v8i_rq_fast(acc2, mult[i], add[i], shift[i], lo, hi);
            const int32_t want_fast = tk_rq_fast_s8(acc2[i], mult[i], add[i], shift[i], lo, hi);
            const int32_t want_general = tk_requantize(acc[i], mult[i], lshift[i]);
            if ((lanes[i] != want_fast || one[i] != want_fast || general[i] != want_general) && bad++ < 5) {
                printf("lane %d acc %ld mult %ld shift %ld: %ld %ld (want %ld), %ld (want %ld)\n", i,
                       (long)acc[i], (long)mult[i], (long)lshift[i], (long)lanes[i], (long)one[i],
                       (long)want_fast, (long)general[i], (long)want_general);
            }
        }
    }
    printf("%ld mismatches\n", bad);
    return bad != 0;
}
#endif
"""


@pytest.mark.parametrize("flags", [["-O2"], ["-O3", "-march=native"]], ids=["generic", "native"])
def test_vector_requantisation_equals_the_scalar_one(tmp_path: Path, flags: list[str]) -> None:
    require_tool("gcc")
    source = tmp_path / "check.c"
    source.write_text(_VECTOR_REQUANT_CHECK)
    binary = tmp_path / "check"
    subprocess.run(["gcc", *flags, "-std=c99", "-Wall", "-Werror", f"-I{KERNEL_DIR}", str(source), "-o",
                    str(binary)], check=True, capture_output=True)
    done = subprocess.run([str(binary)], capture_output=True, text=True, timeout=120)
    if done.returncode == 2:
        pytest.skip(f"no wide path on this machine ({done.stdout.strip()})")
    assert done.returncode == 0, done.stdout


def _pointwise(tf, keras):
    x = keras.Input((5, 5, 6), batch_size=1, name="in0")  # 25 pixels: a full block of 16 and 9
    y = keras.layers.Conv2D(10, 1, activation="relu6")(x)  # out_c % 4 == 2
    y = keras.layers.Conv2D(7, 1)(y)  # odd out_c, in_c % 4 == 2
    return keras.Model(x, keras.layers.Conv2D(13, 1, activation="relu")(y))


def _first_conv(tf, keras):
    x = keras.Input((9, 9, 3), batch_size=1, name="in0")  # three input channels: the short gather
    y = keras.layers.Conv2D(6, 3, strides=2, padding="same")(x)
    return keras.Model(x, keras.layers.Conv2D(5, 3, padding="same", activation="relu")(y))


def _depthwise(tf, keras):
    x = keras.Input((11, 11, 13), batch_size=1, name="in0")  # 13 channels: a vector of 8 and 5 lanes
    y = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    y = keras.layers.DepthwiseConv2D(5, strides=2, padding="same")(y)
    y = keras.layers.DepthwiseConv2D(3, strides=2, padding="same")(keras.layers.ReLU()(y))
    z = keras.layers.DepthwiseConv2D(7, padding="valid")(x)
    return keras.Model(x, [y, z])


def _dense(tf, keras):
    x = keras.Input((21,), batch_size=3, name="in0")  # depth 21 = 2 * 8 + 5, three batches
    y = keras.layers.Dense(19, activation="relu")(x)  # 19 outputs = 2 * 8 + 3
    y = keras.layers.Dense(8)(y)
    col = keras.Input((1,), batch_size=1, name="in1")  # depth 1: a column of weights
    return keras.Model([x, col], [keras.layers.Dense(1)(y), keras.layers.Dense(16)(col)])


SPECS = {
    "pointwise": ModelSpec("wide_pointwise", _pointwise, {"in0": (-3.0, 3.0)}, "CONV_2D"),
    "first_conv": ModelSpec("wide_first_conv", _first_conv, {"in0": (-1.0, 1.0)}, "CONV_2D"),
    "depthwise": ModelSpec("wide_depthwise", _depthwise, {"in0": (-2.0, 2.0)}, "DEPTHWISE_CONV_2D"),
    "dense": ModelSpec("wide_dense", _dense, {"in0": (-4.0, 4.0), "in1": (-1.0, 1.0)}, "FULLY_CONNECTED"),
}
WIDE_KERNELS = {"pointwise": "tk_conv2d_1x1", "first_conv": "tk_conv2d_gemm", "depthwise": "tk_dwconv2d_ch",
                "dense": "tk_fc"}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_wide_kernels_are_bitexact_through_ctypes(lab: KernelLab, name: str) -> None:
    summary = lab.verify(SPECS[name], samples=6)
    assert {c.kernel for c in summary["calls"]} == {WIDE_KERNELS[name]}


@pytest.mark.parametrize("name", ["pointwise", "first_conv", "depthwise"])
def test_wide_kernels_keep_their_overlap_rules(lab: KernelLab, name: str) -> None:
    """Every op with its output at each placement its overlap rule allows gives the separate result."""
    graph = read_graph(lab.model(SPECS[name]))
    rng = np.random.default_rng(5)
    checked = 0
    for op in (o for o in graph.ops if o.type == SPECS[name].op_type):
        call = lower_op(op, graph)
        lib = lab.library(call.kernel)
        out = graph.tensor(call.outputs[0])
        feed = [rng.integers(-128, 128, size=graph.tensor(call.inputs[0]).num_elements, dtype=np.int8)]
        expected = lib.run(call, feed, out.num_elements)
        for rule in call.overlaps:
            for shift in ([rule.max_shift] if rule.max_shift is not None else []) + list(rule.exact):
                got = lib.run_overlapped(call, feed, out.num_elements, 0, shift)
                assert_same(got, expected, f"{op.describe()} with its output at shift {shift}")
                checked += 1
    assert checked


ON_QEMU = pytest.param("cortex-m4", marks=[pytest.mark.qemu, pytest.mark.slow])


@pytest.mark.parametrize("target", ["host", ON_QEMU])
@pytest.mark.parametrize("name", sorted(SPECS))
def test_wide_models_compile_bitexact(lab: KernelLab, tmp_path: Path, name: str, target: str) -> None:
    require_tool("gcc")
    if target == "cortex-m4":
        require_tool("arm-none-eabi-gcc")
        require_tool("qemu-system-arm")
    path = lab.model(SPECS[name])
    project = compile(path, tmp_path / name, target=target)
    assert WIDE_KERNELS[name] in {c["kernel"] for c in project.manifest["calls"]}
    samples = random_samples(read_graph(path), 6)
    ours = project.run_many(samples)
    reference = tflm.run(path, samples)
    for s, (got, expected) in enumerate(zip(ours, reference, strict=True)):
        expected = list(expected) if isinstance(expected, tuple | list) else [expected]
        for k, (x, y) in enumerate(zip(got, expected, strict=True)):
            assert_same(x.reshape(-1), y.reshape(-1), f"{name} on {target}: sample {s} output {k}")
