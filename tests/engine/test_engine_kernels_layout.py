"""PAD/PADV2, CONCATENATION, TRANSPOSE and RESIZE_NEAREST_NEIGHBOR int8 kernels: bit-exact with TFLM,
overlap rules and error paths."""

from __future__ import annotations

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
from tinyml_kit.engine.lowering.resize import nearest_sources


def _unary(shape, layer):
    def build(tf, keras):
        x = keras.Input(shape, batch_size=1, name="in0")
        return keras.Model(x, layer(tf, keras)(x))

    return build


def _tf_op(shape, fn):
    return _unary(shape, lambda tf, keras: keras.layers.Lambda(lambda v: fn(tf, v)))


def _tf_pad(shape, pads, value=None):
    if value is None:
        return _tf_op(shape, lambda tf, v: tf.pad(v, pads))
    return _tf_op(shape, lambda tf, v: tf.pad(v, pads, constant_values=value))


def _tf_resize(shape, size):
    """tf.image.resize nearest: half_pixel_centers=True in TF2."""
    return _tf_op(shape, lambda tf, v: tf.image.resize(v, size, "nearest"))


def _concat(shapes, axis, ranges):
    def build(tf, keras):
        xs = [keras.Input(s, batch_size=1, name=f"in{i}") for i, s in enumerate(shapes)]
        return keras.Model(xs, keras.layers.Concatenate(axis=axis)(xs))

    return build, {f"in{i}": r for i, r in enumerate(ranges)}


def _concat_computed(tf, keras):
    """Inputs with different scales (sigmoid's fixed 1/256 and a ReLU): the converter inserts int8
    requantisation (QUANTIZE) before the concatenation, which then copies bytes as TFLM does."""
    a = keras.Input((4, 5, 3), batch_size=1, name="in0")
    b = keras.Input((4, 5, 2), batch_size=1, name="in1")
    y = keras.layers.Concatenate()([keras.layers.Activation("sigmoid")(a), keras.layers.ReLU()(b)])
    return keras.Model([a, b], y)


RANGE = {"in0": (-2.0, 3.0)}
CHANNEL_PADS = [[0, 0], [0, 0], [1, 0], [2, 3]]
HW_PADS = [[0, 0], [2, 1], [1, 1], [0, 0]]
RESIZE = "RESIZE_NEAREST_NEIGHBOR"
PAD_CASES = [
    ModelSpec("pad_zero_padding_asymmetric",
              _unary((6, 5, 3), lambda tf, k: k.layers.ZeroPadding2D(((1, 2), (2, 1)))), RANGE, "PAD"),
    ModelSpec("pad_zero_padding_symmetric", _unary((5, 7, 4), lambda tf, k: k.layers.ZeroPadding2D(1)),
              RANGE, "PAD"),
    ModelSpec("pad_channels_and_width", _tf_pad((4, 5, 3), CHANNEL_PADS), RANGE, "PAD"),
    ModelSpec("padv2_constant_value", _tf_pad((5, 4, 3), HW_PADS, 0.75), RANGE, "PADV2"),
]
CONCAT_CASES = [
    ModelSpec("concat_channels_2", *_concat([(5, 6, 3), (5, 6, 4)], -1, [(-1, 1), (-4, 2)]), "CONCATENATION"),
    ModelSpec("concat_channels_3", *_concat([(4, 5, 2), (4, 5, 5), (4, 5, 1)], 3, [(-1, 1), (-3, 6), (0, 1)]),
              "CONCATENATION"),
    ModelSpec("concat_height", *_concat([(3, 6, 4), (5, 6, 4)], 1, [(-2, 2), (-2, 2)]), "CONCATENATION"),
    ModelSpec("concat_requantised_inputs", _concat_computed, {"in0": (-6, 6), "in1": (-1, 1)},
              "CONCATENATION"),
]
TRANSPOSE_CASES = [
    ModelSpec("transpose_0312", _unary((5, 6, 4), lambda tf, k: k.layers.Permute((3, 1, 2))), RANGE,
              "TRANSPOSE"),
    ModelSpec("transpose_0213", _tf_op((5, 6, 4), lambda tf, v: tf.transpose(v, [0, 2, 1, 3])), RANGE,
              "TRANSPOSE"),
    ModelSpec("transpose_3d", _tf_op((7, 3), lambda tf, v: tf.transpose(v, [2, 0, 1])), RANGE, "TRANSPOSE"),
]
RESIZE_CASES = [
    # UpSampling2D becomes RESIZE_NEAREST_NEIGHBOR in tf_keras (Keras 3 emits RESHAPE/TILE instead).
    ModelSpec("resize_upsampling2d_x2", _unary((5, 6, 3), lambda tf, k: k.layers.UpSampling2D(2)), RANGE,
              RESIZE, use_tf_keras=True),
    ModelSpec("resize_half_pixel_up", _tf_resize((5, 6, 3), (13, 11)), RANGE, RESIZE),
    ModelSpec("resize_half_pixel_down", _tf_resize((9, 7, 2), (4, 3)), RANGE, RESIZE),
    ModelSpec("resize_align_corners",
              _tf_op((5, 6, 3), lambda tf, v: tf.compat.v1.image.resize_nearest_neighbor(v, (11, 9), True)),
              RANGE, RESIZE),
    ModelSpec("resize_legacy_asymmetric",
              _tf_op((5, 6, 3), lambda tf, v: tf.compat.v1.image.resize_nearest_neighbor(v, (8, 14))),
              RANGE, RESIZE),
]


