"""Harness for the int8 kernel tests (tests/engine/test_engine_kernels_*.py), and tests of the harness.

How an op is verified bit-exact against TFLM without the rest of the compiler:

1. a tiny Keras model is converted to a full-int8 ``.tflite`` (fixed seeds, representative dataset),
   once per test session;
2. TFLM (the tflite-micro pip package: reference kernels) runs it in a subprocess that keeps every
   tensor (``kPreserveAllTensors``), on random int8 inputs that include the saturating extremes;
3. the model is read with the engine's reader and passes, each op under test is lowered with the
   engine's lowering, and its C kernel, compiled here with gcc into a shared library, runs through
   ctypes on exactly the input tensors TFLM saw: the params struct is built from the kernel header and
   filled from ``KernelCall.params``/``arrays`` (as codegen's designated initialisers would);
4. the kernel's output must equal TFLM's byte for byte.
"""

from __future__ import annotations

import ctypes
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tk_testing import require_tool

from tinyml_kit.engine.ir import Graph, Op, Quantization, Tensor
from tinyml_kit.engine.lowering import KernelCall, lower_op
from tinyml_kit.engine.quant import multiply_by_quantized_multiplier, per_channel_multipliers

REPO = Path(__file__).resolve().parents[2]
KERNEL_DIR = REPO / "firmware" / "kernels"
SEED = 0

# --- C kernels through ctypes ---------------------------------------------------------------------

_C_TYPES = {"int8_t": ctypes.c_int8, "uint8_t": ctypes.c_uint8, "int16_t": ctypes.c_int16,
            "int32_t": ctypes.c_int32, "uint32_t": ctypes.c_uint32, "float": ctypes.c_float}
_NUMPY_OF_C = {"int8_t": np.int8, "uint8_t": np.uint8, "int16_t": np.int16, "int32_t": np.int32,
               "float": np.float32}


def _strip_comments(text: str) -> str:
    return re.sub(r"/\*.*?\*/|//[^\n]*", "", text, flags=re.S)


def _header_defines() -> dict[str, int]:
    defines: dict[str, int] = {}
    for header in KERNEL_DIR.glob("*.h"):
        for name, value in re.findall(r"#define\s+(\w+)\s+(\d+)\b", header.read_text()):
            defines[name] = int(value)
    return defines


@dataclass
class StructField:
    name: str
    c_type: str
    pointer: bool
    length: int | None  # array length, None for a scalar


def parse_struct(header: Path, type_name: str) -> list[StructField]:
    """Fields of ``typedef struct { ... } type_name;`` in a kernel header (the subset of C we use)."""
    text = _strip_comments(header.read_text())
    match = re.search(r"typedef\s+struct\s*\w*\s*\{(.*?)\}\s*" + re.escape(type_name) + r"\s*;", text, re.S)
    assert match, f"{header.name} does not define {type_name}"
    defines = _header_defines()
    fields = []
    for decl in match.group(1).split(";"):
        decl = " ".join(decl.split())
        if not decl:
            continue
        m = re.match(r"(?:const\s+)?(\w+)\s+(.*)", decl)
        assert m and m.group(1) in _C_TYPES, f"unsupported declaration in {type_name}: {decl!r}"
        for declarator in m.group(2).split(","):
            d = re.match(r"\s*(\*?)\s*(\w+)\s*(?:\[\s*(\w+)\s*\])?\s*$", declarator)
            assert d, f"unsupported declarator {declarator!r} in {type_name}"
            length = d.group(3)
            fields.append(StructField(d.group(2), m.group(1), bool(d.group(1)),
                                      None if length is None else int(defines.get(length, length))))
    return fields


def _ctypes_struct(type_name: str, fields: list[StructField]) -> type[ctypes.Structure]:
    layout = []
    for f in fields:
        c = ctypes.c_void_p if f.pointer else _C_TYPES[f.c_type]
        layout.append((f.name, c * f.length if f.length else c))
    return type(type_name, (ctypes.Structure,), {"_fields_": layout})


