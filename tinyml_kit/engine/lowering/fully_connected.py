"""FULLY_CONNECTED -> ``tk_fc_s8`` (per-tensor and per-channel weights, optional bias, keep_num_dims).

FC layers keep a kernel without scratch: a GEMM column buffer would cost 2 bytes of SRAM per input
value (8 KB for a 4000-wide layer), more than their few outputs could save."""

from __future__ import annotations

import numpy as np

from tinyml_kit.engine.errors import UnsupportedOpError
from tinyml_kit.engine.ir import Graph, Op
from tinyml_kit.engine.lowering.base import KernelCall, register_lowering
from tinyml_kit.engine.lowering.common import (
    activation,
    clamp_range,
    constant,
    folded_bias,
    per_tensor,
    require_dtype,
)
from tinyml_kit.engine.lowering.conv import bias_values, filter_scales
from tinyml_kit.engine.quant import conv_multiplier_per_tensor, per_channel_multipliers


@register_lowering("FULLY_CONNECTED")
def lower_fully_connected(op: Op, graph: Graph) -> KernelCall:
    inp, out = activation(graph, op, 0), graph.tensors[op.outputs[0]]
    weights = constant(graph, op, 1)
    for t in (inp, weights, out):
        require_dtype(graph, op, t, "int8")
    if op.options.get("weights_format", "DEFAULT") != "DEFAULT":
        raise UnsupportedOpError(f"{graph.source}: {op.describe()} uses shuffled weights "
                                 f"({op.options['weights_format']}); re-export with the default format.")
    if len(weights.shape) != 2 or not out.shape:
        raise UnsupportedOpError(f"{graph.source}: {op.describe()} has filter shape {weights.shape}; "
                                 "expected [out_depth, accum_depth].")
    out_depth, accum_depth = (int(d) for d in weights.shape)
    if int(out.shape[-1]) != out_depth:
        raise UnsupportedOpError(f"{graph.source}: {op.describe()} output depth {out.shape[-1]} does not "
                                 f"match {out_depth} filter rows.")
    batches = out.num_elements // out_depth
    if inp.num_elements != batches * accum_depth:
        raise UnsupportedOpError(f"{graph.source}: {op.describe()} input {inp.shape} does not hold {batches} "
                                 f"rows of {accum_depth} values.")

    in_scale, in_zp = per_tensor(graph, op, inp)
    out_scale, out_zp = per_tensor(graph, op, out)
    scales = filter_scales(graph, op, weights, out_depth, channel_axis=0)
    if weights.quant.per_channel:
        multiplier, shift = per_channel_multipliers(in_scale, scales, out_scale, out_depth)
    else:  # TFLM's per-tensor path takes the scale product in float32 (GetQuantizedConvolutionMultipler)
        m, s = conv_multiplier_per_tensor(in_scale, float(scales[0]), out_scale)
        multiplier, shift = np.full(out_depth, m, dtype=np.int32), np.full(out_depth, s, dtype=np.int32)
    filters = np.asarray(weights.data, dtype=np.int8)
    bias = folded_bias(graph, op, bias_values(graph, op, 2, out_depth), filters, -in_zp)
    act_min, act_max = clamp_range(op)
    return KernelCall(
        op=op, kernel="tk_fc", function="tk_fc_s8", params_type="tk_fc_params_t",
        params={"batches": batches, "accum_depth": accum_depth, "out_depth": out_depth,
                "output_offset": out_zp, "act_min": act_min, "act_max": act_max},
        arrays={"filter": filters.reshape(-1), "bias": bias, "multiplier": multiplier, "shift": shift},
        inputs=[inp.index], outputs=[out.index],
        macs=batches * out_depth * accum_depth,
    )
