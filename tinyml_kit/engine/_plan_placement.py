"""Rule-aware placement: the offsets where a buffer may go beside already placed ones, first-fit and
best-fit placement of a buffer sequence, and the buffer orderings the planner tries."""

from __future__ import annotations

from collections.abc import Sequence

from tinyml_kit.engine._plan_analysis import IndexedProblem, align_up
from tinyml_kit.engine._plan_timeline import Relation, Timeline


def _forbidden(size: int, other_off: int, other_size: int, rel: Relation, align: int
               ) -> list[tuple[int, int]]:
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


def forbidden_intervals(b: int, offsets: Sequence[int | None], sizes: Sequence[int], tl: Timeline,
                        align: int) -> list[tuple[int, int]]:
    """Sorted closed intervals of offsets where buffer ``b`` would illegally overlap a placed buffer."""
    ivs: list[tuple[int, int]] = []
    for c, rel in tl.conflicts[b]:
        oc = offsets[c]
        if oc is not None:
            ivs.extend(_forbidden(sizes[b], oc, sizes[c], rel, align))
    ivs.sort()
    return ivs


def lowest_fit(ivs: list[tuple[int, int]], start: int, align: int) -> int:
    """Lowest aligned offset >= start outside every (sorted) forbidden interval."""
    x = align_up(max(start, 0), align)
    for lo, hi in ivs:
        if lo > x:
            break
        if hi >= x:
            x = align_up(hi + 1, align)
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
            x = align_up(hi + 1, align)
    return x if best is None else best[1]


def place_sequence(
    tl: Timeline, sizes: Sequence[int], seq: Sequence[int], policy: str, align: int, start: int = 0,
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
        ivs = forbidden_intervals(b, offsets, sizes, tl, align)
        offsets[b] = lowest_fit(ivs, 0, align) if policy == "first-fit" else _best_fit(ivs, sizes[b], align)
    return offsets, placement_peak(offsets, sizes)


def buffer_orderings(tl: Timeline, info: IndexedProblem) -> dict[str, list[int]]:
    """The placement sequences tried, by name: non-empty buffers sorted by several criteria."""
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


def placement_peak(offsets: Sequence[int | None], sizes: Sequence[int]) -> int:
    """The highest byte used by the placed buffers (the arena size they need)."""
    return max((o + sizes[b] for b, o in enumerate(offsets) if o is not None), default=0)
