"""ADD and MUL int8 kernels: bit-exact with TFLM (same shapes, broadcasting, fused activations,
different input scales, constant operands), overlap rules and error paths."""

from __future__ import annotations

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
from tinyml_kit.engine.lowering.elementwise import broadcast_layout


def _binary_model(layer: str, shapes: tuple[tuple[int, ...], tuple[int, ...]], activation: str | None = None):
    def build(tf, keras):
        a = keras.Input(shapes[0][1:], batch_size=1, name="in0")
        b = keras.Input(shapes[1][1:], batch_size=1, name="in1")
        y = getattr(keras.layers, layer)()([a, b])
        if activation == "relu":
            y = keras.layers.ReLU()(y)
        elif activation == "relu6":
            y = keras.layers.ReLU(max_value=6.0)(y)
        return keras.Model([a, b], y)

    return build


RANGES = {"in0": (-1.0, 1.0), "in1": (-6.0, 3.0)}  # different scales and zero points
ELEMENTWISE_CASES = [
    ModelSpec("add_same_shape", _binary_model("Add", ((1, 6, 7, 5), (1, 6, 7, 5))), RANGES, "ADD"),
    ModelSpec("add_broadcast_channel", _binary_model("Add", ((1, 6, 7, 5), (1, 1, 1, 5))), RANGES, "ADD"),
    ModelSpec("add_broadcast_hw_relu", _binary_model("Add", ((1, 6, 7, 5), (1, 6, 7, 1)), "relu"), RANGES,
              "ADD"),
    ModelSpec("add_relu6", _binary_model("Add", ((1, 5, 5, 8), (1, 5, 5, 8)), "relu6"), RANGES, "ADD"),
    ModelSpec("mul_same_shape", _binary_model("Multiply", ((1, 6, 7, 5), (1, 6, 7, 5))), RANGES, "MUL"),
    ModelSpec("mul_broadcast_channel_relu", _binary_model("Multiply", ((1, 6, 7, 5), (1, 1, 1, 5)), "relu"),
              RANGES, "MUL"),
    ModelSpec("mul_broadcast_row", _binary_model("Multiply", ((1, 4, 6, 3), (1, 4, 1, 3))), RANGES, "MUL"),
]


@pytest.mark.parametrize("spec", ELEMENTWISE_CASES, ids=lambda s: s.name)
def test_matches_tflm(lab: KernelLab, spec: ModelSpec) -> None:
    summary = lab.verify(spec)
    assert summary["ops"] >= 1


def test_constant_operand_matches_tflm(lab: KernelLab) -> None:
    """A constant second operand (a learned per-channel scale) goes to flash, not to the kernel inputs."""

    def build(tf, keras):
        x = keras.Input((5, 5, 4), batch_size=1, name="in0")
        scale = keras.ops.convert_to_tensor(np.linspace(-2.0, 3.0, 4, dtype=np.float32).reshape(1, 1, 1, 4))
        return keras.Model(x, keras.layers.Lambda(lambda v: v * scale + scale)(x))

    for op_type in ("MUL", "ADD"):
        summary = lab.verify(ModelSpec("const_operand", build, {"in0": (-2.0, 2.0)}, op_type))
        assert all(len(c.inputs) == 1 and c.arrays for c in summary["calls"])


def test_broadcast_layout_collapses_dimensions() -> None:
    graph, op = single_op_graph("ADD", [int8_tensor(0, (1,)), int8_tensor(1, (1,)), int8_tensor(2, (1,))],
                                [0, 1], [2])
    layout = broadcast_layout(op, graph, (2, 3, 4, 5), (1, 1, 1, 5), (2, 3, 4, 5))
    assert layout.broadcast and layout.out_shape[-2:] == [24, 5]
    assert layout.strides == ([0, 0, 0, 0, 5, 1], [0, 0, 0, 0, 0, 1])
    same = broadcast_layout(op, graph, (16,), (1, 16), (1, 16))
    assert not same.broadcast and same.size == 16
    rank_extended = broadcast_layout(op, graph, (1, 3, 4, 5), (5,), (1, 3, 4, 5))
    np.testing.assert_array_equal(rank_extended.read_index(1), np.tile(np.arange(5), 12))


