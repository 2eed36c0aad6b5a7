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

#if TK_GEMM_PIXELS == 3
#define TK_C1_MAX_OUT 16 /* output channels of the one-channel 3x3 path (lowering/conv.py: C1_MAX_OUT) */
#define TK_C1_WORDS 10   /* table words per output channel, in the scratch (C1_TABLE_WORDS) */

/* A one-channel kernel of three rows of 4 taps (3x3 padded by the lowering, dilation 1) with an even
 * count of at most TK_C1_MAX_OUT output channels and the full int8 range, whose scratch the lowering
 * sized for the table (c1_table): the usual first layer. */
TK_INLINE int is_c1_rows3(const tk_conv2d_gemm_params_t *p) {
    return p->c1_table && is_rows4(p) && p->in_c == 1 && p->k_h == 3 && p->dilation_h == 1 &&
           (p->out_c & 1) == 0 && p->out_c <= TK_C1_MAX_OUT && p->act_min == -128 && p->act_max == 127;
}

TK_INLINE uint32_t pack_halves(int32_t lo, int32_t hi) {
    return (uint32_t)(uint16_t)lo | ((uint32_t)(uint16_t)hi << 16);
}

/* Per output channel j, the 10 words {2 * bias, six filter halfword pairs, multiplier, add, shift}: for
 * kernel row g the doubled taps (2 w0, 2 w2) and (2 w1, 2 w3), matching SXTB16 and SXTB16 ROR #8 of the
 * row's input word, unpacked from the int8 filter (stored w0, w2, w1, w3 per group, tk_gemm.h). */
static void build_c1_table(const tk_conv2d_gemm_params_t *p, int32_t *table) {
    for (int32_t j = 0; j < p->out_c; ++j, table += TK_C1_WORDS) {
        const int8_t *b = p->filter + (size_t)(j >> 1) * 24 + (size_t)(j & 1) * 4;
        const int32_t *rq = p->rq + 4 * j;
        table[0] = rq[0];
        for (int32_t g = 0; g < 3; ++g, b += 8) {
            table[1 + 2 * g] = (int32_t)pack_halves(2 * b[0], 2 * b[1]);
            table[2 + 2 * g] = (int32_t)pack_halves(2 * b[2], 2 * b[3]);
        }
        table[7] = rq[1], table[8] = rq[2], table[9] = rq[3];
    }
}

/* Every output channel of one pixel whose three kernel rows are the input words row0..row2 (4 values
 * each, the fourth has weight 0): the rows as six halfword pairs in r4-r9, then per channel LDM of the
 * bias and three filter words, 3 SMLAD, LDM, 3 SMLAD, LDM of the requantisation constants, SMMLAR, ADD
 * ASR, ASR, SSAT, STRB (14 instructions for 9 MACs), in a sequence of TK_C1_MAX_OUT channels unrolled
 * and entered by TBH at channel pair ``skip`` = (TK_C1_MAX_OUT - out_c) / 2, so no loop test. ``*d``
 * advances past the outputs. ``looped`` (a constant, for the few pixels on the border: less code): a
 * loop over the ``skip`` channel pairs instead. The LDM register lists need ascending registers, hence
 * the fixed assignment. */
