"""Read an int8 ``.tflite`` flatbuffer into the engine's :class:`~tinyml_kit.engine.ir.Graph`.

Decoding uses the maintained ``tflite`` schema binding. Everything the engine cannot run correctly
is rejected here with a message naming the file, op and what to do: files that are not TFLite
flatbuffers or are truncated, several subgraphs (control flow), custom ops, float or hybrid models,
int16 activations, stateful variables and sparse tensors.
"""

from __future__ import annotations

import re
import struct
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_kit.engine.errors import EngineError, UnsupportedOpError
from tinyml_kit.engine.ir import Graph, Op, Quantization, Tensor

_FULL_INT_HINT = ("re-export with full-integer quantisation: TFLiteConverter with "
                  "optimizations=[tf.lite.Optimize.DEFAULT], a representative_dataset, "
                  "target_spec.supported_ops=[tf.lite.OpsSet.TFLITE_BUILTINS_INT8] and "
                  "inference_input_type=inference_output_type=tf.int8")

# TensorType enum value -> IR dtype name (see tflite/TensorType.py)
_DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16",
           9: "int8"}
_NUMPY = {"float32": "<f4", "float16": "<f2", "int32": "<i4", "uint8": "u1", "int64": "<i8",
          "bool": "?", "int16": "<i2", "int8": "i1"}
_TYPE_NAMES = {5: "string", 8: "complex64", 10: "float64", 11: "complex128", 12: "uint64",
               13: "resource", 14: "variant", 15: "uint32", 16: "uint16", 17: "int4", 18: "bfloat16"}

# Enum-valued option fields decoded to their schema names.
_ENUM_FIELDS = {
    "padding": {0: "SAME", 1: "VALID"},
    "fused_activation_function": {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH",
                                  5: "SIGN_BIT"},
    "weights_format": {0: "DEFAULT", 1: "SHUFFLED4x16INT8"},
}
# Ops that legitimately touch float tensors at the model's edge.
_EDGE_OPS = {"QUANTIZE", "DEQUANTIZE"}
_ACCESSOR_SKIP = re.compile(r"^(Init|GetRootAs.*|.*BufferHasIdentifier|.*Length|.*IsNone|.*AsNumpy)$")


