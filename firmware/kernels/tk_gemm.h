/* tinyml-kit: the int8 GEMM core of the convolution kernels (tk_conv2d_1x1, tk_conv2d_gemm).
 *
 * Columns: the receptive fields of two output pixels as int16, doubled (2 * x, so that the fast
 * requantisation of tk_requant.h can use the accumulators as they are) and zero-padded to k4 (a multiple
 * of 4), interleaved per group of 4 values: [group][pixel][4] (TK_COL). One group of both pixels is
 * four words, loaded by one instruction.
 *
 * Filter, packed at compile time (lowering/fastrq.py: pack_gemm_filter) in the order the loop reads it:
 * output channels in pairs, per group of 4 taps 4 bytes of the first channel then 4 of the second
 * ([out_c/2][k4/4][2][4]), the bytes of each group stored as w0, w2, w1, w3 so that SXTB16 gives the
 * halfword pair (w0, w1) and SXTB16 ROR #8 gives (w2, w3), matching the column words (x0, x1), (x2, x3).
 * Rows are zero-padded to k4 and an odd out_c gets a zero row. ``rq`` holds per output channel
 * {2 * folded bias, multiplier, add, shift} (tk_requant.h), padded to an even count.
 *
 * Cortex-M4 (DSP extension): per group of a 2 x 2 block (2 output channels x 2 pixels) one load of
 * filter, one or two of columns, four SXTB16 and eight SMLAD: 16 MACs. Portable C: the same sums in
 * plain loops. Both are exact integer arithmetic. */
#ifndef TK_GEMM_H
#define TK_GEMM_H

#include <stdint.h>
#include <string.h>

#include "tk_common.h"
#include "tk_requant.h"
#include "tk_simd.h"

typedef struct {
    const int8_t *filter; /* packed (see above) */
    const int32_t *rq;    /* [even out_c][4]: bias2, multiplier, add, shift */
    int32_t out_c, k4;
    int32_t act_min, act_max;
} tk_gemm_t;

/* Index of value k of pixel p (0 or 1) in a column pair. Portable C stores each group of 4 in the order
 * the filter bytes are packed (x0, x2, x1, x3), so that its inner loop is four independent lanes (which
 * the host compiler turns into SIMD). */
#if TK_HAVE_DSP
#define TK_COL(p, k) ((((k) & ~3) << 1) + ((p) << 2) + ((k) & 3))
#else
#define TK_COL(p, k) ((((k) & ~3) << 1) + ((p) << 2) + ((0x3120 >> (((k) & 3) << 2)) & 3))
#endif

/* cols[pixel p][k .. k + n) = 2 * src[0 .. n). */
TK_INLINE void tk_cols_put(int16_t *cols, int32_t p, int32_t k, const int8_t *src, int32_t n) {
    int32_t i = 0;
    for (; i < n && ((k + i) & 3); ++i) cols[TK_COL(p, k + i)] = (int16_t)(2 * src[i]);
#if TK_HAVE_DSP
    for (; i + 4 <= n; i += 4) {
        const uint32_t v = tk_load4(src + i);
        const int32_t even = tk_even16(v), odd = tk_odd16(v); /* (x0, x2), (x1, x3) */
        int32_t lo, hi;
        __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(lo) : "r"(even), "r"(odd)); /* (x0, x1) */
        __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(hi) : "r"(odd), "r"(even)); /* (x2, x3) */
        uint32_t *dst = (uint32_t *)(void *)(cols + TK_COL(p, k + i));
        dst[0] = (uint32_t)__sadd16(lo, lo);
        dst[1] = (uint32_t)__sadd16(hi, hi);
    }
#else
    for (; i + 4 <= n; i += 4) {
        int16_t *dst = cols + TK_COL(p, k + i);
        dst[0] = (int16_t)(2 * src[i]);
        dst[1] = (int16_t)(2 * src[i + 2]);
        dst[2] = (int16_t)(2 * src[i + 1]);
        dst[3] = (int16_t)(2 * src[i + 3]);
    }
#endif
    for (; i < n; ++i) cols[TK_COL(p, k + i)] = (int16_t)(2 * src[i]);
}

