"""Code generation: pure functions from (graph, kernel calls, plan) to the files of a C99 project.

Lowering and kernel conventions (what every op module and C kernel follows)
----------------------------------------------------------------------------
* **One lowering per TFLite op**, registered with ``@register_lowering("OP")`` in a module of
  ``tinyml_kit/engine/lowering/`` (importing the package registers all of them). It validates the op
  (dtypes, shapes, quantisation; raising :class:`UnsupportedOpError` naming file, op and fix) and
  returns one :class:`KernelCall`. No if/elif chains on op names anywhere else.
* **C ABI**: ``void FN(const PARAMS_T *p, const void *const *in, void *const *out, void *scratch)``,
  declared in ``firmware/kernels/<kernel>.h``; ``KernelCall.kernel`` is that file stem,
  ``function``/``params_type`` must appear in the header (checked here, before any C compiler runs).
  ``in``/``out`` hold arena pointers for ``KernelCall.inputs``/``outputs`` (activation tensor indices,
  in that order); constants never travel through ``in``. ``scratch`` is NULL when ``scratch_bytes`` is 0.
* **Parameters**: ``KernelCall.params`` scalar fields (int, float, or a list of ints for a fixed-size
  ``int32_t x[N]`` member) and ``KernelCall.arrays`` pointer fields (numpy int8/uint8/int16/int32/
  float32 arrays emitted as ``static const`` arrays in flash). Codegen writes one ``static const``
  struct per call with designated initialisers (``.field = value``); unset fields are 0. Floats are
  emitted as exact hexadecimal literals. Every field name must appear in the kernel header.
* **Compile-time folding**: requantisation multipliers/shifts come from ``engine.quant`` (TFLite's
  QuantizeMultiplier bit for bit); input offsets are folded into int32 biases
  (``bias + input_offset * sum(filter row)``), fused activations into ``act_min``/``act_max``
  (``op.attrs`` set by ``passes.fold_activation_ranges``). Kernels use only ``tk_common.h`` for
  requantisation (``tk_requantize`` = MultiplyByQuantizedMultiplier).
* **Layouts**: activations NHWC, batch 1 (FC allows several rows); weights in TFLite's own layout
  (CONV OHWI, DEPTHWISE 1HWO, FC [out][in]).
* **Memory**: kernels never allocate. Extra memory is ``scratch_bytes`` (planned in the arena, live only
  during the call). A kernel may let its output overlap an input that dies at the call by declaring
  ``Overlap(output, input, max_shift=..., exact=(...))`` with tensor indices: ``shift = out_offset -
  in_offset`` bytes is safe if ``shift <= max_shift`` (raster-order kernels: see
  ``lowering.common.window_max_shift`` / ``elementwise_max_shift``) or ``shift in exact`` (e.g. 0 for
  the channel-by-channel in-place depthwise). The planner only uses a rule when the input dies there.
  When the plan does overlap ``out[0]`` and ``in[0]`` and ``KernelCall.inplace_flag`` names a field,
  codegen sets that field to 1 (the kernel may still check ``out[0] == in[0]`` for exact-shift
  variants). Kernels must be correct for every placement their rules allow.
* **Aliases**: RESHAPE/SQUEEZE/EXPAND_DIMS generate no code; their output shares the input's storage
  (``Tensor.alias_of``); the planner sees storage buffers named ``t<storage index>``.

Generated project (see :func:`project_files`): ``model.h`` (shapes, quantisation, ``tk_invoke``,
``tk_input``/``tk_output`` accessors, ``TK_PEAK_SRAM_BYTES``), ``model.c`` (constants, params,
``static`` 16-byte-aligned arena of exactly the planned size, calls in plan order), ``main.c`` and
``tk_platform.h`` (harness), ``kernels/`` (only the used kernels, their local includes and
``tk_common.h``), ``targets/<target>/`` (host stdio / Cortex-M4 startup, linker script,
semihosting, SysTick) and a ``Makefile`` with targets ``host``, ``host-asan`` and ``cortex-m4``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyml_kit._paths import firmware_dir
from tinyml_kit.engine.errors import EngineError
from tinyml_kit.engine.ir import Graph
from tinyml_kit.engine.lowering.base import KernelCall

C_TYPES = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "int32": "int32_t",
           "float32": "float"}
DTYPE_CODES = {"int8": "TK_DTYPE_INT8", "uint8": "TK_DTYPE_UINT8", "int16": "TK_DTYPE_INT16",
               "int32": "TK_DTYPE_INT32", "float32": "TK_DTYPE_FLOAT32"}
TARGET_DIRS = ("host", "cortex-m4")
_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)
_PLACEHOLDER = re.compile(r"@@([A-Z_]+)@@")


@dataclass
class Layout:
    """Where everything lives: the calls in execution order and their arena offsets."""

    graph: Graph
    calls: list[KernelCall]  # in execution (plan) order
    tensor_offsets: dict[int, int]  # storage tensor index -> arena offset
    scratch_offsets: list[int | None]  # per call (same order as calls)
    inplace: list[bool]  # per call: the plan overlaps out[0] and in[0]
    arena_bytes: int
    source_name: str = "model.tflite"
    notes: dict[str, str] = field(default_factory=dict)

    def offset(self, tensor_index: int) -> int:
        return self.tensor_offsets[self.graph.storage(tensor_index)]


def render_template(text: str, values: dict[str, str]) -> str:
    """Replace ``@@NAME@@`` placeholders; every placeholder must have a value."""

    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise EngineError(f"template placeholder @@{key}@@ has no value (internal error)")
        return values[key]

    return _PLACEHOLDER.sub(sub, text)


def c_literal(value: object) -> str:
    """A C initialiser for one scalar parameter: int, float (exact hex literal) or list of ints."""
    if isinstance(value, bool | np.bool_):
        return "1" if value else "0"
    if isinstance(value, int | np.integer):
        v = int(value)
        if v == -(2**31):
            return "(-2147483647 - 1)"
        return str(v)
    if isinstance(value, float | np.floating):
        v = float(np.float32(value))
        if v != float(value) and np.isfinite(value):
            raise EngineError(f"float parameter {value!r} is not exactly representable as float32")
        return f"{v.hex()}f"
    if isinstance(value, list | tuple):
        return "{" + ", ".join(c_literal(v) for v in value) + "}"
    raise EngineError(f"cannot emit a C literal for parameter value {value!r} ({type(value).__name__})")


def c_array(name: str, array: np.ndarray) -> str:
    """``static const T name[N] = {...};`` with 16 values per line (4-byte aligned)."""
    dtype = str(array.dtype)
    if dtype not in C_TYPES:
        raise EngineError(f"constant array '{name}' has dtype {dtype}; supported: {sorted(C_TYPES)}")
    flat = array.reshape(-1)
    if dtype == "float32":
        items = [f"{float(v).hex()}f" for v in flat]
    elif dtype == "int32":
        items = [c_literal(int(v)) for v in flat]
    else:
        items = [str(int(v)) for v in flat.tolist()]
    lines = [", ".join(items[i:i + 16]) for i in range(0, len(items), 16)] or ["0"]
    body = ",\n    ".join(lines)
    return f"static const {C_TYPES[dtype]} {name}[{max(flat.size, 1)}] TK_ALIGN(4) = {{\n    {body}\n}};\n"


def symbol(call: KernelCall, position: int) -> str:
    return f"op{call.op.index}" if call.op.index >= 0 else f"call{position}"


def check_kernel_header(call: KernelCall, header_text: str) -> None:
    """The function, params type and every field must be declared in the kernel's header."""
    names = [call.function, call.params_type, *call.params, *call.arrays]
    if call.inplace_flag:
        names.append(call.inplace_flag)
    missing = [n for n in names if not re.search(rf"\b{re.escape(n)}\b", header_text)]
    if missing:
        raise EngineError(
            f"{call.op.describe()}: kernel header {call.kernel}.h does not declare {', '.join(missing)}; "
            "the lowering and the C kernel disagree (internal error)."
        )


