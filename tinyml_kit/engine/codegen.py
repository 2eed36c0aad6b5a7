"""Code generation: pure functions from (graph, kernel calls, plan) to the files of a C99 project.

Lowering and kernel conventions (what every op module and C kernel follows)
----------------------------------------------------------------------------
* **One lowering per TFLite op**: ``@register_lowering("OP")`` on a function ``(op, graph) ->
  KernelCall`` in a module of ``tinyml_kit/engine/lowering/`` (importing the package registers every
  module; shared helpers live in ``lowering/common.py``). It validates everything it relies on
  (dtypes, ranks, per-tensor vs per-channel quantisation, option values) and raises
  :class:`UnsupportedOpError` naming ``graph.source``, ``op.describe()`` and the fix. No if/elif chains
  on op names anywhere else; no module globals that switch behaviour.
* **C ABI**: ``void FN(const PARAMS_T *p, const void *const *in, void *const *out, void *scratch)``
  declared in ``firmware/kernels/<kernel>.h``; ``KernelCall.kernel`` is the file stem and must also
  name ``<kernel>.c``. ``function``, ``params_type`` and every field name must appear in the header
  (checked here before any C compiler runs). ``in``/``out`` hold arena pointers for
  ``KernelCall.inputs``/``outputs`` (activation tensor indices, in that order; NULL when empty);
  constants never travel through ``in``. ``scratch`` is NULL when ``scratch_bytes`` is 0; planned
  offsets are 4-byte aligned, so scratch may hold int32. Kernels include their own header,
  ``tk_common.h`` and optionally other ``firmware/kernels`` headers (copied automatically when
  included with ``#include "..."``) and standard C headers only.
* **Parameters**: ``KernelCall.params`` holds scalar fields (int; float, emitted as an exact hex
  float literal and required to be float32-representable; list of ints for a fixed-size array
  member); ``KernelCall.arrays`` holds pointer fields (numpy int8/uint8/int16/int32/float32, emitted
  as ``static const`` arrays in flash named ``op<index>_<field>``). Each call gets one
  ``static const PARAMS_T op<index>_params`` with designated initialisers; fields not given are 0 /
  NULL, so a kernel may treat a NULL array as "not provided".
* **Arithmetic**: bit-exact with TFLM's reference kernels. Compile-time constants come from
  ``engine.quant`` (QuantizeMultiplier, activation ranges, softmax scaling, each mirroring the TFLite
  routine including float32-vs-double details); input offsets are folded into int32 biases
  (``bias + input_offset * sum(filter row)``; see ``lowering.common.folded_bias``); fused activations
  are ``op.attrs["act_min"/"act_max"]`` from ``passes.fold_activation_ranges`` (read them with
  ``lowering.common.clamp_range``). Requantisation in C uses only ``tk_common.h``
  (``tk_requantize`` = MultiplyByQuantizedMultiplier, double rounding); ``tk_simd.h`` gives exact
  4 x int8 dot products (SMLAD on Cortex-M4, plain C elsewhere).
* **Layouts**: activations NHWC with batch 1 (``lowering.common.nhwc`` checks it; FC accepts several
  rows); weights keep TFLite's layout (CONV OHWI, DEPTHWISE 1HWO, FC [out][in]); extra layouts a
  kernel wants (e.g. depthwise ``filter_t``) are additional arrays prepared by the lowering.
* **Memory and in-place execution**: kernels never allocate; extra memory is ``scratch_bytes``
  (planned in the arena, live only during the call). A kernel may let ``out[k]`` overlap an input
  that dies at the call by declaring ``Overlap(output, input, max_shift=..., exact=(...))`` (tensor
  indices): the placement ``shift = out_offset - in_offset`` (bytes) is used only if it is
  ``<= max_shift`` or in ``exact``, or the buffers do not overlap at all, and the kernel must be
  correct for every such placement. Raster-order kernels derive ``max_shift`` from their access
  pattern with ``lowering.common.window_max_shift`` (``staged=True`` when a pixel's whole input is
  copied to scratch before its outputs are written, as ``tk_conv2d`` does) or
  ``elementwise_max_shift`` (read element i, then write element i). ``exact=(0,)`` suits kernels that
  work in place at the same address (``tk_dwconv2d`` channel by channel via a padded plane in
  scratch; ``tk_dequantize_s8_f32`` writing back to front). If a kernel needs to know that the plan
  did overlap ``out[0]`` and ``in[0]``, it names an int field in ``KernelCall.inplace_flag`` and
  codegen sets it to 1 (my kernels decide from their rules alone and do not use it).
* **Aliases**: RESHAPE / SQUEEZE / EXPAND_DIMS generate no code: their output shares the input's
  storage (``Tensor.alias_of``, resolved by ``graph.storage``); PAD feeding a single conv/depthwise
  is folded into its padding (``op.attrs["extra_padding"]``). The planner sees storage buffers named
  ``t<storage tensor index>`` and scratch buffers ``scratch<call position>``.

* **Patch stages** (``engine.patch``, ``compile(..., patch=...)``): a :class:`PatchStage` in
  ``Layout.calls`` stands for the first ops of the model run patch by patch. Each op is lowered again per
  patch with local shapes and ``op.attrs["patch_pads"]`` (the padding that aligns the local windows with
  the full frame; negative when the input is the whole frame), so window kernels must accept any
  padding, including negative. Codegen emits the op's arrays once, one params struct per distinct
  patch geometry and a table ``op<index>_patch[k]``, and a loop over the patches; the patch buffers are
  placed by the stage's own sub-plan inside the stage's scratch area.
* **Kernel choice**: a lowering picks the kernel for the layer at compile time (``tk_conv2d_1x1``,
  ``tk_conv2d_gemm``, ``tk_dwconv2d_ch`` when their fast requantisation is exact, see
  ``lowering/fastrq.py``; the generic kernels otherwise). Kernels guard DSP-extension code with
  ``TK_HAVE_DSP`` (``tk_simd.h``), whose portable C twin computes the same integers; ``-DTK_NO_DSP``
  forces the portable path (``make cortex-m4-portable``).
* **Profiling**: every call (a stage's op: all its patches) is wrapped in ``TK_PROF_BEGIN``/
  ``TK_PROF_END(slot)``, empty unless built with ``-DTK_PROFILE`` (``make host-profile``/
  ``cortex-m4-profile``, :meth:`Project.profile`).

Generated project (see :func:`project_files`): ``model.h`` (``TK_PEAK_SRAM_BYTES``, per input/output
``TK_INPUT_<i>_{DTYPE,BYTES,RANK,SHAPE,SCALE,ZERO_POINT}``, ``tk_invoke``, ``tk_input``/``tk_output``
accessors), ``model.c`` (constants, params, a ``static`` 16-byte-aligned arena of exactly the planned
size, the calls in plan order), ``main.c`` and ``tk_platform.h`` (harness), ``kernels/`` (only the
used kernels, the headers they include and ``tk_common.h``), ``targets/host`` (stdio, wall-clock ns)
and ``targets/cortex-m4`` (startup, mps2-an386 linker script, semihosting file I/O, SysTick
instruction counter) and a ``Makefile`` with targets ``host``, ``host-asan``, ``host-profile``,
``cortex-m4``, ``cortex-m4-profile`` and ``cortex-m4-portable``.
"""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyml_kit._paths import firmware_dir
from tinyml_kit.engine.errors import EngineError
from tinyml_kit.engine.ir import Graph
from tinyml_kit.engine.lowering.base import KernelCall
from tinyml_kit.engine.patch import PatchStage