class KernelLibrary:
    """One kernel ``.c`` compiled into a shared library, callable with a :class:`KernelCall`."""

    def __init__(self, kernel: str, build_dir: Path) -> None:
        self.kernel = kernel
        so = build_dir / f"{kernel}.so"
        if not so.exists():
            cmd = ["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                   f"-I{KERNEL_DIR}", str(KERNEL_DIR / f"{kernel}.c"), "-o", str(so)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            assert done.returncode == 0, f"compiling {kernel}.c failed:\n{done.stderr}"
        self.lib = ctypes.CDLL(str(so))
        self.header = KERNEL_DIR / f"{kernel}.h"

    def params(self, call: KernelCall) -> tuple[ctypes.Structure, list[np.ndarray]]:
        """The params struct filled from the call, and the arrays that must stay alive with it."""
        fields = {f.name: f for f in parse_struct(self.header, call.params_type)}
        struct = _ctypes_struct(call.params_type, list(fields.values()))()
        keep: list[np.ndarray] = []
        for name, value in call.params.items():
            assert name in fields, f"{call.params_type} has no field '{name}'"
            f = fields[name]
            if f.length:
                values = list(value)
                assert len(values) <= f.length, f"{name}: {len(values)} values for {f.length} slots"
                for i, v in enumerate(values):
                    getattr(struct, name)[i] = v
            else:
                assert not isinstance(value, list | tuple), f"{name} is a scalar field"
                if f.c_type == "float":
                    assert float(np.float32(value)) == float(value), f"{name}={value} is not a float32"
                setattr(struct, name, value)
        for name, array in call.arrays.items():
            assert name in fields and fields[name].pointer, f"{call.params_type} has no pointer '{name}'"
            expected = _NUMPY_OF_C[fields[name].c_type]
            assert np.asarray(array).dtype == expected, f"{name} must be {np.dtype(expected)}"
            data = np.ascontiguousarray(array)
            keep.append(data)
            setattr(struct, name, data.ctypes.data)
        return struct, keep

    def invoke(self, call: KernelCall, inputs: list[int], outputs: list[int], scratch: int | None) -> None:
        """Call the kernel with raw addresses for ``in``, ``out`` and ``scratch``."""
        struct, keep = self.params(call)
        fn = getattr(self.lib, call.function)
        fn.restype = None
        in_ptrs = (ctypes.c_void_p * max(1, len(inputs)))(*inputs)
        out_ptrs = (ctypes.c_void_p * max(1, len(outputs)))(*outputs)
        fn(ctypes.byref(struct), in_ptrs, out_ptrs, ctypes.c_void_p(scratch))
        del keep

    def run(self, call: KernelCall, inputs: list[np.ndarray], out_size: int) -> np.ndarray:
        """Run on separate buffers; returns the int8 output."""
        ins = [np.ascontiguousarray(x, dtype=np.int8).reshape(-1) for x in inputs]
        out = np.full(out_size, 0x55, dtype=np.int8)
        scratch = np.zeros(max(1, call.scratch_bytes), dtype=np.uint8)
        self.invoke(call, [x.ctypes.data for x in ins], [out.ctypes.data],
                    scratch.ctypes.data if call.scratch_bytes else None)
        return out

    def run_overlapped(self, call: KernelCall, inputs: list[np.ndarray], out_size: int, which: int,
                       shift: int) -> np.ndarray:
        """Run with the output placed ``shift`` bytes after input ``which`` in one shared buffer."""
        ins = [np.ascontiguousarray(x, dtype=np.int8).reshape(-1).copy() for x in inputs]
        in_size = ins[which].size
        base = max(0, -shift) + 8
        arena = np.full(base + max(in_size, shift + out_size) + 8, 0x55, dtype=np.int8)
        arena[base:base + in_size] = ins[which]
        addresses = [x.ctypes.data for x in ins]
        addresses[which] = arena.ctypes.data + base
        for k, x in enumerate(call.inputs):  # the same tensor fed twice shares the placement
            if x == call.inputs[which]:
                addresses[k] = addresses[which]
        scratch = np.zeros(max(1, call.scratch_bytes), dtype=np.uint8)
        self.invoke(call, addresses, [arena.ctypes.data + base + shift],
                    scratch.ctypes.data if call.scratch_bytes else None)
        return arena[base + shift:base + shift + out_size].copy()


# --- converting models and running TFLM -------------------------------------------------------------

_TFLM_WORKER = r"""
import sys, numpy as np
from tflite_micro.python.tflite_micro import runtime
model, inputs_path, out_path, wanted = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
wanted = [int(t) for t in wanted.split(",") if t]
feeds = np.load(inputs_path)
count = int(feeds["count"]); num_inputs = int(feeds["num_inputs"])
it = runtime.Interpreter.from_file(model, arena_size=16 << 20,
                                   intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
result = {}
for s in range(count):
    for i in range(num_inputs):
        it.set_input(feeds[f"s{s}_i{i}"], i)
    it.invoke()
    for t in wanted:
        result[f"s{s}_t{t}"] = np.asarray(it.GetTensor(t, 0)["tensor_data"])
np.savez(out_path, **result)
"""


def run_tflm(model: Path, samples: list[list[np.ndarray]], tensors: list[int], work: Path) -> list[dict]:
    """Run TFLM in a subprocess on each sample; returns the wanted tensors of every sample."""
    feeds = {"count": np.array(len(samples)), "num_inputs": np.array(len(samples[0]))}
    for s, sample in enumerate(samples):
        for i, x in enumerate(sample):
            feeds[f"s{s}_i{i}"] = x
    in_path, out_path = work / f"{model.stem}_in.npz", work / f"{model.stem}_out.npz"
    np.savez(in_path, **feeds)
    done = subprocess.run([sys.executable, "-c", _TFLM_WORKER, str(model), str(in_path), str(out_path),
                           ",".join(map(str, tensors))], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (f"TFLM failed on {model.name} (exit {done.returncode}):\n"
                                  f"{done.stderr[-3000:]}")
    with np.load(out_path) as saved:
        return [{t: saved[f"s{s}_t{t}"] for t in tensors} for s in range(len(samples))]


Builder = Callable[[Any, Any], Any]  # (tensorflow, keras module) -> model with named inputs


def convert_model(build: Builder, ranges: dict[str, tuple[float, float]], path: Path,
                  use_tf_keras: bool = False, patch: Callable[[bytearray], None] | None = None) -> Path:
    """Convert a Keras model to full-int8 TFLite (int8 input and output) with a seeded dataset."""
    import tensorflow as tf

    if use_tf_keras:
        import tf_keras as keras
    else:
        import keras
    keras.utils.set_random_seed(SEED)
    model = build(tf, keras)
    shapes = {t.name.split(":")[0]: tuple(int(d) for d in t.shape) for t in model.inputs}
    rng = np.random.default_rng(SEED)

    def representative():
        for _ in range(40):
            yield {name: rng.uniform(*ranges[name], size=shape).astype(np.float32)
                   for name, shape in shapes.items()}

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    data = bytearray(converter.convert())
    if patch is not None:
        patch(data)
    path.write_bytes(bytes(data))
    return path


def set_output_quantization_like_input(data: bytearray, op_type: str) -> None:
    """Give the output of every ``op_type`` its input's scale and zero point (edits the bytes in place)."""
    from tflite.Model import Model
    from tflite.utils import BUILTIN_OPCODE2NAME

    model = Model.GetRootAs(data, 0)
    sub = model.Subgraphs(0)
    for i in range(sub.OperatorsLength()):
        raw = sub.Operators(i)
        code = model.OperatorCodes(raw.OpcodeIndex())
        if BUILTIN_OPCODE2NAME.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode())) != op_type:
            continue
        src = sub.Tensors(int(raw.InputsAsNumpy()[0])).Quantization()
        dst = sub.Tensors(int(raw.OutputsAsNumpy()[0])).Quantization()
        dst.ScaleAsNumpy()[:] = src.ScaleAsNumpy()  # numpy views into ``data``
        dst.ZeroPointAsNumpy()[:] = src.ZeroPointAsNumpy()


