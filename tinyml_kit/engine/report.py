"""Reports on arena plans: live-memory plots per op, a per-step text table for the CLI, and the
per-op footprint of a compiled project (the ops of a patch stage expanded, so that both memory regimes
can be drawn on one axis).

matplotlib is imported only inside the plotting functions (Agg backend, no display needed).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tinyml_kit._plotting import pyplot, save_and_close
from tinyml_kit.engine.planner import Plan, PlanError, Problem

_MAX_TICK_LABELS = 60
_MAX_STEP_NAME = 40


def _kib(n: int) -> str:
    return f"{n / 1024:.1f}"


def plot_live_memory(plans: Mapping[str, Plan], step_names: Sequence[str], path: str | os.PathLike) -> Path:
    """Save a PNG of the arena bytes in use at each op for several plans (e.g. ours vs TFLM-like).

    Each plan is drawn as the highest arena byte used by buffers live at each position of its order
    (its peak is the arena size), with its lower bound dashed. ``step_names[i]`` names step ``i`` of
    the problem; the x axis follows the first plan's order. Written atomically; returns the path.
    """
    if not plans:
        raise PlanError("plot_live_memory needs at least one plan; got an empty mapping.")
    plt = pyplot()
    path = Path(path)
    first = next(iter(plans.values()))
    n_pos = len(first.order)
    for label, p in plans.items():
        if len(p.order) != n_pos:
            raise PlanError(f"plan '{label}' has {len(p.order)} steps but the first plan has {n_pos}.")
    if len(step_names) != n_pos:
        raise PlanError(f"step_names has {len(step_names)} names but the plans have {n_pos} steps.")

    fig, ax = plt.subplots(figsize=(max(6.0, min(0.22 * n_pos + 3, 24.0)), 4.2), dpi=110)
    xs = list(range(n_pos))
    bounds_drawn: list[list[int]] = []
    for k, (label, p) in enumerate(plans.items()):
        color = f"C{k % 10}"
        ax.step(xs, [b / 1024 for b in p.footprint_bytes], where="mid", color=color, linewidth=1.8,
                label=f"{label}: peak {_kib(p.arena_bytes)} KiB")
        if p.bound_per_step not in bounds_drawn:
            bounds_drawn.append(p.bound_per_step)
            ax.step(xs, [b / 1024 for b in p.bound_per_step], where="mid", color=color, linestyle="--",
                    linewidth=1.0, label=f"lower bound ({label} order): {_kib(p.lower_bound_bytes)} KiB")
    ax.set_xlabel("op (execution order)")
    ax.set_ylabel("arena in use (KiB)")
    ax.set_ylim(bottom=0)
    ax.grid(True, axis="y", alpha=0.3)
    if n_pos <= _MAX_TICK_LABELS:
        ax.set_xticks(xs)
        ax.set_xticklabels([step_names[s] for s in first.order], rotation=90, fontsize=7)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title("Live arena memory per op")
    fig.tight_layout()

    return save_and_close(fig, Path(path))


def op_footprints(project: Any) -> list[tuple[str, int]]:
    """(op name, highest arena byte in use while it runs) for every op of a compiled project, in execution
    order. The ops of a patch stage get the stage's input and output plus the patch buffers in use at
    that op (from the stage's sub-plan), so a patched model is comparable op by op with layer-by-layer."""
    from tinyml_kit.engine.patch import PatchStage

    plan = project.plan
    rows: list[tuple[str, int]] = []
    for position, call in enumerate(project.calls):
        footprint = plan.footprint_bytes[position]
        if not isinstance(call, PatchStage):
            rows.append((call.op.describe(), footprint))
            continue
        graph = project.graph
        ends = [plan.offsets[f"t{graph.storage(t)}"] + graph.tensors[graph.storage(t)].nbytes
                for t in call.inputs + call.outputs]
        base = plan.offsets[f"scratch{plan.order[position]}"]
        for j, op in enumerate(call.ops):
            rows.append((op.describe(), max(max(ends), base + call.sub_plan.footprint_bytes[j])))
    return rows


def plot_op_memory(series: Mapping[str, Sequence[tuple[str, int]]], path: str | os.PathLike,
                   title: str = "Arena in use per op") -> Path:
    """Save a PNG with one step curve per series of (op name, bytes) (see :func:`op_footprints`), drawn on
    the ops of the first series. Written atomically; returns the path."""
    if not series:
        raise PlanError("plot_op_memory needs at least one series; got an empty mapping.")
    plt = pyplot()
    path = Path(path)
    names = [name for name, _ in next(iter(series.values()))]
    fig, ax = plt.subplots(figsize=(max(6.0, min(0.22 * len(names) + 3, 24.0)), 4.2), dpi=110)
    xs = list(range(len(names)))
    for k, (label, rows) in enumerate(series.items()):
        by_name = dict(rows)
        ys = [by_name.get(name, 0) / 1024 for name in names]
        ax.step(xs, ys, where="mid", color=f"C{k % 10}", linewidth=1.8,
                label=f"{label}: peak {_kib(max(b for _, b in rows))} KiB")
    ax.set_xlabel("op (execution order)")
    ax.set_ylabel("arena in use (KiB)")
    ax.set_ylim(bottom=0)
    ax.grid(True, axis="y", alpha=0.3)
    if len(names) <= _MAX_TICK_LABELS:
        ax.set_xticks(xs)
        ax.set_xticklabels(names, rotation=90, fontsize=7)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(title)
    fig.tight_layout()
    return save_and_close(fig, path)


def plot_peak_bars(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Save a bar chart of peak SRAM per model: TFLM's arena, ours layer by layer and ours patch by patch
    (keys ``label``, ``tflm_arena_bytes``, ``peak_sram_bytes``, ``patch_peak_sram_bytes``; None skipped)."""
    plt = pyplot()
    path = Path(path)
    labels = [str(r["label"]) for r in rows]
    keys = (("tflm_arena_bytes", "TFLM arena"), ("peak_sram_bytes", "tinyml-kit, layer by layer"),
            ("patch_peak_sram_bytes", "tinyml-kit, patch-based"))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(labels) + 2), 4.2), dpi=110)
    width = 0.8 / len(keys)
    for k, (key, name) in enumerate(keys):
        xs = [i + (k - 1) * width for i in range(len(labels))]
        ys = [(r.get(key) or 0) / 1024 for r in rows]
        bars = ax.bar(xs, ys, width=width, label=name, color=f"C{k}")
        for bar, r in zip(bars, rows, strict=True):
            tflm = r.get("tflm_arena_bytes")
            if key != "tflm_arena_bytes" and r.get(key) and tflm:
                ax.annotate(f"{r[key] / tflm:.2f}x", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("peak SRAM (KiB)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Peak SRAM per model (labels: fraction of TFLM's arena)")
    fig.tight_layout()
    return save_and_close(fig, path)


def plan_table(problem: Problem, plan: Plan) -> str:
    """A fixed-width text table: per position the step, live/bound/used bytes and the live buffers."""
    width = min(max([4] + [len(st.name) for st in problem.steps]), _MAX_STEP_NAME)
    header = (f"{'pos':>4}  {'step':<{width}} {'live B':>9} {'bound B':>9} {'used B':>9}  "
              "buffers (name@offset+size)")
    lines = [
        f"method: {plan.method}",
        f"arena: {plan.arena_bytes} bytes, lower bound: {plan.lower_bound_bytes} bytes",
        header,
        "-" * len(header),
    ]
    live_at: list[list[str]] = [[] for _ in plan.order]
    for name, (first, last) in plan.lifetimes.items():
        for p in range(first, last + 1):
            live_at[p].append(name)
    for p, s in enumerate(plan.order):
        step = problem.steps[s].name
        names = sorted(live_at[p], key=lambda n: (plan.offsets[n], n))
        bufs = ", ".join(f"{n}@{plan.offsets[n]}+{problem.buffers[n].size}" for n in names)
        in_place = [f"{o}<-{i}" for o, i in sorted(plan.overlapping) if o in problem.steps[s].outputs]
        if in_place:
            bufs += "  [overlap " + ", ".join(in_place) + "]"
        lines.append(f"{p:>4}  {step[:width]:<{width}} {plan.live_bytes[p]:>9} {plan.bound_per_step[p]:>9} "
                     f"{plan.footprint_bytes[p]:>9}  {bufs}")
    return "\n".join(lines)