C_TYPES = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "int32": "int32_t",
           "float32": "float"}
DTYPE_CODES = {"int8": "TK_DTYPE_INT8", "uint8": "TK_DTYPE_UINT8", "int16": "TK_DTYPE_INT16",
               "int32": "TK_DTYPE_INT32", "float32": "TK_DTYPE_FLOAT32"}
TARGET_DIRS = ("host", "cortex-m4")
_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)
_PLACEHOLDER = re.compile(r"@@([A-Z_]+)@@")
def host_cflags() -> str:
    """Optimisation flags of the host build: the build machine's instruction set. On x86-64, 512-bit
    vectors make gcc's code for the kernels' 4-lane loops slower than 256-bit ones (measured)."""
    machine = platform.machine().lower()
    isa = "-march=native -mno-avx512f" if machine in ("x86_64", "amd64") else "-march=native"
    return f"-O3 {isa} -std=c99 -Wall -Werror"




@dataclass
class Layout:
    """Where everything lives: the calls in execution order and their arena offsets."""

    graph: Graph
    calls: list[KernelCall | PatchStage]  # in execution (plan) order
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


def render_arrays(call: KernelCall, name: str) -> str:
    """The ``static const`` arrays of one call (named ``<name>_<field>``)."""
    return "\n".join(c_array(f"{name}_{field}", np.asarray(arr)) for field, arr in call.arrays.items())


