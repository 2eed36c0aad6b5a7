"""modelgen: every case converts to exactly the TFLite ops it declares, with the declared I/O types."""

from __future__ import annotations

import numpy as np
import pytest

from tinyml_kit.engine import modelgen as mg

# The engine ops the bit-exact sweep must cover (the single-op cases, without whole networks).
REQUIRED_OPS = {
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN",
    "PAD", "RESHAPE", "SQUEEZE", "SOFTMAX", "LOGISTIC", "HARD_SWISH", "RELU", "RELU6", "CONCATENATION",
    "TRANSPOSE", "RESIZE_NEAREST_NEIGHBOR", "QUANTIZE", "DEQUANTIZE",
}
DEFAULT_CASES = [n for n, c in mg.CASES.items() if not c.slow]


def _params(names: list[str]) -> list:
    return [pytest.param(n, marks=pytest.mark.slow) if mg.CASES[n].slow else n for n in names]


@pytest.mark.parametrize("name", _params(list(mg.CASES)))
def test_case_converts_to_its_declared_ops(name: str) -> None:
    case = mg.CASES[name]
    path = mg.generate(name, check_ops=False)
    assert tuple(sorted(set(mg.model_ops(path)))) == case.ops
    ins, outs = mg.io_specs(path)
    io_dtypes = {s.dtype for s in ins + outs}
    if case.quant == "int8":
        assert io_dtypes == {"int8"}
    else:
        assert io_dtypes == {"float32"}


def test_op_cases_cover_every_engine_op() -> None:
    covered = set().union(*(mg.CASES[n].ops for n in mg.op_cases()))
    assert covered >= REQUIRED_OPS, f"no case for {sorted(REQUIRED_OPS - covered)}"


def test_case_groups_partition_the_registry() -> None:
    groups = [mg.op_cases(), mg.net_cases(), mg.unsupported_cases()]
    aborting = [n for n, c in mg.CASES.items() if c.expect == "reference_aborts"]
    assert sorted([n for group in groups for n in group] + aborting) == sorted(mg.CASES)
    assert set(mg.net_cases()) == {"mobilenet_v2_035_96", "mcunet_style", "resnet_style"}


def test_squeeze_rewrite_keeps_the_batch_dimension() -> None:
    import tflite

    path = mg.generate("squeeze")
    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    graph = model.Subgraphs(0)
    ops = mg.model_ops(path)
    op = graph.Operators(ops.index("SQUEEZE"))
    options = tflite.SqueezeOptions()
    table = op.BuiltinOptions()
    options.Init(table.Bytes, table.Pos)
    assert list(options.SqueezeDimsAsNumpy()) == [1, 2]
    assert op.InputsLength() == 1


def test_dynamic_range_model_has_int8_weights_and_float_activations() -> None:
    import tflite

    path = mg.generate("dynamic_range_model")
    graph = tflite.Model.GetRootAsModel(path.read_bytes(), 0).Subgraphs(0)
    types = {graph.Tensors(i).Type() for i in range(graph.TensorsLength())}
    assert tflite.TensorType.INT8 in types and tflite.TensorType.FLOAT32 in types


def test_generate_reuses_the_cached_file(tmp_path) -> None:
    import shutil

    cached = mg.generate("dense")  # default cache folder
    assert not list(cached.parent.glob(".dense-*.tmp"))  # the atomic write left no temp file
    copy = mg.case_path("dense", tmp_path)
    shutil.copy(cached, copy)
    stamp = copy.stat().st_mtime_ns
    assert mg.generate("dense", tmp_path) == copy  # found by name and hash: not converted again
    assert copy.stat().st_mtime_ns == stamp and [p.name for p in tmp_path.iterdir()] == [copy.name]


def test_cache_keys_differ_between_cases() -> None:
    keys = {mg.CASES[n].cache_key() for n in mg.CASES}
    assert len(keys) == len(mg.CASES)


def test_unknown_case_names_the_valid_ones() -> None:
    with pytest.raises(mg.ModelGenError, match=r"unknown model case 'conv9'.*conv_k1"):
        mg.generate("conv9")


def test_random_inputs_follow_the_model_inputs() -> None:
    int8_path, float_path = mg.generate("conv_k1"), mg.generate("conv_float_io")
    a, b = mg.random_inputs(int8_path, 3, seed=5), mg.random_inputs(int8_path, 3, seed=5)
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(a, b, strict=True))
    assert a[0][0].dtype == np.int8 and a[0][0].shape == (1, 12, 12, 3)
    assert a[0][0].min() < -64 and a[0][0].max() > 64  # the full int8 range is exercised
    f = mg.random_inputs(float_path, 1)[0][0]
    assert f.dtype == np.float32 and f.min() >= -1.0 and f.max() <= 1.0