def read_tflite(path: str | Path) -> Graph:
    """Decode and validate a ``.tflite`` file; raise :class:`EngineError` naming what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"{path}: file not found. Pass the path of an int8 .tflite model.")
    return read_tflite_bytes(path.read_bytes(), source=str(path))


def read_tflite_bytes(data: bytes, source: str = "<memory>") -> Graph:
    """Decode and validate a TFLite flatbuffer held in memory (``source`` names it in messages)."""
    from tflite.Model import Model

    if len(data) < 8 or data[4:8] != b"TFL3":
        raise EngineError(
            f"{source}: not a TFLite flatbuffer (no 'TFL3' file identifier in its first 8 bytes). "
            "Pass a .tflite file written by tf.lite.TFLiteConverter."
        )
    try:
        model = Model.GetRootAs(bytearray(data), 0)
        return _decode(model, data, source)
    except EngineError:
        raise
    except (struct.error, IndexError, ValueError, TypeError, OverflowError, MemoryError) as err:
        raise EngineError(
            f"{source}: the flatbuffer is truncated or corrupt ({type(err).__name__}: {err}). "
            "Re-export the model or copy the file again."
        ) from None


def _decode(model: Any, data: bytes, source: str) -> Graph:
    from tflite.utils import BUILTIN_OPCODE2NAME

    if model.SubgraphsLength() != 1:
        raise UnsupportedOpError(
            f"{source}: the model has {model.SubgraphsLength()} subgraphs; the engine runs single-subgraph "
            "models only (no control flow such as IF/WHILE or CALL_ONCE). Remove control flow before export."
        )
    sub = model.Subgraphs(0)
    op_names = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(int(code.DeprecatedBuiltinCode()), int(code.BuiltinCode()))
        if builtin == 32:  # CUSTOM
            custom = code.CustomCode()
            op_names.append("CUSTOM:" + (custom.decode(errors="replace") if custom else "?"))
        else:
            op_names.append(BUILTIN_OPCODE2NAME.get(builtin, f"BUILTIN_{builtin}"))

    num_tensors = sub.TensorsLength()
    tensors = {i: _decode_tensor(model, sub.Tensors(i), i, data, source) for i in range(num_tensors)}

    ops = []
    for i in range(sub.OperatorsLength()):
        raw = sub.Operators(i)
        opcode = raw.OpcodeIndex()
        if opcode >= len(op_names):
            raise EngineError(f"{source}: op #{i} uses opcode index {opcode} but the model has only "
                              f"{len(op_names)} operator codes; the file is corrupt.")
        op_type = op_names[opcode]
        inputs = [int(x) for x in raw.InputsAsNumpy()] if not raw.InputsIsNone() else []
        outputs = [int(x) for x in raw.OutputsAsNumpy()] if not raw.OutputsIsNone() else []
        for t in inputs + outputs:
            if t != -1 and not 0 <= t < num_tensors:
                raise EngineError(f"{source}: op #{i} ({op_type}) refers to tensor {t} but the model has "
                                  f"{num_tensors} tensors; the file is corrupt.")
        if op_type.startswith("CUSTOM:"):
            raise UnsupportedOpError(
                f"{source}: op #{i} is the custom op '{op_type[7:]}', which the engine cannot run. "
                "Replace it with TFLite builtin ops before export."
            )
        ops.append(Op(index=i, type=op_type, inputs=inputs, outputs=outputs, options=_decode_options(raw)))

    inputs = [int(x) for x in sub.InputsAsNumpy()] if not sub.InputsIsNone() else []
    outputs = [int(x) for x in sub.OutputsAsNumpy()] if not sub.OutputsIsNone() else []
    for t in inputs + outputs:
        if not 0 <= t < num_tensors:
            raise EngineError(f"{source}: the graph input/output list refers to tensor {t} but the model "
                              f"has {num_tensors} tensors; the file is corrupt.")
    graph = Graph(tensors=tensors, ops=ops, inputs=inputs, outputs=outputs, source=source)
    _validate_types(graph)
    return graph


def _decode_tensor(model: Any, raw: Any, index: int, data: bytes, source: str) -> Tensor:
    name = (raw.Name() or b"").decode(errors="replace") or f"tensor_{index}"
    type_code = raw.Type()
    dtype = _DTYPES.get(type_code)
    where = f"{source}: tensor {index} ('{name}')"
    if dtype is None:
        kind = _TYPE_NAMES.get(type_code, f"type code {type_code}")
        raise UnsupportedOpError(f"{where} has dtype {kind}, which the engine does not support. "
                                 f"Supported: int8 activations and weights; {_FULL_INT_HINT}.")
    if raw.IsVariable():
        raise UnsupportedOpError(f"{where} is a variable (stateful model, e.g. a stateful RNN/LSTM); "
                                 "the engine runs stateless models only. Export without state.")
    if raw.Sparsity() is not None:
        raise UnsupportedOpError(f"{where} is stored sparse; the engine needs dense tensors. "
                                 "Export without sparsity (no tf.lite.Optimize.EXPERIMENTAL_SPARSITY).")
    shape = tuple(int(d) for d in raw.ShapeAsNumpy()) if raw.ShapeLength() else ()
    if any(d < 0 for d in shape):
        raise UnsupportedOpError(f"{where} has a dynamic shape {shape}; fix every dimension before export.")

    buffer_index = raw.Buffer()
    if not 0 <= buffer_index < model.BuffersLength():
        raise EngineError(f"{where} refers to buffer {buffer_index} but the model has "
                          f"{model.BuffersLength()} buffers; the file is corrupt.")
    content = _buffer_bytes(model.Buffers(buffer_index), data, where)
    array = None
    if content is not None and len(content):
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        expected = count * np.dtype(_NUMPY[dtype]).itemsize
        if len(content) != expected:
            raise EngineError(f"{where} has {len(content)} bytes of data but shape {shape} ({dtype}) needs "
                              f"{expected}; the file is truncated or corrupt.")
        array = np.frombuffer(bytes(content), dtype=_NUMPY[dtype]).astype(_NUMPY[dtype].lstrip("<"))
        array = array.reshape(shape)
    return Tensor(index=index, name=name, shape=shape, dtype=dtype, quant=_decode_quant(raw.Quantization()),
                  data=array)


def _buffer_bytes(buffer: Any, data: bytes, where: str) -> bytes | None:
    offset, size = int(buffer.Offset()), int(buffer.Size())
    if offset > 1:  # large models keep buffers after the flatbuffer, addressed from the file start
        if offset + size > len(data):
            raise EngineError(f"{where}: its buffer [{offset}, {offset + size}) lies past the end of the "
                              f"{len(data)}-byte file; the file is truncated.")
        return data[offset:offset + size]
    if buffer.DataIsNone() or buffer.DataLength() == 0:
        return None
    return buffer.DataAsNumpy().tobytes()


def _decode_quant(q: Any) -> Quantization | None:
    if q is None or q.ScaleIsNone() or q.ScaleLength() == 0:
        return None
    scale = q.ScaleAsNumpy().astype(np.float64)
    zero_point = (q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength() == scale.size
                  else np.zeros(scale.size, dtype=np.int64))
    axis = int(q.QuantizedDimension()) if scale.size > 1 else None
    return Quantization(scale=scale, zero_point=zero_point, axis=axis)


def _snake(name: str) -> str:
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()


_OPTIONS_NAMES: dict[int, str] | None = None


def _options_class_name(type_code: int) -> str | None:
    global _OPTIONS_NAMES
    if _OPTIONS_NAMES is None:
        from tflite.BuiltinOptions import BuiltinOptions

        _OPTIONS_NAMES = {v: k for k, v in vars(BuiltinOptions).items() if isinstance(v, int)}
    return _OPTIONS_NAMES.get(type_code)


def _decode_options(raw: Any) -> dict[str, Any]:
    """Builtin options as a dict of snake_case TFLite field names (enums as their schema names)."""
    type_code = raw.BuiltinOptionsType()
    table = raw.BuiltinOptions()
    class_name = _options_class_name(type_code)
    if not type_code or table is None or class_name is None:
        return {}
    cls = getattr(import_module(f"tflite.{class_name}"), class_name)
    obj = cls()
    obj.Init(table.Bytes, table.Pos)
    options: dict[str, Any] = {}
    for attr in dir(cls):
        if attr.startswith("_") or _ACCESSOR_SKIP.match(attr) or not callable(getattr(cls, attr)):
            continue
        key = _snake(attr)
        if hasattr(cls, attr + "AsNumpy"):
            is_none = getattr(obj, attr + "IsNone")()
            value: Any = [] if is_none else np.asarray(getattr(obj, attr + "AsNumpy")()).tolist()
        else:
            try:
                value = getattr(obj, attr)()
            except TypeError:  # vectors of tables need an index; no builtin option we use has them
                continue
        if key in _ENUM_FIELDS and isinstance(value, int):
            value = _ENUM_FIELDS[key].get(value, value)
        options[key] = value
    return options


def _validate_types(graph: Graph) -> None:
    """Reject float, hybrid and int16 models with a message naming the first offending op."""
    for op in graph.ops:
        activations = [graph.tensors[t] for t in op.inputs + op.outputs
                       if t != -1 and not graph.tensors[t].is_const]
        weights = [graph.tensors[t] for t in op.inputs if t != -1 and graph.tensors[t].is_const]
        if op.type not in _EDGE_OPS and any(t.dtype in ("float32", "float16") for t in activations):
            hybrid = any(w.dtype == "int8" for w in weights)
            kind = "a hybrid (dynamic-range quantised)" if hybrid else "a float"
            raise UnsupportedOpError(
                f"{graph.source}: {op.describe()} computes in float32, so this is {kind} model; the engine "
                f"runs full-integer int8 models only. {_FULL_INT_HINT[0].upper()}{_FULL_INT_HINT[1:]}."
            )
        if op.type not in _EDGE_OPS and any(w.dtype in ("float32", "float16") for w in weights):
            raise UnsupportedOpError(
                f"{graph.source}: {op.describe()} has float weights with integer activations; "
                f"{_FULL_INT_HINT}."
            )
        if any(t.dtype == "int16" for t in activations):
            raise UnsupportedOpError(
                f"{graph.source}: {op.describe()} has int16 activations (16x8 quantisation), which the "
                "engine does not support. Re-export with int8 activations "
                "(target_spec.supported_ops=[tf.lite.OpsSet.TFLITE_BUILTINS_INT8])."
            )
