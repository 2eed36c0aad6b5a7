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

/* One block of TK_GEMM_PIXELS columns (one copy of the GEMM code for the blocks and the last pixels). */
TK_GEMM_FN static void gemm_block(const tk_gemm_t *g, const int16_t *cols, int8_t *dst, int32_t stride) {
    tk_gemm_cols(g, cols, dst, stride);
}

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
    const tk_gemm_t g = {p->filter, p->rq, p->out_c, p->k4, p->act_min, p->act_max};
    const size_t in_c = (size_t)p->in_c, out_c = (size_t)p->out_c;
    const int32_t n = TK_GEMM_PIXELS;
    tk_cols_zero_tail(cols, p->in_c, p->k4);
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
}
