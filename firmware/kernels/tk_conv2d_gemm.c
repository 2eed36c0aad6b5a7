/* tinyml-kit kernel: convolution as im2col + int8 GEMM (see tk_conv2d_gemm.h), bit-exact with TFLite's
 * reference ConvPerChannel / DepthwiseConvPerChannel (one input channel). */
#include "tk_conv2d_gemm.h"

#include <stddef.h>
#include <string.h>

#include "tk_common.h"
#include "tk_gemm.h"

#define TK_FEW_MAX 148 /* k_h * k_w * in_c rounded up to 4, for in_c <= 3 and kernels up to 7x7 */

/* Kernel rows of exactly one group of 4 values: see gather_rows4. */
TK_INLINE int is_rows4(const tk_conv2d_gemm_params_t *p) {
    return p->k_w * p->in_c == 4 && p->dilation_w == 1 && p->k4 == 4 * p->k_h;
}

/* The receptive field of a pixel whose kernel rows are 4 values (k_w * in_c == 4, dilation 1: a 3-wide
 * kernel over one channel that the lowering padded with a zero-weight tap): one group per row, converted
 * from one word of the input when the whole row is inside, else value by value. */
TK_INLINE void gather_rows4(const tk_conv2d_gemm_params_t *p, const int8_t *input, int32_t y0, int32_t x0,
                            int16_t *cols, int32_t npix, int32_t pixel) {
    const int32_t c = p->in_c;
    const int cols_inside = x0 >= 0 && x0 + p->k_w <= p->in_w;
    if (cols_inside && y0 >= 0 && y0 + (p->k_h - 1) * p->dilation_h < p->in_h) { /* the whole window inside */
        const int8_t *row = input + ((size_t)y0 * (size_t)p->in_w + (size_t)x0) * (size_t)c;
        const size_t step = (size_t)p->dilation_h * (size_t)p->in_w * (size_t)c;
        int16_t *dst = cols + TK_COLN(npix, pixel, 0);
        for (int32_t ky = p->k_h; ky > 0; --ky, row += step, dst += 4 * npix) {
            tk_cols_put_n(dst, 1, 0, 0, row, 4); /* one group of a one-column block: the same layout */
        }
        return;
    }
    for (int32_t ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = y0 + ky * p->dilation_h;
        if (iy < 0 || iy >= p->in_h) {
            tk_cols_fill_n(cols, npix, pixel, 4 * ky, p->input_zero_point, 4);
            continue;
        }
        const int8_t *row = input + (size_t)iy * (size_t)p->in_w * (size_t)c;
        if (cols_inside) {
            tk_cols_put_n(cols, npix, pixel, 4 * ky, row + (size_t)x0 * (size_t)c, 4);
            continue;
        }
        for (int32_t kx = 0; kx < p->k_w; ++kx) {
            const int32_t ix = x0 + kx;
            if (ix >= 0 && ix < p->in_w) {
                tk_cols_put_n(cols, npix, pixel, 4 * ky + kx * c, row + (size_t)ix * (size_t)c, c);
            } else {
                tk_cols_fill_n(cols, npix, pixel, 4 * ky + kx * c, p->input_zero_point, c);
            }
        }
    }
}

/* d[0 .. n) = s[0 .. n), a word at a time (unaligned word accesses are allowed on Cortex-M4). */
TK_INLINE void copy_run(int8_t *d, const int8_t *s, int32_t n) {
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) memcpy(d + i, s + i, 4);
    for (; i < n; ++i) d[i] = s[i];
}

/* The receptive field of a pixel with one to three input channels (first layers): the int8 values in
 * order into a small contiguous window (padded taps get the zero point), then converted group by group
 * into the column block (four values per word on Cortex-M4). */
static void gather_few(const tk_conv2d_gemm_params_t *p, const int8_t *input, int32_t y0, int32_t x0,
                       int16_t *cols, int32_t npix, int32_t pixel) {
    int8_t win[TK_FEW_MAX + 4] __attribute__((aligned(4)));
    const int32_t c = p->in_c, run = p->k_w * c;
    const int8_t pad = (int8_t)p->input_zero_point;
    const int cols_inside = x0 >= 0 && x0 + (p->k_w - 1) * p->dilation_w < p->in_w;
    int8_t *d = win;
    if (cols_inside && p->dilation_w == 1 && y0 >= 0 && y0 + (p->k_h - 1) * p->dilation_h < p->in_h) {
        /* the whole window inside: one contiguous run per kernel row */
        const int8_t *row = input + ((size_t)y0 * (size_t)p->in_w + (size_t)x0) * (size_t)c;
        const size_t step = (size_t)p->dilation_h * (size_t)p->in_w * (size_t)c;
        for (int32_t ky = p->k_h; ky > 0; --ky, row += step, d += run) copy_run(d, row, run);
        d[0] = d[1] = d[2] = 0;
        tk_cols_put_n(cols, npix, pixel, 0, win, p->k4);
        return;
    }
    for (int32_t ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = y0 + ky * p->dilation_h;
        if (iy < 0 || iy >= p->in_h) {
            memset(d, pad, (size_t)run);
            d += run;
            continue;
        }
        const int8_t *row = input + ((size_t)iy * (size_t)p->in_w + (size_t)x0) * (size_t)c;
        if (cols_inside && p->dilation_w == 1) { /* one contiguous run of the input row */
            copy_run(d, row, run);
            d += run;
            continue;
        }
        for (int32_t kx = 0; kx < p->k_w; ++kx) {
            const int32_t ix = x0 + kx * p->dilation_w;
            const int8_t *src = row + (ptrdiff_t)(kx * p->dilation_w) * c;
            const int inside = ix >= 0 && ix < p->in_w;
            for (int32_t ch = 0; ch < c; ++ch) *d++ = inside ? src[ch] : pad;
        }
    }
    d[0] = d[1] = d[2] = 0; /* the padding up to k4 (at most 3 values) */
    tk_cols_put_n(cols, npix, pixel, 0, win, p->k4);
}

