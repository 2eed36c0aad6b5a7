"""Validation of a planning problem and its indexed form (buffers as integers) used by the planner's
machinery; alignment helpers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tinyml_kit.engine._plan_types import PlanError, Problem


def align_up(value: int, align: int) -> int:
    """``value`` rounded up to a multiple of ``align``."""
    return -((-value) // align) * align


def align_down(value: int, align: int) -> int:
    """``value`` rounded down to a multiple of ``align``."""
    return (value // align) * align


@dataclass
class IndexedProblem:
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


def analyse(problem: Problem) -> IndexedProblem:
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
    info = IndexedProblem(problem, names, sizes, index, producer, readers, is_scratch, graph_in, graph_out,
                 step_ins, step_outs, step_scratch, step_rules, step_preds)
    check_order(info, list(range(len(problem.steps))), "the model order (Problem.steps)")
    return info


def check_order(info: IndexedProblem, order: Sequence[int], what: str) -> None:
    """Raise :class:`PlanError` unless ``order`` (named ``what``) is a topological order of all steps."""
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
