"""All the ops of these kernels in one model, through the whole compiler (reader, passes, lowering,
planner with the overlap rules, codegen, gcc), bit-exact with TFLM on the host and on QEMU; and the
kernels compiled for Cortex-M4 with warnings as errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_engine_kernels_common import KERNEL_DIR, convert_model, random_samples, read_graph
from tk_testing import require_tool

from tinyml_kit.engine import tflm
from tinyml_kit.engine.project import compile

KERNELS = ("tk_add", "tk_mul", "tk_maxpool", "tk_mean", "tk_pad", "tk_concat", "tk_transpose",
           "tk_resize_nn", "tk_lut")
CHAIN_OPS = {"ADD", "MAX_POOL_2D", "LOGISTIC", "MUL", "PAD", "TRANSPOSE", "CONCATENATION",
             "RESIZE_NEAREST_NEIGHBOR", "HARD_SWISH", "MEAN", "RELU6"}


def _chain(tf, keras):
    a = keras.Input((8, 8, 4), batch_size=1, name="in0")
    b = keras.Input((1, 1, 4), batch_size=1, name="in1")
    x = keras.layers.ReLU()(keras.layers.Add()([a, b]))  # ADD with a fused RELU
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Multiply()([x, keras.layers.Activation("sigmoid")(x)])
    p = keras.layers.ZeroPadding2D(((1, 0), (0, 1)))(x)
    t = keras.layers.Lambda(lambda v: tf.transpose(v, [0, 2, 1, 3]))(p)
    c = keras.layers.Concatenate()([p, t])
    r = keras.layers.Lambda(lambda v: tf.image.resize(v, (10, 10), "nearest"))(c)
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Activation("hard_swish")(r))
    return keras.Model([a, b], [pooled, keras.layers.ReLU(max_value=6.0)(r)])


@pytest.fixture(scope="module")
def chain_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = convert_model(_chain, {"in0": (-2.0, 2.0), "in1": (-1.0, 1.0)},
                         tmp_path_factory.mktemp("chain") / "chain.tflite")
    assert {op.type for op in read_graph(path).ops} == CHAIN_OPS
    return path


ON_QEMU = pytest.param("cortex-m4", marks=[pytest.mark.qemu, pytest.mark.slow])


@pytest.mark.parametrize("target", ["host", ON_QEMU])
def test_chain_compiles_bitexact(chain_model: Path, tmp_path: Path, target: str) -> None:
    require_tool("gcc")
    if target == "cortex-m4":
        require_tool("arm-none-eabi-gcc")
        require_tool("qemu-system-arm")
    project = compile(chain_model, tmp_path / "project", target=target)
    samples = random_samples(read_graph(chain_model), 12)
    ours = project.run_many(samples)
    reference = tflm.run(chain_model, samples)
    for s, (got, expected) in enumerate(zip(ours, reference, strict=True)):
        expected = list(expected) if isinstance(expected, tuple) else [expected]
        for k, (x, y) in enumerate(zip(got, expected, strict=True)):
            np.testing.assert_array_equal(x.reshape(-1), np.asarray(y).reshape(-1),
                                          err_msg=f"sample {s} output {k} differs from TFLM")


def test_kernels_compile_for_cortex_m4_without_warnings(tmp_path: Path) -> None:
    compiler = require_tool("arm-none-eabi-gcc")
    flags = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-std=c99", "-O2",
             "-Wall", "-Wextra", "-Wpedantic", "-Werror", f"-I{KERNEL_DIR}"]
    for kernel in KERNELS:
        done = subprocess.run([compiler, *flags, "-c", str(KERNEL_DIR / f"{kernel}.c"),
                               "-o", str(tmp_path / f"{kernel}.o")], capture_output=True, text=True)
        assert done.returncode == 0, f"{kernel}.c:\n{done.stderr}"
