/* tinyml-kit kernel: pointwise convolution / fully connected layer as an int8 GEMM (see tk_conv2d_1x1.h),
 * bit-exact with TFLite's reference ConvPerChannel / FullyConnected. */
#include "tk_conv2d_1x1.h"

#include <stddef.h>
#include <string.h>

#include "tk_common.h"
#include "tk_gemm.h"

#if TK_WIDE
/* Hosted 64-bit builds: blocks of TK_WB pixels (tk_gemm_wide), transposed into a stack buffer; a block
 * is read completely before its outputs are written, which keeps the raster-order overlap safe. */
static void conv1x1_wide(const tk_conv2d_1x1_params_t *p, const int8_t *input, int8_t *output) {
    const tk_gemm_t g = {p->filter, p->rq, p->out_c, p->k4, p->act_min, p->act_max};
    const size_t in_c = (size_t)p->in_c, out_c = (size_t)p->out_c;
    int32_t xt[p->k4 * TK_WB] __attribute__((aligned(32)));
    memset(xt, 0, sizeof xt);
    for (int32_t px = 0; px < p->pixels; px += TK_WB) {
        const int32_t n = tk_min_i32(TK_WB, p->pixels - px);
        if (n < TK_WB) memset(xt, 0, sizeof xt);
        for (int32_t q = 0; q < n; ++q) tk_wide_put(xt, q, input + (size_t)(px + q) * in_c, p->in_c);
        tk_gemm_wide(&g, xt, n, output + (size_t)px * out_c, out_c);
    }
}
#endif

#if TK_GEMM_PIXELS == 3
/* The first ``groups`` groups of 4 values of three consecutive pixels (``src``, a stride of ``in_c``) into
 * a 3-column block: per group and pixel one word load, 2 SXTB16, the doubled pairs (2 x0, 2 x1) and
 * (2 x2, 2 x3) from PKHBT / PKHTB and 2 SADD16, two stores; the six words of a group are contiguous. */
TK_INLINE void put3_one(uint32_t *dst, const int8_t *src) {
    const uint32_t v = tk_load4(src);
    const int32_t even = tk_even16(v), odd = tk_odd16(v); /* (x0, x2), (x1, x3) */
    const int32_t even2 = __sadd16(even, even);
    int32_t lo, hi;
    __asm__("pkhbt %0, %1, %2, lsl #17" : "=r"(lo) : "r"(even2), "r"(odd)); /* (2 x0, 2 x1) */
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(hi) : "r"(odd), "r"(even));  /* (x2, x3) */
    dst[0] = (uint32_t)lo;
    dst[1] = (uint32_t)__sadd16(hi, hi);
}

TK_INLINE void put3_groups(int16_t *cols, const int8_t *src, int32_t in_c, int32_t groups) {
    uint32_t *dst = (uint32_t *)(void *)cols;
    for (int32_t g = groups; g > 0; --g, src += 4, dst += 6) {
        put3_one(dst, src);
        put3_one(dst + 2, src + in_c);
        put3_one(dst + 4, src + 2 * in_c);
    }
}

/* Cortex-M4: every block of 3 pixels in one function (the block code inlined in the pixel loop; with the
 * full range and an even out_c the assembly loop of tk_gemm.h straight, its state set once): each block
 * read before its outputs are written, then the last pixels one by one, each in every column, written 3
 * times (stride 0). */
TK_GEMM_FN static void blocks3(const tk_conv2d_1x1_params_t *p, const int8_t *input, int8_t *output,
                               int16_t *cols) {
    const tk_gemm_t g = {p->filter, p->rq, p->out_c, p->k4, p->act_min, p->act_max};
    const size_t in_c = (size_t)p->in_c, out_c = (size_t)p->out_c;
    const int32_t whole = p->in_c & ~3; /* values in whole groups of 4 */
    /* the full range and an even out_c: the assembly loop straight, its state set once */
    const int direct = p->act_min == -128 && p->act_max == 127 && p->out_c >= 2 && (p->out_c & 1) == 0;
    tk_gemm_run_t run;
    tk_gemm_run_init(&run, cols, p->k4 >> 2, p->rq, p->out_c >> 1);
    for (int32_t px = 0; px < p->pixels;) {
        const int8_t *src = input + (size_t)px * in_c;
        int8_t *dst = output + (size_t)px * out_c;
        int32_t stride = (int32_t)out_c;
        if (px + 3 <= p->pixels) {
            put3_groups(cols, src, p->in_c, whole >> 2);
            if (whole < p->in_c) {
                for (int32_t q = 0; q < 3; ++q) {
                    tk_cols_put(cols, q, whole, src + (size_t)q * in_c + whole, p->in_c - whole);
                }
            }
            px += 3;
        } else {
            for (int32_t q = 0; q < 3; ++q) tk_cols_put(cols, q, 0, src, p->in_c);
            stride = 0, px += 1;
        }
        if (direct) {
            const uint32_t *w = (const uint32_t *)(const void *)p->filter;
            run.rq = p->rq, run.d = dst, run.stride = stride;
            if (p->k4 <= 36) { /* at most 9 groups: no loop test (a second instantiation) */
                tk_gemm_run_3x2_sat8(&w, &run, 1);
            } else {
                tk_gemm_run_3x2_sat8(&w, &run, 0);
            }
            continue;
        }
        tk_gemm_cols(&g, cols, dst, stride);
    }
}
#else
/* One block of TK_GEMM_PIXELS columns (one copy of the GEMM code for the blocks and the last pixels). */
TK_GEMM_FN static void gemm_block(const tk_gemm_t *g, const int16_t *cols, int8_t *dst, int32_t stride) {
    tk_gemm_cols(g, cols, dst, stride);
}
#endif

void tk_conv2d_1x1_s8(const tk_conv2d_1x1_params_t *p, const void *const *in, void *const *out, void *scratch) {
    const int8_t *input = (const int8_t *)in[0];
    int8_t *output = (int8_t *)out[0];
#if TK_WIDE
    if (p->k4 <= TK_WIDE_MAX_K4) {
        conv1x1_wide(p, input, output);
        return;
    }
#endif
    int16_t *cols = (int16_t *)scratch;
    tk_cols_zero_tail(cols, p->in_c, p->k4);
#if TK_GEMM_PIXELS == 3
    blocks3(p, input, output, cols);
#else
    const tk_gemm_t g = {p->filter, p->rq, p->out_c, p->k4, p->act_min, p->act_max};
    const size_t in_c = (size_t)p->in_c, out_c = (size_t)p->out_c;
    const int32_t n = TK_GEMM_PIXELS;
    int32_t px = 0;
    for (; px + n <= p->pixels; px += n) { /* blocks of n pixels, all read before any is written */
        const int8_t *src = input + (size_t)px * in_c;
        for (int32_t q = 0; q < n; ++q) tk_cols_put(cols, q, 0, src + (size_t)q * in_c, p->in_c);
        gemm_block(&g, cols, output + (size_t)px * out_c, (int32_t)out_c);
    }
    for (; px < p->pixels; ++px) { /* the last pixels one by one, in every column, written n times */
        for (int32_t q = 0; q < n; ++q) tk_cols_put(cols, q, 0, input + (size_t)px * in_c, p->in_c);
        gemm_block(&g, cols, output + (size_t)px * out_c, 0);
    }
#endif
}
