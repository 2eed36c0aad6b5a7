"""Placement searches beyond one greedy pass: branch and bound for small problems, and local search
over a placement sequence. Budgets are counts (deterministic); the deadline also stops them."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

from tinyml_kit.engine._plan_analysis import IndexedProblem, align_down, align_up
from tinyml_kit.engine._plan_placement import forbidden_intervals, lowest_fit, place_sequence
from tinyml_kit.engine._plan_timeline import Timeline

_BNB_NODES = 50000  # search nodes of branch and bound (deterministic budget; the time limit also stops it)
_LOCAL_SEARCH_MOVES = 40000  # buffer placements spent by local search (fewer iterations on big problems)


class _Timeout(Exception):
    pass


def branch_and_bound(tl: Timeline, info: IndexedProblem, align: int, best_peak: int, deadline: float
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
        ivs = forbidden_intervals(b, offsets, sizes, tl, align)
        cands = set()
        x0 = lowest_fit(ivs, last, align)
        if x0 + sizes[b] <= target:
            cands.add(x0)
        for c, rel in tl.conflicts[b]:
            oc = offsets[c]
            if rel is None or oc is None:
                continue
            role, ms, exact = rel
            if role == "out":
                pts = ([align_down(oc + ms, align)] if ms is not None else []) + [oc + e for e in exact]
            else:
                pts = ([align_up(oc - ms, align)] if ms is not None else []) + [oc - e for e in exact]
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
    rounded = [align_up(sz, align) for sz in sizes]

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


def local_search(tl: Timeline, sizes: Sequence[int], seq: list[int], policy: str, target: int,
                 align: int, deadline: float) -> list[int | None] | None:
    """Move one buffer in the placement sequence at a time; keep moves that do not raise the peak.

    Only the part of the sequence after the first moved position is placed again."""
    if len(seq) < 3:
        return None
    rng = random.Random(0)
    offsets, peak = place_sequence(tl, sizes, seq, policy, align)
    start_peak = peak
    for it in range(max(50, min(400, _LOCAL_SEARCH_MOVES // len(seq)))):
        if peak <= target or (it % 16 == 0 and time.monotonic() > deadline):
            break
        cand = list(seq)
        src = rng.randrange(len(cand))
        item = cand.pop(src)
        dst = rng.randrange(len(cand) + 1)
        cand.insert(dst, item)
        cand_offsets, cand_peak = place_sequence(tl, sizes, cand, policy, align, min(src, dst), offsets)
        if cand_peak <= peak:
            seq, offsets, peak = cand, cand_offsets, cand_peak
    return offsets if peak < start_peak else None
