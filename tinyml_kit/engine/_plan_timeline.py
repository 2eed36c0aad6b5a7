"""The timeline of one execution order: buffer lifetimes, the overlap rules usable at each position,
the conflict lists of buffers live together, and the per-position lower bound of the arena."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tinyml_kit.engine._plan_analysis import IndexedProblem, align_down, align_up

# Relation of a buffer to a conflicting one: None (must be disjoint) or (role, max_shift, exact) where
# role "out" means this buffer is the output and the other the dying input of an overlap rule.
Relation = tuple[str, int | None, tuple[int, ...]] | None


@dataclass
class Timeline:
    """One execution order (positions index ``order``) and what follows from it for placement."""

    order: list[int]
    first: list[int]
    last: list[int]
    live: list[list[int]]  # per position
    rules_at: list[dict[tuple[int, int], tuple[int | None, tuple[int, ...]]]]  # usable at each position
    conflicts: list[list[tuple[int, Relation]]]  # nonzero-size buffers sharing a position
    bound: list[int]


def lifetimes(info: IndexedProblem, order: Sequence[int]) -> tuple[list[int], list[int]]:
    """First and last position at which each buffer is live in ``order``."""
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
    a_in, a_out = align_up(size_in, align), align_up(size_out, align)
    best = a_in + a_out  # disjoint

    def covered(d: int) -> int:
        return max(a_in, d + a_out) - min(0, d)

    if max_shift is not None:
        d = min(0, align_down(max_shift, align))  # covered() is smallest at d=0 and grows away from it
        if d > -size_out:
            best = min(best, covered(d))
    for e in exact:
        if e % align == 0 and -size_out < e < size_in:
            best = min(best, covered(e))
    return best


def rule_savings(rules: dict[tuple[int, int], tuple[int | None, tuple[int, ...]]], sizes: Sequence[int],
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
        sum_in = sum(align_up(sizes[b], align) for b in ins)
        sum_out = sum(align_up(sizes[b], align) for b in outs)
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
    :func:`rule_savings`; the arena top is at least the bytes covered by the rounded-up buffers minus
    the rounding of the topmost one. ``rules`` must only hold rules usable at this position.
    """
    nz = [b for b in live if sizes[b] > 0]
    if not nz:
        return 0
    total = sum(align_up(sizes[b], align) for b in nz) - rule_savings(rules, sizes, align)
    max_pad = max(align_up(sizes[b], align) - sizes[b] for b in nz)
    return max(total - max_pad, max(sizes[b] for b in nz))


def build_timeline(info: IndexedProblem, order: Sequence[int], align: int) -> Timeline:
    """Lifetimes, usable rules, conflicts and per-position bounds of ``order``."""
    first, last = lifetimes(info, order)
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
    conflicts: list[list[tuple[int, Relation]]] = [[] for _ in range(len(info.names))]
    for p in range(n_pos):
        here = [b for b in live[p] if sizes[b] > 0]
        for k, b in enumerate(here):
            if first[b] != p:
                continue
            for j, c in enumerate(here):
                if c == b or (first[c] == p and j < k):
                    continue  # pair already recorded (or same buffer)
                rel_b: Relation = None
                rel_c: Relation = None
                if (b, c) in rules_at[p]:
                    ms, ex = rules_at[p][(b, c)]
                    rel_b, rel_c = ("out", ms, ex), ("in", ms, ex)
                elif (c, b) in rules_at[p]:
                    ms, ex = rules_at[p][(c, b)]
                    rel_b, rel_c = ("in", ms, ex), ("out", ms, ex)
                conflicts[b].append((c, rel_b))
                conflicts[c].append((b, rel_c))
    bound = [_position_bound(live[p], rules_at[p], sizes, align) for p in range(n_pos)]
    return Timeline(list(order), first, last, live, rules_at, conflicts, bound)
