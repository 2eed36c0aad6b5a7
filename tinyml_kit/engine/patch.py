"""Patch-based inference (MCUNetV2): run the memory-heavy first stage of a network patch by patch.

The early layers of a CNN hold the largest activations. A *patch stage* is a chain of spatial ops
(convolutions, depthwise convolutions, pooling and the pointwise activations between them) whose
output is split into a grid of patches; for each patch, every op of the stage runs only on the region
that patch needs (its receptive field, the *halo* recomputed by neighbouring patches), in small patch
buffers, and the patch is written into the stage's full output tensor. The rest of the network then
runs layer by layer. Only the stage input, the stage output and one patch's buffers are live at once.

Exactness: every output pixel is computed by the same kernel arithmetic as in the full frame. A
patch's op gets local input/output shapes and the padding (``op.attrs["patch_pads"]``) that maps its
local windows onto the full-frame windows, so taps outside the full frame are padding exactly where
they are padding in the full frame, and every tap inside it is inside the local input region. The
first op reads the whole stage input in place (negative padding offsets its windows into the frame);
the last op writes its rows straight into the stage output when the grid has one column, else into a
patch buffer copied into place by ``tk_patch_place_s8``.

Memory: the stage is one planner step whose scratch is the patch buffers (planned by a sub-plan of one
patch) and whose output may overlap its input: patches run in raster order, so input rows no later
patch reads are dead and the output may sit on them (:func:`stage_overlap_shift`).

:func:`choose_stage` picks the split (the last op of the stage) and the grid that minimise the peak
arena while the recomputed MACs stay within ``PatchConfig.max_mac_overhead``; a
:class:`PatchConfig` can fix either.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tinyml_kit.engine.errors import EngineError
from tinyml_kit.engine.ir import Graph, Op
from tinyml_kit.engine.lowering import KernelCall, Overlap, lower_op
from tinyml_kit.engine.lowering.common import Window, window_geometry
from tinyml_kit.engine.planner import Buffer, OverlapRule, Plan, Problem, Step, lower_bound, plan

WINDOW_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D")
POINTWISE_OPS = ("RELU", "RELU6", "LOGISTIC", "HARD_SWISH", "QUANTIZE")
MAX_PATCHES_PER_SIDE = 8  # largest grid side the automatic choice tries
CANDIDATES_PLANNED = 4  # best estimated candidates that get a full arena plan
PATCH_OUT = "patch_out"


class PatchError(EngineError):
    """An invalid patch configuration, or a model whose first stage cannot run patch by patch."""


@dataclass(frozen=True)
class PatchConfig:
    """How to run the first stage patch by patch (``compile(..., patch=PatchConfig(...))``).

    Attributes:
        n_patches: patches per side (``n`` -> an n x n grid) or ``(rows, cols)``; None: chosen.
        split_op: TFLite operator index of the *last* op of the patch stage (the stage runs from the
            start of the chain of patchable ops that ends there); None: chosen.
        max_mac_overhead: bound on the recomputed MACs (fraction of the model's MACs) when choosing;
            an explicit ``n_patches`` with an explicit ``split_op`` is used as given.
    """

    n_patches: int | tuple[int, int] | None = None
    split_op: int | None = None
    max_mac_overhead: float = 0.2

    def grid(self) -> tuple[int, int] | None:
        if self.n_patches is None:
            return None
        if isinstance(self.n_patches, int) and not isinstance(self.n_patches, bool):
            rows = cols = self.n_patches
        elif (isinstance(self.n_patches, tuple | list) and len(self.n_patches) == 2
              and all(isinstance(v, int) and not isinstance(v, bool) for v in self.n_patches)):
            rows, cols = (int(v) for v in self.n_patches)
        else:
            raise PatchError(f"PatchConfig.n_patches must be an int (patches per side) or a (rows, cols) "
                             f"pair of ints; got {self.n_patches!r}.")
        if rows < 1 or cols < 1 or rows * cols < 2:
            raise PatchError(f"PatchConfig.n_patches={self.n_patches!r} gives a {rows}x{cols} grid; a patch "
                             "stage needs at least 2 patches (e.g. n_patches=2 for 2x2).")
        return rows, cols

    def validate(self) -> None:
        self.grid()
        split = self.split_op
        if split is not None and (isinstance(split, bool) or not isinstance(split, int)):
            raise PatchError(f"PatchConfig.split_op must be an op index (int); got {self.split_op!r}.")
        if not (isinstance(self.max_mac_overhead, int | float) and self.max_mac_overhead >= 0):
            raise PatchError(f"PatchConfig.max_mac_overhead must be a fraction >= 0 (0.2 = 20% extra MACs); "
                             f"got {self.max_mac_overhead!r}.")


@dataclass(frozen=True)
class Region:
    """Rows ``[y0, y1)`` and columns ``[x0, x1)`` of an NHWC tensor."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def h(self) -> int:
        return self.y1 - self.y0

    @property
    def w(self) -> int:
        return self.x1 - self.x0


@dataclass(frozen=True)
class StageOp:
    """What the planner and reports see of a patch stage: an op-like name (``describe()``)."""

    index: int  # the last op's index (codegen symbols are ``stage<index>_...``)
    first: int
    grid: tuple[int, int]
    type: str = "PATCH_STAGE"

    def describe(self) -> str:
        rows, cols = self.grid
        return f"patch stage op #{self.first}..#{self.index} ({rows}x{cols} patches)"


@dataclass
class PatchStage:
    """A composite planner step: the stage ops run patch by patch (duck-types a KernelCall).

    ``calls[k][j]`` is op ``j`` lowered for patch ``k``; ``place_calls[k]`` copies patch ``k`` into the
    stage output (None when the last op writes there directly at ``out_offsets[k]``). The sub-plan
    places one patch's buffers (named ``t<tensor>``, ``patch_out`` and ``scratch<j>``) inside this
    step's scratch area.
    """

    op: StageOp
    ops: list[Op]
    positions: list[int]  # the ops' positions in graph.ops
    grid: tuple[int, int]
    calls: list[list[KernelCall]]
    place_calls: list[KernelCall] | None
    out_offsets: list[int]
    inputs: list[int]
    outputs: list[int]
    overlaps: list[Overlap]
    sub_problem: Problem
    sub_plan: Plan
    macs: int  # MACs of all patches
    full_macs: int  # MACs of the stage ops on the full frame
    kernel: str = "patch_stage"
    function: str = "patch stage"
    params: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, Any] = field(default_factory=dict)
    inplace_flag: str | None = None

    @property
    def scratch_bytes(self) -> int:
        return self.sub_plan.arena_bytes

    @property
    def n_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    def flat_calls(self) -> list[KernelCall]:
        """Every kernel call of every patch (op calls, then the place call), patch by patch."""
        out = []
        for k, row in enumerate(self.calls):
            out += row
            if self.place_calls is not None:
                out.append(self.place_calls[k])
        return out