/* cols[pixel p][k .. k + n) = 2 * value. */
TK_INLINE void tk_cols_fill(int16_t *cols, int32_t p, int32_t k, int32_t value, int32_t n) {
    for (int32_t i = 0; i < n; ++i) cols[TK_COL(p, k + i)] = (int16_t)(2 * value);
}

/* Zero the padding [k, k4) of both pixels. */
TK_INLINE void tk_cols_zero_tail(int16_t *cols, int32_t k, int32_t k4) {
    for (; k < k4; ++k) cols[TK_COL(0, k)] = cols[TK_COL(1, k)] = 0;
}

#if TK_HAVE_DSP
/* The inner loop of a 2 x 2 block (2 output channels x 2 pixels) over ``groups`` groups of 4 taps, in
 * assembly so that each group is exactly: LDRD filter, 4 SXTB16, LDRD pixel 0, 4 SMLAD, LDRD pixel 1,
 * 4 SMLAD, and the loop (17 instructions for 16 MACs). ``*w`` advances past the two filter rows. */
TK_INLINE void tk_gemm_loop_2x2(const uint32_t **w, const uint32_t *x, int32_t groups, int32_t *a00,
                                int32_t *a01, int32_t *a10, int32_t *a11) {
    const uint32_t *wp = *w;
    int32_t c00 = *a00, c01 = *a01, c10 = *a10, c11 = *a11;
    uint32_t wa, wb, wc, wd, u, v;
    __asm__ volatile(
        "1:\n\t"
        "ldrd %[wa], %[wb], [%[w]], #8\n\t"
        "sxtb16 %[wc], %[wa]\n\t"
        "sxtb16 %[wa], %[wa], ror #8\n\t"
        "sxtb16 %[wd], %[wb]\n\t"
        "sxtb16 %[wb], %[wb], ror #8\n\t"
        "ldrd %[u], %[v], [%[x]], #8\n\t"
        "smlad %[c00], %[u], %[wc], %[c00]\n\t"
        "smlad %[c00], %[v], %[wa], %[c00]\n\t"
        "smlad %[c10], %[u], %[wd], %[c10]\n\t"
        "smlad %[c10], %[v], %[wb], %[c10]\n\t"
        "ldrd %[u], %[v], [%[x]], #8\n\t"
        "smlad %[c01], %[u], %[wc], %[c01]\n\t"
        "smlad %[c01], %[v], %[wa], %[c01]\n\t"
        "smlad %[c11], %[u], %[wd], %[c11]\n\t"
        "smlad %[c11], %[v], %[wb], %[c11]\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [c00] "+r"(c00), [c01] "+r"(c01), [c10] "+r"(c10), [c11] "+r"(c11), [w] "+r"(wp), [x] "+r"(x),
          [n] "+r"(groups), [wa] "=&r"(wa), [wb] "=&r"(wb), [wc] "=&r"(wc), [wd] "=&r"(wd), [u] "=&r"(u),
          [v] "=&r"(v)
        :
        : "cc", "memory");
    *w = wp;
    *a00 = c00, *a01 = c01, *a10 = c10, *a11 = c11;
}

/* The same for one pixel: LDRD filter, 4 SXTB16, LDRD pixel, 4 SMLAD, loop (12 instructions, 8 MACs). */
TK_INLINE void tk_gemm_loop_2x1(const uint32_t **w, const uint32_t *x, int32_t groups, int32_t *a00,
                                int32_t *a10) {
    const uint32_t *wp = *w;
    int32_t c00 = *a00, c10 = *a10;
    uint32_t wa, wb, wc, wd, u, v;
    __asm__ volatile(
        "1:\n\t"
        "ldrd %[wa], %[wb], [%[w]], #8\n\t"
        "sxtb16 %[wc], %[wa]\n\t"
        "sxtb16 %[wa], %[wa], ror #8\n\t"
        "sxtb16 %[wd], %[wb]\n\t"
        "sxtb16 %[wb], %[wb], ror #8\n\t"
        "ldrd %[u], %[v], [%[x]], #16\n\t"
        "smlad %[c00], %[u], %[wc], %[c00]\n\t"
        "smlad %[c00], %[v], %[wa], %[c00]\n\t"
        "smlad %[c10], %[u], %[wd], %[c10]\n\t"
        "smlad %[c10], %[v], %[wb], %[c10]\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [c00] "+r"(c00), [c10] "+r"(c10), [w] "+r"(wp), [x] "+r"(x), [n] "+r"(groups), [wa] "=&r"(wa),
          [wb] "=&r"(wb), [wc] "=&r"(wc), [wd] "=&r"(wd), [u] "=&r"(u), [v] "=&r"(v)
        :
        : "cc", "memory");
    *w = wp;
    *a00 = c00, *a10 = c10;
}
#endif

