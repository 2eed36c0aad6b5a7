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