TK_INLINE void c1_pixel(const int32_t *table, int32_t skip, uint32_t row0, uint32_t row1, uint32_t row2,
                        int8_t **d, const int looped) {
    register int32_t a __asm__("r0");
    register int32_t f0 __asm__("r1");
    register int32_t f1 __asm__("r2");
    register int32_t f2 __asm__("r3");
    register int32_t c0 __asm__("r4");
    register uint32_t c1 __asm__("r5") = row0;
    register int32_t c2 __asm__("r6");
    register uint32_t c3 __asm__("r7") = row1;
    register int32_t c4 __asm__("r8");
    register uint32_t c5 __asm__("r9") = row2;
    register const int32_t *t __asm__("r10") = table;
    register int8_t *dp __asm__("r11") = *d;
    register int32_t k __asm__("r12") = skip;
#define TK_C1_CHANNEL                                      \
    "ldmia %[t]!, {%[a], %[f0], %[f1], %[f2]}\n\t"           \
    "smlad %[a], %[c0], %[f0], %[a]\n\t"                     \
    "smlad %[a], %[c1], %[f1], %[a]\n\t"                     \
    "smlad %[a], %[c2], %[f2], %[a]\n\t"                     \
    "ldmia %[t]!, {%[f0], %[f1], %[f2]}\n\t"                 \
    "smlad %[a], %[c3], %[f0], %[a]\n\t"                     \
    "smlad %[a], %[c4], %[f1], %[a]\n\t"                     \
    "smlad %[a], %[c5], %[f2], %[a]\n\t"                     \
    "ldmia %[t]!, {%[f0], %[f1], %[f2]}\n\t"                 \
    "smmlar %[f0], %[a], %[f0], %[f1]\n\t"                   \
    "add %[f0], %[f0], %[a], asr #31\n\t"                    \
    "asr %[f0], %[f0], %[f2]\n\t"                            \
    "ssat %[f0], #8, %[f0]\n\t"                              \
    "strb %[f0], [%[d]], #1\n\t"
#define TK_C1_PAIR(n) n ":\n\t" TK_C1_CHANNEL TK_C1_CHANNEL
#define TK_C1_ENTRY(n) ".hword (" n "f - 10b) / 2\n\t"
#define TK_C1_ROWS                                         \
    "sxtb16 %[c0], %[c1]\n\t"                                \
    "sxtb16 %[c1], %[c1], ror #8\n\t"                        \
    "sxtb16 %[c2], %[c3]\n\t"                                \
    "sxtb16 %[c3], %[c3], ror #8\n\t"                        \
    "sxtb16 %[c4], %[c5]\n\t"                                \
    "sxtb16 %[c5], %[c5], ror #8\n\t"
    if (looped) { /* k: the channel pairs, counted down */
        __asm__ volatile(
            TK_C1_ROWS
            "1:\n\t"
            TK_C1_CHANNEL TK_C1_CHANNEL
            "subs %[k], %[k], #1\n\t"
            "bne 1b\n\t"
            : [a] "=&r"(a), [f0] "=&r"(f0), [f1] "=&r"(f1), [f2] "=&r"(f2), [c0] "=&r"(c0), [c1] "+r"(c1),
              [c2] "=&r"(c2), [c3] "+r"(c3), [c4] "=&r"(c4), [c5] "+r"(c5), [t] "+r"(t), [d] "+r"(dp),
              [k] "+r"(k)
            :
            : "cc", "memory");
        *d = dp;
        return;
    }
    __asm__ volatile(
        TK_C1_ROWS
        "tbh [pc, %[k], lsl #1]\n\t"
        "10:\n\t"
        TK_C1_ENTRY("20") TK_C1_ENTRY("21") TK_C1_ENTRY("22") TK_C1_ENTRY("23")
        TK_C1_ENTRY("24") TK_C1_ENTRY("25") TK_C1_ENTRY("26") TK_C1_ENTRY("27")
        ".align 1\n\t"
        TK_C1_PAIR("20") TK_C1_PAIR("21") TK_C1_PAIR("22") TK_C1_PAIR("23")
        TK_C1_PAIR("24") TK_C1_PAIR("25") TK_C1_PAIR("26") TK_C1_PAIR("27")
        : [a] "=&r"(a), [f0] "=&r"(f0), [f1] "=&r"(f1), [f2] "=&r"(f2), [c0] "=&r"(c0), [c1] "+r"(c1),
          [c2] "=&r"(c2), [c3] "+r"(c3), [c4] "=&r"(c4), [c5] "+r"(c5), [t] "+r"(t), [d] "+r"(dp)
        : [k] "r"(k)
        : "cc", "memory");
#undef TK_C1_ENTRY
#undef TK_C1_ROWS
#undef TK_C1_PAIR
#undef TK_C1_CHANNEL
    *d = dp;
}

/* The input word of kernel row iy at columns x0 .. x0 + 3 of a pixel on the border: padded taps get the
 * zero point (the fourth tap, of weight 0, too when it lies outside). */
