/* tinyml-kit: the int8 GEMM core of the convolution kernels (tk_conv2d_1x1, tk_conv2d_gemm).
 *
 * Columns: the receptive fields of a block of N output pixels (N = TK_GEMM_PIXELS: 3 on Cortex-M4, else
 * 2; the lowering declares room for three) as int16, doubled (2 * x, so that the fast requantisation of
 * tk_requant.h can use the accumulators as they are) and zero-padded to k4 (a multiple of 4),
 * interleaved per group of 4 values: [group][pixel][4] (TK_COLN). One group of one pixel is two words,
 * loaded by one instruction.
 *
 * Filter, packed at compile time (lowering/fastrq.py: pack_gemm_filter) in the order the loop reads it:
 * output channels in pairs, per group of 4 taps 4 bytes of the first channel then 4 of the second
 * ([out_c/2][k4/4][2][4]), the bytes of each group stored as w0, w2, w1, w3 so that SXTB16 gives the
 * halfword pair (w0, w1) and SXTB16 ROR #8 gives (w2, w3), matching the column words (x0, x1), (x2, x3).
 * Rows are zero-padded to k4 and an odd out_c gets a zero row. ``rq`` holds per output channel
 * {2 * folded bias, multiplier, add, shift} (tk_requant.h), padded to an even count.
 *
 * Cortex-M4 (DSP extension): per group of a 2 x 3 block (2 output channels x 3 pixels) one load of
 * filter, four SXTB16, then per pixel one load of columns and four SMLAD: 20 instructions for 24 MACs
 * (a 2 x 2 block: 15 for 16). The full-range case runs every channel pair of a block in one assembly
 * loop (tk_gemm_run_3x2_sat8: sums started from the biases, a computed jump into an 8-group unrolled
 * loop, requantisation in place). With int8 filters the block cannot grow: its 14 registers are all of
 * r0-r12 and lr, so 1.2 MACs per instruction is the bound of the inner loop. Portable C: the same sums
 * in plain loops over pixel pairs. Hosted 64-bit builds (TK_WIDE, tk_simd.h) instead take blocks of 16
 * pixels transposed into a stack buffer (tk_gemm_wide below) and broadcast each filter byte against
 * them. All are exact integer arithmetic. */
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

/* Pixels per column block: 3 on Cortex-M4 (the scratch holds 3 columns: TK_GEMM_SCRATCH), 2 in portable
 * builds. The 3-pixel assembly needs all 14 registers r0-r12 and lr: unoptimised builds (-O0) and builds
 * that keep a frame pointer (define TK_GEMM_PAIRS with -fno-omit-frame-pointer) take pixel pairs. */
#if TK_HAVE_DSP && defined(__OPTIMIZE__) && !defined(TK_GEMM_PAIRS)
#define TK_GEMM_PIXELS 3
#else
#define TK_GEMM_PIXELS 2
#endif
#define TK_GEMM_FN __attribute__((noinline)) /* one shared copy of the block code per kernel */
/* Scratch bytes of a column block for k4: the lowering declares room for 3 columns (6 * k4 bytes). */
#define TK_GEMM_SCRATCH(k4) (6 * (k4))

/* Index of value k of pixel p in a block of n columns. Portable C stores each group of 4 in the order
 * the filter bytes are packed (x0, x2, x1, x3), so that its inner loop is four independent lanes (which
 * the host compiler turns into SIMD). */
#if TK_HAVE_DSP
#define TK_COLN(n, p, k) (((k) & ~3) * (n) + ((p) << 2) + ((k) & 3))
#else
#define TK_COLN(n, p, k) (((k) & ~3) * (n) + ((p) << 2) + ((0x3120 >> (((k) & 3) << 2)) & 3))
#endif
#define TK_COL(p, k) TK_COLN(TK_GEMM_PIXELS, p, k)

/* cols[pixel p][k .. k + n) = 2 * src[0 .. n), in a block of ``npix`` columns. */
TK_INLINE void tk_cols_put_n(int16_t *cols, int32_t npix, int32_t p, int32_t k, const int8_t *src, int32_t n) {
    int32_t i = 0;
    for (; i < n && ((k + i) & 3); ++i) cols[TK_COLN(npix, p, k + i)] = (int16_t)(2 * src[i]);
#if TK_HAVE_DSP
    for (; i + 4 <= n; i += 4) {
        const uint32_t v = tk_load4(src + i);
        const int32_t even = tk_even16(v), odd = tk_odd16(v); /* (x0, x2), (x1, x3) */
        int32_t lo, hi;
        __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(lo) : "r"(even), "r"(odd)); /* (x0, x1) */
        __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(hi) : "r"(odd), "r"(even)); /* (x2, x3) */
        uint32_t *dst = (uint32_t *)(void *)(cols + TK_COLN(npix, p, k + i));
        dst[0] = (uint32_t)__sadd16(lo, lo);
        dst[1] = (uint32_t)__sadd16(hi, hi);
    }