def render_struct(call: KernelCall, array_prefix: str, struct_name: str, inplace: bool) -> str:
    """The ``static const`` params struct of one call, pointing at the arrays ``<array_prefix>_<field>``."""
    fields = [f"    .{k} = {array_prefix}_{k}," for k in call.arrays]
    fields += [f"    .{k} = {c_literal(v)}," for k, v in call.params.items()]
    if call.inplace_flag:
        fields.append(f"    .{call.inplace_flag} = {1 if inplace else 0},")
    return f"static const {call.params_type} {struct_name} = {{\n" + "\n".join(fields) + "\n};\n"


def render_params(call: KernelCall, position: int, inplace: bool) -> str:
    """Constant arrays and the ``static const`` params struct of one call."""
    name = symbol(call, position)
    parts = [c_array(f"{name}_{field_name}", np.asarray(arr)) for field_name, arr in call.arrays.items()]
    parts.append(render_struct(call, name, f"{name}_params", inplace))
    return "\n".join(parts)


def flat_calls(calls: list[KernelCall | PatchStage]) -> list[KernelCall]:
    """Every kernel call the model makes (a patch stage contributes each patch's calls)."""
    out: list[KernelCall] = []
    for call in calls:
        out += call.flat_calls() if isinstance(call, PatchStage) else [call]
    return out


def _stage_name(stage: PatchStage) -> str:
    return f"stage{stage.op.index}"


def _stage_op_inplace(stage: PatchStage, j: int) -> bool:
    """Does op j of the stage overlap its output and input in the patch sub-plan?"""
    if j == 0:
        return False
    names = {(o, i) for o, i in stage.sub_plan.overlapping}
    n = len(stage.ops)
    out = "patch_out" if j == n - 1 else f"t{stage.ops[j].outputs[0]}"
    return (out, f"t{stage.ops[j - 1].outputs[0]}") in names


def _per_patch_structs(calls: list[KernelCall], sym: str, inplace: bool, parts: list[str]) -> None:
    """Distinct params structs of one op over the patches and a table ``<sym>_patch[k]`` of pointers."""
    first = calls[0]
    for call in calls[1:]:
        same = call.arrays.keys() == first.arrays.keys() and all(
            np.array_equal(np.asarray(call.arrays[k]), np.asarray(first.arrays[k])) for k in first.arrays)
        if not same:
            raise EngineError(f"{call.op.describe()}: its constant arrays differ between patches; a lowering "
                              "must keep weights independent of the patch geometry (internal error).")
    parts.append(render_arrays(first, sym))
    names: dict[str, str] = {}
    refs = []
    for call in calls:
        key = repr(sorted(call.params.items()))
        if key not in names:
            names[key] = f"{sym}_k{len(names)}_params"
            parts.append(render_struct(call, sym, names[key], inplace))
        refs.append(f"&{names[key]}")
    table = ",\n    ".join(", ".join(refs[i:i + 4]) for i in range(0, len(refs), 4))
    declaration = f"static const {first.params_type} *const {sym}_patch[{len(calls)}]"
    parts.append(f"{declaration} = {{\n    {table}\n}};\n")


