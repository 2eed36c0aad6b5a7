"""MAX_POOL_2D, AVERAGE_POOL_2D and MEAN int8 kernels: bit-exact with TFLM, overlap rules and error paths."""

from __future__ import annotations

import pytest
from test_engine_kernels_common import (
    KernelLab,
    ModelSpec,
    check_overlap_rules,
    const_tensor,
    int8_tensor,
    set_output_quantization_like_input,
    single_op_graph,
)

from tinyml_kit.engine.errors import UnsupportedOpError
from tinyml_kit.engine.lowering import lower_op


def _max_pool(shape, pool, strides, padding, relu=False):
    def build(tf, keras):
        x = keras.Input(shape, batch_size=1, name="in0")
        y = keras.layers.MaxPooling2D(pool, strides=strides, padding=padding)(x)
        if relu:
            y = keras.layers.ReLU()(y)
        return keras.Model(x, y)

    return build


def _avg_pool(shape, pool, strides, padding):
    def build(tf, keras):
        x = keras.Input(shape, batch_size=1, name="in0")
        return keras.Model(x, keras.layers.AveragePooling2D(pool, strides=strides, padding=padding)(x))

    return build


def _lambda(shape, fn):
    def build(tf, keras):
        x = keras.Input(shape, batch_size=1, name="in0")
        return keras.Model(x, keras.layers.Lambda(lambda v: fn(tf, v))(x))

    return build


def _global_avg(shape, keepdims):
    def build(tf, keras):
        x = keras.Input(shape, batch_size=1, name="in0")
        return keras.Model(x, keras.layers.GlobalAveragePooling2D(keepdims=keepdims)(x))

    return build


RANGE = {"in0": (-3.0, 5.0)}
SAME_QUANT = {"patch": lambda data: set_output_quantization_like_input(data, "MEAN")}


def _reduce_mean(shape, axis, keepdims=False):
    return _lambda(shape, lambda tf, v: tf.reduce_mean(v, axis=axis, keepdims=keepdims))

MAX_POOL_CASES = [
    ModelSpec("maxpool_2x2_s2_valid", _max_pool((8, 10, 6), 2, 2, "valid"), RANGE, "MAX_POOL_2D"),
    ModelSpec("maxpool_2x2_s1_valid", _max_pool((7, 9, 4), 2, 1, "valid"), RANGE, "MAX_POOL_2D"),
    ModelSpec("maxpool_3x3_s1_same", _max_pool((7, 8, 5), 3, 1, "same"), RANGE, "MAX_POOL_2D"),
    ModelSpec("maxpool_3x3_s2_same_relu", _max_pool((9, 8, 5), 3, 2, "same", relu=True), RANGE,
              "MAX_POOL_2D"),
    ModelSpec("maxpool_2x3_s2x1_same", _max_pool((7, 7, 3), (2, 3), (2, 1), "same"), RANGE, "MAX_POOL_2D"),
]
# channel counts not a multiple of 4 and above the kernel's 64-channel chunk; windows cut by the border
AVG_POOL_CASES = [
    ModelSpec("avgpool_3x3_s2_same_c5", _avg_pool((9, 8, 5), 3, 2, "same"), RANGE, "AVERAGE_POOL_2D"),
    ModelSpec("avgpool_2x2_s1_valid_c12", _avg_pool((5, 6, 12), 2, 1, "valid"), RANGE, "AVERAGE_POOL_2D"),
    ModelSpec("avgpool_3x3_global_c70", _avg_pool((3, 3, 70), 3, 3, "valid"), RANGE, "AVERAGE_POOL_2D"),
    ModelSpec("avgpool_2x3_s2x1_same_c131", _avg_pool((5, 5, 131), (2, 3), (2, 1), "same"), RANGE,
              "AVERAGE_POOL_2D"),
]
MEAN_CASES = [
    ModelSpec("mean_global_avg", _global_avg((6, 7, 10), False), RANGE, "MEAN"),
    ModelSpec("mean_global_avg_keepdims", _global_avg((5, 5, 8), True), RANGE, "MEAN"),
    ModelSpec("mean_axis1_keepdims", _reduce_mean((6, 5, 4), 1, keepdims=True), RANGE, "MEAN"),
    ModelSpec("mean_channel_axis", _reduce_mean((4, 5, 6), -1), RANGE, "MEAN"),
    ModelSpec("mean_axes_1_3", _reduce_mean((4, 5, 6), [1, 3], keepdims=True), RANGE, "MEAN"),
    # Input and output sharing scale and zero point (older TFLM divided with truncation there).
    ModelSpec("mean_same_quant", _global_avg((6, 7, 10), False), RANGE, "MEAN", **SAME_QUANT),
    ModelSpec("mean_same_quant_axis2", _reduce_mean((4, 9, 5), 2), RANGE, "MEAN", **SAME_QUANT),
]


