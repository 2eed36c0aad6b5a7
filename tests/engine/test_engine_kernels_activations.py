"""RELU, RELU6, LOGISTIC and HARD_SWISH int8 (table-lookup kernel): bit-exact with TFLM for every int8
input value under several quantisations, the fixed-point emulations against float references, overlap
rule and error paths."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_engine_kernels_common import (
    KernelLab,
    ModelSpec,
    check_overlap_rules,
    int8_tensor,
    single_op_graph,
)

from tinyml_kit.engine.errors import UnsupportedOpError
from tinyml_kit.engine.lowering import lower_op
from tinyml_kit.engine.lowering.activations import (
    gemmlowp_logistic,
    hard_swish_function,
    logistic_function,
    relu_function,
)


def _activations(tf, keras):
    """One input feeding the four activations (each becomes its own TFLite op)."""
    x = keras.Input((16, 16, 1), batch_size=1, name="in0")  # 256 elements: every int8 value fits
    outputs = [keras.layers.ReLU()(x), keras.layers.ReLU(max_value=6.0)(x),
               keras.layers.Activation("sigmoid")(x), keras.layers.Activation("hard_swish")(x)]
    return keras.Model(x, outputs)


# Input ranges chosen for different multipliers: hard-swish's "reluish" exponent > 0, < 0 and large.
RANGES = {"wide": (-4.0, 5.0), "narrow": (-0.3, 0.4), "huge": (-60.0, 40.0)}
OPS = ("RELU", "RELU6", "LOGISTIC", "HARD_SWISH")
CASES = [ModelSpec(f"activations_{name}", _activations, {"in0": r}, op)
         for name, r in RANGES.items() for op in OPS]


@pytest.mark.parametrize("spec", CASES, ids=lambda s: f"{s.name}-{s.op_type}")
def test_matches_tflm_for_every_input_value(lab: KernelLab, spec: ModelSpec) -> None:
    summary = lab.verify(spec, samples=20)
    call = summary["calls"][0]
    assert call.kernel == "tk_lut" and call.arrays["table"].shape == (256,)


def test_relu_requantises_and_clamps_at_zero() -> None:
    relu = relu_function(0.05, 10, 0.025, -128)
    assert [relu(x) for x in (-128, 10, 11, 60, 127)] == [-128, -128, -126, -28, 106]


def test_logistic_follows_the_real_function() -> None:
    """gemmlowp's Q4.27 logistic is within 2^-20 of the real sigmoid; the int8 table within one step."""
    for real in (-7.5, -1.0, -0.01, 0.0, 0.3, 2.0, 7.9):
        raw = gemmlowp_logistic(round(real * 2**27), 4)
        assert abs(raw / 2**31 - 1 / (1 + math.exp(-real))) < 2**-20
    scale, zero_point = 0.06, -5
    logistic = logistic_function(scale, zero_point)
    for x in range(-128, 128):
        expected = 256 / (1 + math.exp(-scale * (x - zero_point))) - 128
        assert abs(logistic(x) - min(127.0, expected)) <= 1.0


def test_hard_swish_follows_the_real_function() -> None:
    in_scale, in_zp, out_scale, out_zp = 0.04, 3, 0.03, -90
    hard_swish = hard_swish_function(in_scale, in_zp, out_scale, out_zp)
    for x in range(-128, 128):
        v = in_scale * (x - in_zp)
        expected = np.clip(v * min(max(v + 3, 0), 6) / 6 / out_scale + out_zp, -128, 127)
        assert abs(hard_swish(x) - expected) <= 1.0


@pytest.mark.parametrize("op_type", OPS)
def test_overlap_rule_allows_in_place(lab: KernelLab, op_type: str) -> None:
    out_zp = -128 if op_type == "LOGISTIC" else 4
    tensors = [int8_tensor(0, (3, 7, 5), 0.05, 2), int8_tensor(1, (3, 7, 5), 1 / 256, out_zp)]
    graph, op = single_op_graph(op_type, tensors, [0], [1])
    assert lower_op(op, graph).overlaps[0].max_shift == 0
    assert check_overlap_rules(lab, graph, op) == 1


def test_errors_name_the_op_and_the_fix() -> None:
    tensors = [int8_tensor(0, (8,), 0.05, 2), int8_tensor(1, (8,), 1 / 256, 0)]
    graph, op = single_op_graph("LOGISTIC", tensors, [0], [1])
    with pytest.raises(UnsupportedOpError, match=r"op #0 \(LOGISTIC\).*zero point 0.*-128"):
        lower_op(op, graph)
    tensors = [int8_tensor(0, (8,), dtype="int16"), int8_tensor(1, (8,))]
    graph, op = single_op_graph("HARD_SWISH", tensors, [0], [1])
    with pytest.raises(UnsupportedOpError, match=r"op #0 \(HARD_SWISH\).*int16.*Re-export"):
        lower_op(op, graph)
    tensors = [int8_tensor(0, (8,), 0.001, 0), int8_tensor(1, (8,), 1e-6, 0)]
    graph, op = single_op_graph("HARD_SWISH", tensors, [0], [1])
    with pytest.raises(UnsupportedOpError, match=r"op #0 \(HARD_SWISH\).*TFLM rejects"):
        lower_op(op, graph)