#else
    for (; i + 4 <= n; i += 4) {
        int16_t *dst = cols + TK_COLN(npix, p, k + i);
        dst[0] = (int16_t)(2 * src[i]);
        dst[1] = (int16_t)(2 * src[i + 2]);
        dst[2] = (int16_t)(2 * src[i + 1]);
        dst[3] = (int16_t)(2 * src[i + 3]);
    }
#endif
    for (; i < n; ++i) cols[TK_COLN(npix, p, k + i)] = (int16_t)(2 * src[i]);
}

/* cols[pixel p][k .. k + n) = 2 * value, in a block of ``npix`` columns. */
TK_INLINE void tk_cols_fill_n(int16_t *cols, int32_t npix, int32_t p, int32_t k, int32_t value, int32_t n) {
    for (int32_t i = 0; i < n; ++i) cols[TK_COLN(npix, p, k + i)] = (int16_t)(2 * value);
}

/* Zero the padding [k, k4) of every pixel of a block of ``npix`` columns. */
TK_INLINE void tk_cols_zero_tail_n(int16_t *cols, int32_t npix, int32_t k, int32_t k4) {
    for (; k < k4; ++k) {
        for (int32_t p = 0; p < npix; ++p) cols[TK_COLN(npix, p, k)] = 0;
    }
}

/* The same for blocks of TK_GEMM_PIXELS columns. */
TK_INLINE void tk_cols_put(int16_t *cols, int32_t p, int32_t k, const int8_t *src, int32_t n) {
    tk_cols_put_n(cols, TK_GEMM_PIXELS, p, k, src, n);
}
TK_INLINE void tk_cols_fill(int16_t *cols, int32_t p, int32_t k, int32_t value, int32_t n) {
    tk_cols_fill_n(cols, TK_GEMM_PIXELS, p, k, value, n);
}
TK_INLINE void tk_cols_zero_tail(int16_t *cols, int32_t k, int32_t k4) {
    tk_cols_zero_tail_n(cols, TK_GEMM_PIXELS, k, k4);
}

#if TK_HAVE_DSP
/* The inner loop of a 2 x 2 block (2 output channels x 2 pixels) over ``groups`` groups of 4 taps, in
 * assembly so that each group is exactly: LDRD filter, 4 SXTB16, LDRD pixel 0, 4 SMLAD, LDRD pixel 1,
 * 4 SMLAD (15 instructions for 16 MACs), two groups per loop iteration. ``*w`` advances past the two
 * filter rows. */
TK_INLINE void tk_gemm_loop_2x2(const uint32_t **w, const uint32_t *x, int32_t groups, int32_t *a00,
                                int32_t *a01, int32_t *a10, int32_t *a11) {
    const uint32_t *wp = *w;
    int32_t c00 = *a00, c01 = *a01, c10 = *a10, c11 = *a11;
    uint32_t wa, wb, wc, wd, u, v;
#define TK_GEMM_GROUP                                  \
    "ldrd %[wa], %[wb], [%[w]], #8\n\t"                 \
    "sxtb16 %[wc], %[wa]\n\t"                           \
    "sxtb16 %[wa], %[wa], ror #8\n\t"                   \
    "sxtb16 %[wd], %[wb]\n\t"                           \
    "sxtb16 %[wb], %[wb], ror #8\n\t"                   \
    "ldrd %[u], %[v], [%[x]], #8\n\t"                   \
    "smlad %[c00], %[u], %[wc], %[c00]\n\t"             \
    "smlad %[c00], %[v], %[wa], %[c00]\n\t"             \
    "smlad %[c10], %[u], %[wd], %[c10]\n\t"             \
    "smlad %[c10], %[v], %[wb], %[c10]\n\t"             \
    "ldrd %[u], %[v], [%[x]], #8\n\t"                   \
    "smlad %[c01], %[u], %[wc], %[c01]\n\t"             \
    "smlad %[c01], %[v], %[wa], %[c01]\n\t"             \
    "smlad %[c11], %[u], %[wd], %[c11]\n\t"             \
    "smlad %[c11], %[v], %[wb], %[c11]\n\t"
    /* an odd group first, then two groups per iteration */
    __asm__ volatile(
        "tst %[n], #1\n\t"
        "beq 2f\n\t"
        TK_GEMM_GROUP
        "subs %[n], %[n], #1\n\t"
        "beq 3f\n\t"
        "2:\n\t"
        TK_GEMM_GROUP
        TK_GEMM_GROUP
        "subs %[n], %[n], #2\n\t"
        "bne 2b\n\t"
        "3:\n\t"
        : [c00] "+r"(c00), [c01] "+r"(c01), [c10] "+r"(c10), [c11] "+r"(c11), [w] "+r"(wp), [x] "+r"(x),
          [n] "+r"(groups), [wa] "=&r"(wa), [wb] "=&r"(wb), [wc] "=&r"(wc), [wd] "=&r"(wd), [u] "=&r"(u),
          [v] "=&r"(v)
        :
        : "cc", "memory");
#undef TK_GEMM_GROUP
    *w = wp;
    *a00 = c00, *a01 = c01, *a10 = c10, *a11 = c11;
}