@pytest.mark.parametrize("spec", MAX_POOL_CASES + AVG_POOL_CASES + MEAN_CASES, ids=lambda s: s.name)
def test_matches_tflm(lab: KernelLab, spec: ModelSpec) -> None:
    summary = lab.verify(spec)
    if spec.patch is not None:  # the flatbuffer edit took effect
        graph, call = summary["graph"], summary["calls"][0]
        x, y = graph.tensor(call.inputs[0]).quant, graph.tensor(call.outputs[0]).quant
        assert (x.scale[0], x.zero_point[0]) == (y.scale[0], y.zero_point[0])


@pytest.mark.parametrize("geometry", [((1, 8, 8, 4), 2, 2, "VALID"), ((1, 7, 9, 3), 3, 1, "SAME"),
                                      ((2, 9, 9, 2), 3, 2, "SAME"), ((1, 6, 6, 1), 2, 1, "VALID")])
def test_max_pool_overlap_rule(lab: KernelLab, geometry) -> None:
    shape, k, s, padding = geometry
    n, h, w, c = shape
    out_h = (h + s - 1) // s if padding == "SAME" else (h - k + s) // s
    out_w = (w + s - 1) // s if padding == "SAME" else (w - k + s) // s
    tensors = [int8_tensor(0, shape), int8_tensor(1, (n, out_h, out_w, c))]
    graph, op = single_op_graph("MAX_POOL_2D", tensors, [0], [1], {
        "padding": padding, "stride_h": s, "stride_w": s, "filter_height": k, "filter_width": k,
        "fused_activation_function": "NONE"})
    assert check_overlap_rules(lab, graph, op) == 1


@pytest.mark.parametrize("geometry", [((1, 7, 9, 6), 3, 1, "SAME"), ((1, 9, 9, 67), 3, 2, "SAME")])
def test_avg_pool_overlap_rule(lab: KernelLab, geometry) -> None:
    shape, k, s, padding = geometry
    n, h, w, c = shape
    out_h, out_w = (h + s - 1) // s, (w + s - 1) // s
    tensors = [int8_tensor(0, shape), int8_tensor(1, (n, out_h, out_w, c))]
    graph, op = single_op_graph("AVERAGE_POOL_2D", tensors, [0], [1], {
        "padding": padding, "stride_h": s, "stride_w": s, "filter_height": k, "filter_width": k,
        "fused_activation_function": "NONE"})
    assert check_overlap_rules(lab, graph, op) == 1


@pytest.mark.parametrize("case", [((1, 6, 7, 5), [1, 2]), ((2, 4, 4, 3), [1, 2]), ((1, 4, 5, 6), [3]),
                                  ((3, 5, 4), [0, 2]), ((1, 5, 4, 3), [1])])
def test_mean_overlap_rule(lab: KernelLab, case) -> None:
    shape, axes = case
    out_shape = tuple(1 if i in axes else d for i, d in enumerate(shape))
    tensors = [int8_tensor(0, shape, 0.1, 3), const_tensor(1, axes), int8_tensor(2, out_shape, 0.03, -5)]
    graph, op = single_op_graph("MEAN", tensors, [0, 1], [2], {"keep_dims": True})
    call = lower_op(op, graph)
    if shape == (1, 6, 7, 5):
        assert call.overlaps[0].max_shift == 0  # global average pooling can run in place
    check_overlap_rules(lab, graph, op)


def test_mean_collapses_axes_into_groups() -> None:
    tensors = [int8_tensor(0, (2, 3, 4, 5, 6)), const_tensor(1, [1, -2, 4]), int8_tensor(2, (2, 1, 4, 1, 1))]
    graph, op = single_op_graph("MEAN", tensors, [0, 1], [2], {"keep_dims": True})
    call = lower_op(op, graph)
    assert call.params["kept_dims"] == [1, 2, 4] and call.params["kept_strides"] == [0, 360, 30]
    assert call.params["reduced_dims"] == [1, 3, 30] and call.params["count"] == 90


def test_errors_name_the_op_and_the_fix() -> None:
    tensors = [int8_tensor(0, (1, 4, 4, 2)), int8_tensor(1, (1, 2, 2, 2))]
    graph, op = single_op_graph("MAX_POOL_2D", tensors, [0], [1], {
        "padding": "VALID", "stride_h": 1, "stride_w": 1, "filter_height": 2, "filter_width": 2})
    with pytest.raises(UnsupportedOpError, match=r"op #0 \(MAX_POOL_2D\).*gives \(1, 3, 3, 2\)"):
        lower_op(op, graph)
    tensors = [int8_tensor(0, (1, 4, 4, 2)), const_tensor(1, [1]), int8_tensor(2, (1, 4, 2))]
    tensors[1].data = None  # axes computed at run time
    graph, op = single_op_graph("MEAN", tensors, [0, 1], [2], {"keep_dims": False})
    with pytest.raises(UnsupportedOpError, match=r"op #0 \(MEAN\).*axes.*constant"):
        lower_op(op, graph)