@pytest.mark.parametrize("op_type", ["ADD", "MUL"])
@pytest.mark.parametrize("shapes", [((2, 5, 6, 3), (2, 5, 6, 3)), ((1, 5, 6, 3), (1, 1, 1, 3)),
                                    ((1, 1, 6, 1), (1, 5, 6, 3)), ((4, 7), (4, 7))])
def test_overlap_rules_hold_at_max_shift(lab: KernelLab, op_type: str, shapes) -> None:
    out_shape = tuple(np.broadcast_shapes(*shapes))
    tensors = [int8_tensor(0, shapes[0], 0.02, -3), int8_tensor(1, shapes[1], 0.07, 9),
               int8_tensor(2, out_shape, 0.08, 2)]
    graph, op = single_op_graph(op_type, tensors, [0, 1], [2], {"fused_activation_function": "RELU"})
    call = lower_op(op, graph)
    full = [t for t in (0, 1) if tensors[t].shape == out_shape]
    assert {o.input: o.max_shift for o in call.overlaps if o.input in full} == {t: 0 for t in full}
    check_overlap_rules(lab, graph, op)


def test_overlap_beyond_max_shift_corrupts(lab: KernelLab) -> None:
    """Shift 1 past the rule really breaks the result, so the rule (0) is tight."""
    tensors = [int8_tensor(0, (64,), 0.02, -3), int8_tensor(1, (64,), 0.07, 9),
               int8_tensor(2, (64,), 0.08, 2)]
    graph, op = single_op_graph("ADD", tensors, [0, 1], [2])
    call = lower_op(op, graph)
    lib = lab.library(call.kernel)
    rng = np.random.default_rng(1)
    inputs = [rng.integers(-128, 128, 64, dtype=np.int8) for _ in range(2)]
    expected = lib.run(call, inputs, 64)
    assert not np.array_equal(lib.run_overlapped(call, inputs, 64, 0, 1), expected)


def test_same_tensor_twice(lab: KernelLab) -> None:
    """x * x: both kernel inputs are one tensor; the overlap rule is declared once and holds."""
    tensors = [int8_tensor(0, (3, 10), 0.05, 4), int8_tensor(1, (3, 10), 0.1, -7)]
    graph, op = single_op_graph("MUL", tensors, [0, 0], [1])
    assert check_overlap_rules(lab, graph, op) == 1


def test_int16_is_rejected_with_the_op_index() -> None:
    tensors = [int8_tensor(0, (4,), dtype="int16"), int8_tensor(1, (4,)), int8_tensor(2, (4,))]
    graph, op = single_op_graph("ADD", tensors, [0, 1], [2])
    with pytest.raises(UnsupportedOpError, match=r"op #0 \(ADD\).*int16.*int8"):
        lower_op(op, graph)


def test_two_constants_and_bad_broadcast_are_rejected() -> None:
    tensors = [int8_tensor(0, (4,), data=np.zeros(4, np.int8)),
               int8_tensor(1, (4,), data=np.ones(4, np.int8)), int8_tensor(2, (4,))]
    graph, op = single_op_graph("MUL", tensors, [0, 1], [2])
    graph.inputs = []
    with pytest.raises(UnsupportedOpError, match="two constant inputs"):
        lower_op(op, graph)
    tensors = [int8_tensor(0, (3, 4)), int8_tensor(1, (2, 4)), int8_tensor(2, (3, 4))]
    graph, op = single_op_graph("ADD", tensors, [0, 1], [2])
    with pytest.raises(UnsupportedOpError, match="cannot broadcast"):
        lower_op(op, graph)
    alternating = (2, 1, 2, 1, 2, 1, 2, 1)
    tensors = [int8_tensor(0, alternating), int8_tensor(1, (*alternating[1:], 2)), int8_tensor(2, (2,) * 8)]
    graph, op = single_op_graph("ADD", tensors, [0, 1], [2])
    with pytest.raises(UnsupportedOpError, match="8 separate dimension groups; at most 6"):
        lower_op(op, graph)
