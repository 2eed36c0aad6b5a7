"""Exact offset DP when the conflict graph is a forest (at most two non-scratch buffers live at any
step), with scratch stacked at the top or bottom of the arena."""

from __future__ import annotations

import math

from tinyml_kit.engine._plan_analysis import IndexedProblem, align_down, align_up
from tinyml_kit.engine._plan_timeline import Relation, Timeline

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


def _shift_set(size_v: int, size_u: int, rel_u: Relation, align: int) -> _Iv:
    """Allowed (offset_u - offset_v) / align for two conflicting buffers; ``rel_u`` is u's relation to v."""
    inf = math.inf
    pieces: _Iv = [(-inf, -align_up(size_u, align) // align), (align_up(size_v, align) // align, inf)]
    if rel_u is not None:
        role, ms, exact = rel_u
        sign = 1 if role == "out" else -1  # u output: shift = d; u input: shift = -d
        if ms is not None:
            if sign == 1:
                pieces.append((-inf, align_down(ms, align) // align))
            else:
                pieces.append((align_up(-ms, align) // align, inf))
        pieces.extend((sign * e // align, sign * e // align) for e in exact if e % align == 0)
    return _iv_union(pieces)


class ForestDP:
    """Optimal aligned placement of the non-scratch buffers for a budget, scratch stacked at one end."""

    def __init__(self, tl: Timeline, info: IndexedProblem, align: int, scratch_side: str):
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
        adj: dict[int, list[tuple[int, Relation]]] = {b: [] for b in self.nodes}
        for b in self.nodes:
            adj[b] = [(c, rel) for c, rel in tl.conflicts[b] if c in node_set]
        # root every tree at its earliest buffer; `preorder` lists parents before their children
        self.parent: dict[int, tuple[int, Relation] | None] = {}
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

    def _rel_of(self, u: int, v: int) -> Relation:
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
                    cur = align_down(cur - sizes[b], al)
                    offs[b] = cur
                if cur < 0:
                    return None
                caps.append(cur)
                floors.append(0)
            else:
                cur = 0
                for b in scr:
                    offs[b] = cur
                    cur = align_up(cur + sizes[b], al)
                if scr and cur - align_up(sizes[scr[-1]], al) + sizes[scr[-1]] > budget:
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
            lo = align_up(max(floors[p] for p in life), al) // al
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