# --------------------------------------------------------------------------------------------------
# Which ops can run patch by patch
# --------------------------------------------------------------------------------------------------


def _activation_inputs(graph: Graph, op: Op) -> list[int]:
    return [t for t in op.inputs if t >= 0 and not graph.tensors[t].is_const]


def patchable_reason(graph: Graph, op: Op) -> str | None:
    """Why ``op`` cannot run on a patch (None when it can)."""
    if op.type not in WINDOW_OPS + POINTWISE_OPS:
        return (f"{op.type} is not a spatial op; a patch stage holds {', '.join(WINDOW_OPS)} and the "
                f"pointwise ops {', '.join(POINTWISE_OPS)}")
    acts = _activation_inputs(graph, op)
    if len(acts) != 1 or op.inputs[0] != acts[0] or len(op.outputs) != 1:
        return "it does not have exactly one activation input and one output"
    for role, t in (("input", acts[0]), ("output", op.outputs[0])):
        tensor = graph.tensors[t]
        if tensor.dtype != "int8" or len(tensor.shape) != 4 or tensor.shape[0] != 1:
            return f"its {role} '{tensor.name}' is {tensor.dtype}{list(tensor.shape)}, not int8 NHWC batch 1"
    return None


def _producer_position(graph: Graph, tensor: int) -> int | None:
    for pos, op in enumerate(graph.ops):
        if tensor in op.outputs:
            return pos
    return None


def _links_cleanly(graph: Graph, tensor: int) -> bool:
    """A stage-internal tensor: own storage, no alias, one consumer, not a graph output."""
    t = graph.tensors[tensor]
    return (t.alias_of is None and tensor not in graph.outputs
            and not any(x.alias_of == tensor for x in graph.tensors.values())
            and len(graph.consumers(tensor)) == 1)


