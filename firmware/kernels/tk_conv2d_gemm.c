/* tinyml-kit kernel: convolution as im2col + int8 GEMM (see tk_conv2d_gemm.h), bit-exact with TFLite's
 * reference ConvPerChannel / DepthwiseConvPerChannel (one input channel). */
#include "tk_conv2d_gemm.h"

#include <stddef.h>
#include <string.h>

#include "tk_common.h"
#include "tk_gemm.h"

#define TK_FEW_MAX 148 /* k_h * k_w * in_c rounded up to 4, for in_c <= 3 and kernels up to 7x7 */

/* The receptive field of a pixel with one to three input channels (first layers): the values in order
 * into a small contiguous window (2 * x, padded taps 2 * zero point), then group by group into the
 * column pair. */
static void gather_few(const tk_conv2d_gemm_params_t *p, const int8_t *input, int32_t y0, int32_t x0,
                       int16_t *cols, int32_t pixel) {
    int16_t win[TK_FEW_MAX + 3];
    const int32_t c = p->in_c, run = p->k_w * c;
    const int16_t pad = (int16_t)(2 * p->input_zero_point);
    const int cols_inside = x0 >= 0 && x0 + (p->k_w - 1) * p->dilation_w < p->in_w;
    int16_t *d = win;
    for (int32_t ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = y0 + ky * p->dilation_h;
        if (iy < 0 || iy >= p->in_h) {
            for (int32_t i = 0; i < run; ++i) *d++ = pad;
            continue;
        }
        const int8_t *row = input + ((size_t)iy * (size_t)p->in_w + (size_t)x0) * (size_t)c;
        if (cols_inside && p->dilation_w == 1) { /* one contiguous run of the input row */
            for (int32_t i = 0; i < run; ++i) *d++ = (int16_t)(2 * row[i]);
            continue;
        }
        for (int32_t kx = 0; kx < p->k_w; ++kx) {
            const int32_t ix = x0 + kx * p->dilation_w;
            const int8_t *src = row + (ptrdiff_t)(kx * p->dilation_w) * c;
            const int inside = ix >= 0 && ix < p->in_w;
            for (int32_t ch = 0; ch < c; ++ch) *d++ = inside ? (int16_t)(2 * src[ch]) : pad;
        }
    }
    d[0] = d[1] = d[2] = 0; /* the padding up to k4 (at most 3 values) */
    for (int32_t k = 0; k < p->k4; k += 4) {
        int16_t *dst = cols + TK_COL(pixel, k);
#if TK_HAVE_DSP
        memcpy(dst, win + k, 8);
#else
        dst[0] = win[k], dst[1] = win[k + 2], dst[2] = win[k + 1], dst[3] = win[k + 3];
#endif
    }
}

/* The receptive field of output pixel (oy, ox) into a column. */
static void gather(const tk_conv2d_gemm_params_t *p, const int8_t *input, int32_t oy, int32_t ox, int16_t *cols,
                   int32_t pixel) {
    const int32_t y0 = oy * p->stride_h - p->pad_top;
    const int32_t x0 = ox * p->stride_w - p->pad_left;
    const int32_t c = p->in_c;
    if (c < 4 && p->k4 <= TK_FEW_MAX) {
        gather_few(p, input, y0, x0, cols, pixel);
        return;
    }
    int32_t k = 0;
    for (int32_t ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = y0 + ky * p->dilation_h;
        if (iy < 0 || iy >= p->in_h) {
            tk_cols_fill(cols, pixel, k, p->input_zero_point, p->k_w * c);
            k += p->k_w * c;
            continue;
        }
        const int8_t *row = input + (size_t)iy * (size_t)p->in_w * (size_t)c;
        for (int32_t kx = 0; kx < p->k_w; ++kx, k += c) {
            const int32_t ix = x0 + kx * p->dilation_w;
            if (ix >= 0 && ix < p->in_w) {
                tk_cols_put(cols, pixel, k, row + (size_t)ix * (size_t)c, c);
            } else {
                tk_cols_fill(cols, pixel, k, p->input_zero_point, c);
            }
        }
    }
}

#if TK_WIDE
/* Hosted 64-bit builds: blocks of TK_WB pixels (tk_gemm_wide). Each receptive field is gathered into the
 * first column of scratch (portable layout: slot order) and copied into the transposed block; the block
 * starts on an even pixel and is read completely before its outputs are written, so any overlap that is
 * safe for column pairs stays safe. */
static void conv_gemm_wide(const tk_conv2d_gemm_params_t *p, const int8_t *input, int8_t *output, int16_t *cols) {
    const tk_gemm_t g = {p->filter, p->rq, p->out_c, p->k4, p->act_min, p->act_max};
    const int32_t pixels = p->out_h * p->out_w, k4 = p->k4;
    const size_t out_c = (size_t)p->out_c;
    int32_t xt[k4 * TK_WB] __attribute__((aligned(32)));
    memset(xt, 0, sizeof xt);
    int32_t oy = 0, ox = 0;
    for (int32_t px = 0; px < pixels; px += TK_WB) {
        const int32_t n = tk_min_i32(TK_WB, pixels - px);
        if (n < TK_WB) memset(xt, 0, sizeof xt);
        for (int32_t q = 0; q < n; ++q) {
            gather(p, input, oy, ox, cols, 0);
            if (++ox == p->out_w) ox = 0, ++oy;
            for (int32_t i = 0; i < k4; i += 4) {
                const int16_t *c = cols + 2 * i; /* group i / 4 of pixel 0 */
                int32_t *d = xt + (size_t)i * TK_WB + q;
                d[0] = c[0], d[TK_WB] = c[1], d[2 * TK_WB] = c[2], d[3 * TK_WB] = c[3];
            }
        }
        tk_gemm_wide(&g, xt, n, output + (size_t)px * out_c, out_c);
    }
}
#endif

void tk_conv2d_gemm_s8(const tk_conv2d_gemm_params_t *p, const void *const *in, void *const *out, void *scratch) {
    const int8_t *input = (const int8_t *)in[0];
    int8_t *output = (int8_t *)out[0];
    int16_t *cols = (int16_t *)scratch;
    const tk_gemm_t g = {p->filter, p->rq, p->out_c, p->k4, p->act_min, p->act_max};
    tk_cols_zero_tail(cols, p->k_h * p->k_w * p->in_c, p->k4);
#if TK_WIDE
    if (p->k4 <= TK_WIDE_MAX_K4) {
        conv_gemm_wide(p, input, output, cols);
        return;
    }
#endif
    const int32_t pixels = p->out_h * p->out_w;
    const size_t out_c = (size_t)p->out_c;
    int32_t oy = 0, ox = 0;
    for (int32_t px = 0; px < pixels; px += 2) {
        int8_t *dst = output + (size_t)px * out_c;
        gather(p, input, oy, ox, cols, 0);
        if (px + 1 == pixels) { /* the last pixel in both halves, its outputs written twice */
            gather(p, input, oy, ox, cols, 1);
            tk_gemm_cols(&g, cols, dst, dst);
            break;
        }
        if (++ox == p->out_w) ox = 0, ++oy;
        gather(p, input, oy, ox, cols, 1);
        if (++ox == p->out_w) ox = 0, ++oy;
        tk_gemm_cols(&g, cols, dst, dst + out_c);
    }
}
