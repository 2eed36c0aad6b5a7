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

Modules (each imports only modules named before it): ``_plan_types`` (the public data model, re-exported
here), ``_plan_analysis`` (validation, buffers as indices), ``_plan_timeline`` (lifetimes, usable rules,
conflicts and the lower bound of one order), ``_plan_placement`` (first-fit / best-fit placement and
buffer orderings), ``_plan_forest`` (the forest DP), ``_plan_search`` (branch and bound, local search),
``_plan_orders`` (the execution-order search); this module combines them and checks plans.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Sequence

from tinyml_kit.engine._plan_analysis import IndexedProblem, align_up, analyse, check_order
from tinyml_kit.engine._plan_forest import ForestDP
from tinyml_kit.engine._plan_orders import order_candidates
from tinyml_kit.engine._plan_placement import buffer_orderings, place_sequence, placement_peak
from tinyml_kit.engine._plan_search import branch_and_bound, local_search
from tinyml_kit.engine._plan_timeline import Timeline, build_timeline, lifetimes
from tinyml_kit.engine._plan_types import Buffer, OverlapRule, Plan, PlanError, Problem, Step

__all__ = ["ALIGN", "Buffer", "OverlapRule", "Plan", "PlanError", "Problem", "Step", "check_plan",
           "greedy_tflm_like", "lower_bound", "plan"]

ALIGN = 4


def _make_plan(info: IndexedProblem, tl: Timeline, offsets: Sequence[int | None], method: str) -> Plan:
    """The :class:`Plan` of ``offsets`` (unplaced buffers at 0) with its per-position figures."""
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


def _plan_order(info: IndexedProblem, tl: Timeline, align: int, exact_max_buffers: int, deadline: float,
                order_name: str) -> tuple[int, list[int | None], str]:
    """The best (peak, offsets, method) over every placement strategy for one execution order."""
    sizes = info.sizes
    lower = max(tl.bound, default=0)
    best: tuple[int, list[int | None], str] | None = None

    def offer(offsets: list[int | None] | None, method: str) -> None:
        nonlocal best
        if offsets is None:
            return
        peak = placement_peak(offsets, sizes)
        if best is None or peak < best[0]:
            best = (peak, offsets, f"{method}, order={order_name}")

    seqs = buffer_orderings(tl, info)
    best_seq: tuple[int, list[int], str] | None = None
    for seq_name, seq in seqs.items():
        for policy in ("first-fit", "best-fit"):
            offsets, peak = place_sequence(tl, sizes, seq, policy, align)
            offer(offsets, f"{policy}/{seq_name}")
            if best_seq is None or peak < best_seq[0]:
                best_seq = (peak, seq, policy)
    if tl.order == list(range(info.n_steps)):  # TFLM's plan is legal too: never worse (ties go to ours)
        greedy = greedy_tflm_like(info.problem, align=align)
        offer([greedy.offsets[name] for name in info.names], "greedy-tflm")
    assert best is not None and best_seq is not None
    if best[0] > lower:
        for side in ("top", "bottom"):
            dp = ForestDP(tl, info, align, side)
            if dp.ok:
                offer(dp.best(lower, best[0] - 1), f"forest-dp/scratch-{side}")
    n_nonzero = sum(1 for s in sizes if s > 0)
    if best[0] > lower and n_nonzero <= exact_max_buffers:
        offer(branch_and_bound(tl, info, align, best[0], deadline), "branch-and-bound")
    if best[0] > lower and time.monotonic() < deadline:
        _, seq, policy = best_seq
        offer(local_search(tl, sizes, list(seq), policy, lower, align, deadline),
              f"local-search/{policy}")
    return best


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
    info = analyse(problem)
    start = time.monotonic()
    model = [("model", list(range(info.n_steps)))]
    orders = order_candidates(info, align, start + time_limit_s / 3) if reorder else model
    results = []
    for k, (name, order) in enumerate(orders):
        tl = build_timeline(info, order, align)
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
    info = analyse(problem)
    return max(build_timeline(info, list(range(info.n_steps)), align).bound, default=0)


def greedy_tflm_like(problem: Problem, *, align: int = ALIGN) -> Plan:
    """TFLM's GreedyMemoryPlanner on the model order: no overlap rules, largest buffer first.

    Like TFLM, sizes are rounded up to ``align`` (TFLM itself uses 16), buffers are taken by
    decreasing size (equal sizes: the later-added buffer first, as TFLM's stable reverse sort of a
    reversed list does), and each goes into the first gap, in offset order, between the buffers already
    placed whose lifetimes overlap it, or above the last of them.
    """
    if align < 1:
        raise PlanError(f"align must be >= 1 byte; got {align}.")
    info = analyse(problem)
    order = list(range(info.n_steps))
    tl = build_timeline(info, order, align)
    sizes = [align_up(s, align) for s in info.sizes]
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


def _shift_allowed(shift: int, rule: tuple[int | None, tuple[int, ...]]) -> bool:
    ms, exact = rule
    return (ms is not None and shift <= ms) or shift in exact


def check_plan(problem: Problem, plan: Plan) -> None:
    """Simulate ``plan`` step by step; raise :class:`PlanError` on the first illegal overlap.

    Checks that the order is topological, every offset is >= 0 and inside ``arena_bytes``, no two
    buffers live at one step share a byte unless an overlap rule of that step allows it (input dying
    there, shift within the rule), and ``overlapping`` lists exactly the pairs that do share bytes.
    """
    info = analyse(problem)
    check_order(info, plan.order, "Plan.order")
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
    first, last = lifetimes(info, plan.order)
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
