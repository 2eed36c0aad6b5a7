"""Grouped CONV_2D and RESIZE_BILINEAR (the ops TinyTL's lite residual branches add): int8 kernels
bit-exact with TFLM on converter-made models, overlap rules, error paths, and a whole compiled model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_engine_kernels_common import (
    KernelLab,
    ModelSpec,
    check_overlap_rules,
    const_tensor,
    int8_tensor,
    single_op_graph,
)

from tinyml_kit.engine.errors import UnsupportedOpError
from tinyml_kit.engine.lowering import lower_op
from tinyml_kit.engine.lowering.resize_bilinear import bilinear_axis

# --- grouped CONV_2D --------------------------------------------------------------------------------

# (groups, kernel, stride, padding, filters, activation, bias): several branches of one model each
GROUPED = {
    "groups2": [(2, 1, 1, "same", 6, None, True), (2, 3, 1, "same", 8, "relu", False),
                (2, 3, 2, "valid", 4, None, True), (2, 5, 2, "same", 6, "relu6", True),
                (2, 5, 1, "valid", 2, None, True)],
    "groups4": [(4, 1, 2, "valid", 8, None, True), (4, 3, 1, "valid", 12, "relu", True),
                (4, 3, 2, "same", 4, None, False), (4, 5, 1, "same", 8, None, True),
                (4, 5, 2, "valid", 4, "relu", True)],
}  # fmt: skip


def _grouped_convs(shape, layers):
    def build(tf, keras):
        x = keras.Input(shape, batch_size=1, name="in0")
        outputs = [keras.layers.Conv2D(filters, kernel, strides=stride, padding=padding, groups=groups,
                                       activation=act, use_bias=bias, bias_initializer="random_normal")(x)
                   for groups, kernel, stride, padding, filters, act, bias in layers]
        return keras.Model(x, outputs)

    return build


GROUPED_CASES = [
    ModelSpec("grouped_conv_groups2", _grouped_convs((9, 10, 8), GROUPED["groups2"]), {"in0": (-2, 3)},
              "CONV_2D"),
    ModelSpec("grouped_conv_groups4", _grouped_convs((11, 9, 8), GROUPED["groups4"]), {"in0": (-1, 4)},
              "CONV_2D"),
]


@pytest.mark.parametrize("spec", GROUPED_CASES, ids=lambda s: s.name)
def test_grouped_conv_matches_tflm(lab: KernelLab, spec: ModelSpec) -> None:
    summary = lab.verify(spec, samples=12)
    graph, calls = summary["graph"], summary["calls"]
    layers = GROUPED[spec.name.rsplit("_", 1)[1]]
    assert sorted(c.params["groups"] for c in calls) == sorted(layer[0] for layer in layers)
    for call in calls:  # the converter kept the groups: filters see in_c / groups channels
        assert graph.tensor(call.op.inputs[1]).shape[-1] * call.params["groups"] == call.params["in_c"]
        assert call.function == "tk_conv2d_s8"
    seen = {(c.params["k_h"], c.params["stride_h"], c.op.options["padding"]) for c in calls}
    assert len(seen) == len(calls)


@pytest.mark.parametrize("groups", [2, 4])
def test_grouped_conv_overlap_rule(lab: KernelLab, groups: int) -> None:
    rng = np.random.default_rng(groups)
    in_c, out_c = 8, 12
    weights = int8_tensor(1, (out_c, 3, 3, in_c // groups), 0.02,
                          data=rng.integers(-127, 128, (out_c, 3, 3, in_c // groups), dtype=np.int8))
    tensors = [int8_tensor(0, (1, 6, 7, in_c), 0.05, 3), weights,
               const_tensor(2, rng.integers(-500, 500, out_c)), int8_tensor(3, (1, 6, 7, out_c), 0.1, -2)]
    graph, op = single_op_graph("CONV_2D", tensors, [0, 1, 2], [3],
                                {"padding": "SAME", "stride_h": 1, "stride_w": 1,
                                 "fused_activation_function": "NONE"})
    assert lower_op(op, graph).params["groups"] == groups
    assert check_overlap_rules(lab, graph, op) == 1


def test_conv_with_uneven_groups_is_refused() -> None:
    weights = int8_tensor(1, (4, 1, 1, 3), 0.02, data=np.ones((4, 1, 1, 3), np.int8))
    tensors = [int8_tensor(0, (1, 4, 4, 8)), weights, int8_tensor(2, (1, 4, 4, 4))]
    graph, op = single_op_graph("CONV_2D", tensors, [0, 1, -1], [2],
                                {"padding": "VALID", "stride_h": 1, "stride_w": 1})
    with pytest.raises(UnsupportedOpError, match=r"op #0 \(CONV_2D\).*8 input channels.*depth 3"):
        lower_op(op, graph)


# --- RESIZE_BILINEAR --------------------------------------------------------------------------------

RESIZE = "RESIZE_BILINEAR"
RANGE = {"in0": (-2.0, 3.0)}


def _resizes(shape, sizes, resize, batch=1):
    """One input resized to several sizes (one RESIZE_BILINEAR each) by ``resize(tf, v, size)``."""

    def build(tf, keras):
        x = keras.Input(shape, batch_size=batch, name="in0")
        return keras.Model(x, [keras.layers.Lambda(lambda v, s=s: resize(tf, v, s))(x) for s in sizes])

    return build


def _tf2(tf, v, size):
    return tf.image.resize(v, size, "bilinear")  # half_pixel_centers=True, align_corners=False


def _v1_align_corners(tf, v, size):
    return tf.compat.v1.image.resize_bilinear(v, size, align_corners=True)


def _v1_legacy(tf, v, size):
    return tf.compat.v1.image.resize_bilinear(v, size)  # neither option: the legacy asymmetric mapping


SIZES = [(10, 12), (13, 11), (4, 3), (1, 1), (5, 17), (9, 2)]  # from 5x6: x2, non-integer, down, mixed


def _upsampling2d(tf, keras):
    x = keras.Input((5, 6, 3), batch_size=1, name="in0")
    return keras.Model(x, keras.layers.UpSampling2D(2, interpolation="bilinear")(x))


RESIZE_CASES = [
    ModelSpec("bilinear_half_pixel", _resizes((5, 6, 3), SIZES, _tf2), RANGE, RESIZE),
    ModelSpec("bilinear_align_corners", _resizes((5, 6, 3), SIZES, _v1_align_corners), RANGE, RESIZE),
    ModelSpec("bilinear_legacy", _resizes((5, 6, 3), SIZES, _v1_legacy), RANGE, RESIZE),
    ModelSpec("bilinear_batch2_from_1x1", _resizes((1, 1, 4), [(3, 2)], _tf2, batch=2), RANGE, RESIZE),
    ModelSpec("bilinear_keras_upsampling2d", _upsampling2d, RANGE, RESIZE),
]
EXPECTED_OPTIONS = {"bilinear_half_pixel": (False, True), "bilinear_align_corners": (True, False),
                    "bilinear_legacy": (False, False), "bilinear_batch2_from_1x1": (False, True),
                    "bilinear_keras_upsampling2d": (False, True)}  # fmt: skip


@pytest.mark.parametrize("spec", RESIZE_CASES, ids=lambda s: s.name)
def test_resize_bilinear_matches_tflm(lab: KernelLab, spec: ModelSpec) -> None:
    summary = lab.verify(spec, samples=16)
    for call in summary["calls"]:
        options = call.op.options
        assert (bool(options["align_corners"]), bool(options["half_pixel_centers"])) == \
            EXPECTED_OPTIONS[spec.name]
    if len(summary["calls"]) > 1:  # the multi-size models kept one op per requested size
        assert {(c.params["out_h"], c.params["out_w"]) for c in summary["calls"]} == set(SIZES)


def test_bilinear_axis_follows_tflm_integer_rules() -> None:
    up = bilinear_axis(4, 2, False, True)  # x2 with half-pixel centres: scale 512, offset -256
    assert up.lower.tolist() == [0, 0, 0, 1] and up.upper.tolist() == [0, 1, 1, 1]
    assert up.weight.tolist() == [-256, 256, 768, 256]  # the first row extrapolates; the last clamps
    corners = bilinear_axis(5, 3, True, False)  # scale (2 * 1024) / 4 = 512
    assert corners.lower.tolist() == [0, 0, 1, 1, 2] and corners.weight.tolist() == [0, 512, 0, 512, 0]
    legacy = bilinear_axis(3, 7, False, False)  # scale round(7 * 1024 / 3) = 2389
    assert legacy.lower.tolist() == [0, 2, 4] and legacy.weight.tolist() == [0, 341, 682]


def _resize_graph(in_hw, out_hw, align=False, half=True, out_quant=(0.05, 0), batch=1, channels=3):
    tensors = [int8_tensor(0, (batch, *in_hw, channels)), const_tensor(1, list(out_hw)),
               int8_tensor(2, (batch, *out_hw, channels), *out_quant)]
    return single_op_graph(RESIZE, tensors, [0, 1], [2], {"align_corners": align, "half_pixel_centers": half})


@pytest.mark.parametrize("resize", [((3, 4), (6, 8), False, True), ((8, 6), (3, 4), False, True),
                                    ((4, 3), (7, 5), True, False), ((5, 5), (5, 9), False, False)])
def test_resize_bilinear_overlap_rule(lab: KernelLab, resize) -> None:
    (in_hw, out_hw, align, half) = resize
    graph, op = _resize_graph(in_hw, out_hw, align, half, batch=2)
    assert check_overlap_rules(lab, graph, op) == len(lower_op(op, graph).overlaps)


@pytest.mark.parametrize(("graph_args", "message"), [
    (((4, 4), (8, 8), True, True), "both align_corners and half_pixel_centers"),
    (((4, 4), (8, 8), False, True, (0.1, 0)), "must be equal"),
    (((1, 1), (70, 70), False, False), "outside the input"),
])  # fmt: skip
def test_resize_bilinear_refuses_what_tflm_cannot_run(graph_args, message: str) -> None:
    graph, op = _resize_graph(*graph_args)
    with pytest.raises(UnsupportedOpError, match=rf"op #0 \(RESIZE_BILINEAR\).*{message}"):
        lower_op(op, graph)


def test_resize_bilinear_needs_a_constant_size() -> None:
    size = int8_tensor(1, (2,), dtype="int32")  # computed, not a constant
    tensors = [int8_tensor(0, (1, 4, 4, 3)), size, int8_tensor(2, (1, 8, 8, 3))]
    graph, op = single_op_graph(RESIZE, tensors, [0, 1], [2], {})
    with pytest.raises(UnsupportedOpError, match=r"op #0 \(RESIZE_BILINEAR\).*size.*constant"):
        lower_op(op, graph)


# --- a whole model through the compiler --------------------------------------------------------------

def _lite_residual_like(tf, keras):
    """A block output plus a branch: avg-pool, grouped conv, 1x1 conv, bilinear upsampling."""
    x = keras.Input((12, 12, 8), batch_size=1, name="in0")
    main = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    branch = keras.layers.AveragePooling2D(2)(x)
    branch = keras.layers.Conv2D(8, 5, padding="same", groups=2, activation="relu")(branch)
    branch = keras.layers.Conv2D(8, 1)(branch)
    branch = keras.layers.Lambda(lambda v: tf.image.resize(v, (12, 12), "bilinear"))(branch)
    return keras.Model(x, keras.layers.Add()([main, branch]))


def test_compiled_model_with_both_ops_is_bit_exact(lab: KernelLab, tmp_path: Path) -> None:
    from tinyml_kit import engine
    from tinyml_kit.engine import bench
    from tinyml_kit.engine import modelgen as mg

    path = lab.model(ModelSpec("lite_residual_like", _lite_residual_like, {"in0": (-1, 1)}, RESIZE))
    project = engine.compile(path, tmp_path / "project", target="host")
    assert {"tk_resize_bilinear_s8", "tk_conv2d_s8"} <= {c.function for c in project.calls}
    samples = mg.random_inputs(path, 6, seed=1)
    reference, name = bench.reference_run(path, samples)
    assert name == "tflm"
    exact, mismatched, worst = bench.compare_outputs(project.run_many(samples), reference)
    assert exact, f"{mismatched}/6 samples differ from TFLM (largest difference {worst})"