/* Requantise a 2 x 2 block to the full int8 range and store it: channel rq[0..3] to *d0 and *d1, then
 * channel rq[4..7]; both pointers advance by 2 (SMMLAR, ADD ASR, ASR, SSAT, STRB per output). */
TK_INLINE void tk_gemm_store_2x2_sat8(const int32_t *rq, int32_t a00, int32_t a01, int32_t a10, int32_t a11,
                                      int8_t **d0, int8_t **d1) {
    int8_t *p0 = *d0, *p1 = *d1;
    int32_t m, ad, sh, t;
#define TK_GEMM_OUT(acc, dst)                          \
    "smmlar %[t], %[" acc "], %[m], %[ad]\n\t"          \
    "add %[t], %[t], %[" acc "], asr #31\n\t"           \
    "asr %[t], %[t], %[sh]\n\t"                         \
    "ssat %[t], #8, %[t]\n\t"                           \
    "strb %[t], [%[" dst "]], #1\n\t"
    __asm__ volatile(
        "ldrd %[m], %[ad], [%[rq], #4]\n\t"
        "ldr %[sh], [%[rq], #12]\n\t"
        TK_GEMM_OUT("a00", "p0")
        TK_GEMM_OUT("a01", "p1")
        "ldrd %[m], %[ad], [%[rq], #20]\n\t"
        "ldr %[sh], [%[rq], #28]\n\t"
        TK_GEMM_OUT("a10", "p0")
        TK_GEMM_OUT("a11", "p1")
        : [p0] "+r"(p0), [p1] "+r"(p1), [m] "=&r"(m), [ad] "=&r"(ad), [sh] "=&r"(sh), [t] "=&r"(t)
        : [rq] "r"(rq), [a00] "r"(a00), [a01] "r"(a01), [a10] "r"(a10), [a11] "r"(a11)
        : "memory");
#undef TK_GEMM_OUT
    *d0 = p0, *d1 = p1;
}

#if TK_GEMM_PIXELS == 3
/* One group of 4 taps of a 2 x 3 block in assembly: the filter words of both channels widened by SXTB16,
 * then per pixel one LDRD of columns and four SMLAD (operands named as in the functions below). */
#define TK_GEMM_PIXEL(a0, a1)                              \
    "ldrd %[u], %[v], [%[x]], #8\n\t"                       \
    "smlad %[" a0 "], %[u], %[wc], %[" a0 "]\n\t"            \
    "smlad %[" a0 "], %[v], %[wa], %[" a0 "]\n\t"            \
    "smlad %[" a1 "], %[u], %[wd], %[" a1 "]\n\t"            \
    "smlad %[" a1 "], %[v], %[wb], %[" a1 "]\n\t"
#define TK_GEMM_FILTER                                     \
    "ldrd %[wa], %[wb], [%[w]], #8\n\t"                     \
    "sxtb16 %[wc], %[wa]\n\t"                               \
    "sxtb16 %[wa], %[wa], ror #8\n\t"                       \
    "sxtb16 %[wd], %[wb]\n\t"                               \
    "sxtb16 %[wb], %[wb], ror #8\n\t"
#define TK_GEMM_GROUP3                                     \
    TK_GEMM_FILTER                                         \
    TK_GEMM_PIXEL("c00", "c10")                            \
    TK_GEMM_PIXEL("c01", "c11")                            \
    TK_GEMM_PIXEL("c02", "c12")
/* The inner loop of a 2 x 3 block (2 output channels x 3 pixels) over every group of 4 taps: per group
 * LDRD filter, 4 SXTB16, then per pixel LDRD columns and 4 SMLAD (20 instructions for 24 MACs), two
 * groups per iteration. The 14 registers (6 sums, 4 filter halfword pairs, 2 column words, 2 pointers)
 * leave none for a counter: the loop ends when ``x`` reaches ``x_end``, which is read from memory into a
 * free column register (3 instructions per iteration). An odd group count enters at the second group.
 * ``*w`` advances past the two filter rows. */
