"""The lowering contract: one registered function per TFLite op turns an IR op into a kernel call.

Every C kernel in ``firmware/kernels/<kernel>.c`` (declared in ``<kernel>.h``) has the one ABI::

    void FUNCTION(const PARAMS_T *p, const void *const *in, void *const *out, void *scratch);

``in``/``out`` point into the arena (activations only; constants live in ``p``), ``scratch`` is the
kernel's planned scratch area (``scratch_bytes`` long, or NULL when 0). ``PARAMS_T`` is a C struct whose
scalar fields come from :attr:`KernelCall.params` and whose pointer fields point at ``const`` arrays in
flash from :attr:`KernelCall.arrays`. Codegen emits designated initialisers, so field order is free.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinyml_kit.engine.errors import UnsupportedOpError
from tinyml_kit.engine.ir import Graph, Op


@dataclass(frozen=True)
class Overlap:
    """Where an op's output may overlap one of its inputs (an input that dies at this op).

    The shift is ``output_offset - input_offset`` in bytes. The placement is safe when the two do not
    overlap at all, when ``shift <= max_shift`` (ops that write in raster order no faster than they
    consume), or when ``shift`` is one of ``exact`` (e.g. 0 for channel-by-channel in-place depthwise).
    """

    output: int  # tensor index
    input: int  # tensor index
    max_shift: int | None = None
    exact: tuple[int, ...] = ()


@dataclass
class KernelCall:
    """One call of a C kernel, fully resolved at compile time."""

    op: Op
    kernel: str  # file stem under firmware/kernels, e.g. "tk_conv2d" (tk_conv2d.c + tk_conv2d.h)
    function: str  # C function name
    params_type: str  # C struct typedef of the first argument
    params: dict[str, Any] = field(default_factory=dict)  # scalar fields: int, float, or list of ints
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # pointer fields -> const arrays
    inputs: list[int] = field(default_factory=list)  # activation tensor indices (in[0], in[1], ...)
    outputs: list[int] = field(default_factory=list)  # activation tensor indices (out[0], ...)
    scratch_bytes: int = 0
    overlaps: list[Overlap] = field(default_factory=list)
    # Name of an int field codegen sets to 1 when the plan makes out[0] overlap in[0] (the kernel then
    # runs its in-place variant), or None when the kernel needs no such switch.
    inplace_flag: str | None = None
    macs: int = 0  # multiply-accumulates, for reports (MACs per instruction)


Lowering = Callable[[Op, Graph], KernelCall]
LOWERINGS: dict[str, Lowering] = {}


def register_lowering(op_type: str) -> Callable[[Lowering], Lowering]:
    """Decorator: register the lowering of one TFLite builtin op (e.g. "CONV_2D")."""

    def wrap(fn: Lowering) -> Lowering:
        if op_type in LOWERINGS:
            raise ValueError(f"a lowering for {op_type} is already registered")
        LOWERINGS[op_type] = fn
        return fn

    return wrap


def lower_op(op: Op, graph: Graph) -> KernelCall:
    """Lower one op, or raise an error naming the op, its index and what to do."""
    fn = LOWERINGS.get(op.type)
    if fn is None:
        supported = ", ".join(sorted(LOWERINGS))
        raise UnsupportedOpError(
            f"{graph.source}: {op.describe()} is not supported by the engine. Supported ops: {supported}. "
            "Re-export the model with full-integer (int8) quantisation using only these ops."
        )
    try:
        return fn(op, graph)
    except ValueError as exc:  # quant.py's range checks: parameters TFLite's integer kernels reject too
        raise UnsupportedOpError(
            f"{graph.source}: {op.describe()} has quantisation parameters the int8 kernels cannot represent "
            f"({exc}). Re-quantise with a representative dataset that covers the real input range."
        ) from exc
