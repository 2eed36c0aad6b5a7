"""Reader, quantisation arithmetic and passes: decoding real models and refusing bad ones by name."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest

from tinyml_kit.engine import quant
from tinyml_kit.engine.errors import EngineError, UnsupportedOpError
from tinyml_kit.engine.passes import run_passes
from tinyml_kit.engine.reader import read_tflite, read_tflite_bytes


def _edit(data: bytes, change) -> bytes:
    """Apply ``change(model)`` to the flatbuffer's object API view and re-serialise it."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))
    change(model, fb)
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.fixture(scope="module")
def hello_bytes(shared_models: Path) -> bytes:
    return (shared_models / "hello_world_int8.tflite").read_bytes()


# --- decoding --------------------------------------------------------------------------------


def test_person_detect_decodes_ops_options_and_per_channel_quant(shared_models: Path) -> None:
    g = read_tflite(shared_models / "person_detect.tflite")
    assert [op.type for op in g.ops][:3] == ["DEPTHWISE_CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D"]
    assert len(g.ops) == 31 and g.ops[-1].type == "SOFTMAX"
    first = g.ops[0]
    assert first.options["padding"] == "SAME" and first.options["stride_w"] == 2
    assert first.options["fused_activation_function"] == "RELU6" and first.options["depth_multiplier"] == 8
    weights = g.tensors[first.inputs[1]]
    assert weights.dtype == "int8" and weights.shape == (1, 3, 3, 8) and weights.data.shape == (1, 3, 3, 8)
    assert weights.quant.per_channel and weights.quant.axis == 3 and weights.quant.scale.size == 8
    inp = g.tensors[g.inputs[0]]
    assert inp.shape == (1, 96, 96, 1) and inp.data is None and inp.quant.zero_point[0] == -1
    assert g.ops[29].type == "RESHAPE" and g.ops[29].options["new_shape"] == [1, 2]
    assert g.tensors[g.ops[0].inputs[2]].dtype == "int32"


def test_hello_world_fc_options(hello_bytes: bytes) -> None:
    g = read_tflite_bytes(hello_bytes, "hello.tflite")
    assert [op.type for op in g.ops] == ["FULLY_CONNECTED"] * 3
    assert g.ops[0].options["fused_activation_function"] == "RELU"
    assert g.ops[0].options["keep_num_dims"] is False
    assert not g.tensors[g.ops[0].inputs[1]].quant.per_channel


# --- refusing bad files ---------------------------------------------------------------------------


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"nope\.tflite: file not found"):
        read_tflite(tmp_path / "nope.tflite")


def test_garbage_file_is_not_a_flatbuffer(tmp_path: Path) -> None:
    path = tmp_path / "garbage.tflite"
    path.write_bytes(b"this is not a model at all" * 10)
    with pytest.raises(EngineError, match=r"garbage.tflite: not a TFLite flatbuffer .*TFL3"):
        read_tflite(path)


@pytest.mark.parametrize("keep", [12, 400, 1500, 2600])
def test_truncated_file_is_reported(hello_bytes: bytes, keep: int) -> None:
    with pytest.raises(EngineError, match="truncated or corrupt"):
        read_tflite_bytes(hello_bytes[:keep], "cut.tflite")


def test_unknown_builtin_op_names_op_and_supported_list(hello_bytes: bytes, tmp_path: Path) -> None:
    from tinyml_kit.engine.project import lower_graph

    def to_cumsum(model, fb):
        model.operatorCodes[0].builtinCode = fb.BuiltinOperator.CUMSUM
        model.operatorCodes[0].deprecatedBuiltinCode = 127

    g = run_passes(read_tflite_bytes(_edit(hello_bytes, to_cumsum), "edited.tflite"))
    with pytest.raises(UnsupportedOpError,
                       match=r"edited\.tflite: op #0 \(CUMSUM\) is not supported.*CONV_2D"):
        lower_graph(g)


