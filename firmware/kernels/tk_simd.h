/* tinyml-kit: 4 x int8 SIMD helpers for the kernels (Cortex-M4/M7 DSP extension, portable fallback).
 *
 * tk_dot4x2x2 accumulates two filter rows against two input vectors (a 2x2 block of dot products),
 * the inner loop of convolution and fully connected kernels. With the DSP extension each group of 4
 * bytes is sign-extended in pairs (SXTB16) and multiplied-accumulated with SMLAD; the sums are
 * exact integers, so results are identical to the scalar loop. */
#ifndef TK_SIMD_H
#define TK_SIMD_H

#include <stdint.h>
#include <string.h>

#include "tk_common.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__GNUC__) && !defined(TK_NO_DSP)
#include <arm_acle.h>
#define TK_HAVE_DSP 1

TK_INLINE uint32_t tk_load4(const int8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4); /* unaligned word load (allowed on Cortex-M4) */
    return v;
}
TK_INLINE int32_t tk_even16(uint32_t x) { return __sxtb16((int32_t)x); }
/* SXTB16 with its ROR #8 operand (ACLE has no intrinsic for it; a separate rotate costs an instruction). */
TK_INLINE int32_t tk_odd16(uint32_t x) {
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
#else
#define TK_HAVE_DSP 0
#endif

/* Hosted 64-bit builds (x86-64, AArch64) with GCC or Clang: wide SIMD units and large stacks. There the
 * GEMM and depthwise kernels use blocked loops over GCC vector types (tk_v8i: 8 x int32, one AVX2
 * register, two NEON registers) with stack buffers of up to a few hundred KiB; every other build
 * (microcontrollers, -DTK_NO_WIDE) keeps the compact paths. The arithmetic is the same exact integer
 * sums, so results do not depend on the path. */
#if !TK_HAVE_DSP && defined(__GNUC__) && (defined(__x86_64__) || defined(__aarch64__)) && !defined(TK_NO_WIDE)
#define TK_WIDE 1
#if defined(__AVX2__)
#include <immintrin.h>
#endif
#if !defined(__clang__)
/* the vector helpers are inline (no ABI crosses a call): gcc's note about 32-byte vectors without AVX
 * does not apply */
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
typedef int32_t tk_v8i __attribute__((vector_size(32)));

TK_INLINE tk_v8i tk_v8i_load(const int32_t *p) {
    tk_v8i v;
    memcpy(&v, p, sizeof v);
    return v;
}
TK_INLINE void tk_v8i_store(int32_t *p, tk_v8i v) { memcpy(p, &v, sizeof v); }
/* 8 int8 values, sign-extended to the lanes. */
TK_INLINE tk_v8i tk_v8i_load8(const int8_t *p) {
#if defined(__AVX2__)
    return (tk_v8i)_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p));
#else
    tk_v8i v;
    for (int32_t i = 0; i < 8; ++i) v[i] = p[i];
    return v;
#endif
}
TK_INLINE tk_v8i tk_v8i_splat(int32_t x) {
    const tk_v8i v = {x, x, x, x, x, x, x, x};
    return v;
}
/* Lane-wise clamp to [lo, hi] (comparisons give all-ones lanes, used as select masks). */
TK_INLINE tk_v8i tk_v8i_clamp(tk_v8i x, int32_t lo, int32_t hi) {
    const tk_v8i l = tk_v8i_splat(lo), h = tk_v8i_splat(hi);
    tk_v8i below = x < l;
    x = (x & ~below) | (l & below);
    const tk_v8i above = x > h;
    return (x & ~above) | (h & above);
}
/* TFLite's MultiplyByQuantizedMultiplier (tk_requantize, tk_common.h) on 8 lanes, each with its own Q31
 * multiplier (>= 0) and shift: (x << left), the rounded doubling high product, then the rounding
 * division by 2^right. */