def render_params(call: KernelCall, position: int, inplace: bool) -> str:
    """Constant arrays and the ``static const`` params struct of one call."""
    name = symbol(call, position)
    parts = [c_array(f"{name}_{field_name}", np.asarray(arr)) for field_name, arr in call.arrays.items()]
    fields = [f"    .{k} = {name}_{k}," for k in call.arrays]
    fields += [f"    .{k} = {c_literal(v)}," for k, v in call.params.items()]
    if call.inplace_flag:
        fields.append(f"    .{call.inplace_flag} = {1 if inplace else 0},")
    parts.append(f"static const {call.params_type} {name}_params = {{\n" + "\n".join(fields) + "\n};\n")
    return "\n".join(parts)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape) or "scalar"


def render_call(layout: Layout, call: KernelCall, position: int) -> str:
    """One block of ``tk_invoke``: pointer tables into the arena and the kernel call."""
    graph = layout.graph
    name = symbol(call, position)
    outs = ", ".join(f"{graph.tensors[t].name!r}" for t in call.outputs)
    comment = f"    /* {call.op.describe()} -> {_sanitize_comment(outs)} */"
    lines = [comment, "    {"]
    in_arg, out_arg = "NULL", "NULL"
    if call.inputs:
        ptrs = ", ".join(f"tk_arena + {layout.offset(t)}" for t in call.inputs)
        lines.append(f"        const void *const in[{len(call.inputs)}] = {{{ptrs}}};")
        in_arg = "in"
    if call.outputs:
        ptrs = ", ".join(f"tk_arena + {layout.offset(t)}" for t in call.outputs)
        lines.append(f"        void *const out[{len(call.outputs)}] = {{{ptrs}}};")
        out_arg = "out"
    scratch = layout.scratch_offsets[position]
    scratch_arg = "NULL" if scratch is None else f"tk_arena + {scratch}"
    lines.append(f"        {call.function}(&{name}_params, {in_arg}, {out_arg}, {scratch_arg});")
    lines.append("    }")
    return "\n".join(lines)


