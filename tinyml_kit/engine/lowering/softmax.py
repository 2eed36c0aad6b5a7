"""SOFTMAX (int8 -> int8) -> ``tk_softmax_s8``."""

from __future__ import annotations

from tinyml_kit.engine.errors import UnsupportedOpError
from tinyml_kit.engine.ir import Graph, Op
from tinyml_kit.engine.lowering.base import KernelCall, Overlap, register_lowering
from tinyml_kit.engine.lowering.common import activation, per_tensor, require_dtype
from tinyml_kit.engine.quant import softmax_input_params


@register_lowering("SOFTMAX")
def lower_softmax(op: Op, graph: Graph) -> KernelCall:
    inp, out = activation(graph, op, 0), graph.tensors[op.outputs[0]]
    for t in (inp, out):
        require_dtype(graph, op, t, "int8")
    if not inp.shape or inp.shape != out.shape:
        raise UnsupportedOpError(f"{graph.source}: {op.describe()} maps {inp.shape} to {out.shape}.")
    in_scale, _ = per_tensor(graph, op, inp)
    out_scale, out_zp = per_tensor(graph, op, out)
    if out_zp != -128 or float(out_scale) != 1.0 / 256:
        raise UnsupportedOpError(f"{graph.source}: {op.describe()} output has scale {out_scale} and zero "
                                 f"point {out_zp}; TFLite int8 softmax requires 1/256 and -128.")
    multiplier, left_shift, diff_min = softmax_input_params(float(op.options.get("beta", 1.0)), in_scale)
    depth = int(inp.shape[-1])
    return KernelCall(
        op=op, kernel="tk_softmax", function="tk_softmax_s8", params_type="tk_softmax_params_t",
        params={"rows": inp.num_elements // depth, "depth": depth, "input_multiplier": multiplier,
                "input_left_shift": left_shift, "diff_min": diff_min},
        inputs=[inp.index], outputs=[out.index],
        overlaps=[Overlap(output=out.index, input=inp.index, max_shift=0)],
    )
