"""Static memory planner: places every activation and scratch buffer of a model in ONE arena.

Semantics (what :func:`check_plan` enforces):

* Positions are indices into :attr:`Plan.order` (the execution order of the steps). A buffer is live
  from the position of the step that writes it (graph inputs: position 0) to the position of its last
  reader (graph outputs: the last position). A scratch buffer, or an output nobody reads, is live only
  at its own step.
* Two buffers live at the same position must not share a byte, except an ``(output, input)`` pair of
  that step with an :class:`OverlapRule` whose input *dies* at the step (this step is its last reader
  and it is not a graph output) and whose shift ``out_offset - in_offset`` satisfies the rule
  (``shift <= max_shift`` or ``shift in exact``). An input still needed later is never overlapped.
* **Alignment:** every offset :func:`plan` returns is a multiple of ``align`` (default 4 bytes, so
  kernels may use word loads on any buffer). Sizes are used as given. Overlap rules are honoured
  exactly; because both offsets are aligned, a rule whose tightest shift is not a multiple of 4
  (``max_shift=-6``) is used at the next aligned shift (-8), and an ``exact`` shift that is not a
  multiple of 4 cannot be used. The lower bound accounts for this, so it stays a true bound.

Strategies (the smallest peak wins; ties go to the one tried first): the model order and, with
``reorder=True``, the topological order minimising the peak lower bound (exact DP over the sets of
executed steps for graphs of modest width, a beam search beyond). For each order: a rule-aware
first-fit / best-fit placer under several buffer orderings (by size, lifetime start, pressure at the
busiest step, lifetime length, area, conflicts); on the model order also TFLM's greedy plan, so we are
never worse than :func:`greedy_tflm_like`; an exact offset DP when at most two non-scratch buffers are
live at any step (their conflict graph is then a forest), with scratch stacked at the top or bottom of
the arena, which solves scratch-free chains optimally; branch and bound for small problems; and local
search over the best buffer ordering. Like TFLM's planner we do not claim optimality in general (the
problem is NP-hard); :attr:`Plan.lower_bound_bytes` (for the chosen order) says how far from optimal a
plan can be at most. Search budgets are node/iteration counts, so results are deterministic unless
``time_limit_s`` cuts a search short.
"""

from __future__ import annotations

import bisect
import math
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tinyml_kit.engine.errors import EngineError

ALIGN = 4
_ORDER_BEAM = 64  # executed-step sets kept per layer by the order search (exact below that)
_BNB_NODES = 50000  # search nodes of branch and bound (deterministic budget; the time limit also stops it)
_LOCAL_SEARCH_MOVES = 40000  # buffer placements spent by local search (fewer iterations on big problems)


class PlanError(EngineError):
    """A planning problem is malformed, or a plan breaks the arena rules (the message names both)."""


# --------------------------------------------------------------------------------------------------
# Public data model
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Buffer:
    """One arena buffer: an activation tensor's storage or a kernel's scratch area."""

    name: str
    size: int  # bytes, >= 0


@dataclass(frozen=True)
class OverlapRule:
    """Where a step's output may overlap one of its inputs (by buffer name), see ``lowering.base.Overlap``.

    Safe when ``out_offset - in_offset <= max_shift`` (raster-order ops) or when the shift is one of
    ``exact`` (e.g. 0 for channel-by-channel in-place depthwise); only usable when the input dies there.
    """

    output: str
    input: str
    max_shift: int | None = None
    exact: tuple[int, ...] = ()


@dataclass(frozen=True)
class Step:
    """One kernel call: the buffers it reads, writes and uses as scratch, and its overlap rules."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    scratch: tuple[str, ...] = ()
    overlaps: tuple[OverlapRule, ...] = ()


@dataclass
class Problem:
    """Buffers, steps in a valid topological (model) order, and the graph's inputs and outputs."""

    buffers: dict[str, Buffer]
    steps: list[Step]
    graph_inputs: tuple[str, ...]  # live from before the first step
    graph_outputs: tuple[str, ...]  # live until after the last step


@dataclass
class Plan:
    """Offsets of every buffer in one arena, plus per-position figures for reports.

    ``footprint_bytes[p]`` is the highest byte used by buffers live at position ``p`` (so
    ``arena_bytes == max(footprint_bytes)``); ``bound_per_step[p]`` is the least any placement in this
    order could use there; ``lower_bound_bytes`` is its maximum. ``overlapping`` lists the
    ``(output, input)`` pairs that share bytes, for which codegen must pick the in-place kernel.
    """

    order: list[int]
    offsets: dict[str, int]
    arena_bytes: int
    lower_bound_bytes: int
    lifetimes: dict[str, tuple[int, int]]
    live_bytes: list[int]
    footprint_bytes: list[int]
    bound_per_step: list[int]
    overlapping: set[tuple[str, str]] = field(default_factory=set)
    method: str = ""


# --------------------------------------------------------------------------------------------------
# Problem analysis
# --------------------------------------------------------------------------------------------------


