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
    /* add + the high word of the rounded product: a logical shift (vectorisable without 64-bit
     * arithmetic shifts) and a two's-complement reinterpretation of the high word */
    const uint64_t product = (uint64_t)((int64_t)acc2 * (int64_t)mult + ((int64_t)1 << 31));
    return (int32_t)(uint32_t)(product >> 32) + add;
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

#if TK_WIDE
/* tk_rq_fast_s8 on 8 lanes (hosted builds, tk_simd.h): clamp((SMMLAR(acc2, mult, add) + (acc2 >> 31))
 * >> shift, lo, hi) per lane, as int32. AVX2: the rounded high words from two VPMULDQ (even and odd
 * lanes); elsewhere lane by lane. */
TK_INLINE tk_v8i tk_v8i_rq_fast(tk_v8i acc2, int32_t mult, int32_t add, int32_t shift, int32_t lo, int32_t hi) {
#if defined(__AVX2__)
    const __m256i a = (__m256i)acc2, m = _mm256_set1_epi32(mult), half = _mm256_set1_epi64x((int64_t)1 << 31);
    const __m256i even = _mm256_add_epi64(_mm256_mul_epi32(a, m), half);
    const __m256i odd = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(a, 32), m), half);
    const __m256i high = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    __m256i q = _mm256_add_epi32(_mm256_add_epi32(high, _mm256_set1_epi32(add)), _mm256_srai_epi32(a, 31));
    q = _mm256_sra_epi32(q, _mm_cvtsi32_si128(shift));
    q = _mm256_min_epi32(_mm256_max_epi32(q, _mm256_set1_epi32(lo)), _mm256_set1_epi32(hi));
    return (tk_v8i)q;
#else
    tk_v8i q;
    for (int32_t i = 0; i < 8; ++i) {
        const int32_t v = tk_rq_fast(acc2[i], mult, add, shift);
        q[i] = v < lo ? lo : (v > hi ? hi : v);
    }
    return q;
#endif
}

/* The same with per-lane constants (eight channels at once). */
TK_INLINE tk_v8i tk_v8i_rq_fast_lanes(tk_v8i acc2, tk_v8i mult, tk_v8i add, tk_v8i shift, int32_t lo, int32_t hi) {
#if defined(__AVX2__)
    const __m256i a = (__m256i)acc2, m = (__m256i)mult, half = _mm256_set1_epi64x((int64_t)1 << 31);
    const __m256i even = _mm256_add_epi64(_mm256_mul_epi32(a, m), half);
    const __m256i odd = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(a, 32), _mm256_srli_epi64(m, 32)), half);
    const __m256i high = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    __m256i q = _mm256_add_epi32(_mm256_add_epi32(high, (__m256i)add), _mm256_srai_epi32(a, 31));
    q = _mm256_srav_epi32(q, (__m256i)shift);
    q = _mm256_min_epi32(_mm256_max_epi32(q, _mm256_set1_epi32(lo)), _mm256_set1_epi32(hi));
    return (tk_v8i)q;
#else
    tk_v8i q;
    for (int32_t i = 0; i < 8; ++i) {
        const int32_t v = tk_rq_fast(acc2[i], mult[i], add[i], shift[i]);
        q[i] = v < lo ? lo : (v > hi ? hi : v);
    }
    return q;
#endif
}

#endif

#endif /* TK_REQUANT_H */