TK_INLINE void tk_gemm_loop_3x2(const uint32_t **w, const uint32_t *x, const uint32_t *x_end, int32_t odd,
                                int32_t *a00, int32_t *a01, int32_t *a02, int32_t *a10, int32_t *a11,
                                int32_t *a12) {
    const uint32_t *wp = *w;
    int32_t c00 = *a00, c01 = *a01, c02 = *a02, c10 = *a10, c11 = *a11, c12 = *a12;
    uint32_t wa, wb, wc, wd, u = (uint32_t)odd, v;
    __asm__ volatile(
        "cmp %[u], #0\n\t"
        "bne 2f\n\t"
        "1:\n\t"
        TK_GEMM_GROUP3
        "2:\n\t"
        TK_GEMM_GROUP3
        "ldr %[u], %[end]\n\t"
        "cmp %[x], %[u]\n\t"
        "bne 1b\n\t"
        : [c00] "+r"(c00), [c01] "+r"(c01), [c02] "+r"(c02), [c10] "+r"(c10), [c11] "+r"(c11),
          [c12] "+r"(c12), [w] "+r"(wp), [x] "+r"(x), [u] "+r"(u), [wa] "=&r"(wa), [wb] "=&r"(wb),
          [wc] "=&r"(wc), [wd] "=&r"(wd), [v] "=&r"(v)
        : [end] "m"(x_end)
        : "cc", "memory");
    *w = wp;
    *a00 = c00, *a01 = c01, *a02 = c02, *a10 = c10, *a11 = c11, *a12 = c12;
}

/* Requantise a 2 x 3 block to the full int8 range and store it: pixel q of channel j to d[q * s + j]
 * (STRB with a register offset, LSL #1 for the third pixel); channel rq[0..3], then rq[4..7]. */
TK_INLINE void tk_gemm_store_3x2_sat8(const int32_t *rq, int32_t a00, int32_t a01, int32_t a02, int32_t a10,
                                      int32_t a11, int32_t a12, int8_t *d, int32_t s) {
    int32_t m, ad, sh, t;
#define TK_GEMM_OUT3(a, addr)                              \
    "smmlar %[t], %[" a "], %[m], %[ad]\n\t"                 \
    "add %[t], %[t], %[" a "], asr #31\n\t"                  \
    "asr %[t], %[t], %[sh]\n\t"                              \
    "ssat %[t], #8, %[t]\n\t"                                \
    "strb %[t], " addr "\n\t"
    __asm__ volatile(
        "ldrd %[m], %[ad], [%[rq], #4]\n\t"
        "ldr %[sh], [%[rq], #12]\n\t"
        TK_GEMM_OUT3("a01", "[%[d], %[s]]")
        TK_GEMM_OUT3("a02", "[%[d], %[s], lsl #1]")
        TK_GEMM_OUT3("a00", "[%[d]], #1")
        "ldrd %[m], %[ad], [%[rq], #20]\n\t"
        "ldr %[sh], [%[rq], #28]\n\t"
        TK_GEMM_OUT3("a11", "[%[d], %[s]]")
        TK_GEMM_OUT3("a12", "[%[d], %[s], lsl #1]")
        TK_GEMM_OUT3("a10", "[%[d]]")
        : [d] "+r"(d), [m] "=&r"(m), [ad] "=&r"(ad), [sh] "=&r"(sh), [t] "=&r"(t)
        : [rq] "r"(rq), [s] "r"(s), [a00] "r"(a00), [a01] "r"(a01), [a02] "r"(a02), [a10] "r"(a10),
          [a11] "r"(a11), [a12] "r"(a12)
        : "memory");
#undef TK_GEMM_OUT3
}

/* The state of tk_gemm_run_3x2_sat8 that does not fit in its 14 registers, read from memory: set once
 * per layer by tk_gemm_run_init (callers that run many blocks keep it in their stack frame, so that only
 * rq, d and stride are stored per block), entry rewritten by every call. */
typedef struct {
    const uint32_t *x0, *x_end; /* the columns and their end */
    const int32_t *rq, *rq_end; /* the next pair's rq, and the end of the pairs' rq */
    int8_t *d;                  /* the next pair's outputs */
    int32_t stride;             /* output pixel stride */
    int32_t skip, none;         /* unrolled groups jumped over; 1 when there is a single group */
    uint32_t entry;             /* where each pair enters the loop */
} tk_gemm_run_t;

/* ``pairs`` >= 1 output channel pairs of columns ``cols`` with ``groups`` groups of 4 taps. */
TK_INLINE void tk_gemm_run_init(tk_gemm_run_t *r, const int16_t *cols, int32_t groups, const int32_t *rq,
                                int32_t pairs) {
    const int32_t rest = groups - 1; /* groups after the first */
    r->x0 = (const uint32_t *)(const void *)cols;
    r->x_end = r->x0 + (size_t)groups * 6;
    r->rq = rq, r->rq_end = rq + 8 * pairs;
    r->d = 0, r->stride = 0;
    r->skip = (8 - (rest & 7)) & 7, r->none = rest == 0;
    r->entry = 0;
}