def _sanitize_comment(text: str) -> str:
    return text.replace("*/", "* /").replace("/*", "/ *")


def _io_entries(layout: Layout, indices: list[int]) -> tuple[str, str]:
    offsets = ", ".join(str(layout.offset(t)) for t in indices) or "0"
    sizes = ", ".join(str(layout.graph.tensors[t].nbytes) for t in indices) or "0"
    return offsets, sizes


def render_model_c(layout: Layout, headers: dict[str, str]) -> str:
    """The whole ``model.c``. ``headers`` maps kernel stems to their header text (for checks)."""
    kernels = sorted({c.kernel for c in layout.calls})
    for position, call in enumerate(layout.calls):
        check_kernel_header(call, headers[call.kernel])
    in_offsets, in_sizes = _io_entries(layout, layout.graph.inputs)
    out_offsets, out_sizes = _io_entries(layout, layout.graph.outputs)
    values = {
        "SOURCE": _sanitize_comment(layout.source_name),
        "INCLUDES": "\n".join(f'#include "{k}.h"' for k in kernels),
        "ARENA_BYTES": str(max(layout.arena_bytes, 1)),
        "CONSTANTS": "\n".join(render_params(c, i, layout.inplace[i]) for i, c in enumerate(layout.calls)),
        "CALLS": "\n".join(render_call(layout, c, i) for i, c in enumerate(layout.calls)),
        "INPUT_OFFSETS": in_offsets,
        "INPUT_SIZES": in_sizes,
        "OUTPUT_OFFSETS": out_offsets,
        "OUTPUT_SIZES": out_sizes,
    }
    return render_template(read_template("model.c.in"), values)


