"""The memory planner's public data model: buffers, steps, overlap rules, problems and plans.

Re-exported by :mod:`tinyml_kit.engine.planner`, which documents the arena semantics."""

from __future__ import annotations

from dataclasses import dataclass, field

from tinyml_kit.engine.errors import EngineError


class PlanError(EngineError):
    """A planning problem is malformed, or a plan breaks the arena rules (the message names both)."""


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