/* The full-range 2 x 3 blocks of every output channel pair of ``*r`` in one assembly loop. Per pair: the
 * first group of 4 taps starts the sums from the doubled biases (no copies), the other groups run in a
 * loop unrolled 8 times that is entered by a computed jump (LDR PC from a stack slot, set once per call:
 * the remainder of the groups modulo 8 needs no test per pair; with one group the jump goes straight to
 * the requantisation), then the six outputs are requantised and stored as tk_gemm_store_3x2_sat8 does.
 * The loop state that does not fit in the 14 registers lives in ``*r`` (r->rq and r->d advance).
 * ``straight`` (a constant; at most 9 groups): the unrolled groups are never repeated, the instantiation
 * has no loop test. ``*w`` advances past the filter rows read. */
TK_INLINE void tk_gemm_run_3x2_sat8(const uint32_t **w, tk_gemm_run_t *r, const int straight) {
    const uint32_t *wp = *w;
    int32_t c00, c01, c02, c10, c11, c12;
    uint32_t wa, wb, wc, wd, u, v;
    const uint32_t *x;
/* the first group: pixels 2 and 1 start from the biases in c00 / c10, then pixel 0 */
#define TK_GEMM_FIRST(off, a0, a1)                         \
    "ldrd %[u], %[v], [%[x], #" off "]\n\t"                  \
    "smlad %[" a0 "], %[u], %[wc], %[c00]\n\t"               \
    "smlad %[" a0 "], %[v], %[wa], %[" a0 "]\n\t"            \
    "smlad %[" a1 "], %[u], %[wd], %[c10]\n\t"               \
    "smlad %[" a1 "], %[v], %[wb], %[" a1 "]\n\t"
/* requantise sum a (multiplier wa, add wb, shift wc) and store it at addr (rq in x, d in u, stride in v) */
#define TK_GEMM_OUT3(a, addr)                              \
    "smmlar %[wd], %[" a "], %[wa], %[wb]\n\t"               \
    "add %[wd], %[wd], %[" a "], asr #31\n\t"                \
    "asr %[wd], %[wd], %[wc]\n\t"                            \
    "ssat %[wd], #8, %[wd]\n\t"                              \
    "strb %[wd], " addr "\n\t"
/* the loop of one instantiation; loop_end repeats the unrolled groups while columns remain (or is empty) */
#define TK_GEMM_RUN(loop_end) \
    __asm__ volatile( \
        /* entry = (none ? requantisation : first unrolled group + skip * group size) | Thumb bit */ \
        "adr.w %[u], 11f\n\t" \
        "adr.w %[v], 12f\n\t" \
        "sub %[v], %[v], %[u]\n\t" \
        "ldr %[wa], %[skip]\n\t" \
        "mla %[u], %[v], %[wa], %[u]\n\t" \
        "ldr %[wa], %[none]\n\t" \
        "cmp %[wa], #0\n\t" \
        "it ne\n\t" \
        "adrne.w %[u], 3f\n\t" \
        "orr %[u], %[u], #1\n\t" \
        "str %[u], %[entry]\n\t" \
        "ldr %[x], %[rq]\n\t" \
        "0:\n\t" /* x: the pair's rq */ \
        "ldr %[c00], [%[x]]\n\t" \
        "ldr %[c10], [%[x], #16]\n\t" \
        "ldr %[x], %[x0]\n\t" \
        TK_GEMM_FILTER \
        TK_GEMM_FIRST("16", "c02", "c12") \
        TK_GEMM_FIRST("8", "c01", "c11") \
        "ldrd %[u], %[v], [%[x]], #24\n\t" \
        "smlad %[c00], %[u], %[wc], %[c00]\n\t" \
        "smlad %[c00], %[v], %[wa], %[c00]\n\t" \
        "smlad %[c10], %[u], %[wd], %[c10]\n\t" \
        "smlad %[c10], %[v], %[wb], %[c10]\n\t" \
        "ldr pc, %[entry]\n\t" \
        "11:\n\t" \
        TK_GEMM_GROUP3 \
        "12:\n\t" \
        TK_GEMM_GROUP3 \
        TK_GEMM_GROUP3 \
        TK_GEMM_GROUP3 \
        TK_GEMM_GROUP3 \
        TK_GEMM_GROUP3 \
        TK_GEMM_GROUP3 \
        TK_GEMM_GROUP3 \
        loop_end \
        "3:\n\t" \
        "ldr %[x], %[rq]\n\t" \
        "ldr %[u], %[d]\n\t" \
        "ldr %[v], %[s]\n\t" \
        "ldrd %[wa], %[wb], [%[x], #4]\n\t" \
        "ldr %[wc], [%[x], #12]\n\t" \
        TK_GEMM_OUT3("c01", "[%[u], %[v]]") \
        TK_GEMM_OUT3("c02", "[%[u], %[v], lsl #1]") \
        TK_GEMM_OUT3("c00", "[%[u]], #1") \
        "ldrd %[wa], %[wb], [%[x], #20]\n\t" \
        "ldr %[wc], [%[x], #28]\n\t" \
        TK_GEMM_OUT3("c11", "[%[u], %[v]]") \
        TK_GEMM_OUT3("c12", "[%[u], %[v], lsl #1]") \
        TK_GEMM_OUT3("c10", "[%[u]], #1") \
        "str %[u], %[d]\n\t" \
        "add %[x], %[x], #32\n\t" \
        "str %[x], %[rq]\n\t" \
        "ldr %[u], %[rq_end]\n\t" \
        "cmp %[x], %[u]\n\t" \
        "bne 0b\n\t" \
        : [c00] "=&r"(c00), [c01] "=&r"(c01), [c02] "=&r"(c02), [c10] "=&r"(c10), [c11] "=&r"(c11), \
          [c12] "=&r"(c12), [w] "+r"(wp), [x] "=&r"(x), [u] "=&r"(u), [v] "=&r"(v), [wa] "=&r"(wa), \
          [wb] "=&r"(wb), [wc] "=&r"(wc), [wd] "=&r"(wd), [rq] "+m"(r->rq), [d] "+m"(r->d), \
          [entry] "+m"(r->entry) \
        : [x0] "m"(r->x0), [x_end] "m"(r->x_end), [rq_end] "m"(r->rq_end), [skip] "m"(r->skip), \
          [none] "m"(r->none), [s] "m"(r->stride) \
        : "cc", "memory")
    if (straight) {
        TK_GEMM_RUN("");
    } else {
        TK_GEMM_RUN("ldr %[u], %[x_end]\n\t"
                    "cmp %[x], %[u]\n\t"
                    "bne 11b\n\t");
    }
#undef TK_GEMM_RUN
#undef TK_GEMM_OUT3
#undef TK_GEMM_FIRST
#undef TK_GEMM_GROUP3
#undef TK_GEMM_FILTER
#undef TK_GEMM_PIXEL
    *w = wp;
}
#endif /* TK_GEMM_PIXELS == 3 */
#endif

