"""RELU, RELU6, LOGISTIC and HARD_SWISH (int8) -> ``tk_lut_s8`` with a 256-entry table.

An int8 input takes only 256 values, so each op's TFLM integer arithmetic is evaluated here for all of
them (bit for bit, integer semantics included) and the kernel looks results up:

* RELU: TFLM requantises, ``out_zp + MultiplyByQuantizedMultiplier(x - in_zp, in_scale / out_scale)``,
  clamped to ``[max(-128, out_zp), 127]``.
* RELU6: TFLM clamps to ``[in_zp, quantise(6.0) on the input scale]`` and ignores the output's scale
  and zero point. When the converter gives the output its own quantisation (it does for a standalone
  ReLU6 on a model input) TFLM's result is off by up to the input's zero-point offset (measured: 2.2
  real units where LiteRT is within one step); this lowering reproduces TFLM, bit for bit.
* LOGISTIC: ``reference_integer_ops::Logistic``: gemmlowp's fixed-point logistic on a Q4.27 input.
* HARD_SWISH: ``reference_ops::HardSwish``: TFLite's int16 fixed-point evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from tinyml_kit.engine.ir import Graph, Op
from tinyml_kit.engine.lowering._lowering_utils import (
    int8_tensor,
    raster_overlap,
    scale_zero_point,
    unsupported,
)
from tinyml_kit.engine.lowering.base import KernelCall, register_lowering
from tinyml_kit.engine.quant import (
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    quantize_scalar,
    round_half_away,
    rounding_divide_by_pot,
    srdhm,
)

INT8_VALUES = range(-128, 128)
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT16_MIN, INT16_MAX = -(2**15), 2**15 - 1
Int8Function = Callable[[int], int]


def wrap_int32(x: int) -> int:
    """Two's-complement wrap to int32, as C int32 arithmetic behaves in practice."""
    return (x + 2**31) % 2**32 - 2**31


def wrap_int16(x: int) -> int:
    """Two's-complement wrap to int16, as a C assignment to int16_t."""
    return (x + 2**15) % 2**16 - 2**15


def trunc_div(a: int, b: int) -> int:
    """C integer division (rounds toward zero) for b > 0."""
    q = abs(a) // b
    return q if a >= 0 else -q


def _clamp_int8(v: int) -> int:
    return max(-128, min(127, v))


# --- RELU / RELU6 -------------------------------------------------------------------------------

def relu_function(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> Int8Function:
    """TFLM's int8 RELU (``CalculateReluOpData`` + ``ReluQuantized``)."""
    multiplier, shift = quantize_multiplier(in_scale / out_scale)
    act_min = max(-128, out_zp + round_half_away(float(np.float32(0.0) / np.float32(out_scale))))

    def relu(x: int) -> int:
        v = out_zp + multiply_by_quantized_multiplier(x - in_zp, multiplier, shift)
        return min(127, max(act_min, v))

    return relu


def relu6_function(in_scale: float, in_zp: int) -> Int8Function:
    """TFLM's int8 RELU6 (``Relu6Prepare`` + ``Relu6Quantized``): a clamp on the input scale."""
    zero = _clamp_int8(in_zp)
    six = _clamp_int8(quantize_scalar(6.0, in_scale, in_zp))

    def relu6(x: int) -> int:
        return six if x > six else (zero if x < zero else x)

    return relu6


# --- LOGISTIC: gemmlowp fixed point --------------------------------------------------------------

def _saturating_shift_left(x: int, exponent: int) -> int:
    """gemmlowp ``SaturatingRoundingMultiplyByPOT<exponent>`` for exponent > 0 on int32."""
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return x << exponent


def _rescale(x: int, src_integer_bits: int, dst_integer_bits: int) -> int:
    """gemmlowp ``Rescale``: the same real value with a different number of integer bits."""
    exponent = src_integer_bits - dst_integer_bits
    if exponent > 0:
        return _saturating_shift_left(x, exponent)
    return rounding_divide_by_pot(x, -exponent)


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: int) -> int:
    """exp(a) for a in [-1/4, 0), Q0.31 in and out (Taylor expansion around -1/8)."""
    constant_term, one_third = 1895147668, 715827883
    x = wrap_int32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = wrap_int32(srdhm(wrap_int32(x4_over_4 + x3), one_third) + x2)
    poly = rounding_divide_by_pot(poly, 1)
    return wrap_int32(constant_term + srdhm(constant_term, wrap_int32(x + poly)))