TK_INLINE tk_v8i tk_v8i_requantize(tk_v8i x, tk_v8i mult, tk_v8i shift) {
#if defined(__AVX2__)
    const __m256i zero = _mm256_setzero_si256(), s = (__m256i)shift;
    const __m256i left = _mm256_max_epi32(s, zero), right = _mm256_max_epi32(_mm256_sub_epi32(zero, s), zero);
    const __m256i a = _mm256_sllv_epi32((__m256i)x, left), m = (__m256i)mult;
    const __m256i half = _mm256_set1_epi64x((int64_t)1 << 30);
    /* floor((a * m + 2^30) / 2^31): bits 31..62 of each 64-bit product, even lanes then odd lanes */
    const __m256i even = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(a, m), half), 31);
    const __m256i odd = _mm256_srli_epi64(
        _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(a, 32), _mm256_srli_epi64(m, 32)), half), 31);
    const __m256i v = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(_mm256_set1_epi32(1), right), _mm256_set1_epi32(1));
    const __m256i remainder = _mm256_and_si256(v, mask);
    const __m256i threshold = _mm256_sub_epi32(_mm256_srli_epi32(mask, 1), _mm256_srai_epi32(v, 31));
    return (tk_v8i)_mm256_sub_epi32(_mm256_srav_epi32(v, right), _mm256_cmpgt_epi32(remainder, threshold));
#else
    tk_v8i q;
    for (int32_t i = 0; i < 8; ++i) q[i] = tk_requantize(x[i], mult[i], shift[i]);
    return q;
#endif
}
#else
#define TK_WIDE 0
#endif

/* acc[0] += w0.x0, acc[1] += w0.x1, acc[2] += w1.x0, acc[3] += w1.x1 over n int8 values. */
TK_INLINE void tk_dot4x2x2(const int8_t *x0, const int8_t *x1, const int8_t *w0, const int8_t *w1, int32_t n,
                           int32_t *acc) {
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    int32_t i = 0;
#if TK_HAVE_DSP
    for (; i + 4 <= n; i += 4) {
        const uint32_t xa = tk_load4(x0 + i), xb = tk_load4(x1 + i);
        const int32_t xa_e = tk_even16(xa), xa_o = tk_odd16(xa);
        const int32_t xb_e = tk_even16(xb), xb_o = tk_odd16(xb);
        const uint32_t wa = tk_load4(w0 + i);
        const int32_t wa_e = tk_even16(wa), wa_o = tk_odd16(wa);
        a00 = __smlad(xa_e, wa_e, a00);
        a00 = __smlad(xa_o, wa_o, a00);
        a01 = __smlad(xb_e, wa_e, a01);
        a01 = __smlad(xb_o, wa_o, a01);
        const uint32_t wb = tk_load4(w1 + i);
        const int32_t wb_e = tk_even16(wb), wb_o = tk_odd16(wb);
        a10 = __smlad(xa_e, wb_e, a10);
        a10 = __smlad(xa_o, wb_o, a10);
        a11 = __smlad(xb_e, wb_e, a11);
        a11 = __smlad(xb_o, wb_o, a11);
    }
#endif
    for (; i < n; ++i) {
        const int32_t u = x0[i], v = x1[i], s = w0[i], t = w1[i];
        a00 += u * s;
        a01 += v * s;
        a10 += u * t;
        a11 += v * t;
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

/* acc[0] += w0.x, acc[1] += w1.x over n int8 values. */
TK_INLINE void tk_dot4x2x1(const int8_t *x, const int8_t *w0, const int8_t *w1, int32_t n, int32_t *acc) {
    int32_t a0 = acc[0], a1 = acc[1];
    int32_t i = 0;
#if TK_HAVE_DSP
    for (; i + 4 <= n; i += 4) {
        const uint32_t xa = tk_load4(x + i);
        const int32_t x_e = tk_even16(xa), x_o = tk_odd16(xa);
        const uint32_t wa = tk_load4(w0 + i), wb = tk_load4(w1 + i);
        a0 = __smlad(x_e, tk_even16(wa), a0);
        a0 = __smlad(x_o, tk_odd16(wa), a0);
        a1 = __smlad(x_e, tk_even16(wb), a1);
        a1 = __smlad(x_o, tk_odd16(wb), a1);
    }
#endif
    for (; i < n; ++i) {
        const int32_t u = x[i];
        a0 += u * w0[i];
        a1 += u * w1[i];
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* w.x over n int8 values. */
TK_INLINE int32_t tk_dot4(const int8_t *x, const int8_t *w, int32_t n) {
    int32_t a = 0;
    int32_t i = 0;
#if TK_HAVE_DSP
    for (; i + 4 <= n; i += 4) {
        const uint32_t xa = tk_load4(x + i), wa = tk_load4(w + i);
        a = __smlad(tk_even16(xa), tk_even16(wa), a);
        a = __smlad(tk_odd16(xa), tk_odd16(wa), a);
    }
#endif
    for (; i < n; ++i) a += (int32_t)x[i] * w[i];
    return a;
}

#endif /* TK_SIMD_H */