def _ceil(value: int, align: int) -> int:
    return -((-value) // align) * align


def _floor(value: int, align: int) -> int:
    return (value // align) * align


@dataclass
class _Info:
    """A validated problem with buffers as integer indices."""

    problem: Problem
    names: list[str]
    sizes: list[int]
    index: dict[str, int]
    producer: list[int]  # step index, or -1 for graph inputs
    readers: list[list[int]]
    is_scratch: list[bool]
    graph_in: set[int]
    graph_out: set[int]
    step_ins: list[list[int]]
    step_outs: list[list[int]]
    step_scratch: list[list[int]]
    step_rules: list[dict[tuple[int, int], tuple[int | None, tuple[int, ...]]]]
    step_preds: list[set[int]]

    @property
    def n_steps(self) -> int:
        return len(self.step_ins)

    def step_label(self, s: int) -> str:
        return f"step {s} '{self.problem.steps[s].name}'"


def _merge_rule(
    old: tuple[int | None, tuple[int, ...]] | None, ms: int | None, exact: tuple[int, ...]
) -> tuple[int | None, tuple[int, ...]]:
    """Two rules for the same pair: a shift is safe when either allows it."""
    if old is None:
        return ms, tuple(sorted(set(exact)))
    old_ms, old_exact = old
    if old_ms is None:
        new_ms = ms
    elif ms is None:
        new_ms = old_ms
    else:
        new_ms = max(old_ms, ms)
    return new_ms, tuple(sorted(set(old_exact) | set(exact)))


def _analyse(problem: Problem) -> _Info:
    """Validate ``problem`` and index it; raise :class:`PlanError` naming what is wrong."""
    names = list(problem.buffers)
    index = {name: i for i, name in enumerate(names)}
    sizes = []
    for key, buf in problem.buffers.items():
        if buf.name != key:
            raise PlanError(f"Problem.buffers key '{key}' holds Buffer '{buf.name}'; key them by their name.")
        if not isinstance(buf.size, int) or buf.size < 0:
            raise PlanError(f"buffer '{key}' has size {buf.size!r}; sizes must be integers >= 0 (bytes).")
        sizes.append(buf.size)
    if not problem.steps:
        raise PlanError("the problem has no steps; a plan needs at least one kernel call.")
    n_buf = len(names)
    producer = [-1] * n_buf
    readers: list[list[int]] = [[] for _ in range(n_buf)]
    is_scratch = [False] * n_buf

    def lookup(name: str, where: str) -> int:
        if name not in index:
            raise PlanError(f"{where} names unknown buffer '{name}'; add it to Problem.buffers.")
        return index[name]

    graph_in = {lookup(n, "graph_inputs") for n in problem.graph_inputs}
    graph_out = {lookup(n, "graph_outputs") for n in problem.graph_outputs}
    step_ins, step_outs, step_scratch, step_rules, step_preds = [], [], [], [], []
    for s, step in enumerate(problem.steps):
        label = f"step {s} '{step.name}'"
        ins = list(dict.fromkeys(lookup(n, label) for n in step.inputs))
        outs = list(dict.fromkeys(lookup(n, label) for n in step.outputs))
        scr = list(dict.fromkeys(lookup(n, label) for n in step.scratch))
        for b in outs + scr:
            if producer[b] >= 0:
                raise PlanError(
                    f"buffer '{names[b]}' is written by {label} and by step {producer[b]} "
                    f"'{problem.steps[producer[b]].name}'; every buffer needs exactly one producer."
                )
            if b in graph_in:
                raise PlanError(
                    f"graph input '{names[b]}' is also written by {label}; give it its own buffer."
                )
            producer[b] = s
        for b in scr:
            is_scratch[b] = True
        clash = (set(ins) & set(outs)) | (set(scr) & (set(ins) | set(outs)))
        if clash:
            raise PlanError(
                f"{label} uses buffer '{names[min(clash)]}' in two roles (input/output/scratch); "
                "in-place ops need separate buffers and an OverlapRule."
            )
        rules: dict[tuple[int, int], tuple[int | None, tuple[int, ...]]] = {}
        for rule in step.overlaps:
            o, i = lookup(rule.output, label), lookup(rule.input, label)
            if o not in outs or i not in ins:
                raise PlanError(
                    f"{label} has an OverlapRule({rule.output!r}, {rule.input!r}) but '{rule.output}' "
                    f"must be one of its outputs {list(step.outputs)} and '{rule.input}' one of its inputs "
                    f"{list(step.inputs)}."
                )
            rules[(o, i)] = _merge_rule(rules.get((o, i)), rule.max_shift, tuple(rule.exact))
        step_ins.append(ins)
        step_outs.append(outs)
        step_scratch.append(scr)
        step_rules.append(rules)
    for s, ins in enumerate(step_ins):
        preds = set()
        for b in ins:
            if is_scratch[b]:
                raise PlanError(
                    f"step {s} '{problem.steps[s].name}' reads scratch buffer '{names[b]}' of step "
                    f"{producer[b]}; scratch lives only during its own step."
                )
            if producer[b] < 0 and b not in graph_in:
                raise PlanError(
                    f"step {s} '{problem.steps[s].name}' reads '{names[b]}', which no step writes and "
                    "which is not a graph input."
                )
            readers[b].append(s)
            if producer[b] >= 0:
                preds.add(producer[b])
        step_preds.append(preds)
    for b in range(n_buf):
        if is_scratch[b] and b in graph_out:
            raise PlanError(f"scratch buffer '{names[b]}' cannot be a graph output.")
        if producer[b] < 0 and b not in graph_in:
            raise PlanError(
                f"buffer '{names[b]}' is never written, read or used as graph input; remove it from "
                "Problem.buffers."
            )
    info = _Info(problem, names, sizes, index, producer, readers, is_scratch, graph_in, graph_out,
                 step_ins, step_outs, step_scratch, step_rules, step_preds)
    _check_order(info, list(range(len(problem.steps))), "the model order (Problem.steps)")
    return info


def _check_order(info: _Info, order: Sequence[int], what: str) -> None:
    n = info.n_steps
    if sorted(order) != list(range(n)):
        raise PlanError(f"{what} must list every step index 0..{n - 1} exactly once; got {list(order)}.")
    pos = {s: p for p, s in enumerate(order)}
    for s in order:
        for b in info.step_ins[s]:
            prod = info.producer[b]
            if prod >= 0 and pos[prod] > pos[s]:
                raise PlanError(
                    f"{what} is not topological: {info.step_label(s)} reads '{info.names[b]}' before "
                    f"{info.step_label(prod)} writes it."
                )


# --------------------------------------------------------------------------------------------------
# Timeline of one order: lifetimes, usable rules, conflicts, lower bound
# --------------------------------------------------------------------------------------------------

# Relation of a buffer to a conflicting one: None (must be disjoint) or (role, max_shift, exact) where
# role "out" means this buffer is the output and the other the dying input of an overlap rule.
_Rel = tuple[str, int | None, tuple[int, ...]] | None


@dataclass
class _Timeline:
    order: list[int]
    first: list[int]
    last: list[int]
    live: list[list[int]]  # per position
    rules_at: list[dict[tuple[int, int], tuple[int | None, tuple[int, ...]]]]  # usable at each position
    conflicts: list[list[tuple[int, _Rel]]]  # nonzero-size buffers sharing a position
    bound: list[int]


def _lifetimes(info: _Info, order: Sequence[int]) -> tuple[list[int], list[int]]:
    n_pos = len(order)
    first = [0] * len(info.names)
    last = [0] * len(info.names)
    for p, s in enumerate(order):
        for b in info.step_outs[s] + info.step_scratch[s]:
            first[b] = last[b] = p
    for p, s in enumerate(order):
        for b in info.step_ins[s]:
            last[b] = max(last[b], p)
    for b in info.graph_out:
        last[b] = n_pos - 1
    return first, last


def _pair_measure(size_in: int, size_out: int, max_shift: int | None, exact: Iterable[int],
                  align: int) -> int:
    """Least bytes covered by an (input, output) pair placed at aligned offsets under a rule.

    Uses sizes rounded up to ``align`` (see :func:`_position_bound`)."""
    a_in, a_out = _ceil(size_in, align), _ceil(size_out, align)
    best = a_in + a_out  # disjoint

    def covered(d: int) -> int:
        return max(a_in, d + a_out) - min(0, d)

    if max_shift is not None:
        d = min(0, _floor(max_shift, align))  # covered() is smallest at d=0 and grows away from it
        if d > -size_out:
            best = min(best, covered(d))
    for e in exact:
        if e % align == 0 and -size_out < e < size_in:
            best = min(best, covered(e))
    return best


def _rule_savings(rules: dict[tuple[int, int], tuple[int | None, tuple[int, ...]]], sizes: Sequence[int],
                  align: int) -> int:
    """Most bytes any aligned placement can save at one step through its usable overlap rules.

    Buffers joined by rules form groups; a group's rounded-up buffers cover at least the best pair
    measure, all its inputs together, and all its outputs together (no rule joins two inputs or two
    outputs); the saving is the group's total rounded size minus that.
    """
    parent: dict[int, int] = {}

    def find(b: int) -> int:
        parent.setdefault(b, b)
        while parent[b] != b:
            parent[b] = parent[parent[b]]
            b = parent[b]
        return b

    usable = [(o, i, r) for (o, i), r in rules.items() if sizes[o] > 0 and sizes[i] > 0]
    for o, i, _ in usable:
        parent[find(o)] = find(i)
    groups: dict[int, list[tuple[int, int, tuple[int | None, tuple[int, ...]]]]] = {}
    for o, i, r in usable:
        groups.setdefault(find(o), []).append((o, i, r))
    saving = 0
    for pairs in groups.values():
        ins = {i for _, i, _ in pairs}
        outs = {o for o, _, _ in pairs}
        sum_in = sum(_ceil(sizes[b], align) for b in ins)
        sum_out = sum(_ceil(sizes[b], align) for b in outs)
        measures = [_pair_measure(sizes[i], sizes[o], ms, ex, align) for o, i, (ms, ex) in pairs]
        measure = min(measures) if len(ins) + len(outs) == 2 else max(sum_in, sum_out, max(measures))
        saving += sum_in + sum_out - measure
    return saving


def _position_bound(
    live: Iterable[int],
    rules: dict[tuple[int, int], tuple[int | None, tuple[int, ...]]],
    sizes: Sequence[int],
    align: int,
) -> int:
    """A lower bound on the arena top at one position, valid for every aligned placement.

    Buffers that must be disjoint stay disjoint when rounded up to ``align``; rule groups save at most
    :func:`_rule_savings`; the arena top is at least the bytes covered by the rounded-up buffers minus
    the rounding of the topmost one. ``rules`` must only hold rules usable at this position.
    """
    nz = [b for b in live if sizes[b] > 0]
    if not nz:
        return 0
    total = sum(_ceil(sizes[b], align) for b in nz) - _rule_savings(rules, sizes, align)
    max_pad = max(_ceil(sizes[b], align) - sizes[b] for b in nz)
    return max(total - max_pad, max(sizes[b] for b in nz))


def _timeline(info: _Info, order: Sequence[int], align: int) -> _Timeline:
    first, last = _lifetimes(info, order)
    n_pos = len(order)
    live: list[list[int]] = [[] for _ in range(n_pos)]
    for b in range(len(info.names)):
        for p in range(first[b], last[b] + 1):
            live[p].append(b)
    rules_at = []
    for p, s in enumerate(order):
        usable = {(o, i): r for (o, i), r in info.step_rules[s].items()
                  if last[i] == p and i not in info.graph_out}
        rules_at.append(usable)
    sizes = info.sizes
    conflicts: list[list[tuple[int, _Rel]]] = [[] for _ in range(len(info.names))]
    for p in range(n_pos):
        here = [b for b in live[p] if sizes[b] > 0]
        for k, b in enumerate(here):
            if first[b] != p:
                continue
            for j, c in enumerate(here):
                if c == b or (first[c] == p and j < k):
                    continue  # pair already recorded (or same buffer)
                rel_b: _Rel = None
                rel_c: _Rel = None
                if (b, c) in rules_at[p]:
                    ms, ex = rules_at[p][(b, c)]
                    rel_b, rel_c = ("out", ms, ex), ("in", ms, ex)
                elif (c, b) in rules_at[p]:
                    ms, ex = rules_at[p][(c, b)]
                    rel_b, rel_c = ("in", ms, ex), ("out", ms, ex)
                conflicts[b].append((c, rel_b))
                conflicts[c].append((b, rel_c))
    bound = [_position_bound(live[p], rules_at[p], sizes, align) for p in range(n_pos)]
    return _Timeline(list(order), first, last, live, rules_at, conflicts, bound)


# --------------------------------------------------------------------------------------------------
# Rule-aware placement of one buffer next to already placed ones
# --------------------------------------------------------------------------------------------------


def _forbidden(size: int, other_off: int, other_size: int, rel: _Rel, align: int) -> list[tuple[int, int]]:
    """Closed intervals of offsets at which a buffer of ``size`` would illegally overlap the other."""
    lo, hi = other_off - size + 1, other_off + other_size - 1
    if rel is None:
        return [(lo, hi)]
    role, ms, exact = rel
    if role == "out":  # shift = x - other_off
        if ms is not None:
            lo = max(lo, other_off + ms + 1)
        points = [other_off + e for e in exact]
    else:  # this buffer is the input: shift = other_off - x <= ms  <=>  x >= other_off - ms
        if ms is not None:
            hi = min(hi, other_off - ms - 1)
        points = [other_off - e for e in exact]
    if lo > hi:
        return []
    out = []
    for pt in sorted(pt for pt in points if pt % align == 0 and lo <= pt <= hi):
        if pt > lo:
            out.append((lo, pt - 1))
        lo = pt + 1
    if lo <= hi:
        out.append((lo, hi))
    return out


def _intervals_for(b: int, offsets: Sequence[int | None], sizes: Sequence[int], tl: _Timeline,
                   align: int) -> list[tuple[int, int]]:
    ivs: list[tuple[int, int]] = []
    for c, rel in tl.conflicts[b]:
        oc = offsets[c]
        if oc is not None:
            ivs.extend(_forbidden(sizes[b], oc, sizes[c], rel, align))
    ivs.sort()
    return ivs


def _lowest_fit(ivs: list[tuple[int, int]], start: int, align: int) -> int:
    """Lowest aligned offset >= start outside every (sorted) forbidden interval."""
    x = _ceil(max(start, 0), align)
    for lo, hi in ivs:
        if lo > x:
            break
        if hi >= x:
            x = _ceil(hi + 1, align)
    return x


def _best_fit(ivs: list[tuple[int, int]], size: int, align: int) -> int:
    """Aligned offset in the tightest hole below the placed buffers (lowest on ties), else on top."""
    best: tuple[int, int] | None = None
    x = 0
    for lo, hi in ivs:
        if lo > x:
            slack = lo - 1 - x  # the buffer may start anywhere in [x, lo - 1]
            if best is None or slack < best[0]:
                best = (slack, x)
        if hi >= x:
            x = _ceil(hi + 1, align)
    return x if best is None else best[1]


def _place_sequence(
    tl: _Timeline, sizes: Sequence[int], seq: Sequence[int], policy: str, align: int, start: int = 0,
    prefix: Sequence[int | None] | None = None,
) -> tuple[list[int | None], int]:
    """Place ``seq[start:]`` one by one (lowest or tightest legal offset) after the first ``start``
    buffers, whose offsets are taken from ``prefix``. Returns offsets and peak."""
    offsets: list[int | None] = [None] * len(sizes)
    if start:
        assert prefix is not None
        for b in seq[:start]:
            offsets[b] = prefix[b]
    for b in seq[start:]:
        ivs = _intervals_for(b, offsets, sizes, tl, align)
        offsets[b] = _lowest_fit(ivs, 0, align) if policy == "first-fit" else _best_fit(ivs, sizes[b], align)
    return offsets, _peak(offsets, sizes)


def _orderings(tl: _Timeline, info: _Info) -> dict[str, list[int]]:
    sizes = info.sizes
    bufs = [b for b in range(len(sizes)) if sizes[b] > 0]
    first, last = tl.first, tl.last

    def length(b: int) -> int:
        return last[b] - first[b] + 1

    def pressure(b: int) -> int:
        return max(tl.bound[first[b]:last[b] + 1])

    def degree(b: int) -> int:
        return sizes[b] + sum(sizes[c] for c, _ in tl.conflicts[b])

    return {
        "size": sorted(bufs, key=lambda b: (-sizes[b], first[b])),
        "start": sorted(bufs, key=lambda b: (first[b], -sizes[b])),
        "pressure": sorted(bufs, key=lambda b: (-pressure(b), -sizes[b], first[b])),
        "length": sorted(bufs, key=lambda b: (-length(b), -sizes[b], first[b])),
        "area": sorted(bufs, key=lambda b: (-sizes[b] * length(b), first[b])),
        "degree": sorted(bufs, key=lambda b: (-degree(b), -sizes[b], first[b])),
    }


# --------------------------------------------------------------------------------------------------
# Exact offset DP when the conflict graph is a forest (at most two activations live at any step)
# --------------------------------------------------------------------------------------------------

_Iv = list[tuple[float, float]]  # sorted disjoint closed intervals of offsets in units of `align`


def _iv_union(ivs: _Iv) -> _Iv:
    out: _Iv = []
    for a, b in sorted(ivs):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _iv_intersect(x: _Iv, y: _Iv) -> _Iv:
    out: _Iv = []
    i = j = 0
    while i < len(x) and j < len(y):
        a, b = max(x[i][0], y[j][0]), min(x[i][1], y[j][1])
        if a <= b:
            out.append((a, b))
        if x[i][1] < y[j][1]:
            i += 1
        else:
            j += 1
    return out


def _iv_minus_shifts(g: _Iv, d: _Iv) -> _Iv:
    """{k - t : k in g, t in d}."""
    return _iv_union([(a - t1, b - t0) for a, b in g for t0, t1 in d])


def _shift_set(size_v: int, size_u: int, rel_u: _Rel, align: int) -> _Iv:
    """Allowed (offset_u - offset_v) / align for two conflicting buffers; ``rel_u`` is u's relation to v."""
    inf = math.inf
    pieces: _Iv = [(-inf, -_ceil(size_u, align) // align), (_ceil(size_v, align) // align, inf)]
    if rel_u is not None:
        role, ms, exact = rel_u
        sign = 1 if role == "out" else -1  # u output: shift = d; u input: shift = -d
        if ms is not None:
            if sign == 1:
                pieces.append((-inf, _floor(ms, align) // align))
            else:
                pieces.append((_ceil(-ms, align) // align, inf))
        pieces.extend((sign * e // align, sign * e // align) for e in exact if e % align == 0)
    return _iv_union(pieces)


class _ForestDP:
    """Optimal aligned placement of the non-scratch buffers for a budget, scratch stacked at one end."""

    def __init__(self, tl: _Timeline, info: _Info, align: int, scratch_side: str):
        sizes = info.sizes
        self.tl, self.info, self.align, self.side = tl, info, align, scratch_side
        self.nodes = [b for b in range(len(sizes)) if sizes[b] > 0 and not info.is_scratch[b]]
        node_set = set(self.nodes)
        self.ok = all(sum(1 for b in live if b in node_set) <= 2 for live in tl.live)
        if not self.ok:
            return
        self.scratch_at = [[b for b in live if sizes[b] > 0 and info.is_scratch[b]] for live in tl.live]
        for lst in self.scratch_at:
            lst.sort(key=lambda b: -sizes[b])
        adj: dict[int, list[tuple[int, _Rel]]] = {b: [] for b in self.nodes}
        for b in self.nodes:
            adj[b] = [(c, rel) for c, rel in tl.conflicts[b] if c in node_set]
        # root every tree at its earliest buffer; `preorder` lists parents before their children
        self.parent: dict[int, tuple[int, _Rel] | None] = {}
        self.preorder: list[int] = []
        for root in sorted(self.nodes, key=lambda b: (tl.first[b], b)):
            if root in self.parent:
                continue
            self.parent[root] = None
            queue = [root]
            while queue:
                v = queue.pop()
                self.preorder.append(v)
                for u in (c for c, _ in adj[v] if c not in self.parent):
                    self.parent[u] = (v, self._rel_of(u, v))
                    queue.append(u)
        self.children: dict[int, list[int]] = {b: [] for b in self.nodes}
        for u, pr in self.parent.items():
            if pr is not None:
                self.children[pr[0]].append(u)

    def _rel_of(self, u: int, v: int) -> _Rel:
        """Relation of u to v (u's own conflict entry; roles are swapped in v's)."""
        return next(rel for c, rel in self.tl.conflicts[u] if c == v)

    def _scratch_offsets(self, budget: int) -> tuple[dict[int, int], list[int], list[int]] | None:
        sizes, al = self.info.sizes, self.align
        offs: dict[int, int] = {}
        caps, floors = [], []
        for scr in self.scratch_at:
            if self.side == "top":
                cur = budget
                for b in scr:
                    cur = _floor(cur - sizes[b], al)
                    offs[b] = cur
                if cur < 0:
                    return None
                caps.append(cur)
                floors.append(0)
            else:
                cur = 0
                for b in scr:
                    offs[b] = cur
                    cur = _ceil(cur + sizes[b], al)
                if scr and cur - _ceil(sizes[scr[-1]], al) + sizes[scr[-1]] > budget:
                    return None
                caps.append(budget)
                floors.append(cur)
        return offs, caps, floors

    def solve(self, budget: int) -> list[int | None] | None:
        """Offsets with every buffer inside [0, budget), or None when impossible."""
        tl, sizes, al = self.tl, self.info.sizes, self.align
        scratch = self._scratch_offsets(budget)
        if scratch is None:
            return None
        scr_offs, caps, floors = scratch
        feasible: dict[int, _Iv] = {}
        shift_sets: dict[int, _Iv] = {}
        for v in reversed(self.preorder):
            life = range(tl.first[v], tl.last[v] + 1)
            lo = _ceil(max(floors[p] for p in life), al) // al
            hi = (min(caps[p] for p in life) - sizes[v]) // al
            g: _Iv = [(lo, hi)] if lo <= hi else []
            for u in self.children[v]:
                if not g:
                    break
                pr = self.parent[u]
                assert pr is not None
                shift_sets[u] = _shift_set(sizes[v], sizes[u], pr[1], al)
                g = _iv_intersect(g, _iv_minus_shifts(feasible[u], shift_sets[u]))
            if not g:
                return None
            feasible[v] = g
        offsets: list[int | None] = [None] * len(sizes)
        for b, x in scr_offs.items():
            offsets[b] = x
        for v in self.preorder:
            pr = self.parent[v]
            if pr is None:
                k = feasible[v][0][0]
            else:
                base = offsets[pr[0]] // al  # type: ignore[operator]
                allowed = [(base + t0, base + t1) for t0, t1 in shift_sets[v]]
                k = _iv_intersect(feasible[v], allowed)[0][0]
            offsets[v] = int(k) * al
        return offsets

    def best(self, low: int, high: int) -> list[int | None] | None:
        """Smallest-budget solution with budget in [low, high], by bisection (feasibility is monotone)."""
        found = self.solve(high)
        if found is None:
            return None
        while low < high:
            mid = (low + high) // 2
            sol = self.solve(mid)
            if sol is None:
                low = mid + 1
            else:
                high, found = mid, sol
        return found


# --------------------------------------------------------------------------------------------------
# Branch and bound for small problems
# --------------------------------------------------------------------------------------------------


class _Timeout(Exception):
    pass


def _branch_and_bound(tl: _Timeline, info: _Info, align: int, best_peak: int, deadline: float
                      ) -> list[int | None] | None:
    """Search placements with offsets non-decreasing in placement order (a normal form of optimal
    rule-free plans; rule partners are also tried at their tightest shift). Returns an improvement."""
    sizes = info.sizes
    bufs = sorted((b for b in range(len(sizes)) if sizes[b] > 0), key=lambda b: -sizes[b])
    offsets: list[int | None] = [None] * len(sizes)
    improved: list[int | None] | None = None
    lower = max(tl.bound, default=0)
    nodes = [0]

    def candidates(b: int, last: int, target: int) -> list[int]:
        ivs = _intervals_for(b, offsets, sizes, tl, align)
        cands = set()
        x0 = _lowest_fit(ivs, last, align)
        if x0 + sizes[b] <= target:
            cands.add(x0)
        for c, rel in tl.conflicts[b]:
            oc = offsets[c]
            if rel is None or oc is None:
                continue
            role, ms, exact = rel
            if role == "out":
                pts = ([_floor(oc + ms, align)] if ms is not None else []) + [oc + e for e in exact]
            else:
                pts = ([_ceil(oc - ms, align)] if ms is not None else []) + [oc - e for e in exact]
            for x in pts:
                if (x % align == 0 and x >= last and x + sizes[b] <= target
                        and not any(lo <= x <= hi for lo, hi in ivs)):
                    cands.add(x)
        return sorted(cands)

    failed: set[frozenset[tuple[int, int]]] = set()
    # positions where a buffer must be disjoint from everything (no usable overlap rule there)
    ruled = {(o, p) for p, rules in enumerate(tl.rules_at) for o, i in rules} | {
        (i, p) for p, rules in enumerate(tl.rules_at) for o, i in rules}
    live_nz = [[b for b in live if sizes[b] > 0] for live in tl.live]
    rounded = [_ceil(sz, align) for sz in sizes]

    def room_left(unplaced: list[int], last: int, target: int) -> bool:
        """Every later buffer goes at >= last: at each position the rule-free unplaced buffers must
        fit into [last, target) beside the placed ones."""
        todo = set(unplaced)
        for p, live in enumerate(live_nz):
            free_bufs = [b for b in live if b in todo and (b, p) not in ruled]
            if not free_bufs:
                continue
            # aligned starts: each occupies its rounded size, except the topmost may end at target
            need = sum(rounded[b] for b in free_bufs) - max(rounded[b] - sizes[b] for b in free_bufs)
            spans = sorted((max(offsets[b], last), min(offsets[b] + rounded[b], target))  # type: ignore[operator]
                           for b in live if b not in todo)
            used, reach = 0, last
            for lo, hi in spans:
                lo = max(lo, reach)
                if hi > lo:
                    used += hi - lo
                    reach = hi
            if need > target - last - used:
                return False
        return True

    def dfs(unplaced: list[int], last: int, target: int) -> bool:
        nodes[0] += 1
        if nodes[0] > _BNB_NODES or (nodes[0] % 256 == 0 and time.monotonic() > deadline):
            raise _Timeout
        if not unplaced:
            return True
        key = frozenset((b, offsets[b]) for b in range(len(sizes)) if offsets[b] is not None)
        if key in failed:
            return False
        if not room_left(unplaced, last, target):
            failed.add(key)
            return False
        options = [(b, candidates(b, last, target)) for b in unplaced]
        if any(not c for _, c in options):
            failed.add(key)
            return False
        for b, cands in options:
            rest = [u for u in unplaced if u != b]
            for x in cands:
                offsets[b] = x
                if dfs(rest, x, target):
                    return True
                offsets[b] = None
        failed.add(key)
        return False

    target = best_peak - 1
    try:
        while target >= lower:
            failed.clear()
            offsets[:] = [None] * len(sizes)
            if not dfs(bufs, 0, target):
                break
            improved = list(offsets)
            target = max((o + sizes[b] for b, o in enumerate(offsets) if o is not None), default=0) - 1
    except _Timeout:
        pass
    return improved


# --------------------------------------------------------------------------------------------------
# Execution orders
# --------------------------------------------------------------------------------------------------


def _order_candidates(info: _Info, align: int, deadline: float) -> list[tuple[str, list[int]]]:
    """The model order, plus the order with the smallest peak lower bound when that differs."""
    model = list(range(info.n_steps))
    best, exhaustive = _min_peak_order(info, align, deadline)
    if best == model:
        return [("model", model)]
    return [("model", model), ("min-peak" if exhaustive else "min-peak-beam", best)]


def _min_peak_order(info: _Info, align: int, deadline: float) -> tuple[list[int], bool]:
    """DP over the sets of executed steps minimising (peak bound, sum of live bytes after each step).

    The state after a set of steps is the set itself (what is live follows from it), so the DP is exact
    while every layer holds at most ``_ORDER_BEAM`` sets (chains and residual/branchy CNNs of modest
    width); wider layers keep only their best sets (a beam search; a greedy walk after ``deadline``).
    Returns the order and whether the search was exhaustive. Bounds here use the largest rounding pad
    of any buffer, which weakens them by less than ``align`` bytes; plans are re-bounded exactly later.
    """
    n = info.n_steps
    sizes = info.sizes
    al = [_ceil(sz, align) for sz in sizes]
    max_pad = max((a - sz for a, sz in zip(al, sizes, strict=True)), default=0)
    readers = [0] * len(sizes)
    for b, rd in enumerate(info.readers):
        for st in rd:
            readers[b] |= 1 << st
    pred_masks = [sum(1 << p for p in preds) for preds in info.step_preds]
    successors: list[set[int]] = [set() for _ in range(n)]
    for t, preds in enumerate(info.step_preds):
        for p in preds:
            successors[p].add(t)
    unread_inputs = [b for b in info.graph_in if not readers[b] and b not in info.graph_out]
    start_bytes = sum(al[b] for b in info.graph_in)
    memo: dict[tuple[int, tuple[int, ...], bool], tuple[int, int, int]] = {}

    def effect(s: int, dying: tuple[int, ...], first_step: bool) -> tuple[int, int, int]:
        """(bytes added, bytes the step's rules may save, bytes freed after it)."""
        key = (s, dying, first_step)
        if key not in memo:
            added = sum(al[b] for b in info.step_outs[s] + info.step_scratch[s])
            rules = {k: r for k, r in info.step_rules[s].items() if k[1] in dying}
            freed = list(dying) + info.step_scratch[s]
            freed += [o for o in info.step_outs[s] if not readers[o] and o not in info.graph_out]
            if first_step:
                freed += unread_inputs
            memo[key] = (added, _rule_savings(rules, sizes, align), sum(al[b] for b in freed))
        return memo[key]

    min_bound = [max((sizes[b] for b in info.step_outs[s] + info.step_scratch[s]), default=0)
                 for s in range(n)]
    # state: executed-step set -> (peak, tie, live bytes after, ready steps)
    first_ready = tuple(s for s in range(n) if not pred_masks[s])
    layer: dict[int, tuple[int, int, int, tuple[int, ...]]] = {0: (0, 0, start_bytes, first_ready)}
    back: list[dict[int, tuple[int, int]]] = []
    exhaustive = True
    for _ in range(n):
        nxt: dict[int, tuple[int, int, int, tuple[int, ...]]] = {}
        links: dict[int, tuple[int, int]] = {}
        for done, (peak, tie, live_bytes, ready) in layer.items():
            for s in ready:
                done2 = done | (1 << s)
                dying = tuple(i for i in info.step_ins[s]
                              if i not in info.graph_out and not readers[i] & ~done2)
                added, saving, freed = effect(s, dying, done == 0)
                at = live_bytes + added
                bound = max(at - saving - max_pad, min_bound[s])
                after = at - freed
                key = (max(peak, bound), tie + after)
                if done2 not in nxt or key < nxt[done2][:2]:
                    new_ready = tuple(r for r in ready if r != s) + tuple(
                        t for t in sorted(successors[s]) if not pred_masks[t] & ~done2)
                    nxt[done2] = (*key, after, new_ready)
                    links[done2] = (done, s)
        beam = _ORDER_BEAM if time.monotonic() < deadline else 1
        if len(nxt) > beam:
            exhaustive = False
            keep = sorted(nxt, key=lambda m: nxt[m][:2])[:beam]
            nxt = {m: nxt[m] for m in keep}
        back.append(links)
        layer = nxt
    order = []
    state = (1 << n) - 1
    for links in reversed(back):
        state, s = links[state]
        order.append(s)
    return order[::-1], exhaustive


# --------------------------------------------------------------------------------------------------
# Plans
# --------------------------------------------------------------------------------------------------


def _make_plan(info: _Info, tl: _Timeline, offsets: Sequence[int | None], method: str) -> Plan:
    sizes, names = info.sizes, info.names
    offs = [0 if o is None else int(o) for o in offsets]
    footprint = [max((offs[b] + sizes[b] for b in live), default=0) for live in tl.live]
    overlapping = set()
    for rules in tl.rules_at:
        for o, i in rules:
            if sizes[o] and sizes[i] and offs[o] < offs[i] + sizes[i] and offs[i] < offs[o] + sizes[o]:
                overlapping.add((names[o], names[i]))
    return Plan(
        order=list(tl.order),
        offsets={names[b]: offs[b] for b in range(len(names))},
        arena_bytes=max((offs[b] + sizes[b] for b in range(len(names))), default=0),
        lower_bound_bytes=max(tl.bound, default=0),
        lifetimes={names[b]: (tl.first[b], tl.last[b]) for b in range(len(names))},
        live_bytes=[sum(sizes[b] for b in live) for live in tl.live],
        footprint_bytes=footprint,
        bound_per_step=list(tl.bound),
        overlapping=overlapping,
        method=method,
    )


def _peak(offsets: Sequence[int | None], sizes: Sequence[int]) -> int:
    return max((o + sizes[b] for b, o in enumerate(offsets) if o is not None), default=0)


def _plan_order(info: _Info, tl: _Timeline, align: int, exact_max_buffers: int, deadline: float,
                order_name: str) -> tuple[int, list[int | None], str]:
    sizes = info.sizes
    lower = max(tl.bound, default=0)
    best: tuple[int, list[int | None], str] | None = None

    def offer(offsets: list[int | None] | None, method: str) -> None:
        nonlocal best
        if offsets is None:
            return
        peak = _peak(offsets, sizes)
        if best is None or peak < best[0]:
            best = (peak, offsets, f"{method}, order={order_name}")

    seqs = _orderings(tl, info)
    best_seq: tuple[int, list[int], str] | None = None
    for seq_name, seq in seqs.items():
        for policy in ("first-fit", "best-fit"):
            offsets, peak = _place_sequence(tl, sizes, seq, policy, align)
            offer(offsets, f"{policy}/{seq_name}")
            if best_seq is None or peak < best_seq[0]:
                best_seq = (peak, seq, policy)
    if tl.order == list(range(info.n_steps)):  # TFLM's plan is legal too: never worse (ties go to ours)
        greedy = greedy_tflm_like(info.problem, align=align)
        offer([greedy.offsets[name] for name in info.names], "greedy-tflm")
    assert best is not None and best_seq is not None
    if best[0] > lower:
        for side in ("top", "bottom"):
            dp = _ForestDP(tl, info, align, side)
            if dp.ok:
                offer(dp.best(lower, best[0] - 1), f"forest-dp/scratch-{side}")
    n_nonzero = sum(1 for s in sizes if s > 0)
    if best[0] > lower and n_nonzero <= exact_max_buffers:
        offer(_branch_and_bound(tl, info, align, best[0], deadline), "branch-and-bound")
    if best[0] > lower and time.monotonic() < deadline:
        _, seq, policy = best_seq
        offer(_local_search(tl, sizes, list(seq), policy, lower, align, deadline),
              f"local-search/{policy}")
    return best


def _local_search(tl: _Timeline, sizes: Sequence[int], seq: list[int], policy: str, target: int,
                  align: int, deadline: float) -> list[int | None] | None:
    """Move one buffer in the placement sequence at a time; keep moves that do not raise the peak.

    Only the part of the sequence after the first moved position is placed again."""
    if len(seq) < 3:
        return None
    rng = random.Random(0)
    offsets, peak = _place_sequence(tl, sizes, seq, policy, align)
    start_peak = peak
    for it in range(max(50, min(400, _LOCAL_SEARCH_MOVES // len(seq)))):
        if peak <= target or (it % 16 == 0 and time.monotonic() > deadline):
            break
        cand = list(seq)
        src = rng.randrange(len(cand))
        item = cand.pop(src)
        dst = rng.randrange(len(cand) + 1)
        cand.insert(dst, item)
        cand_offsets, cand_peak = _place_sequence(tl, sizes, cand, policy, align, min(src, dst), offsets)
        if cand_peak <= peak:
            seq, offsets, peak = cand, cand_offsets, cand_peak
    return offsets if peak < start_peak else None


def plan(problem: Problem, *, reorder: bool = True, exact_max_buffers: int = 14, time_limit_s: float = 5.0,
         align: int = ALIGN) -> Plan:
    """Place every buffer of ``problem`` in one arena with the smallest peak we can find.

    Offsets are multiples of ``align`` (4 bytes by default). With ``reorder`` the steps may run in
    another topological order when that lowers the peak. Small problems (at most ``exact_max_buffers``
    non-empty buffers) also get a branch-and-bound search; searches stop at ``time_limit_s`` or as soon
    as a plan meets the lower bound. The result always passes :func:`check_plan`.
    """
    if align < 1:
        raise PlanError(f"align must be >= 1 byte; got {align}.")
    info = _analyse(problem)
    start = time.monotonic()
    model = [("model", list(range(info.n_steps)))]
    orders = _order_candidates(info, align, start + time_limit_s / 3) if reorder else model
    results = []
    for k, (name, order) in enumerate(orders):
        tl = _timeline(info, order, align)
        deadline = start + time_limit_s * (k + 1) / len(orders)
        peak, offsets, method = _plan_order(info, tl, align, exact_max_buffers, deadline, name)
        results.append((peak, k, tl, offsets, method))
    peak, _, tl, offsets, method = min(results, key=lambda r: r[:2])
    result = _make_plan(info, tl, offsets, method)
    check_plan(problem, result)
    return result


def lower_bound(problem: Problem, *, align: int = ALIGN) -> int:
    """The least arena any plan of ``problem`` in its model order can use (cheap: no placement search).

    The same per-step bound :attr:`Plan.lower_bound_bytes` reports; :func:`plan` usually meets it."""
    if align < 1:
        raise PlanError(f"align must be >= 1 byte; got {align}.")
    info = _analyse(problem)
    return max(_timeline(info, list(range(info.n_steps)), align).bound, default=0)


def greedy_tflm_like(problem: Problem, *, align: int = ALIGN) -> Plan:
    """TFLM's GreedyMemoryPlanner on the model order: no overlap rules, largest buffer first.

    Like TFLM, sizes are rounded up to ``align`` (TFLM itself uses 16), buffers are taken by
    decreasing size (equal sizes: the later-added buffer first, as TFLM's stable reverse sort of a
    reversed list does), and each goes into the first gap, in offset order, between the buffers already
    placed whose lifetimes overlap it, or above the last of them.
    """
    if align < 1:
        raise PlanError(f"align must be >= 1 byte; got {align}.")
    info = _analyse(problem)
    order = list(range(info.n_steps))
    tl = _timeline(info, order, align)
    sizes = [_ceil(s, align) for s in info.sizes]
    ids = sorted(reversed(range(len(sizes))), key=lambda b: -sizes[b])  # stable
    placed_offsets: list[int] = []  # kept sorted; ties keep insertion order
    placed_ids: list[int] = []
    offsets: list[int | None] = [None] * len(sizes)
    for b in ids:
        x = 0
        for o, c in zip(placed_offsets, placed_ids, strict=True):
            if tl.first[c] > tl.last[b] or tl.first[b] > tl.last[c]:
                continue  # not live at the same time
            if o - x >= sizes[b]:
                break
            x = max(x, o + sizes[c])
        offsets[b] = x
        k = bisect.bisect_right(placed_offsets, x)
        placed_offsets.insert(k, x)
        placed_ids.insert(k, b)
    return _make_plan(info, tl, offsets, "greedy-tflm")


# --------------------------------------------------------------------------------------------------
# Checker
# --------------------------------------------------------------------------------------------------


def _shift_allowed(shift: int, rule: tuple[int | None, tuple[int, ...]]) -> bool:
    ms, exact = rule
    return (ms is not None and shift <= ms) or shift in exact


def check_plan(problem: Problem, plan: Plan) -> None:
    """Simulate ``plan`` step by step; raise :class:`PlanError` on the first illegal overlap.

    Checks that the order is topological, every offset is >= 0 and inside ``arena_bytes``, no two
    buffers live at one step share a byte unless an overlap rule of that step allows it (input dying
    there, shift within the rule), and ``overlapping`` lists exactly the pairs that do share bytes.
    """
    info = _analyse(problem)
    _check_order(info, plan.order, "Plan.order")
    sizes, names = info.sizes, info.names
    offs = []
    for b, name in enumerate(names):
        off = plan.offsets.get(name)
        if not isinstance(off, int) or off < 0:
            raise PlanError(f"buffer '{name}' has offset {off!r} in the plan; offsets must be integers >= 0.")
        if off + sizes[b] > plan.arena_bytes:
            raise PlanError(
                f"buffer '{name}' [{off}, {off + sizes[b]}) ends beyond the arena ({plan.arena_bytes} bytes)."
            )
        offs.append(off)
    first, last = _lifetimes(info, plan.order)
    live_at: list[list[int]] = [[] for _ in plan.order]
    for b in range(len(names)):
        if sizes[b] > 0:
            for p in range(first[b], last[b] + 1):
                live_at[p].append(b)
    actual: set[tuple[str, str]] = set()
    for p, s in enumerate(plan.order):
        rules = {(o, i): r for (o, i), r in info.step_rules[s].items()
                 if last[i] == p and i not in info.graph_out}
        live = sorted(live_at[p], key=lambda b: offs[b])
        for k, a in enumerate(live):
            end_a = offs[a] + sizes[a]
            for c in live[k + 1:]:
                if offs[c] >= end_a:
                    break
                if (a, c) in rules or (c, a) in rules:
                    o, i = (a, c) if (a, c) in rules else (c, a)
                    shift = offs[o] - offs[i]
                    if _shift_allowed(shift, rules[(o, i)]):
                        actual.add((names[o], names[i]))
                        continue
                    ms, ex = rules[(o, i)]
                    raise PlanError(
                        f"at position {p} ({info.step_label(s)}) output '{names[o]}' overlaps input "
                        f"'{names[i]}' with shift {shift}, which its rule does not allow "
                        f"(max_shift={ms}, exact={ex})."
                    )
                reason = ""
                if any(r[0] in (a, c) and r[1] in (a, c) for r in info.step_rules[s]):
                    reason = " (the input is still read later, so it cannot be overwritten)"
                raise PlanError(
                    f"at position {p} ({info.step_label(s)}) buffers '{names[a]}' [{offs[a]}, {end_a}) and "
                    f"'{names[c]}' [{offs[c]}, {offs[c] + sizes[c]}) are both live and overlap{reason}."
                )
    if set(plan.overlapping) != actual:
        raise PlanError(
            f"Plan.overlapping is {sorted(plan.overlapping)} but the offsets overlap {sorted(actual)}; "
            "codegen would pick the wrong (in-place or not) kernels."
        )