def _io_defines(layout: Layout, kind: str, indices: list[int]) -> str:
    lines = []
    for i, t in enumerate(indices):
        tensor = layout.graph.tensors[t]
        if tensor.dtype not in DTYPE_CODES:
            raise EngineError(f"{layout.graph.source}: graph {kind.lower()} '{tensor.name}' has dtype "
                              f"{tensor.dtype}; supported: {sorted(DTYPE_CODES)}")
        scale = float(tensor.quant.scale[0]) if tensor.quant is not None else 0.0
        zero_point = int(tensor.quant.zero_point[0]) if tensor.quant is not None else 0
        prefix = f"TK_{kind}_{i}"
        dims = ", ".join(str(d) for d in tensor.shape) or "1"
        lines += [
            f"/* {kind.lower()} {i}: '{_sanitize_comment(tensor.name)}' */",
            f"#define {prefix}_DTYPE {DTYPE_CODES[tensor.dtype]}",
            f"#define {prefix}_BYTES {tensor.nbytes}",
            f"#define {prefix}_RANK {len(tensor.shape)}",
            f"#define {prefix}_SHAPE {{{dims}}}",
            f"#define {prefix}_SCALE {c_literal(scale)}",
            f"#define {prefix}_ZERO_POINT {zero_point}",
        ]
    return "\n".join(lines)


def render_model_h(layout: Layout, lower_bound_bytes: int) -> str:
    graph = layout.graph
    values = {
        "SOURCE": _sanitize_comment(layout.source_name),
        "PEAK_SRAM_BYTES": str(layout.arena_bytes),
        "LOWER_BOUND_BYTES": str(lower_bound_bytes),
        "NUM_INPUTS": str(len(graph.inputs)),
        "NUM_OUTPUTS": str(len(graph.outputs)),
        "INPUT_TOTAL_BYTES": str(sum(graph.tensors[t].nbytes for t in graph.inputs)),
        "OUTPUT_TOTAL_BYTES": str(sum(graph.tensors[t].nbytes for t in graph.outputs)),
        "INPUT_DEFINES": _io_defines(layout, "INPUT", graph.inputs),
        "OUTPUT_DEFINES": _io_defines(layout, "OUTPUT", graph.outputs),
    }
    return render_template(read_template("model.h.in"), values)


def render_makefile(kernel_sources: list[str]) -> str:
    return render_template(read_template("Makefile.in"), {"KERNEL_SOURCES": " ".join(kernel_sources)})


def read_template(name: str) -> str:
    return (firmware_dir() / "templates" / name).read_text()


def kernel_closure(kernels: set[str]) -> list[str]:
    """File names under firmware/kernels a project needs: the kernels' .c/.h, their local includes
    (transitively) and tk_common.h."""
    root = firmware_dir() / "kernels"
    wanted: list[str] = []
    pending = ["tk_common.h"] + [f"{k}{ext}" for k in sorted(kernels) for ext in (".h", ".c")]
    while pending:
        name = pending.pop(0)
        if name in wanted:
            continue
        path = root / name
        if not path.is_file():
            raise EngineError(f"kernel file {path} is missing; reinstall tinyml-kit or restore firmware/.")
        wanted.append(name)
        pending += [inc for inc in _INCLUDE.findall(path.read_text()) if (root / inc).is_file()]
    return sorted(wanted)


def project_files(layout: Layout, lower_bound_bytes: int) -> dict[str, str]:
    """Every file of the generated project, by relative path (text contents)."""
    kernel_dir = firmware_dir() / "kernels"
    kernel_files = kernel_closure({c.kernel for c in layout.calls})
    files = {f"kernels/{name}": (kernel_dir / name).read_text() for name in kernel_files}
    headers = {c.kernel: files[f"kernels/{c.kernel}.h"] for c in layout.calls}
    files["model.c"] = render_model_c(layout, headers)
    files["model.h"] = render_model_h(layout, lower_bound_bytes)
    files["main.c"] = read_template("main.c")
    files["tk_platform.h"] = read_template("tk_platform.h")
    files["Makefile"] = render_makefile([f"kernels/{n}" for n in kernel_files if n.endswith(".c")])
    for target in TARGET_DIRS:
        for path in sorted((firmware_dir() / "targets" / target).iterdir()):
            if path.is_file():
                files[f"targets/{target}/{path.name}"] = path.read_text()
    return files


def const_bytes(calls: list[KernelCall]) -> int:
    """Bytes of constant arrays (weights, biases, multipliers) the calls put in flash."""
    return int(sum(np.asarray(a).nbytes for c in calls for a in c.arrays.values()))


def write_files(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
