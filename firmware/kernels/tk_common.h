/* tinyml-kit runtime: fixed-point helpers shared by every kernel.
 *
 * The arithmetic follows TensorFlow Lite's integer semantics exactly (the default "double rounding"
 * build that TFLM's reference kernels and the tflite-micro pip package use), so that every kernel
 * built on these helpers is bit-exact with TFLM.  Portable C99; no allocation. */
#ifndef TK_COMMON_H
#define TK_COMMON_H

#include <stdint.h>

#if defined(__GNUC__)
#define TK_INLINE static inline __attribute__((always_inline))
#else
#define TK_INLINE static inline
#endif

TK_INLINE int32_t tk_min_i32(int32_t a, int32_t b) { return a < b ? a : b; }
TK_INLINE int32_t tk_max_i32(int32_t a, int32_t b) { return a > b ? a : b; }
TK_INLINE int32_t tk_clamp_i32(int32_t x, int32_t lo, int32_t hi) { return x < lo ? lo : (x > hi ? hi : x); }
/* The signed low and high halfwords of a word of two int16 (packed weights, halfword sums). */
TK_INLINE int32_t tk_lo16(int32_t word) { return (int16_t)(word & 0xffff); }
TK_INLINE int32_t tk_hi16(int32_t word) { return word >> 16; }

/* (a * b * 2) >> 32, rounded half away from zero, saturating the single overflow case.
 * gemmlowp writes this as (ab + nudge) / 2^31 with a sign-dependent nudge and truncating division;
 * that equals floor((ab + 2^30) / 2^31), an arithmetic shift, for every int32 pair. */
TK_INLINE int32_t tk_srdhm(int32_t a, int32_t b) {
    if (a == b && a == INT32_MIN) return INT32_MAX;
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
}

/* x / 2^exponent, rounded half away from zero (gemmlowp RoundingDivideByPOT). */
TK_INLINE int32_t tk_rdbypot(int32_t x, int exponent) {
    if (exponent <= 0) return x;
    const uint32_t mask = ((uint32_t)1 << exponent) - 1u;
    const uint32_t remainder = (uint32_t)x & mask;
    const uint32_t threshold = (mask >> 1) + ((uint32_t)x >> 31);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLite MultiplyByQuantizedMultiplier: x * multiplier * 2^shift, multiplier in Q31. */
TK_INLINE int32_t tk_requantize(int32_t x, int32_t multiplier, int32_t shift) {
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    return tk_rdbypot(tk_srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

/* TFLite MultiplyByQuantizedMultiplierSmallerThanOneExp (shift <= 0), used by ADD/SUB. */
TK_INLINE int32_t tk_requantize_lt1(int32_t x, int32_t multiplier, int32_t shift) {
    return tk_rdbypot(tk_srdhm(x, multiplier), -shift);
}

/* Saturate to int8. */
TK_INLINE int8_t tk_sat_s8(int32_t x) { return (int8_t)tk_clamp_i32(x, -128, 127); }

#endif /* TK_COMMON_H */