@dataclass
class ModelSpec:
    """A test model: builder, float range of each named input, and the op type it must contain."""

    name: str
    build: Builder
    ranges: dict[str, tuple[float, float]]
    op_type: str
    use_tf_keras: bool = False
    patch: Callable[[bytearray], None] | None = None


def random_samples(graph: Graph, count: int, seed: int = SEED) -> list[list[np.ndarray]]:
    """int8 inputs: all -128, all 127, every int8 value in turn, then uniform over the int8 range."""
    rng = np.random.default_rng(seed)
    shapes = [graph.tensor(t).shape for t in graph.inputs]
    every_value = np.arange(-128, 128, dtype=np.int8)
    samples = [[np.full(s, -128, np.int8) for s in shapes], [np.full(s, 127, np.int8) for s in shapes],
               [np.resize(np.roll(every_value, 37 * k), s) for k, s in enumerate(shapes)]]
    while len(samples) < count:
        samples.append([rng.integers(-128, 128, size=s, dtype=np.int8) for s in shapes])
    return samples


def read_graph(path: Path) -> Graph:
    """The model as the compiler sees it before lowering (reader, then passes)."""
    from tinyml_kit.engine.passes import run_passes
    from tinyml_kit.engine.reader import read_tflite

    return run_passes(read_tflite(path))