TK_INLINE int8_t tk_gemm_out(const tk_gemm_t *g, const int32_t *rq, int32_t acc2, const int full_range) {
    return full_range ? tk_rq_fast_sat8(acc2, rq[1], rq[2], rq[3])
                      : tk_rq_fast_s8(acc2, rq[1], rq[2], rq[3], g->act_min, g->act_max);
}

/* Every output channel of the two pixels of ``cols``: dst0[oc], dst1[oc] (dst1 NULL: first pixel only). */
TK_INLINE void tk_gemm_block(const tk_gemm_t *g, const int16_t *cols, int8_t *dst0, int8_t *dst1,
                             const int full_range, const int two) {
    const int32_t groups = g->k4 >> 2;
    const int32_t *rq = g->rq;
#if TK_HAVE_DSP
    const uint32_t *w = (const uint32_t *)(const void *)g->filter;
#else
    const int8_t *w = g->filter;
#endif
    for (int32_t oc = 0; oc < g->out_c; oc += 2, rq += 8) {
        int32_t a00 = rq[0], a10 = rq[4];
        int32_t a01 = a00, a11 = a10;
#if TK_HAVE_DSP
        const uint32_t *x = (const uint32_t *)(const void *)cols;
        if (two) {
            tk_gemm_loop_2x2(&w, x, groups, &a00, &a01, &a10, &a11);
        } else {
            tk_gemm_loop_2x1(&w, x, groups, &a00, &a10);
        }
#else
        /* four lanes per accumulator (lane q: filter byte q of each group and the column value stored
         * in the same slot), summed at the end: exact in any order */
        int32_t l00[4] = {0, 0, 0, 0}, l01[4] = {0, 0, 0, 0}, l10[4] = {0, 0, 0, 0}, l11[4] = {0, 0, 0, 0};
        const int16_t *x = cols;
        for (int32_t n = groups; n > 0; --n, x += 8, w += 8) {
            for (int32_t q = 0; q < 4; ++q) {
                l00[q] += x[q] * w[q];
                l10[q] += x[q] * w[4 + q];
                if (two) {
                    l01[q] += x[4 + q] * w[q];
                    l11[q] += x[4 + q] * w[4 + q];
                }
            }
        }
        a00 += l00[0] + l00[1] + l00[2] + l00[3];
        a10 += l10[0] + l10[1] + l10[2] + l10[3];
        a01 += l01[0] + l01[1] + l01[2] + l01[3];
        a11 += l11[0] + l11[1] + l11[2] + l11[3];
#endif
        dst0[oc] = tk_gemm_out(g, rq, a00, full_range);
        if (two) dst1[oc] = tk_gemm_out(g, rq, a01, full_range);
        if (oc + 1 < g->out_c) {
            dst0[oc + 1] = tk_gemm_out(g, rq + 4, a10, full_range);
            if (two) dst1[oc + 1] = tk_gemm_out(g, rq + 4, a11, full_range);
        }
    }
}

/* Dispatch on the clamp range and the pixel count, so each variant is compiled with them constant. */
TK_INLINE void tk_gemm_cols(const tk_gemm_t *g, const int16_t *cols, int8_t *dst0, int8_t *dst1) {
    const int full = g->act_min == -128 && g->act_max == 127;
    if (dst1 != NULL) {
        if (full) {
            tk_gemm_block(g, cols, dst0, dst1, 1, 1);
        } else {
            tk_gemm_block(g, cols, dst0, dst1, 0, 1);
        }
    } else if (full) {
        tk_gemm_block(g, cols, dst0, NULL, 1, 0);
    } else {
        tk_gemm_block(g, cols, dst0, NULL, 0, 0);
    }
}

#endif /* TK_GEMM_H */
