"""CONCATENATION (int8, any axis, up to 10 inputs) -> ``tk_concat_s8``.

TFLM copies int8 bytes without requantising (``EvalUnquantized<int8_t>``), relying on the converter
to give every input the output's scale and zero point; this lowering does the same, so results stay
bit-exact with TFLM even for a model that breaks that rule.
"""

from __future__ import annotations

import numpy as np

from tinyml_kit.engine.ir import Graph, Op
from tinyml_kit.engine.lowering._lowering_utils import (
    fused_activation,
    int8_tensor,
    raster_overlap,
    unsupported,
)
from tinyml_kit.engine.lowering.base import KernelCall, register_lowering

MAX_INPUTS = 10  # TK_CONCAT_MAX_INPUTS in tk_concat.h (TFLM's kMaxInputNum)


def _first_read(outer: int, chunks: list[int], which: set[int]) -> np.ndarray:
    """Element of the tensor fed as inputs ``which`` copied into each output element, else -1."""
    blocks = []
    for k, chunk in enumerate(chunks):
        if k in which:
            blocks.append(np.arange(outer * chunk, dtype=np.int64).reshape(outer, chunk))
        else:
            blocks.append(np.full((outer, chunk), -1, dtype=np.int64))
    return np.concatenate(blocks, axis=1).reshape(-1)


@register_lowering("CONCATENATION")
def lower_concatenation(op: Op, graph: Graph) -> KernelCall:
    """CONCATENATION int8 of activation tensors along a constant axis."""
    y = int8_tensor(op, graph, op.outputs[0], "output")
    xs = [int8_tensor(op, graph, i, f"input {k}") for k, i in enumerate(op.inputs)]
    if not 1 <= len(xs) <= MAX_INPUTS:
        raise unsupported(op, graph, f"concatenates {len(xs)} tensors; 1 to {MAX_INPUTS} are supported",
                          "Concatenate in several steps.")
    for k, x in enumerate(xs):
        if x.is_const:
            raise unsupported(op, graph, f"concatenates the constant tensor '{x.name}' (input {k})",
                              "Feed the constant through the model as an input, or fold it in training.")
    if fused_activation(op) != "NONE":
        raise unsupported(op, graph, f"has fused activation {fused_activation(op)} (TFLM rejects it too)",
                          "Use a separate activation op.")
    rank = len(y.shape)
    axis = int(op.options.get("axis", 0))
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank or any(len(x.shape) != rank for x in xs):
        raise unsupported(op, graph, f"concatenates along axis {op.options.get('axis')} tensors of shapes "
                          f"{[x.shape for x in xs]} into {y.shape}", "Check the model; it looks malformed.")
    outer = int(np.prod(y.shape[:axis], dtype=np.int64))
    chunks = [int(np.prod(x.shape[axis:], dtype=np.int64)) for x in xs]
    if outer * sum(chunks) != y.num_elements:
        raise unsupported(op, graph, f"concatenates shapes {[x.shape for x in xs]} into {y.shape}",
                          "Check the model; it looks malformed.")
    call = KernelCall(op=op, kernel="tk_concat", function="tk_concat_s8", params_type="tk_concat_params_t",
                      inputs=[x.index for x in xs], outputs=[y.index])
    call.params.update(outer=outer, num_inputs=len(xs), chunk=chunks + [0] * (MAX_INPUTS - len(chunks)))
    for x in {x.index: x for x in xs}.values():
        positions = {k for k, other in enumerate(xs) if other.index == x.index}
        overlap = raster_overlap(y, x, _first_read(outer, chunks, positions))
        if overlap is not None:
            call.overlaps.append(overlap)
    return call