TK_INLINE int8_t tk_gemm_out(const tk_gemm_t *g, const int32_t *rq, int32_t acc2, const int full_range) {
    return full_range ? tk_rq_fast_sat8(acc2, rq[1], rq[2], rq[3])
                      : tk_rq_fast_s8(acc2, rq[1], rq[2], rq[3], g->act_min, g->act_max);
}

/* Every output channel of the ``npix`` (2 or 3, a constant) pixels of ``cols``: pixel q to
 * dst[q * stride + oc]. */
#if TK_HAVE_DSP
TK_INLINE void tk_gemm_block(const tk_gemm_t *g, const int16_t *cols, const int32_t npix, int8_t *dst,
                             int32_t stride, const int full_range) {
    const int32_t groups = g->k4 >> 2;
    const int32_t *rq = g->rq;
    const uint32_t *w = (const uint32_t *)(const void *)g->filter;
    const uint32_t *x = (const uint32_t *)(const void *)cols;
    const uint32_t *x_end = x + (size_t)groups * 6; /* 3 pixels x 2 words per group */
    int32_t oc = 0;
#if TK_GEMM_PIXELS == 3
    if (npix == 3 && full_range && g->out_c >= 2) { /* every full pair in one assembly loop */
        const int32_t pairs = g->out_c >> 1;
        tk_gemm_run_t r;
        tk_gemm_run_init(&r, cols, groups, rq, pairs);
        r.d = dst, r.stride = stride;
        tk_gemm_run_3x2_sat8(&w, &r, 0);
        oc = 2 * pairs, rq += 8 * pairs;
    }
#endif
    for (; oc < g->out_c; oc += 2, rq += 8) {
        int8_t *d = dst + oc;
#if TK_GEMM_PIXELS == 3
        if (npix == 3) {
            int32_t c00 = rq[0], c10 = rq[4];
            int32_t c01 = c00, c02 = c00, c11 = c10, c12 = c10;
            tk_gemm_loop_3x2(&w, x, x_end, groups & 1, &c00, &c01, &c02, &c10, &c11, &c12);
            if (full_range && oc + 1 < g->out_c) {
                tk_gemm_store_3x2_sat8(rq, c00, c01, c02, c10, c11, c12, d, stride);
                continue;
            }
            const int32_t sums[2][3] = {{c00, c01, c02}, {c10, c11, c12}};
            for (int32_t q = 0; q < 3; ++q) {
                d[q * stride] = tk_gemm_out(g, rq, sums[0][q], full_range);
                if (oc + 1 < g->out_c) d[q * stride + 1] = tk_gemm_out(g, rq + 4, sums[1][q], full_range);
            }
            continue;
        }
#else
        (void)x_end, (void)npix;
#endif
        int32_t a00 = rq[0], a10 = rq[4];
        int32_t a01 = a00, a11 = a10;
        tk_gemm_loop_2x2(&w, x, groups, &a00, &a01, &a10, &a11);
        if (full_range && oc + 1 < g->out_c) {
            int8_t *p0 = d, *p1 = d + stride;
            tk_gemm_store_2x2_sat8(rq, a00, a01, a10, a11, &p0, &p1);
            continue;
        }
        d[0] = tk_gemm_out(g, rq, a00, full_range);
        d[stride] = tk_gemm_out(g, rq, a01, full_range);
        if (oc + 1 < g->out_c) {
            d[1] = tk_gemm_out(g, rq + 4, a10, full_range);
            d[stride + 1] = tk_gemm_out(g, rq + 4, a11, full_range);
        }
    }
}
#else
#define TK_GEMM_CHUNK 32 /* output channels accumulated before one requantisation loop */

