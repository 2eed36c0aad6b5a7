"""TFLite's compile-time quantisation arithmetic, reproduced bit for bit in Python.

Every function mirrors the TFLite/TFLM routine named in its docstring, including where TFLite
computes in float32 rather than float64, because a one-ulp difference in a multiplier can change a
rounded int8 output.
"""

from __future__ import annotations

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127

ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6")


def round_half_away(x: float) -> int:
    """``std::round`` (TfLiteRound): halves round away from zero."""
    whole = math.floor(abs(x))
    magnitude = int(whole) + (1 if abs(x) - whole >= 0.5 else 0)  # exact: no x + 0.5 rounding
    return magnitude if x >= 0 else -magnitude


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier``: ``real ~= multiplier * 2^(shift - 31)``, multiplier in Q31.

    Returns ``(multiplier, shift)``; ``shift`` > 0 is a left shift. Handles the round-up-to-2^31
    edge case and flushes multipliers below 2^-31 to zero exactly as TFLite does.
    """
    if real == 0.0:
        return 0, 0
    if real < 0 or not math.isfinite(real):
        raise ValueError(f"Expected a finite, non-negative multiplier. Received: {real!r}")
    q, shift = math.frexp(real)
    q_fixed = round_half_away(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q_fixed), int(shift)


def quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplierGreaterThanOne`` (checks ``real > 1`` and a non-negative shift)."""
    if not real > 1.0:
        raise ValueError(f"Expected a multiplier > 1. Received: {real!r}")
    multiplier, shift = quantize_multiplier(real)
    if shift < 0:
        raise ValueError(f"Expected a non-negative left shift for multiplier {real!r}")
    return multiplier, shift


def per_channel_multipliers(input_scale: float, filter_scales: np.ndarray, output_scale: float,
                            channels: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLite ``PopulateConvolutionQuantizationParams``: one (multiplier, shift) per output channel.

    ``effective = double(input_scale) * double(filter_scale[c]) / double(output_scale)``; a single
    filter scale is broadcast to all channels (per-tensor weights).
    """
    scales = np.asarray(filter_scales, dtype=np.float64).reshape(-1)
    if scales.size not in (1, channels):
        raise ValueError(f"Expected 1 or {channels} filter scales. Received: {scales.size}")
    mult = np.zeros(channels, dtype=np.int32)
    shift = np.zeros(channels, dtype=np.int32)
    for c in range(channels):
        s = float(scales[c if scales.size > 1 else 0])
        mult[c], shift[c] = quantize_multiplier(float(input_scale) * s / float(output_scale))
    return mult, shift


def conv_multiplier_per_tensor(input_scale: float, filter_scale: float,
                               output_scale: float) -> tuple[int, int]:
    """TFLite ``GetQuantizedConvolutionMultipler`` (used by per-tensor FULLY_CONNECTED).

    The product ``input_scale * filter_scale`` is taken in float32, then widened, as TFLite does.
    """
    product = float(np.float32(input_scale) * np.float32(filter_scale))
    return quantize_multiplier(product / float(np.float32(output_scale)))


def quantize_scalar(value: float, scale: float, zero_point: int) -> int:
    """TFLite's ``Quantize`` helper: ``zero_point + round(float32(value) / float32(scale))``."""
    q = np.float32(value) / np.float32(scale)
    return int(zero_point) + round_half_away(float(q))


def activation_range(activation: str, scale: float, zero_point: int,
                     qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> tuple[int, int]:
    """TFLite ``CalculateActivationRangeQuantized``: the output clamp range of a fused activation."""
    if activation == "NONE":
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, quantize_scalar(0.0, scale, zero_point)), qmax
    if activation == "RELU6":
        return (max(qmin, quantize_scalar(0.0, scale, zero_point)),
                min(qmax, quantize_scalar(6.0, scale, zero_point)))
    if activation == "RELU_N1_TO_1":
        return (max(qmin, quantize_scalar(-1.0, scale, zero_point)),
                min(qmax, quantize_scalar(1.0, scale, zero_point)))
    raise ValueError(f"Expected a fused activation in {ACTIVATIONS}. Received: {activation!r}")


def softmax_input_params(beta: float, input_scale: float, scaled_diff_integer_bits: int = 5
                         ) -> tuple[int, int, int]:
    """TFLM ``CalculateSoftmaxParams`` for int8 input: ``(input_multiplier, input_left_shift, diff_min)``.

    ``PreprocessSoftmaxScaling`` caps ``beta * scale * 2^(31 - integer_bits)`` at ``2^31 - 1``;
    ``diff_min = -CalculateInputRadius(integer_bits, left_shift)``.
    """
    real = min(float(beta) * float(input_scale) * float(1 << (31 - scaled_diff_integer_bits)),
               float((1 << 31) - 1))
    multiplier, left_shift = quantize_multiplier_greater_than_one(real)
    max_input_rescaled = (1.0 * ((1 << scaled_diff_integer_bits) - 1)
                          * float(1 << (31 - scaled_diff_integer_bits)) / float(1 << left_shift))
    diff_min = -math.floor(max_input_rescaled)
    return multiplier, left_shift, diff_min


# --- reference integer arithmetic (used by tests and by compile-time folding) -----------------

def srdhm(a: int, b: int) -> int:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` on Python ints (int32 semantics)."""
    if a == b == -(1 << 31):
        return (1 << 31) - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return _trunc_div(ab + nudge, 1 << 31)


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    """gemmlowp ``RoundingDivideByPOT``: round half away from zero."""
    if exponent <= 0:
        return x
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    """TFLite ``MultiplyByQuantizedMultiplier`` (double-rounding build)."""
    left = shift if shift > 0 else 0
    right = 0 if shift > 0 else -shift
    shifted = ((x << left) + (1 << 31)) % (1 << 32) - (1 << 31)  # int32 wrap, as C's uint32 shift
    return rounding_divide_by_pot(srdhm(shifted, multiplier), right)