_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535),
               (3, 720401), (4, 242))


def _exp_on_negative_values(a: int, integer_bits: int) -> int:
    """gemmlowp ``exp_on_negative_values``: Q(integer_bits) input <= 0, Q0.31 output."""
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_one_quarter = wrap_int32((a & (one_quarter - 1)) - one_quarter)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        _rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0))
    remainder = wrap_int32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent and remainder & (1 << (fractional_bits + exponent)):
            result = srdhm(result, multiplier)
    if integer_bits > 5 and a < -(1 << (36 - integer_bits)):
        result = 0  # exp(x < -32) = 0; not reached for the Q4 input of int8 LOGISTIC
    return INT32_MAX if a == 0 else result


def _one_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    """gemmlowp ``one_over_one_plus_x_for_x_in_0_1``: Newton-Raphson division, Q0.31 in and out."""
    total = a + INT32_MAX  # RoundingHalfSum(a, One) in 64 bits
    half_denominator = wrap_int32(trunc_div(total + (1 if total >= 0 else -1), 2))
    x = wrap_int32(1515870810 + srdhm(half_denominator, -1010580540))  # 48/17 - 32/17 * d, Q2.29
    for _ in range(3):
        one_minus = wrap_int32((1 << 29) - srdhm(half_denominator, x))
        x = wrap_int32(x + _rescale(srdhm(x, one_minus), 4, 2))
    return _rescale(x, 1, 0)  # ExactMulByPot<-1> reinterprets Q2 as Q1


def gemmlowp_logistic(a: int, integer_bits: int) -> int:
    """gemmlowp ``logistic`` of a Q(integer_bits) raw value; Q0.31 result."""
    abs_input = a if a > 0 else wrap_int32(-a)
    positive = _one_over_one_plus_x_for_x_in_0_1(_exp_on_negative_values(wrap_int32(-abs_input),
                                                                           integer_bits))
    if a == 0:
        return 1 << 30
    return positive if a > 0 else wrap_int32(INT32_MAX - positive)


def logistic_function(in_scale: float, in_zp: int) -> Int8Function:
    """TFLM's int8 LOGISTIC (``CalculateArithmeticOpDataLogistic`` + ``reference_integer_ops::Logistic``)."""
    input_integer_bits = 4
    q, left_shift = math.frexp(in_scale * float(1 << (31 - input_integer_bits)))
    multiplier = wrap_int32(round_half_away(q * (1 << 31)))  # TFLM casts without renormalising
    radius = math.floor(15.0 * float(1 << 27) / math.ldexp(1.0, left_shift))

    def logistic(x: int) -> int:
        value = x - in_zp
        if value <= -radius:
            return -128
        if value >= radius:
            return 127
        q4 = multiply_by_quantized_multiplier(value, multiplier, left_shift)
        q0 = gemmlowp_logistic(q4, input_integer_bits)
        return _clamp_int8(rounding_divide_by_pot(q0, 31 - 8) - 128)

    return logistic


# --- HARD_SWISH: TFLite's int16 fixed point -------------------------------------------------------

def _srdhm16(a: int, b: int) -> int:
    if a == b == INT16_MIN:
        return INT16_MAX
    ab = a * b
    nudge = (1 << 14) if ab >= 0 else 1 - (1 << 14)
    return wrap_int16(trunc_div(ab + nudge, 1 << 15))


def _sdhm16(a: int, b: int) -> int:
    """TFLite ``SaturatingDoublingHighMul`` (rounds toward zero)."""
    if a == b == INT16_MIN:
        return INT16_MAX
    return wrap_int16(trunc_div(a * b, 1 << 15))


def _saturating_left_shift16(value: int, amount: int) -> int:
    return max(INT16_MIN, min(INT16_MAX, value * (1 << amount)))


def _rounding_divide_by_pot16(x: int, exponent: int) -> int:
    """gemmlowp ``RoundingDivideByPOT`` on int16 (mask and threshold in int16 too)."""
    mask = wrap_int16((1 << exponent) - 1)
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return wrap_int16((x >> exponent) + (1 if remainder > threshold else 0))


def _downscale_multiplier_to_int16(multiplier: int) -> int:
    """TFLite ``DownScaleInt32ToInt16Multiplier``."""
    if multiplier >= INT32_MAX - (1 << 15):
        return INT16_MAX
    return (multiplier + (1 << 15)) >> 16


