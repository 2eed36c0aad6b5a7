"""Graph passes between the reader and lowering: aliases, fusions and clamp ranges.

Each pass takes and returns a :class:`Graph` (the input graph is never modified):

* :func:`alias_reshapes` - RESHAPE / SQUEEZE / EXPAND_DIMS become aliases (``Tensor.alias_of``):
  the output shares its input's bytes, no copy and no kernel. Reshapes of constants are folded.
* :func:`fuse_pad` - a PAD whose only consumer is a CONV_2D or DEPTHWISE_CONV_2D is folded into
  that op's padding (``op.attrs["extra_padding"] = (top, bottom, left, right)``). Exact because
  TFLite pads int8 with the zero point and the conv skips/zeroes padded taps the same way.
* :func:`fold_activation_ranges` - every op with ``fused_activation_function`` and an int8 output
  gets ``op.attrs["act_min"/"act_max"]`` exactly as TFLite's CalculateActivationRangeQuantized.
"""

from __future__ import annotations

import copy

import numpy as np

from tinyml_kit.engine.errors import EngineError, UnsupportedOpError
from tinyml_kit.engine.ir import Graph, Op, Tensor
from tinyml_kit.engine.quant import activation_range

RESHAPE_OPS = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
PAD_FUSABLE_CONSUMERS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def run_passes(graph: Graph) -> Graph:
    """All passes in order; returns a new graph."""
    graph = copy.deepcopy(graph)
    graph = alias_reshapes(graph)
    graph = fuse_pad(graph)
    return fold_activation_ranges(graph)


def _same_quant(a: Tensor, b: Tensor) -> bool:
    if a.quant is None or b.quant is None:
        return a.quant is None and b.quant is None
    return (np.array_equal(a.quant.scale, b.quant.scale)
            and np.array_equal(a.quant.zero_point, b.quant.zero_point))


def alias_reshapes(graph: Graph) -> Graph:
    """Turn reshape-like ops into tensor aliases (or fold them when their input is constant)."""
    kept: list[Op] = []
    for op in graph.ops:
        if op.type not in RESHAPE_OPS:
            kept.append(op)
            continue
        src, dst = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        if src.dtype != dst.dtype or src.num_elements != dst.num_elements:
            raise EngineError(
                f"{graph.source}: {op.describe()} maps {src.shape} {src.dtype} to {dst.shape} {dst.dtype}; "
                "a reshape must keep the element count and dtype. The file is inconsistent."
            )
        if not _same_quant(src, dst):
            raise UnsupportedOpError(
                f"{graph.source}: {op.describe()} changes the quantisation of its tensor; the engine "
                "only handles reshapes that keep scale and zero point (as TFLite's converter emits)."
            )
        if src.is_const:
            dst.data = src.data.reshape(dst.shape)
        else:
            dst.alias_of = src.index
    graph.ops = kept
    return graph


def _constant_paddings(graph: Graph, op: Op) -> np.ndarray | None:
    if len(op.inputs) < 2 or op.inputs[1] == -1 or not graph.tensors[op.inputs[1]].is_const:
        return None
    return np.asarray(graph.tensors[op.inputs[1]].data, dtype=np.int64).reshape(-1, 2)


def _pad_value_is_zero_point(graph: Graph, op: Op) -> bool:
    out = graph.tensors[op.outputs[0]]
    if out.quant is None:
        return False
    zero_point = int(out.quant.zero_point[0])
    if op.type == "PAD":
        return True  # TFLite int8 PAD fills with the output zero point
    if len(op.inputs) < 3 or op.inputs[2] == -1:
        return True
    value = graph.tensors[op.inputs[2]]
    return value.is_const and int(np.asarray(value.data).reshape(-1)[0]) == zero_point


def fuse_pad(graph: Graph) -> Graph:
    """Fold spatial zero-point PAD/PADV2 into the single CONV_2D/DEPTHWISE_CONV_2D that reads it."""
    removed: set[int] = set()
    for op in graph.ops:
        if op.type not in ("PAD", "PADV2"):
            continue
        src, dst = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        paddings = _constant_paddings(graph, op)
        consumers = graph.consumers(dst.index)
        if (paddings is None or paddings.shape != (4, 2) or src.dtype != "int8"
                or np.any(paddings[[0, 3]] != 0) or np.any(paddings < 0)
                or not _pad_value_is_zero_point(graph, op) or not _same_quant(src, dst)
                or len(consumers) != 1 or consumers[0].type not in PAD_FUSABLE_CONSUMERS
                or consumers[0].inputs[0] != dst.index or dst.index in graph.outputs
                or any(graph.tensors[t].alias_of == dst.index for t in graph.tensors)):
            continue
        conv = consumers[0]
        top, bottom = (int(v) for v in paddings[1])
        left, right = (int(v) for v in paddings[2])
        prev = conv.attrs.get("extra_padding", (0, 0, 0, 0))
        conv.attrs["extra_padding"] = (prev[0] + top, prev[1] + bottom, prev[2] + left, prev[3] + right)
        conv.attrs.setdefault("fused_ops", []).append(op.describe())
        conv.inputs = [src.index, *conv.inputs[1:]]
        removed.add(op.index)
    graph.ops = [op for op in graph.ops if op.index not in removed]
    return graph


def fold_activation_ranges(graph: Graph) -> Graph:
    """Set ``attrs["act_min"/"act_max"]`` for every op with a fused activation and an int8 output."""
    for op in graph.ops:
        activation = op.options.get("fused_activation_function")
        if activation is None or not op.outputs:
            continue
        out = graph.tensors[op.outputs[0]]
        if out.dtype != "int8" or out.quant is None:
            continue
        if activation not in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"):
            raise UnsupportedOpError(
                f"{graph.source}: {op.describe()} has fused activation {activation}; supported fused "
                "activations are NONE, RELU, RELU6 and RELU_N1_TO_1."
            )
        lo, hi = activation_range(activation, float(out.quant.scale[0]), int(out.quant.zero_point[0]))
        op.attrs["act_min"], op.attrs["act_max"] = lo, hi
    return graph