/* The receptive field of output pixel (oy, ox) into column ``pixel`` of a block of ``npix``. */
static void gather(const tk_conv2d_gemm_params_t *p, const int8_t *input, int32_t oy, int32_t ox, int16_t *cols,
                   int32_t npix, int32_t pixel) {
    const int32_t y0 = oy * p->stride_h - p->pad_top;
    const int32_t x0 = ox * p->stride_w - p->pad_left;
    const int32_t c = p->in_c;
    if (is_rows4(p)) {
        gather_rows4(p, input, y0, x0, cols, npix, pixel);
        return;
    }
    if (c < 4 && p->k4 <= TK_FEW_MAX) {
        gather_few(p, input, y0, x0, cols, npix, pixel);
        return;
    }
    int32_t k = 0;
    for (int32_t ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = y0 + ky * p->dilation_h;
        if (iy < 0 || iy >= p->in_h) {
            tk_cols_fill_n(cols, npix, pixel, k, p->input_zero_point, p->k_w * c);
            k += p->k_w * c;
            continue;
        }
        const int8_t *row = input + (size_t)iy * (size_t)p->in_w * (size_t)c;
        for (int32_t kx = 0; kx < p->k_w; ++kx, k += c) {
            const int32_t ix = x0 + kx * p->dilation_w;
            if (ix >= 0 && ix < p->in_w) {
                tk_cols_put_n(cols, npix, pixel, k, row + (size_t)ix * (size_t)c, c);
            } else {
                tk_cols_fill_n(cols, npix, pixel, k, p->input_zero_point, c);
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
            gather(p, input, oy, ox, cols, 2, 0);
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

/* One block of 3 (Cortex-M4) or 2 columns: one copy of the GEMM code each, shared by every caller. */
#if TK_GEMM_PIXELS == 3
TK_GEMM_FN static void gemm_block3(const tk_gemm_t *g, const int16_t *cols, int8_t *dst, int32_t stride) {
    tk_gemm_cols_n(g, cols, 3, dst, stride);
}
#endif
TK_GEMM_FN static void gemm_block2(const tk_gemm_t *g, const int16_t *cols, int8_t *dst, int32_t stride) {
    tk_gemm_cols_n(g, cols, 2, dst, stride);
}

TK_INLINE void gemm_block(const tk_gemm_t *g, const int16_t *cols, const int32_t npix, int8_t *dst,
                          int32_t stride) {
#if TK_GEMM_PIXELS == 3
    if (npix == 3) {
        gemm_block3(g, cols, dst, stride);
        return;
    }
#endif
    (void)npix;
    gemm_block2(g, cols, dst, stride);
}

/* Every output pixel in blocks of ``npix`` (a constant) columns, each block gathered completely before
 * its outputs are written; the last pixels one by one, in every column, their outputs written npix
 * times. */
TK_INLINE void conv_gemm_blocks(const tk_conv2d_gemm_params_t *p, const int8_t *input, int8_t *output,
                                int16_t *cols, const int32_t npix, const int rows4) {
    const tk_gemm_t g = {p->filter, p->rq, p->out_c, p->k4, p->act_min, p->act_max};
    const int32_t pixels = p->out_h * p->out_w;
    const size_t out_c = (size_t)p->out_c;
    tk_cols_zero_tail_n(cols, npix, p->k_h * p->k_w * p->in_c, p->k4);
    int32_t oy = 0, ox = 0, px = 0;
    for (; px + npix <= pixels; px += npix) {
        for (int32_t q = 0; q < npix; ++q) {
            if (rows4) {
                gather_rows4(p, input, oy * p->stride_h - p->pad_top, ox * p->stride_w - p->pad_left, cols, npix,
                             q);
            } else {
                gather(p, input, oy, ox, cols, npix, q);
            }
            if (++ox == p->out_w) ox = 0, ++oy;
        }
        gemm_block(&g, cols, npix, output + (size_t)px * out_c, (int32_t)out_c);
    }
    for (; px < pixels; ++px) {
        for (int32_t q = 0; q < npix; ++q) gather(p, input, oy, ox, cols, npix, q);
        if (++ox == p->out_w) ox = 0, ++oy;
        gemm_block(&g, cols, npix, output + (size_t)px * out_c, 0);
    }
}

void tk_conv2d_gemm_s8(const tk_conv2d_gemm_params_t *p, const void *const *in, void *const *out, void *scratch) {
    const int8_t *input = (const int8_t *)in[0];
    int8_t *output = (int8_t *)out[0];
    int16_t *cols = (int16_t *)scratch;
#if TK_WIDE
    if (p->k4 <= TK_WIDE_MAX_K4) {
        tk_cols_zero_tail_n(cols, 2, p->k_h * p->k_w * p->in_c, p->k4);
        conv_gemm_wide(p, input, output, cols);
        return;
    }
#endif
#if TK_GEMM_PIXELS == 3
    if (p->col_pixels >= 3) {
        if (is_rows4(p)) {
            conv_gemm_blocks(p, input, output, cols, 3, 1);
        } else {
            conv_gemm_blocks(p, input, output, cols, 3, 0);
        }
        return;
    }
#endif
    conv_gemm_blocks(p, input, output, cols, 2, 0);
}