ALL_CASES = PAD_CASES + CONCAT_CASES + TRANSPOSE_CASES + RESIZE_CASES


@pytest.mark.parametrize("spec", ALL_CASES, ids=lambda s: s.name)
def test_matches_tflm(lab: KernelLab, spec: ModelSpec) -> None:
    summary = lab.verify(spec)
    if spec.name == "padv2_constant_value":
        assert summary["calls"][0].params["pad_value"] != summary["graph"].tensor(
            summary["calls"][0].outputs[0]).quant.zero_point[0]
    if spec.name == "concat_requantised_inputs":
        assert "QUANTIZE" in [op.type for op in summary["graph"].ops]
    if spec.name == "resize_align_corners":
        assert summary["calls"][0].op.options["align_corners"]


def test_nearest_sources_follow_tflm_rules() -> None:
    np.testing.assert_array_equal(nearest_sources(4, 2, False, False), [0, 0, 1, 1])
    np.testing.assert_array_equal(nearest_sources(5, 3, True, False), [0, 1, 1, 2, 2])  # round(i / 2)
    np.testing.assert_array_equal(nearest_sources(3, 6, False, True), [1, 3, 5])


@pytest.mark.parametrize("pads", [[0, 0, 1, 2, 2, 1, 0, 0], [0, 0, 0, 0, 0, 0, 3, 1],
                                  [1, 0, 0, 2, 0, 0, 0, 0]])
def test_pad_overlap_rule(lab: KernelLab, pads: list[int]) -> None:
    shape = (2, 4, 5, 3)
    out_shape = tuple(d + pads[2 * i] + pads[2 * i + 1] for i, d in enumerate(shape))
    tensors = [int8_tensor(0, shape, 0.1, 7), const_tensor(1, np.array(pads).reshape(4, 2)),
               int8_tensor(2, out_shape, 0.1, 7)]
    graph, op = single_op_graph("PAD", tensors, [0, 1], [2])
    assert check_overlap_rules(lab, graph, op) == 1


@pytest.mark.parametrize("case", [([(2, 3, 4), (2, 3, 5)], 2), ([(2, 3, 4), (2, 3, 4), (2, 3, 1)], -1),
                                  ([(1, 4, 6), (3, 4, 6)], 0), ([(2, 2, 3), (2, 5, 3)], 1)])