/* Portable C: the sums of a chunk of output channels first (four independent lanes per accumulator,
 * lane q: filter byte q of each group and the column value stored in the same slot; exact in any
 * order), then one loop requantising the chunk, which the host compiler vectorises. */
TK_INLINE void tk_gemm_block(const tk_gemm_t *g, const int16_t *cols, const int32_t npix, int8_t *dst,
                             int32_t stride, const int full_range) {
    const int32_t groups = g->k4 >> 2;
    const int8_t *w = g->filter;
    int8_t *dst0 = dst, *dst1 = dst + stride;
    int32_t acc0[TK_GEMM_CHUNK + 1], acc1[TK_GEMM_CHUNK + 1];
    (void)full_range, (void)npix; /* pairs only (TK_GEMM_PIXELS) */
    for (int32_t oc0 = 0; oc0 < g->out_c; oc0 += TK_GEMM_CHUNK) {
        const int32_t n = tk_min_i32(TK_GEMM_CHUNK, g->out_c - oc0);
        for (int32_t j = 0; j < n; j += 2) {
            int32_t l00[4] = {0, 0, 0, 0}, l01[4] = {0, 0, 0, 0}, l10[4] = {0, 0, 0, 0}, l11[4] = {0, 0, 0, 0};
            const int16_t *x = cols;
            for (int32_t m = groups; m > 0; --m, x += 8, w += 8) {
                for (int32_t q = 0; q < 4; ++q) {
                    l00[q] += x[q] * w[q];
                    l10[q] += x[q] * w[4 + q];
                    l01[q] += x[4 + q] * w[q];
                    l11[q] += x[4 + q] * w[4 + q];
                }
            }
            const int32_t *rq = g->rq + 4 * (oc0 + j);
            acc0[j] = rq[0] + l00[0] + l00[1] + l00[2] + l00[3];
            acc1[j] = rq[0] + l01[0] + l01[1] + l01[2] + l01[3];
            acc0[j + 1] = rq[4] + l10[0] + l10[1] + l10[2] + l10[3]; /* a zero row after an odd out_c */
            acc1[j + 1] = rq[4] + l11[0] + l11[1] + l11[2] + l11[3];
        }
        const int32_t *rq = g->rq + 4 * oc0;
        const int32_t lo = g->act_min, hi = g->act_max;
        for (int32_t j = 0; j < n; ++j) {
            dst0[oc0 + j] = tk_rq_fast_s8(acc0[j], rq[4 * j + 1], rq[4 * j + 2], rq[4 * j + 3], lo, hi);
            dst1[oc0 + j] = tk_rq_fast_s8(acc1[j], rq[4 * j + 1], rq[4 * j + 2], rq[4 * j + 3], lo, hi);
        }
    }
}
#endif

/* The outputs of a block of TK_GEMM_PIXELS pixels: pixel q to dst[q * stride + oc]. On Cortex-M4 the
 * full-range case (one SSAT) is a separate instantiation; the portable build has one (its compiler makes
 * the clamp branch-free). For a last, single pixel, callers put it in every column and pass stride 0 (the
 * same values are written TK_GEMM_PIXELS times). */