class KernelLab:
    """Session-wide cache of converted models and compiled kernels, and the verification routine."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._libraries: dict[str, KernelLibrary] = {}
        self._models: dict[str, Path] = {}

    def library(self, kernel: str) -> KernelLibrary:
        if kernel not in self._libraries:
            self._libraries[kernel] = KernelLibrary(kernel, self.root)
        return self._libraries[kernel]

    def model(self, spec: ModelSpec) -> Path:
        if spec.name not in self._models:
            path = self.root / f"{spec.name}.tflite"
            self._models[spec.name] = convert_model(spec.build, spec.ranges, path, spec.use_tf_keras,
                                                    spec.patch)
        return self._models[spec.name]

    def verify(self, spec: ModelSpec, samples: int = 24) -> dict[str, Any]:
        """Check every ``spec.op_type`` op of the model bit-exact against TFLM; returns a summary."""
        path = self.model(spec)
        graph = read_graph(path)
        ops = [op for op in graph.ops if op.type == spec.op_type]
        assert ops, f"{spec.name}: no {spec.op_type} op in the converted model: {[o.type for o in graph.ops]}"
        calls = [lower_op(op, graph) for op in ops]
        wanted = sorted({t for c in calls for t in c.inputs + c.outputs})
        feeds = random_samples(graph, samples)
        results = run_tflm(path, feeds, wanted, self.root)
        for call in calls:
            out = graph.tensor(call.outputs[0])
            lib = self.library(call.kernel)
            for s, tensors in enumerate(results):
                got = lib.run(call, [tensors[t] for t in call.inputs], out.num_elements)
                expected = tensors[out.index].reshape(-1)
                assert_same(got, expected, f"{spec.name}: {call.op.describe()} sample {s}")
        return {"ops": len(calls), "samples": samples, "calls": calls, "graph": graph}


def assert_same(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    """Byte-for-byte equality, with the first differences in the message."""
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    bad = np.flatnonzero(got != expected)
    if bad.size:
        first = ", ".join(f"[{i}] {int(got[i])} != {int(expected[i])}" for i in bad[:5])
        pytest.fail(f"{what}: {bad.size} of {got.size} values differ: {first}")


_SHARED_LAB: list[KernelLab] = []


def shared_lab(tmp_path_factory: pytest.TempPathFactory) -> KernelLab:
    """The session's :class:`KernelLab` (one per process), skipping when gcc is missing.

    Tests get it through the ``lab`` fixture of tests/engine/conftest.py."""
    require_tool("gcc")
    if not _SHARED_LAB:
        _SHARED_LAB.append(KernelLab(tmp_path_factory.mktemp("kernels")))
    return _SHARED_LAB[0]


# --- synthetic IR graphs (no TensorFlow) --------------------------------------------------------------

def int8_tensor(index: int, shape: tuple[int, ...], scale: float = 0.05, zero_point: int = 0,
                data: np.ndarray | None = None, dtype: str = "int8") -> Tensor:
    quant = Quantization(np.array([np.float32(scale)], dtype=np.float64), np.array([zero_point]))
    return Tensor(index=index, name=f"t{index}", shape=tuple(shape), dtype=dtype, quant=quant, data=data)


def const_tensor(index: int, values: list[int] | np.ndarray, dtype: str = "int32") -> Tensor:
    data = np.asarray(values, dtype=dtype)
    return Tensor(index=index, name=f"c{index}", shape=data.shape, dtype=dtype, data=data)


def single_op_graph(op_type: str, tensors: list[Tensor], inputs: list[int], outputs: list[int],
                    options: dict | None = None) -> tuple[Graph, Op]:
    """A one-op graph over the given tensors (for overlap and error tests)."""
    op = Op(index=0, type=op_type, inputs=inputs, outputs=outputs, options=dict(options or {}))
    graph = Graph(tensors={t.index: t for t in tensors}, ops=[op],
                  inputs=[i for i in inputs if not tensors[i].is_const], outputs=outputs,
                  source="<synthetic>")
    return graph, op


def check_overlap_rules(lab: KernelLab, graph: Graph, op: Op, trials: int = 3) -> int:
    """Run the kernel with its output at exactly each declared ``max_shift`` and compare with the
    non-overlapped result; returns how many overlap rules were exercised."""
    call = lower_op(op, graph)
    lib = lab.library(call.kernel)
    out = graph.tensor(call.outputs[0])
    rng = np.random.default_rng(SEED)
    for _ in range(trials):
        inputs = [rng.integers(-128, 128, size=graph.tensor(t).num_elements, dtype=np.int8)
                  for t in call.inputs]
        for k, t in enumerate(call.inputs):  # the same tensor fed twice has one value
            inputs[k] = inputs[call.inputs.index(t)]
        expected = lib.run(call, inputs, out.num_elements)
        for rule in call.overlaps:
            which = call.inputs.index(rule.input)
            got = lib.run_overlapped(call, inputs, out.num_elements, which, rule.max_shift)
            assert_same(got, expected, f"{op.describe()} with output at shift {rule.max_shift} of "
                                       f"input '{graph.tensor(rule.input).name}'")
    return len(call.overlaps)


# --- tests of the harness itself ----------------------------------------------------------------------

class FlaggedLibrary(KernelLibrary):
    """A kernel compiled into a shared library with extra compiler flags (e.g. -DTK_NO_WIDE)."""

    def __init__(self, kernel: str, build_dir: Path, flags: tuple[str, ...]) -> None:
        tag = "".join(re.sub(r"\W", "", f) for f in flags) or "default"
        so = build_dir / f"{kernel}_{tag}.so"
        if not so.exists():
            cmd = ["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", *flags,
                   f"-I{KERNEL_DIR}", str(KERNEL_DIR / f"{kernel}.c"), "-o", str(so)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            assert done.returncode == 0, f"compiling {kernel}.c failed:\n{done.stderr}"
        self.kernel = kernel
        self.lib = ctypes.CDLL(str(so))
        self.header = KERNEL_DIR / f"{kernel}.h"


def extreme_samples(graph: Graph, count: int = 3, seed: int = 1) -> list[np.ndarray]:
    """Inputs of a single-input graph: all -128, all 127, then uniform ones (``count`` in all)."""
    n = graph.tensor(0).num_elements
    rng = np.random.default_rng(seed)
    out = [np.full(n, -128, np.int8), np.full(n, 127, np.int8)]
    out += [rng.integers(-128, 128, size=n, dtype=np.int8) for _ in range(count - 2)]
    return out


def requantize_per_channel(acc: np.ndarray, in_scale: float, filter_scales: np.ndarray, out_scale: float,
                           out_zp: int, act: tuple[int, int]) -> np.ndarray:
    """TFLite's per-channel requantisation of int accumulators [..., channels], flattened to int8."""
    channels = acc.shape[-1]
    mult, shift = per_channel_multipliers(in_scale, filter_scales, out_scale, channels)
    out = np.empty_like(acc)
    for ch in range(channels):
        m, r = int(mult[ch]), int(shift[ch])
        out[..., ch] = np.vectorize(lambda a, m=m, r=r: multiply_by_quantized_multiplier(int(a), m, r))(
            acc[..., ch])
    return np.clip(out + out_zp, *act).astype(np.int8).reshape(-1)


