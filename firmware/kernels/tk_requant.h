/* tinyml-kit: fast exact requantisation (5-6 instructions per output on Cortex-M4).
 *
 * TFLite's MultiplyByQuantizedMultiplier with a right shift r >= 1 is two roundings:
 *     v = SaturatingRoundingDoublingHighMul(acc, M) = floor((acc * M + 2^30) / 2^31)
 *     q = RoundingDivideByPOT(v, r)                 = (v + 2^(r-1) - [v < 0]) >> r
 * With acc2 = 2 * acc (the kernels accumulate doubled inputs or weights), v is exactly SMMULR(acc2, M)
 * = floor((acc2 * M + 2^31) / 2^32), and [v < 0] may be replaced by [acc < 0] (they differ only when
 * v == 0, where both give q == 0). Folding the output zero point in as zp * 2^r:
 *     out = clamp(((SMMLAR(acc2, M, add) + (acc2 >> 31)) >> r), act_min, act_max),
 *     add = 2^(r-1) + zp * 2^r.
 * The compiler (lowering/fastrq.py) uses this only when every channel has r >= 1, a positive multiplier
 * and accumulators that cannot overflow (|acc| < 2^30 with the sums bounded from the weights);
 * otherwise it picks the kernels that call tk_requantize (tk_common.h). */
#ifndef TK_REQUANT_H
#define TK_REQUANT_H

#include <stdint.h>

#include "tk_common.h"
#include "tk_simd.h"

/* floor((acc2 * mult + 2^31) / 2^32) + add: SMMLAR on Cortex-M4 (no ACLE intrinsic exists for it). */
TK_INLINE int32_t tk_smmlar(int32_t acc2, int32_t mult, int32_t add) {
#if TK_HAVE_DSP
    int32_t v;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(v) : "r"(acc2), "r"(mult), "r"(add));
    return v;
#else
    const int64_t high = (int64_t)add * ((int64_t)1 << 32); /* add << 32 without shifting a negative value */
    return (int32_t)((high + (int64_t)acc2 * (int64_t)mult + ((int64_t)1 << 31)) >> 32);
#endif
}

/* The requantised value before the clamp (zero point included). */
TK_INLINE int32_t tk_rq_fast(int32_t acc2, int32_t mult, int32_t add, int32_t shift) {
    return (tk_smmlar(acc2, mult, add) + (acc2 >> 31)) >> shift;
}

/* Requantise and clamp to [lo, hi] (the fused activation range, inside [-128, 127]). */
TK_INLINE int8_t tk_rq_fast_s8(int32_t acc2, int32_t mult, int32_t add, int32_t shift, int32_t lo, int32_t hi) {
    const int32_t q = tk_rq_fast(acc2, mult, add, shift);
    return (int8_t)(q < lo ? lo : (q > hi ? hi : q));
}

/* The same for the full range [-128, 127] (no fused activation, or one that the output scale absorbs):
 * one SSAT instruction on Cortex-M4. */
TK_INLINE int8_t tk_rq_fast_sat8(int32_t acc2, int32_t mult, int32_t add, int32_t shift) {
    const int32_t q = tk_rq_fast(acc2, mult, add, shift);
#if TK_HAVE_DSP
    return (int8_t)__ssat(q, 8);
#else
    return (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));
#endif
}

#endif /* TK_REQUANT_H */