TK_INLINE void tk_gemm_cols(const tk_gemm_t *g, const int16_t *cols, int8_t *dst, int32_t stride) {
#if TK_HAVE_DSP
    if (g->act_min == -128 && g->act_max == 127) {
        tk_gemm_block(g, cols, TK_GEMM_PIXELS, dst, stride, 1);
        return;
    }
#endif
    tk_gemm_block(g, cols, TK_GEMM_PIXELS, dst, stride, 0);
}

#if TK_WIDE
/* Hosted 64-bit builds (tk_simd.h): blocks of TK_WB pixels instead of column pairs. ``xt`` holds the
 * block transposed, [k4][TK_WB] int32 in the slot order of the packed filter (slot i is tap
 * (i & ~3) | {0, 2, 1, 3}[i & 3]), doubled, zero for the padding taps and for pixels >= n. Each filter
 * byte is broadcast against a row of TK_WB pixels: 2 output channel pairs x 16 pixels = 64 MACs per
 * slot in 8-lane vector multiply-adds that the compiler keeps in registers. */
#define TK_WB 16
#define TK_WIDE_MAX_K4 16384 /* larger layers (a 1 MiB block buffer) take the column-pair path */

/* Slot of tap k in a group of 4 (the packed filter stores w0, w2, w1, w3; the permutation is its own
 * inverse). */
TK_INLINE int32_t tk_slot(int32_t k) { return (k & ~3) | ((0x3120 >> ((k & 3) << 2)) & 3); }

/* xt[slot(k)][p] = 2 * src[k] for k < n. */
TK_INLINE void tk_wide_put(int32_t *xt, int32_t p, const int8_t *src, int32_t n) {
    int32_t k = 0;
    for (; k + 4 <= n; k += 4) {
        int32_t *d = xt + (size_t)k * TK_WB + p;
        d[0] = 2 * src[k];
        d[TK_WB] = 2 * src[k + 2];
        d[2 * TK_WB] = 2 * src[k + 1];
        d[3 * TK_WB] = 2 * src[k + 3];
    }
    for (; k < n; ++k) xt[(size_t)tk_slot(k) * TK_WB + p] = 2 * src[k];
}

/* Outputs of the n <= TK_WB pixels of ``xt``: out[p * out_stride + oc] for every output channel. */
TK_INLINE void tk_gemm_wide(const tk_gemm_t *g, const int32_t *xt, int32_t n, int8_t *out, size_t out_stride) {
    const int32_t k4 = g->k4, out_c = g->out_c, pairs = (out_c + 1) >> 1;
    const int32_t lo = g->act_min, hi = g->act_max;
    int32_t acc[4][TK_WB];
    for (int32_t pr = 0; pr < pairs; pr += 2) {
        const int8_t *wa = g->filter + (size_t)pr * 2 * (size_t)k4;
        const int8_t *wb = pr + 1 < pairs ? wa + 2 * (size_t)k4 : wa; /* a last single pair: computed twice */
        const int32_t *rq = g->rq + 8 * pr;
        tk_v8i a0 = tk_v8i_splat(rq[0]), b0 = tk_v8i_splat(rq[4]);
        tk_v8i c0 = tk_v8i_splat(pr + 1 < pairs ? rq[8] : 0), d0 = tk_v8i_splat(pr + 1 < pairs ? rq[12] : 0);
        tk_v8i a1 = a0, b1 = b0, c1 = c0, d1 = d0;
        const int32_t *x = xt;
        for (int32_t i = 0; i < k4; i += 4, wa += 8, wb += 8) {
            for (int32_t s = 0; s < 4; ++s, x += TK_WB) {
                const tk_v8i lo8 = tk_v8i_load(x), hi8 = tk_v8i_load(x + 8);
                const int32_t w0 = wa[s], w1 = wa[4 + s], w2 = wb[s], w3 = wb[4 + s];
                a0 += lo8 * w0, a1 += hi8 * w0;
                b0 += lo8 * w1, b1 += hi8 * w1;
                c0 += lo8 * w2, c1 += hi8 * w2;
                d0 += lo8 * w3, d1 += hi8 * w3;
            }
        }
        const tk_v8i sums[4][2] = {{a0, a1}, {b0, b1}, {c0, c1}, {d0, d1}};
        const int32_t m = tk_min_i32(4, out_c - 2 * pr);
        for (int32_t j = 0; j < m; ++j) {
            const int32_t *r = rq + 4 * j;
            tk_v8i_store(acc[j], tk_v8i_rq_fast(sums[j][0], r[1], r[2], r[3], lo, hi));
            tk_v8i_store(acc[j] + 8, tk_v8i_rq_fast(sums[j][1], r[1], r[2], r[3], lo, hi));
            int8_t *d = out + 2 * pr + j;
            for (int32_t p = 0; p < n; ++p) d[(size_t)p * out_stride] = (int8_t)acc[j][p];
        }
    }
}
#endif

#endif /* TK_GEMM_H */