def test_parse_struct_reads_every_kernel_params_type() -> None:
    """Every kernel header's params struct parses, with array lengths resolved from its #defines."""
    found = {}
    for header in sorted(KERNEL_DIR.glob("tk_*.h")):
        for type_name in re.findall(r"\}\s*(tk_\w+_params_t)\s*;", _strip_comments(header.read_text())):
            if type_name in ("tk_add_params_t", "tk_mean_params_t", "tk_lut_params_t"):
                found[type_name] = parse_struct(header, type_name)
    assert [f.length for f in found["tk_add_params_t"] if f.name == "out_shape"] == [6]
    table = [(f.c_type, f.pointer) for f in found["tk_lut_params_t"] if f.name == "table"]
    assert table == [("int8_t", True)]
    assert {f.name: f.c_type for f in found["tk_mean_params_t"]}["multiplier"] == "int32_t"


def test_harness_detects_a_wrong_kernel_result(lab: KernelLab) -> None:
    """The comparison fails when the lowering is perturbed (a table entry off by one)."""
    x, y = int8_tensor(0, (1, 4, 4, 3), 0.1, 3), int8_tensor(1, (1, 4, 4, 3), 0.1, 3)
    graph, op = single_op_graph("RELU6", [x, y], [0], [1])
    call = lower_op(op, graph)
    lib = lab.library(call.kernel)
    values = np.arange(-128, 80, dtype=np.int8)[:48]
    good = lib.run(call, [values], 48)
    call.arrays["table"] = call.arrays["table"].copy()
    call.arrays["table"][int(values[5]) + 128] += 1
    with pytest.raises(pytest.fail.Exception):
        assert_same(lib.run(call, [values], 48), good, "perturbed")