def render_stage_constants(stage: PatchStage) -> str:
    """Arrays (once per op), per-patch params structs and their tables for a patch stage."""
    parts: list[str] = []
    for j, op in enumerate(stage.ops):
        inplace = _stage_op_inplace(stage, j)
        _per_patch_structs([row[j] for row in stage.calls], f"op{op.index}", inplace, parts)
    name = _stage_name(stage)
    if stage.place_calls is not None:
        _per_patch_structs(stage.place_calls, f"{name}_place", False, parts)
    else:
        offsets = ", ".join(str(o) for o in stage.out_offsets)
        parts.append(f"static const int32_t {name}_out_offsets[{len(stage.out_offsets)}] = {{{offsets}}};\n")
    return "\n".join(parts)


def profile_slots(calls: list[KernelCall | PatchStage]) -> list[tuple[str, str, int]]:
    """(op name, kernel function, MACs executed) of every profile slot, in execution order."""
    slots = []
    for call in calls:
        if isinstance(call, PatchStage):
            for j, op in enumerate(call.ops):
                slots.append((f"{op.describe()} [patches]", call.calls[0][j].function,
                              int(sum(row[j].macs for row in call.calls))))
            if call.place_calls is not None:
                slots.append((f"{call.op.describe()} place", "tk_patch_place_s8", 0))
        else:
            slots.append((call.op.describe(), call.function, int(call.macs)))
    return slots


def render_stage_call(layout: Layout, stage: PatchStage, position: int, slot: int) -> str:
    """The loop over patches of a stage; every op's calls are profiled in slots ``slot, slot+1, ...``."""
    base = layout.scratch_offsets[position]
    assert base is not None
    sub = stage.sub_plan.offsets
    n = len(stage.ops)
    stage_in, stage_out = layout.offset(stage.inputs[0]), layout.offset(stage.outputs[0])
    name = _stage_name(stage)
    rows, cols = stage.grid
    lines = [f"    /* {_sanitize_comment(stage.op.describe())}: ops run on one patch at a time; patch "
             f"buffers live in the stage scratch at {base} */",
             f"    for (int32_t k = 0; k < {stage.n_patches}; ++k) {{"]
    for j, op in enumerate(stage.ops):
        if j == 0:
            src = f"tk_arena + {stage_in}"
        else:
            src = f"tk_arena + {base + sub[f't{stage.ops[j - 1].outputs[0]}']}"
        if j < n - 1:
            dst = f"tk_arena + {base + sub[f't{op.outputs[0]}']}"
        elif stage.place_calls is not None:
            dst = f"tk_arena + {base + sub['patch_out']}"
        else:
            dst = f"tk_arena + {stage_out} + {name}_out_offsets[k]"
        scratch = f"tk_arena + {base + sub[f'scratch{j}']}" if f"scratch{j}" in sub else "NULL"
        call = stage.calls[0][j]
        lines += [f"        /* {_sanitize_comment(op.describe())} */", "        TK_PROF_BEGIN();",
                  "        {",
                  f"            const void *const in[1] = {{{src}}};",
                  f"            void *const out[1] = {{{dst}}};",
                  f"            {call.function}(op{op.index}_patch[k], in, out, {scratch});", "        }",
                  f"        TK_PROF_END({slot + j});"]
    if stage.place_calls is not None:
        lines += ["        TK_PROF_BEGIN();", "        {",
                  f"            const void *const in[1] = {{tk_arena + {base + sub['patch_out']}}};",
                  f"            void *const out[1] = {{tk_arena + {stage_out}}};",
                  f"            tk_patch_place_s8({name}_place_patch[k], in, out, NULL);", "        }",
                  f"        TK_PROF_END({slot + n});"]
    lines.append(f"    }}  /* {rows}x{cols} patches */")
    return "\n".join(lines)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape) or "scalar"