def test_custom_op_is_refused(hello_bytes: bytes) -> None:
    def to_custom(model, fb):
        model.operatorCodes[0].builtinCode = fb.BuiltinOperator.CUSTOM
        model.operatorCodes[0].deprecatedBuiltinCode = fb.BuiltinOperator.CUSTOM
        model.operatorCodes[0].customCode = "MyFancyOp"

    with pytest.raises(UnsupportedOpError, match="op #0 is the custom op 'MyFancyOp'"):
        read_tflite_bytes(_edit(hello_bytes, to_custom), "custom.tflite")


def test_several_subgraphs_are_refused(hello_bytes: bytes) -> None:
    def add_subgraph(model, fb):
        model.subgraphs.append(copy.deepcopy(model.subgraphs[0]))

    with pytest.raises(UnsupportedOpError, match=r"2 subgraphs.*control flow"):
        read_tflite_bytes(_edit(hello_bytes, add_subgraph), "cf.tflite")


def test_buffer_index_out_of_range(hello_bytes: bytes) -> None:
    def bad_buffer(model, fb):
        model.subgraphs[0].tensors[2].buffer = 999

    with pytest.raises(EngineError, match="refers to buffer 999"):
        read_tflite_bytes(_edit(hello_bytes, bad_buffer), "bad.tflite")


def test_int16_activations_are_refused(hello_bytes: bytes) -> None:
    def to_int16(model, fb):
        for t in model.subgraphs[0].tensors:
            if t.type == fb.TensorType.INT8 and model.buffers[t.buffer].data is None:
                t.type = fb.TensorType.INT16

    with pytest.raises(UnsupportedOpError, match=r"int16 activations \(16x8"):
        read_tflite_bytes(_edit(hello_bytes, to_int16), "i16.tflite")


def test_variable_tensor_is_refused(hello_bytes: bytes) -> None:
    def make_variable(model, fb):
        model.subgraphs[0].tensors[0].isVariable = True

    with pytest.raises(UnsupportedOpError, match=r"variable.*stateful"):
        read_tflite_bytes(_edit(hello_bytes, make_variable), "state.tflite")


def test_float_activations_are_refused(hello_bytes: bytes) -> None:
    def to_float(model, fb):
        for t in model.subgraphs[0].tensors:
            if t.type == fb.TensorType.INT8 and model.buffers[t.buffer].data is None:
                t.type = fb.TensorType.FLOAT32

    with pytest.raises(UnsupportedOpError, match=r"hybrid.*full-integer.*representative_dataset"):
        read_tflite_bytes(_edit(hello_bytes, to_float), "hybrid.tflite")


# --- quantisation arithmetic (hand-checked values) ----------------------------------------------------


@pytest.mark.parametrize(("real", "expected"), [
    (0.0, (0, 0)),
    (0.5, (1 << 30, 0)),
    (1.0, (1 << 30, 1)),
    (0.75, (3 << 29, 0)),
    (2.0 ** -40, (0, 0)),  # below 2^-31: flushed to zero as TFLite does
    (1.0 - 2.0 ** -40, (1 << 30, 1)),  # rounds up to 2^31: halved, shift + 1
])
def test_quantize_multiplier_edge_cases(real: float, expected: tuple[int, int]) -> None:
    assert quant.quantize_multiplier(real) == expected


def test_quantize_multiplier_round_trips() -> None:
    rng = np.random.default_rng(0)
    for real in rng.uniform(1e-6, 4.0, size=200):
        m, s = quant.quantize_multiplier(float(real))
        assert (1 << 30) <= m < (1 << 31)
        assert math.isclose(m * 2.0 ** (s - 31), real, rel_tol=2 ** -30)


def test_round_half_away_is_exact() -> None:
    values = (0.5, -0.5, 1.5, -2.5, 0.49999999999999994)
    assert [quant.round_half_away(x) for x in values] == [1, -1, 2, -3, 0]