def test_tflm_worker_reports_a_failure(lab: KernelLab, tmp_path: Path) -> None:
    """A model TFLM cannot load makes the worker fail loudly, not return stale data."""
    bogus = tmp_path / "bogus.tflite"
    bogus.write_bytes(b"\x00" * 64)
    with pytest.raises(AssertionError, match="TFLM failed"):
        run_tflm(bogus, [[np.zeros(4, np.int8)]], [0], tmp_path)


# --- Cortex-M4 firmware under QEMU (the kernel tests' harnesses) ----------------------------------------

ARM_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-O2", "-std=c99",
             "-Wall", "-Werror", "-ffunction-sections", "-fdata-sections"]
ARM_TARGET = KERNEL_DIR.parent / "targets" / "cortex-m4"
ARM_LINK = ["-nostartfiles", "-Wl,--gc-sections", "-T", str(ARM_TARGET / "mps2_an386.ld"),
            "--specs=nano.specs", "--specs=nosys.specs", "-Wl,--no-warn-rwx-segments"]
# C lines of a harness: print an int8 buffer as one "case ID: v0 v1 ..." line (parsed by run_m4_cases)
DUMP_C = ["static char line[8200];",
          "static void dump(int id, const int8_t *p, int n) {",
          "    int k = sprintf(line, \"case %d:\", id);",
          "    for (int i = 0; i < n; ++i) k += sprintf(line + k, \" %d\", p[i]);",
          "    tk_platform_print(line);", "}"]


def run_m4_cases(source: Path, kernel: str, defines: list[str], runs: int,
                 exit_hint: str = "") -> dict[int, np.ndarray]:
    """Builds the harness ``source`` with ``kernel``.c for Cortex-M4 (``defines`` e.g. ``-DTK_NO_DSP``),
    runs it under QEMU mps2-an386 and returns its printed ``case`` lines; exactly ``runs`` must appear."""
    elf = source.with_suffix(".elf")
    cmd = ["arm-none-eabi-gcc", *ARM_FLAGS, *defines, f"-I{KERNEL_DIR}",
           f"-I{KERNEL_DIR.parent / 'templates'}", *ARM_LINK, "-o", str(elf), str(source),
           str(KERNEL_DIR / f"{kernel}.c"), str(ARM_TARGET / "platform.c"), str(ARM_TARGET / "startup.c")]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    done = subprocess.run(["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none",
                           "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel",
                           str(elf)], capture_output=True, text=True, timeout=300, cwd=source.parent)
    log = done.stdout + done.stderr  # semihosting output may arrive on either stream
    assert done.returncode == 0, f"exit {done.returncode}{exit_hint}\n{log[-2000:]}"
    found = {int(m.group(1)): np.array(m.group(2).split(), dtype=np.int64).astype(np.int8)
             for m in re.finditer(r"^case (\d+):((?: -?\d+)*)\s*$", log, re.MULTILINE)}
    assert len(found) == runs, log[-2000:]
    return found