def test_concat_overlap_rules(lab: KernelLab, case) -> None:
    shapes, axis = case
    out_shape = list(shapes[0])
    out_shape[axis] = sum(s[axis] for s in shapes)
    tensors = [int8_tensor(i, s) for i, s in enumerate(shapes)] + [int8_tensor(len(shapes), tuple(out_shape))]
    graph, op = single_op_graph("CONCATENATION", tensors, list(range(len(shapes))), [len(shapes)],
                                {"axis": axis, "fused_activation_function": "NONE"})
    call = lower_op(op, graph)
    if axis == 0:  # the last input may sit exactly where its slice of the output goes (no copy needed)
        assert call.overlaps[-1].max_shift == -tensors[0].nbytes
    assert check_overlap_rules(lab, graph, op) == len(call.overlaps) >= 1


@pytest.mark.parametrize("perm", [[0, 3, 1, 2], [0, 2, 1, 3], [3, 2, 1, 0], [0, 1, 3, 2]])
def test_transpose_overlap_rule(lab: KernelLab, perm: list[int]) -> None:
    shape = (2, 3, 4, 5)
    tensors = [int8_tensor(0, shape), const_tensor(1, perm), int8_tensor(2, tuple(shape[p] for p in perm))]
    graph, op = single_op_graph("TRANSPOSE", tensors, [0, 1], [2])
    check_overlap_rules(lab, graph, op)


@pytest.mark.parametrize("resize", [((3, 4), (6, 8), False, False), ((5, 5), (3, 2), False, True),
                                    ((4, 3), (7, 5), True, False)])
def test_resize_overlap_rule(lab: KernelLab, resize) -> None:
    (in_h, in_w), (out_h, out_w), align, half = resize
    tensors = [int8_tensor(0, (1, in_h, in_w, 3)), const_tensor(1, [out_h, out_w]),
               int8_tensor(2, (1, out_h, out_w, 3))]
    graph, op = single_op_graph("RESIZE_NEAREST_NEIGHBOR", tensors, [0, 1], [2],
                                {"align_corners": align, "half_pixel_centers": half})
    check_overlap_rules(lab, graph, op)


def test_transpose_collapses_adjacent_dimensions() -> None:
    tensors = [int8_tensor(0, (1, 4, 5, 6)), const_tensor(1, [0, 3, 1, 2]), int8_tensor(2, (1, 6, 4, 5))]
    graph, op = single_op_graph("TRANSPOSE", tensors, [0, 1], [2])
    call = lower_op(op, graph)
    assert call.params["out_dims"][-2:] == [6, 20] and call.params["in_strides"][-2:] == [1, 6]


def test_errors_name_the_op() -> None:
    tensors = [int8_tensor(0, (1, 4, 4, 2)), int8_tensor(1, (1, 4, 4, 2)), int8_tensor(2, (1, 4, 4, 4))]
    tensors[1].data = np.zeros((1, 4, 4, 2), np.int8)
    graph, op = single_op_graph("CONCATENATION", tensors, [0, 1], [2], {"axis": 3})
    with pytest.raises(UnsupportedOpError, match=r"op #0 \(CONCATENATION\).*constant tensor"):
        lower_op(op, graph)
    tensors = [int8_tensor(0, (1, 4, 4, 2)), int8_tensor(1, (2,), dtype="int32"),
               int8_tensor(2, (1, 8, 8, 2))]
    graph, op = single_op_graph("RESIZE_NEAREST_NEIGHBOR", tensors, [0, 1], [2])
    with pytest.raises(UnsupportedOpError, match=r"op #0 \(RESIZE_NEAREST_NEIGHBOR\).*size.*constant"):
        lower_op(op, graph)
    tensors = [int8_tensor(0, (2, 3)), const_tensor(1, [[0, 1], [1, 0]]), int8_tensor(2, (4, 4))]
    graph, op = single_op_graph("PAD", tensors, [0, 1], [2])
    with pytest.raises(UnsupportedOpError, match=r"op #0 \(PAD\).*output has shape \(4, 4\)"):
        lower_op(op, graph)
