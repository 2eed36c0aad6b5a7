"""QUANTIZE (float32 -> int8, int8/uint8 requantise) and DEQUANTIZE (int8 -> float32)."""

from __future__ import annotations

from tinyml_kit.engine.errors import UnsupportedOpError
from tinyml_kit.engine.ir import Graph, Op
from tinyml_kit.engine.lowering.base import KernelCall, Overlap, register_lowering
from tinyml_kit.engine.lowering.common import activation, elementwise_max_shift, per_tensor, require_dtype
from tinyml_kit.engine.quant import quantize_multiplier

_KERNEL = {"kernel": "tk_quantize", "params_type": "tk_quantize_params_t"}


@register_lowering("QUANTIZE")
def lower_quantize(op: Op, graph: Graph) -> KernelCall:
    inp, out = activation(graph, op, 0), graph.tensors[op.outputs[0]]
    require_dtype(graph, op, inp, "float32", "int8", "uint8")
    require_dtype(graph, op, out, "int8", "uint8")
    if inp.num_elements != out.num_elements:
        raise UnsupportedOpError(f"{graph.source}: {op.describe()} maps {inp.shape} to {out.shape}.")
    out_scale, out_zp = per_tensor(graph, op, out)
    n = out.num_elements
    if inp.dtype == "float32":
        require_dtype(graph, op, out, "int8")
        return KernelCall(
            op=op, function="tk_quantize_f32_s8", **_KERNEL,
            params={"size": n, "scale": float(out_scale), "zero_point": out_zp},
            inputs=[inp.index], outputs=[out.index],
            overlaps=[Overlap(output=out.index, input=inp.index, max_shift=elementwise_max_shift(n, 4, 1))],
        )
    in_scale, in_zp = per_tensor(graph, op, inp)
    multiplier, shift = quantize_multiplier(float(in_scale) / float(out_scale))
    return KernelCall(
        op=op, function="tk_requantize_8", **_KERNEL,
        params={"size": n, "input_zero_point": in_zp, "output_zero_point": out_zp,
                "multiplier": multiplier, "shift": shift,
                "input_unsigned": int(inp.dtype == "uint8"), "output_unsigned": int(out.dtype == "uint8")},
        inputs=[inp.index], outputs=[out.index],
        overlaps=[Overlap(output=out.index, input=inp.index, max_shift=elementwise_max_shift(n, 1, 1))],
    )


@register_lowering("DEQUANTIZE")
def lower_dequantize(op: Op, graph: Graph) -> KernelCall:
    inp, out = activation(graph, op, 0), graph.tensors[op.outputs[0]]
    require_dtype(graph, op, inp, "int8")
    require_dtype(graph, op, out, "float32")
    if inp.num_elements != out.num_elements:
        raise UnsupportedOpError(f"{graph.source}: {op.describe()} maps {inp.shape} to {out.shape}.")
    scale, zp = per_tensor(graph, op, inp)
    return KernelCall(
        op=op, function="tk_dequantize_s8_f32", **_KERNEL,
        params={"size": inp.num_elements, "scale": float(scale), "zero_point": zp},
        inputs=[inp.index], outputs=[out.index],
        # written last element first, so the float output may start exactly at the input
        overlaps=[Overlap(output=out.index, input=inp.index, exact=(0,))],
    )