def hard_swish_function(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> Int8Function:
    """TFLM's int8 HARD_SWISH (``HardSwishPrepare`` + ``reference_ops::HardSwish``)."""
    hires_input_scale = np.float32(1.0 / 128.0) * np.float32(in_scale)
    reluish_scale = np.float32(3.0) / np.float32(32768.0)
    out_m32, out_exponent = quantize_multiplier(float(hires_input_scale / np.float32(out_scale)))
    out_m16 = _downscale_multiplier_to_int16(out_m32)
    relu_m32, relu_exponent = quantize_multiplier(float(hires_input_scale / reluish_scale))
    relu_m16 = _downscale_multiplier_to_int16(relu_m32)
    if out_exponent > 0:
        raise ValueError("output multiplier exponent > 0")

    def hard_swish(x: int) -> int:
        hires = wrap_int16(wrap_int16(x - in_zp) * (1 << 7))
        preshift_output = _srdhm16(hires, out_m16)
        reluish = hires
        if relu_exponent > 0:
            reluish = _saturating_left_shift16(reluish, relu_exponent - 1)
        reluish = _srdhm16(reluish, relu_m16)
        if relu_exponent > 0:
            reluish = _saturating_left_shift16(reluish, 1)
        if relu_exponent < 0:
            reluish = _rounding_divide_by_pot16(reluish, -relu_exponent)
        reluish = wrap_int16((reluish + (1 << 15)) >> 1)
        value = _rounding_divide_by_pot16(_sdhm16(reluish, preshift_output), -out_exponent)
        return _clamp_int8(wrap_int16(value + out_zp))

    return hard_swish


# --- lowering --------------------------------------------------------------------------------------

def lookup_table(function: Int8Function) -> np.ndarray:
    """The 256-entry int8 table of ``function``: entry ``x + 128`` holds ``function(x)``."""
    return np.asarray([function(x) for x in INT8_VALUES], dtype=np.int8)


def _table_call(op: Op, graph: Graph, make: Callable[..., Int8Function]) -> KernelCall:
    x = int8_tensor(op, graph, op.inputs[0], "input")
    y = int8_tensor(op, graph, op.outputs[0], "output")
    if x.num_elements != y.num_elements:
        raise unsupported(op, graph, f"maps shape {x.shape} to {y.shape}", "Check the model.")
    try:
        table = lookup_table(make(*scale_zero_point(x), *scale_zero_point(y)))
    except ValueError as exc:
        raise unsupported(op, graph, f"has quantisation TFLM rejects ({exc})",
                          "Re-calibrate the model's quantisation.") from exc
    call = KernelCall(op=op, kernel="tk_lut", function="tk_lut_s8", params_type="tk_lut_params_t",
                      inputs=[x.index], outputs=[y.index])
    call.params["size"] = x.num_elements
    call.arrays["table"] = table
    overlap = raster_overlap(y, x, np.arange(x.num_elements, dtype=np.int64))
    if overlap is not None:
        call.overlaps.append(overlap)
    return call


@register_lowering("RELU")
def lower_relu(op: Op, graph: Graph) -> KernelCall:
    """RELU int8 (requantising when input and output scales differ)."""
    return _table_call(op, graph, relu_function)


@register_lowering("RELU6")
def lower_relu6(op: Op, graph: Graph) -> KernelCall:
    """RELU6 int8 (a clamp on the input's scale, as TFLM)."""
    return _table_call(op, graph, lambda s_in, z_in, s_out, z_out: relu6_function(s_in, z_in))


@register_lowering("LOGISTIC")
def lower_logistic(op: Op, graph: Graph) -> KernelCall:
    """LOGISTIC int8; TFLM requires the output zero point -128 (scale 1/256)."""
    out_zero_point = scale_zero_point(int8_tensor(op, graph, op.outputs[0], "output"))[1]
    if out_zero_point != -128:
        raise unsupported(op, graph, f"has output zero point {out_zero_point}; TFLM's int8 LOGISTIC "
                          "requires -128 (output scale 1/256)", "Re-convert the model with TFLiteConverter, "
                          "which fixes the output quantisation of LOGISTIC.")
    return _table_call(op, graph, lambda s_in, z_in, s_out, z_out: logistic_function(s_in, z_in))


@register_lowering("HARD_SWISH")
def lower_hard_swish(op: Op, graph: Graph) -> KernelCall:
    """HARD_SWISH int8."""
    return _table_call(op, graph, hard_swish_function)
