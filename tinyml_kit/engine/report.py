"""Reports on arena plans: a live-memory plot per op and a per-step text table for the CLI.

matplotlib is imported only inside :func:`plot_live_memory` (Agg backend, no display needed).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from tinyml_kit.engine.planner import Plan, PlanError, Problem
from tinyml_kit.errors import MissingDependencyError

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
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib ships with the toolkit's extras
        raise MissingDependencyError(
            "plotting arena plans needs matplotlib; install it with `pip install matplotlib`."
        ) from exc

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

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format="png")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return path


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