def render_call(layout: Layout, call: KernelCall, position: int, slot: int | None = None) -> str:
    """One block of ``tk_invoke``: pointer tables into the arena and the kernel call (profiled in
    ``slot`` when given)."""
    graph = layout.graph
    name = symbol(call, position)
    outs = ", ".join(f"{graph.tensors[t].name!r}" for t in call.outputs)
    comment = f"    /* {call.op.describe()} -> {_sanitize_comment(outs)} */"
    lines = [comment]
    if slot is not None:
        lines.append("    TK_PROF_BEGIN();")
    lines.append("    {")
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
    if slot is not None:
        lines.append(f"    TK_PROF_END({slot});")
    return "\n".join(lines)


def render_calls(layout: Layout) -> str:
    """The body of ``tk_invoke``: every call (or patch loop) in plan order, each profiled in its slot."""
    blocks = []
    slot = 0
    for position, call in enumerate(layout.calls):
        if isinstance(call, PatchStage):
            blocks.append(render_stage_call(layout, call, position, slot))
            slot += len(call.ops) + (call.place_calls is not None)
        else:
            blocks.append(render_call(layout, call, position, slot))
            slot += 1
    return "\n".join(blocks)


def _sanitize_comment(text: str) -> str:
    return text.replace("*/", "* /").replace("/*", "/ *")


def _io_entries(layout: Layout, indices: list[int]) -> tuple[str, str]:
    offsets = ", ".join(str(layout.offset(t)) for t in indices) or "0"
    sizes = ", ".join(str(layout.graph.tensors[t].nbytes) for t in indices) or "0"
    return offsets, sizes


def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "/").replace('"', "'") + '"'


def render_model_c(layout: Layout, headers: dict[str, str]) -> str:
    """The whole ``model.c``. ``headers`` maps kernel stems to their header text (for checks)."""
    flat = flat_calls(layout.calls)
    kernels = sorted({c.kernel for c in flat})
    for call in flat:
        check_kernel_header(call, headers[call.kernel])
    in_offsets, in_sizes = _io_entries(layout, layout.graph.inputs)
    out_offsets, out_sizes = _io_entries(layout, layout.graph.outputs)
    constants = [render_stage_constants(c) if isinstance(c, PatchStage)
                 else render_params(c, i, layout.inplace[i]) for i, c in enumerate(layout.calls)]
    slots = profile_slots(layout.calls)
    values = {
        "SOURCE": _sanitize_comment(layout.source_name),
        "INCLUDES": "\n".join(f'#include "{k}.h"' for k in kernels),
        "ARENA_BYTES": str(max(layout.arena_bytes, 1)),
        "PROFILE_SLOTS": str(len(slots)),
        "PROFILE_NAMES": ", ".join(_c_string(name) for name, _, _ in slots),
        "PROFILE_FUNCTIONS": ", ".join(_c_string(fn) for _, fn, _ in slots),
        "CONSTANTS": "\n".join(constants),
        "CALLS": render_calls(layout),
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
    return render_template(read_template("Makefile.in"), {"KERNEL_SOURCES": " ".join(kernel_sources),
                                                          "HOST_CFLAGS": host_cflags()})


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
    flat = flat_calls(layout.calls)
    kernel_files = kernel_closure({c.kernel for c in flat})
    files = {f"kernels/{name}": (kernel_dir / name).read_text() for name in kernel_files}
    headers = {c.kernel: files[f"kernels/{c.kernel}.h"] for c in flat}
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


def const_bytes(calls: list[KernelCall | PatchStage]) -> int:
    """Bytes of constant arrays (weights, biases, multipliers) the calls put in flash (a patch stage's
    arrays count once per op: every patch shares them)."""
    unique: list[KernelCall] = []
    for call in calls:
        unique += call.calls[0] if isinstance(call, PatchStage) else [call]
    return int(sum(np.asarray(a).nbytes for c in unique for a in c.arrays.values()))


def write_files(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
