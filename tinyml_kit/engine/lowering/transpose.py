"""TRANSPOSE (int8, constant permutation, up to 6 dimensions) -> ``tk_transpose_s8``."""

from __future__ import annotations

import numpy as np

from tinyml_kit.engine.ir import Graph, Op
from tinyml_kit.engine.lowering._lowering_utils import (
    const_ints,
    contiguous_strides,
    int8_tensor,
    raster_overlap,
    unsupported,
)
from tinyml_kit.engine.lowering.base import KernelCall, register_lowering

TRANSPOSE_DIMS = 6  # TK_TRANSPOSE_DIMS in tk_transpose.h


def collapse_permutation(in_shape: tuple[int, ...], perm: list[int]) -> list[tuple[int, int]]:
    """(size, input stride) per output dimension, merging output neighbours adjacent in the input."""
    in_strides = contiguous_strides(in_shape)
    merged: list[tuple[int, int]] = []
    for axis in perm:
        size, stride = int(in_shape[axis]), in_strides[axis]
        if size == 1:
            continue
        if merged and merged[-1][1] == stride * size:
            merged[-1] = (merged[-1][0] * size, stride)
        else:
            merged.append((size, stride))
    return merged or [(1, 0)]


@register_lowering("TRANSPOSE")
def lower_transpose(op: Op, graph: Graph) -> KernelCall:
    """TRANSPOSE int8: the permutation must be a constant."""
    x = int8_tensor(op, graph, op.inputs[0], "input")
    y = int8_tensor(op, graph, op.outputs[0], "output")
    perm = const_ints(op, graph, op.inputs[1], "permutation")
    rank = len(x.shape)
    perm = [p + rank if p < 0 else p for p in perm]
    if sorted(perm) != list(range(rank)) or tuple(x.shape[p] for p in perm) != tuple(y.shape):
        raise unsupported(op, graph, f"has permutation {perm} for input {x.shape} and output {y.shape}",
                          "Check the model; it looks malformed.")
    merged = collapse_permutation(tuple(x.shape), perm)
    if len(merged) > TRANSPOSE_DIMS:
        raise unsupported(op, graph, f"permutes {len(merged)} separate dimension groups; at most "
                          f"{TRANSPOSE_DIMS} are supported", "Split the transpose into two.")
    merged = [(1, 0)] * (TRANSPOSE_DIMS - len(merged)) + merged
    call = KernelCall(op=op, kernel="tk_transpose", function="tk_transpose_s8",
                      params_type="tk_transpose_params_t", inputs=[x.index], outputs=[y.index])
    call.params.update(out_dims=[m[0] for m in merged], in_strides=[m[1] for m in merged])
    source = np.transpose(np.arange(x.num_elements, dtype=np.int64).reshape(x.shape), perm).reshape(-1)
    overlap = raster_overlap(y, x, source)
    if overlap is not None:
        call.overlaps.append(overlap)
    return call