def test_multiply_by_quantized_multiplier_matches_rounding_definition() -> None:
    assert quant.multiply_by_quantized_multiplier(100, 1 << 30, 0) == 50
    assert quant.multiply_by_quantized_multiplier(-3, 1 << 30, 0) == -1  # SRDHM: negative ties toward 0
    assert quant.multiply_by_quantized_multiplier(-7, 1 << 30, -1) == -2  # -1.75 -> -2
    assert quant.multiply_by_quantized_multiplier(5, 1 << 30, -1) == 2  # double rounding: 2.5->3, 1.5->2
    assert quant.multiply_by_quantized_multiplier(7, 1 << 30, 2) == 14


def test_activation_ranges_follow_tflite() -> None:
    assert quant.activation_range("NONE", 0.1, 3) == (-128, 127)
    assert quant.activation_range("RELU", 0.1, -20) == (-20, 127)
    assert quant.activation_range("RELU6", 0.05, -128) == (-128, -8)  # 6 / 0.05 = 120
    assert quant.activation_range("RELU_N1_TO_1", 0.25, 0) == (-4, 4)
    with pytest.raises(ValueError, match="fused activation"):
        quant.activation_range("TANH", 0.1, 0)


def test_softmax_params_for_person_detect_logits() -> None:
    multiplier, shift, diff_min = quant.softmax_input_params(1.0, 0.01251875)
    assert (1 << 30) <= multiplier < (1 << 31) and shift >= 0 and diff_min < 0
    real = 0.01251875 * 2 ** 26
    assert math.isclose(multiplier * 2.0 ** (shift - 31), real, rel_tol=1e-9)
    assert diff_min == -math.floor(31 * 2 ** 26 / 2 ** shift)


def test_per_tensor_fc_multiplier_uses_float32_product() -> None:
    a, b, c = 0.024480115622282028, 0.004039011895656586, 0.013325115665793419
    m32, s32 = quant.conv_multiplier_per_tensor(a, b, c)
    expected = float(np.float32(a) * np.float32(b)) / float(np.float32(c))
    assert (m32, s32) == quant.quantize_multiplier(expected)


# --- passes ---------------------------------------------------------------------------------------


def test_passes_alias_reshape_and_fold_activation_ranges(shared_models: Path) -> None:
    raw = read_tflite(shared_models / "person_detect.tflite")
    g = run_passes(raw)
    assert "RESHAPE" not in [op.type for op in g.ops] and len(g.ops) == 30
    assert raw.tensors[31].alias_of is None  # the input graph is not modified
    assert g.tensors[31].alias_of == 28 and g.storage(31) == 28
    first = g.ops[0]
    out = g.tensors[first.outputs[0]]
    lo, hi = quant.activation_range("RELU6", float(out.quant.scale[0]), int(out.quant.zero_point[0]))
    assert (first.attrs["act_min"], first.attrs["act_max"]) == (lo, hi) == (-128, 127)


def test_pad_is_fused_into_the_following_conv() -> None:
    from tinyml_kit.engine.ir import Graph, Op, Quantization, Tensor

    q = Quantization(scale=np.array([0.1]), zero_point=np.array([-5]))
    wq = Quantization(scale=np.array([0.01]), zero_point=np.array([0]))
    tensors = {
        0: Tensor(0, "x", (1, 4, 4, 2), "int8", q),
        1: Tensor(1, "pads", (4, 2), "int32", data=np.array([[0, 0], [1, 2], [3, 0], [0, 0]], np.int32)),
        2: Tensor(2, "xp", (1, 7, 7, 2), "int8", q),
        3: Tensor(3, "w", (3, 3, 3, 2), "int8", wq, data=np.ones((3, 3, 3, 2), np.int8)),
        4: Tensor(4, "y", (1, 5, 5, 3), "int8", q),
    }
    ops = [Op(0, "PAD", [0, 1], [2]),
           Op(1, "CONV_2D", [2, 3, -1], [4], options={"padding": "VALID", "stride_h": 1, "stride_w": 1,
                                                      "fused_activation_function": "NONE"})]
    g = run_passes(Graph(tensors, ops, [0], [4], "pad.tflite"))
    assert [op.type for op in g.ops] == ["CONV_2D"]
    conv = g.ops[0]
    assert conv.inputs[0] == 0 and conv.attrs["extra_padding"] == (1, 2, 3, 0)