def stage_chain(graph: Graph, end: int) -> list[int]:
    """Positions (in ``graph.ops``) of the longest patchable chain ending at position ``end``.

    The chain starts with a window op (the first op reads the full input in place, which only window
    kernels can). Raises :class:`PatchError` when it holds fewer than two ops."""
    op = graph.ops[end]
    reason = patchable_reason(graph, op)
    if reason is not None:
        raise PatchError(f"{graph.source}: {op.describe()} cannot end a patch stage: {reason}.")
    chain = [end]
    while True:
        first = graph.ops[chain[0]]
        tensor = first.inputs[0]
        prod = _producer_position(graph, tensor)
        if prod is None or not _links_cleanly(graph, tensor):
            break
        if patchable_reason(graph, graph.ops[prod]) is not None:
            break
        chain.insert(0, prod)
    while chain and graph.ops[chain[0]].type not in WINDOW_OPS:
        chain.pop(0)
    if len(chain) < 2:
        raise PatchError(
            f"{graph.source}: {op.describe()} cannot end a patch stage: the chain of patchable ops ending "
            "there (starting with a convolution or pooling) has fewer than two ops, so patches would "
            "save nothing. Pick a later split_op."
        )
    return chain


def candidate_ends(graph: Graph) -> dict[int, list[int]]:
    """Every position that can end a patch stage, with its chain."""
    found = {}
    for pos in range(len(graph.ops)):
        try:
            found[pos] = stage_chain(graph, pos)
        except PatchError:
            continue
    return found


# --------------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------------


def op_window(graph: Graph, op: Op) -> Window:
    """The full-frame window of a patchable op (1x1, stride 1 for pointwise ops)."""
    inp, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    in_hw, out_hw = (int(inp.shape[1]), int(inp.shape[2])), (int(out.shape[1]), int(out.shape[2]))
    if op.type in POINTWISE_OPS:
        return Window(in_hw[0], in_hw[1], out_hw[0], out_hw[1], 1, 1, 1, 1, 1, 1, 0, 0)
    dilation = (1, 1)
    if op.type in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        weights = graph.tensors[op.inputs[1]]
        k_hw = (int(weights.shape[1]), int(weights.shape[2]))
        dilation = (int(op.options.get("dilation_h_factor", 1)), int(op.options.get("dilation_w_factor", 1)))
    else:
        k_hw = (int(op.options["filter_height"]), int(op.options["filter_width"]))
    return window_geometry(graph, op, in_hw, out_hw, k_hw, dilation)