TK_INLINE uint32_t c1_border_row(const tk_conv2d_gemm_params_t *p, const int8_t *input, int32_t iy, int32_t x0) {
    const uint32_t pad = (uint8_t)p->input_zero_point;
    if (iy < 0 || iy >= p->in_h) return pad * 0x01010101u;
    const int8_t *row = input + (size_t)iy * (size_t)p->in_w;
    uint32_t word = 0;
    for (int32_t kx = 3; kx >= 0; --kx) {
        const int32_t ix = x0 + kx;
        word = (word << 8) | (ix >= 0 && ix < p->in_w ? (uint8_t)row[ix] : pad);
    }
    return word;
}

/* The one-channel 3x3 path (is_c1_rows3): pixel by pixel in raster order, each pixel's three input words
 * read before its outputs are written (the overlap of a one-pixel block), every output channel from the
 * table with the pixel's values kept in registers. */
static void conv_c1_rows3(const tk_conv2d_gemm_params_t *p, const int8_t *input, int8_t *output,
                          int32_t *table) {
    build_c1_table(p, table);
    const int32_t skip = (TK_C1_MAX_OUT - p->out_c) >> 1; /* channel pairs jumped over */
    const size_t in_w = (size_t)p->in_w, sw = (size_t)p->stride_w;
    int32_t lo = 0, hi; /* the pixels [lo, hi) of a row whose window columns are inside */
    while (lo < p->out_w && lo * p->stride_w - p->pad_left < 0) ++lo;
    for (hi = lo; hi < p->out_w && hi * p->stride_w - p->pad_left + 4 <= p->in_w;) ++hi;
    int8_t *d = output;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        const int32_t y0 = oy * p->stride_h - p->pad_top;
        const int rows_inside = y0 >= 0 && y0 + 2 < p->in_h;
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            if (rows_inside && ox == lo && lo < hi) { /* the inside run: word loads */
                const int8_t *r = input + (ptrdiff_t)y0 * (ptrdiff_t)in_w + (lo * p->stride_w - p->pad_left);
                for (int32_t n = hi - lo; n > 0; --n, r += sw) {
                    c1_pixel(table, skip, tk_load4(r), tk_load4(r + in_w), tk_load4(r + 2 * in_w), &d, 0);
                }
                ox = hi - 1;
                continue;
            }
            const int32_t x0 = ox * p->stride_w - p->pad_left;
            c1_pixel(table, p->out_c >> 1, c1_border_row(p, input, y0, x0), c1_border_row(p, input, y0 + 1, x0),
                     c1_border_row(p, input, y0 + 2, x0), &d, 1);
        }
    }
}
#endif

/* One block of TK_GEMM_PIXELS columns (one copy of the GEMM code for the blocks and the last pixels). */
TK_GEMM_FN static void gemm_block(const tk_gemm_t *g, const int16_t *cols, int8_t *dst, int32_t stride) {
    tk_gemm_cols(g, cols, dst, stride);
}

/* Every output pixel in blocks of TK_GEMM_PIXELS columns, each block gathered completely before its
 * outputs are written; the last pixels one by one, in every column, their outputs written npix times. */
TK_INLINE void conv_gemm_blocks(const tk_conv2d_gemm_params_t *p, const int8_t *input, int8_t *output,
                                int16_t *cols, const int rows4) {
    const int32_t npix = TK_GEMM_PIXELS;
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
        gemm_block(&g, cols, output + (size_t)px * out_c, (int32_t)out_c);
    }
    for (; px < pixels; ++px) {
        for (int32_t q = 0; q < npix; ++q) gather(p, input, oy, ox, cols, npix, q);
        if (++ox == p->out_w) ox = 0, ++oy;
        gemm_block(&g, cols, output + (size_t)px * out_c, 0);
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
    if (is_c1_rows3(p)) {
        conv_c1_rows3(p, input, output, (int32_t *)scratch);
        return;
    }
    if (is_rows4(p)) {
        conv_gemm_blocks(p, input, output, cols, 1);
        return;
    }
#endif
    conv_gemm_blocks(p, input, output, cols, 0);
}
