"""Execution orders: the topological order minimising the peak lower bound (exact DP over the sets
of executed steps, a beam search for wide graphs)."""

from __future__ import annotations

import time

from tinyml_kit.engine._plan_analysis import IndexedProblem, align_up
from tinyml_kit.engine._plan_timeline import rule_savings

_ORDER_BEAM = 64  # executed-step sets kept per layer by the order search (exact below that)


def order_candidates(info: IndexedProblem, align: int, deadline: float) -> list[tuple[str, list[int]]]:
    """The model order, plus the order with the smallest peak lower bound when that differs."""
    model = list(range(info.n_steps))
    best, exhaustive = _min_peak_order(info, align, deadline)
    if best == model:
        return [("model", model)]
    return [("model", model), ("min-peak" if exhaustive else "min-peak-beam", best)]


def _min_peak_order(info: IndexedProblem, align: int, deadline: float) -> tuple[list[int], bool]:
    """DP over the sets of executed steps minimising (peak bound, sum of live bytes after each step).

    The state after a set of steps is the set itself (what is live follows from it), so the DP is exact
    while every layer holds at most ``_ORDER_BEAM`` sets (chains and residual/branchy CNNs of modest
    width); wider layers keep only their best sets (a beam search; a greedy walk after ``deadline``).
    Returns the order and whether the search was exhaustive. Bounds here use the largest rounding pad
    of any buffer, which weakens them by less than ``align`` bytes; plans are re-bounded exactly later.
    """
    n = info.n_steps
    sizes = info.sizes
    al = [align_up(sz, align) for sz in sizes]
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
            memo[key] = (added, rule_savings(rules, sizes, align), sum(al[b] for b in freed))
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