def split_axis(size: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` near-equal consecutive ranges covering ``[0, size)``."""
    return [(i * size // parts, (i + 1) * size // parts) for i in range(parts)]


def input_region(win: Window, out: Region) -> Region:
    """The input rows/columns the outputs in ``out`` read (clipped to the frame)."""
    def axis(lo: int, hi: int, stride: int, pad: int, k: int, dil: int, size: int) -> tuple[int, int]:
        first = lo * stride - pad
        last = (hi - 1) * stride - pad + (k - 1) * dil
        return max(first, 0), min(last + 1, size)

    y0, y1 = axis(out.y0, out.y1, win.stride_h, win.pad_top, win.k_h, win.dilation_h, win.in_h)
    x0, x1 = axis(out.x0, out.x1, win.stride_w, win.pad_left, win.k_w, win.dilation_w, win.in_w)
    return Region(y0, y1, x0, x1)


def stage_regions(wins: Sequence[Window], grid: tuple[int, int]) -> list[list[tuple[Region, Region]]]:
    """Per patch (raster order), per op: (input region, output region)."""
    last = wins[-1]
    rows, cols = grid
    patches = []
    for y0, y1 in split_axis(last.out_h, rows):
        for x0, x1 in split_axis(last.out_w, cols):
            out = Region(y0, y1, x0, x1)
            per_op: list[tuple[Region, Region]] = []
            for win in reversed(wins):
                inp = input_region(win, out)
                per_op.insert(0, (inp, out))
                out = inp
            patches.append(per_op)
    return patches


def stage_overlap_shift(regions: list[list[tuple[Region, Region]]], in_w: int, in_c: int, out_w: int,
                        out_c: int) -> int:
    """Largest ``out_offset - in_offset`` at which writing patch outputs never clobbers input bytes a
    later patch reads (patches run in raster order; a patch reads all its input before it writes)."""
    in_bytes_end = max(((r[0][0].y1 - 1) * in_w + r[0][0].x1) * in_c for r in regions)
    bound = in_bytes_end  # no constraint with one patch: any placement of a smaller output is safe
    written = 0
    for k in range(1, len(regions)):
        prev_out = regions[k - 1][-1][1]
        written = max(written, ((prev_out.y1 - 1) * out_w + prev_out.x1) * out_c)
        first_read = (regions[k][0][0].y0 * in_w + regions[k][0][0].x0) * in_c
        bound = min(bound, first_read - written)
    return bound


# --------------------------------------------------------------------------------------------------
# Lowering one patch
# --------------------------------------------------------------------------------------------------

_LowerCache = dict[tuple[Any, ...], KernelCall]


def lower_for_patch(graph: Graph, op: Op, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
                    pads: tuple[int, int], cache: _LowerCache | None = None) -> KernelCall:
    """Lower ``op`` with local input/output shapes and the padding that aligns them with the frame."""
    key = (op.index, in_shape, out_shape, pads)
    if cache is not None and key in cache:
        return cache[key]
    tensors = dict(graph.tensors)
    src, dst = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    tensors[src.index] = dataclasses.replace(src, shape=in_shape)
    tensors[dst.index] = dataclasses.replace(dst, shape=out_shape)
    attrs = dict(op.attrs)
    if op.type in WINDOW_OPS:
        attrs["patch_pads"] = pads
    local_op = dataclasses.replace(op, attrs=attrs)
    local = Graph(tensors=tensors, ops=[local_op], inputs=[src.index], outputs=[dst.index],
                  source=graph.source)
    call = lower_op(local_op, local)
    if cache is not None:
        cache[key] = call
    return call


def _merge_overlaps(rules: list[list[Overlap]], output: int, input_: int) -> Overlap | None:
    """The (output, input) rule that holds for every patch (each patch's safe set intersected)."""
    found = []
    for per_patch in rules:
        match = [o for o in per_patch if o.output == output and o.input == input_]
        if not match:
            return None
        found.append(match[0])
    ms_values = [o.max_shift for o in found]
    max_shift = None if any(m is None for m in ms_values) else min(ms_values)  # type: ignore[type-var]
    def safe(e: int, o: Overlap) -> bool:
        return (o.max_shift is not None and e <= o.max_shift) or e in o.exact

    exact = sorted({e for o in found for e in o.exact if all(safe(e, o2) for o2 in found)})
    if max_shift is None and not exact:
        return None
    return Overlap(output=output, input=input_, max_shift=max_shift, exact=tuple(exact))


def build_stage(graph: Graph, chain: list[int], grid: tuple[int, int], *, time_limit_s: float = 1.0,
                cache: _LowerCache | None = None) -> PatchStage:
    """Lower the ops at ``chain`` (positions in ``graph.ops``) for every patch of ``grid`` and plan the
    buffers of one patch."""
    ops = [graph.ops[p] for p in chain]
    wins = [op_window(graph, op) for op in ops]
    last = wins[-1]
    rows, cols = grid
    if rows > last.out_h or cols > last.out_w:
        raise PatchError(f"{graph.source}: PatchConfig.n_patches gives a {rows}x{cols} grid but the output "
                         f"of {ops[-1].describe()} is {last.out_h}x{last.out_w}; use at most {last.out_h} "
                         f"rows and {last.out_w} columns of patches.")
    regions = stage_regions(wins, grid)
    for k, per_op in enumerate(regions):
        for j, (inp, _) in enumerate(per_op):
            if inp.h <= 0 or inp.w <= 0:
                raise PatchError(f"{graph.source}: patch {k} of {ops[j].describe()} reads no input pixel "
                                 "(its windows lie in the padding); use fewer patches.")
    stage_in, stage_out = ops[0].inputs[0], ops[-1].outputs[0]
    out_tensor = graph.tensors[stage_out]
    out_w, out_c = int(out_tensor.shape[2]), int(out_tensor.shape[3])
    in_tensor = graph.tensors[stage_in]
    place = cols > 1
    calls: list[list[KernelCall]] = []
    place_calls: list[KernelCall] = []
    out_offsets = []
    stage_op = StageOp(index=ops[-1].index, first=ops[0].index, grid=grid)
    for per_op in regions:
        row = []
        for j, (op, win, (inp, out)) in enumerate(zip(ops, wins, per_op, strict=True)):
            c_in = int(graph.tensors[op.inputs[0]].shape[3])
            c_out = int(graph.tensors[op.outputs[0]].shape[3])
            if j == 0:  # the whole frame, windows offset into it by negative padding
                in_shape = tuple(int(d) for d in in_tensor.shape)
                pads = (win.pad_top - out.y0 * win.stride_h, win.pad_left - out.x0 * win.stride_w)
            else:
                in_shape = (1, inp.h, inp.w, c_in)
                pads = (win.pad_top + inp.y0 - out.y0 * win.stride_h,
                        win.pad_left + inp.x0 - out.x0 * win.stride_w)
            row.append(lower_for_patch(graph, op, in_shape, (1, out.h, out.w, c_out), pads, cache))
        calls.append(row)
        out = per_op[-1][1]
        offset = (out.y0 * out_w + out.x0) * out_c
        out_offsets.append(offset)
        place_calls.append(KernelCall(
            op=ops[-1], kernel="tk_patch", function="tk_patch_place_s8", params_type="tk_patch_params_t",
            params={"rows": out.h, "row_bytes": out.w * out_c, "dst_offset": offset,
                    "dst_stride": out_w * out_c}))
    out_bytes = [max(per_op[j][1].h * per_op[j][1].w for per_op in regions)
                 * int(graph.tensors[op.outputs[0]].shape[3]) for j, op in enumerate(ops)]
    sub_problem = _patch_problem(ops, calls, out_bytes, place)
    sub_plan = plan(sub_problem, reorder=False, time_limit_s=time_limit_s)
    shift = stage_overlap_shift(regions, int(in_tensor.shape[2]), int(in_tensor.shape[3]), out_w, out_c)
    return PatchStage(
        op=stage_op, ops=ops, positions=list(chain), grid=grid, calls=calls,
        place_calls=place_calls if place else None, out_offsets=out_offsets,
        inputs=[stage_in], outputs=[stage_out],
        overlaps=[Overlap(output=stage_out, input=stage_in, max_shift=shift)],
        sub_problem=sub_problem, sub_plan=sub_plan,
        macs=sum(c.macs for row in calls for c in row),
        full_macs=sum(lower_op(op, graph).macs for op in ops),
    )


def _patch_problem(ops: list[Op], calls: list[list[KernelCall]], out_bytes: list[int],
                   place: bool) -> Problem:
    """The planner problem of one patch: its local tensors and scratch (sizes: the largest patch)."""
    n = len(ops)
    buffers: dict[str, Buffer] = {}

    def local(j: int) -> str:  # name of op j's local output buffer
        return PATCH_OUT if j == n - 1 else f"t{ops[j].outputs[0]}"

    steps = []
    for j in range(n):
        outputs: tuple[str, ...] = ()
        if j < n - 1 or place:
            buffers[local(j)] = Buffer(local(j), out_bytes[j])
            outputs = (local(j),)
        inputs = (local(j - 1),) if j > 0 else ()
        scratch: tuple[str, ...] = ()
        scratch_size = max(row[j].scratch_bytes for row in calls)
        if scratch_size > 0:
            scratch = (f"scratch{j}",)
            buffers[scratch[0]] = Buffer(scratch[0], int(scratch_size))
        rules: tuple[OverlapRule, ...] = ()
        if inputs and outputs:
            merged = _merge_overlaps([row[j].overlaps for row in calls], ops[j].outputs[0], ops[j].inputs[0])
            if merged is not None:
                rules = (OverlapRule(outputs[0], inputs[0], merged.max_shift, merged.exact),)
        steps.append(Step(name=ops[j].describe(), inputs=inputs, outputs=outputs, scratch=scratch,
                          overlaps=rules))
    if place:
        steps.append(Step(name="place patch", inputs=(PATCH_OUT,), outputs=()))
    return Problem(buffers=buffers, steps=steps, graph_inputs=(), graph_outputs=())


# --------------------------------------------------------------------------------------------------
# Choosing the split and the grid
# --------------------------------------------------------------------------------------------------


@dataclass
class PatchChoice:
    """The stage picked by :func:`choose_stage` and its arena plan."""

    stage: PatchStage
    calls: list[Any]  # the model's steps with the stage in place of its ops
    problem: Problem
    plan: Plan
    mac_overhead: float  # extra MACs / the model's MACs
    candidates: int  # (split, grid) pairs evaluated


def replace_ops(calls: list[KernelCall], stage: PatchStage) -> list[Any]:
    """The model's calls with the stage's ops replaced by the stage (at the position of its last op)."""
    positions = set(stage.positions)
    out: list[Any] = []
    for pos, call in enumerate(calls):
        if pos == stage.positions[-1]:
            out.append(stage)
        elif pos not in positions:
            out.append(call)
    return out


def mac_overhead(stage: PatchStage, total_macs: int) -> float:
    return (stage.macs - stage.full_macs) / total_macs if total_macs else 0.0


def _estimate(graph: Graph, calls: list[KernelCall], chain: list[int], grid: tuple[int, int],
              make_problem: Callable[[list[Any]], Problem]) -> tuple[int, float]:
    """(estimated peak, MAC overhead) of a candidate without lowering: the rest's lower bound with the
    stage's input/output pair, and the stage's two largest consecutive patch buffers."""
    ops = [graph.ops[p] for p in chain]
    wins = [op_window(graph, op) for op in ops]
    regions = stage_regions(wins, grid)
    full = sum(calls[p].macs for p in chain)
    patched = 0
    biggest = 0
    for per_op in regions:
        for j, (inp, out) in enumerate(per_op):
            pixels = wins[j].out_h * wins[j].out_w
            patched += calls[chain[j]].macs * out.h * out.w // max(pixels, 1)
            c_in = int(graph.tensors[ops[j].inputs[0]].shape[3])
            c_out = int(graph.tensors[ops[j].outputs[0]].shape[3])
            in_bytes = 0 if j == 0 else inp.h * inp.w * c_in
            biggest = max(biggest, in_bytes + out.h * out.w * c_out + calls[chain[j]].scratch_bytes)
    total = sum(c.macs for c in calls)
    overhead = (patched - full) / total if total else 0.0
    in_t, out_t = graph.tensors[ops[0].inputs[0]], graph.tensors[ops[-1].outputs[0]]
    shift = stage_overlap_shift(regions, int(in_t.shape[2]), int(in_t.shape[3]), int(out_t.shape[2]),
                                int(out_t.shape[3]))
    proxy = _ProxyStage(ops, chain, grid, biggest, shift)
    bound = lower_bound(make_problem(replace_ops(calls, proxy)))  # type: ignore[arg-type]
    return bound, overhead


@dataclass
class _ProxyStage:
    """A stand-in stage for estimates: scratch = an estimate of one patch's buffers."""

    ops: list[Op]
    positions: list[int]
    grid: tuple[int, int]
    scratch_bytes: int
    shift: int

    @property
    def op(self) -> StageOp:
        return StageOp(index=self.ops[-1].index, first=self.ops[0].index, grid=self.grid)

    @property
    def inputs(self) -> list[int]:
        return [self.ops[0].inputs[0]]

    @property
    def outputs(self) -> list[int]:
        return [self.ops[-1].outputs[0]]

    @property
    def overlaps(self) -> list[Overlap]:
        return [Overlap(output=self.outputs[0], input=self.inputs[0], max_shift=self.shift)]


def _grids(config_grid: tuple[int, int] | None, out_h: int, out_w: int) -> list[tuple[int, int]]:
    if config_grid is not None:
        return [config_grid]
    return [(n, n) for n in range(2, MAX_PATCHES_PER_SIDE + 1) if n <= out_h and n <= out_w]


def choose_stage(graph: Graph, calls: list[KernelCall], config: PatchConfig,
                 make_problem: Callable[[list[Any]], Problem], *, baseline_peak: int,
                 time_limit_s: float = 5.0) -> tuple[PatchChoice | None, str]:
    """The patch stage with the smallest peak arena under the MAC-overhead bound, or None and the reason
    (no op can end a stage, the bound excludes every candidate, or patches would not lower the peak
    below ``baseline_peak``). An explicit split and grid are always used; an invalid one raises
    :class:`PatchError` naming the op or field."""
    config.validate()
    grid = config.grid()
    ends = _ends_for(graph, config)
    if not ends:
        return None, (f"no op can end a patch stage (a chain of at least two of {', '.join(WINDOW_OPS)} "
                      f"and {', '.join(POINTWISE_OPS)} on int8 NHWC tensors, starting with a convolution "
                      "or pooling)")
    explicit = config.split_op is not None and grid is not None
    scored = []
    for end, chain in ends.items():
        last = op_window(graph, graph.ops[end])
        for g in _grids(grid, last.out_h, last.out_w):
            if g[0] > last.out_h or g[1] > last.out_w:
                if config.split_op is None:
                    continue  # this split's output is too small for the requested grid
                raise PatchError(
                    f"{graph.source}: PatchConfig.n_patches={config.n_patches!r} gives a {g[0]}x{g[1]} grid "
                    f"but the output of {graph.ops[end].describe()} is {last.out_h}x{last.out_w}; use at "
                    f"most {last.out_h} rows and {last.out_w} columns of patches.")
            bound, overhead = _estimate(graph, calls, chain, g, make_problem)
            if overhead > config.max_mac_overhead and not explicit:
                continue
            scored.append((bound, overhead, end, g))
    if not scored:
        return None, f"every patch stage recomputes more than {config.max_mac_overhead:.0%} extra MACs"
    scored.sort(key=lambda s: (s[0], s[1], s[3][0] * s[3][1]))
    total = sum(c.macs for c in calls)
    cache: _LowerCache = {}
    best: PatchChoice | None = None
    per_candidate = time_limit_s / min(len(scored), CANDIDATES_PLANNED)
    for bound, _, end, g in scored[:CANDIDATES_PLANNED]:
        if best is not None and bound >= best.plan.arena_bytes:
            break
        stage = build_stage(graph, ends[end], g, time_limit_s=per_candidate / 4, cache=cache)
        steps = replace_ops(calls, stage)
        problem = make_problem(steps)
        arena = plan(problem, time_limit_s=per_candidate)
        overhead = mac_overhead(stage, total)
        if overhead > config.max_mac_overhead and not explicit:
            continue
        if best is None or (arena.arena_bytes, overhead) < (best.plan.arena_bytes, best.mac_overhead):
            best = PatchChoice(stage, steps, problem, arena, overhead, len(scored))
    if best is None:
        return None, f"every patch stage recomputes more than {config.max_mac_overhead:.0%} extra MACs"
    if not explicit and best.plan.arena_bytes >= baseline_peak:
        return None, (f"the best patch stage needs {best.plan.arena_bytes} bytes, no less than "
                      f"layer-by-layer execution ({baseline_peak} bytes)")
    return best, ""


def _ends_for(graph: Graph, config: PatchConfig) -> dict[int, list[int]]:
    if config.split_op is None:
        return candidate_ends(graph)
    positions = [p for p, op in enumerate(graph.ops) if op.index == config.split_op]
    if not positions:
        valid = ", ".join(f"#{graph.ops[p].index}" for p in candidate_ends(graph)) or "none"
        raise PatchError(f"{graph.source}: PatchConfig.split_op={config.split_op}: the model has no op "
                         f"#{config.split_op} (after its reshapes and pads are folded); ops that can end a "
                         f"patch stage: {valid}.")
    return {positions[0]: stage_chain(graph, positions[0])}


def stage_summary(stage: PatchStage, arena_plan: Plan, position: int, total_macs: int,
                  layer_peak: int) -> dict[str, Any]:
    """What the manifest and reports say about a patch stage (both memory regimes)."""
    stage_peak = arena_plan.footprint_bytes[position]
    rest = [b for p, b in enumerate(arena_plan.footprint_bytes) if p != position]
    return {
        "applied": True,
        "first_op": stage.op.first,
        "split_op": stage.op.index,
        "ops": [op.describe() for op in stage.ops],
        "positions": stage.positions,
        "grid": list(stage.grid),
        "n_patches": stage.n_patches,
        "mac_overhead": mac_overhead(stage, total_macs),
        "extra_macs": stage.macs - stage.full_macs,
        "stage_peak_bytes": stage_peak,
        "stage_scratch_bytes": stage.scratch_bytes,
        "rest_peak_bytes": max(rest, default=0),
        "layer_by_layer_peak_bytes": layer_peak,
        "sub_plan_footprint_bytes": list(stage.sub_plan.footprint_bytes),
    }
