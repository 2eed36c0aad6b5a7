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
#define TK_C1_WORDS 8    /* table words per output channel, in the scratch (C1_TABLE_WORDS) */

/* A one-channel kernel of three rows of 4 taps (3x3 padded by the lowering, dilation 1) with an even
 * count of at most TK_C1_MAX_OUT output channels and the full int8 range, whose scratch the lowering
 * sized for the table (c1_table): the usual first layer. */
TK_INLINE int is_c1_rows3(const tk_conv2d_gemm_params_t *p) {
    return p->c1_table && is_rows4(p) && p->in_c == 1 && p->k_h == 3 && p->dilation_h == 1 &&
           (p->out_c & 1) == 0 && p->out_c <= TK_C1_MAX_OUT && p->act_min == -128 && p->act_max == 127;
}

/* The loop state of c1_run, stored right after the table (C1_STATE_WORDS in the lowering) and loaded
 * with the last channel's multiplier and add, in the order of the registers it goes to: the channel
 * pairs jumped over, the addresses of the three kernel rows after the last pixel (pixel i of n reads
 * kernel row g at end<g> - (n - i) * step), the table and the input step per pixel. */
typedef struct {
    int32_t skip;
    const int8_t *end0;
    const int32_t *table;
    const int8_t *end1, *end2;
    int32_t step;
} c1_state_t;
typedef char c1_state_is_6_words[sizeof(c1_state_t) == 24 ? 1 : -1]; /* 32-bit pointers (Cortex-M4) */

TK_INLINE uint32_t pack_halves(int32_t lo, int32_t hi) {
    return (uint32_t)(uint16_t)lo | ((uint32_t)(uint16_t)hi << 16);
}

#define TK_C1_R 12 /* the fixed right shift of c1_run_scaled (its SSAT's ASR) */
#define TK_C1_STR2(x) #x
#define TK_C1_STR(x) TK_C1_STR2(x)

/* Per output channel the 8 words {2 * bias, (2 w00, 2 w02), (2 w10, 2 w12), (2 w20, 2 w22), (2 w01,
 * 2 w11), (shift, 2 w21), multiplier, add} (w[ky][kx], halfword pairs low first) matching the pixel's
 * pairs of c1_run, unpacked from the int8 filter (stored w0, w2, w1, w3 per kernel row, tk_gemm.h). A
 * kernel row outside the input (bit ky of ``inside`` clear) gets zero weights and its padded taps' share
 * 2 * zero point * weight in the bias instead, so that its input word may be any readable word.
 * ``scaled`` (c1_scalable): bias and weights times 2^k, k = TK_C1_R - shift, and the add word
 * 2^k * add + 2^(k - 1), for c1_run_scaled. */
static void build_c1_table(const tk_conv2d_gemm_params_t *p, int32_t *table, uint32_t inside, int scaled) {
    const int32_t zp2 = 2 * p->input_zero_point;
    const int32_t keep0 = (int32_t)(inside & 1u), keep1 = (int32_t)((inside >> 1) & 1u);
    const int32_t keep2 = (int32_t)((inside >> 2) & 1u);
    for (int32_t j = 0; j < p->out_c; ++j, table += TK_C1_WORDS) {
        const int8_t *b = p->filter + (size_t)(j >> 1) * 24 + (size_t)(j & 1) * 4; /* row g at b + 8 g */
        const int32_t *rq = p->rq + 4 * j;
        const int32_t k = scaled ? TK_C1_R - rq[3] : 0;
        const int32_t m0 = keep0 << (k + 1), m1 = keep1 << (k + 1), m2 = keep2 << (k + 1);
        int32_t bias2 = rq[0];
        if (inside != 7) {
            bias2 += zp2 * ((1 - keep0) * (b[0] + b[1] + b[2]) + (1 - keep1) * (b[8] + b[9] + b[10]) +
                            (1 - keep2) * (b[16] + b[17] + b[18]));
        }
        table[0] = (int32_t)((uint32_t)bias2 << k);
        table[1] = (int32_t)pack_halves(m0 * b[0], m0 * b[1]);
        table[2] = (int32_t)pack_halves(m1 * b[8], m1 * b[9]);
        table[3] = (int32_t)pack_halves(m2 * b[16], m2 * b[17]);
        table[4] = (int32_t)pack_halves(m0 * b[2], m1 * b[10]);
        table[5] = (int32_t)pack_halves(rq[3], m2 * b[18]);
        table[6] = rq[1];
        table[7] = scaled ? (int32_t)((uint32_t)rq[2] << k) + (1 << (k - 1)) : rq[2];
    }
}

/* Every output channel of n pixels: r0 = -n * step (counts up to 0 in lr, the LDR offset of each row),
 * r1 = output, r2 = state (see c1_state_t), r3 = ``edge``: 0, or the zero point in byte 2 (and 1 in the
 * unused byte 3) for one more pixel right after them whose last window column is padding (the right
 * border of SAME, stride 2, even width): its rows are a halfword each at the state's end addresses,
 * completed with ``edge``. Per pixel: three LDR of the kernel rows (4 values each, the fourth of weight
 * 0), the 9 values as halfword pairs (x00, x02) r8, (x10, x12) r9, (x20, x22) r10, (x01, x11) r11
 * (PKHBT of rows 0 and 1), (x21, -) r12, TBH into the channel sequence at channel pair ``skip``, after
 * the channels ADDS of the step and BNE. Per channel: LDM of the bias and filter words
 * into r0-r5, 4 SMLAD and SMLABT, LDM of multiplier and add into r1, r2, the requantisation ``rq`` of
 * the sum r0 into r1 and STRB; the last channel's LDM also reloads the state (r3, r4, r6, r8-r10),
 * which the table ends with. Table pointer r6 and output r7 are low registers for the short LDM and
 * ASRS encodings. Each pixel's rows are read before its outputs are written. */
#define TK_C1_CHANNEL(rq, next)      \
    "ldmia r6!, {r0-r5}\n\t"         \
    "smlad r0, r8, r1, r0\n\t"       \
    "smlad r0, r9, r2, r0\n\t"       \
    "smlad r0, r10, r3, r0\n\t"      \
    "smlad r0, r11, r4, r0\n\t"      \
    "smlabt r0, r12, r5, r0\n\t"     \
    next rq                          \
    "strb r1, [r7], #1\n\t"
#define TK_C1_NEXT "ldmia r6!, {r1, r2}\n\t"
#define TK_C1_PAIR(n, rq) n ":\n\t" TK_C1_CHANNEL(rq, TK_C1_NEXT) TK_C1_CHANNEL(rq, TK_C1_NEXT)
#define TK_C1_ENTRY(n) ".hword (" n "f - 10b) / 2\n\t"
#define TK_C1_RUN(name, rq)                                                                               \
    __attribute__((naked, noinline)) static void name(int32_t from __attribute__((unused)),             \
                                                      int8_t *d __attribute__((unused)),                \
                                                      const c1_state_t *state __attribute__((unused)),  \
                                                      uint32_t edge __attribute__((unused))) {          \
        __asm__ volatile(                                                                                 \
            "push {r3-r11, lr}\n\t" /* [sp]: edge */                                                       \
            "mov lr, r0\n\t"                                                                              \
            "mov r7, r1\n\t"                                                                              \
            "ldm r2, {r3, r4, r6, r8-r10}\n\t" /* skip, end0, table, end1, end2, step */                  \
            "1:\n\t"                                                                                      \
            "ldr r1, [r4, lr]\n\t"                                                                        \
            "ldr r5, [r8, lr]\n\t"                                                                        \
            "ldr r2, [r9, lr]\n\t"                                                                        \
            "2:\n\t"                                                                                      \
            "sxtb16 r8, r1\n\t"                                                                           \
            "sxtb16 r9, r5\n\t"                                                                           \
            "sxtb16 r10, r2\n\t"                                                                          \
            "pkhbt r1, r1, r5, lsl #16\n\t"                                                               \
            "sxtb16 r11, r1, ror #8\n\t"                                                                  \
            "sxtb16 r12, r2, ror #8\n\t"                                                                  \
            "tbh [pc, r3, lsl #1]\n\t"                                                                    \
            "10:\n\t" TK_C1_ENTRY("20") TK_C1_ENTRY("21") TK_C1_ENTRY("22") TK_C1_ENTRY("23")            \
                TK_C1_ENTRY("24") TK_C1_ENTRY("25") TK_C1_ENTRY("26") TK_C1_ENTRY("27")                   \
            ".align 1\n\t" TK_C1_PAIR("20", rq) TK_C1_PAIR("21", rq) TK_C1_PAIR("22", rq)                 \
                TK_C1_PAIR("23", rq) TK_C1_PAIR("24", rq) TK_C1_PAIR("25", rq) TK_C1_PAIR("26", rq)       \
            "27:\n\t" TK_C1_CHANNEL(rq, TK_C1_NEXT)                                                       \
                TK_C1_CHANNEL(rq, "ldm r6, {r1-r4, r6, r8-r10}\n\t")                                      \
            "adds lr, lr, r10\n\t"                                                                        \
            "bne 1b\n\t"                                                                                  \
            "ldr r0, [sp]\n\t"                                                                            \
            "cbz r0, 3f\n\t"                                                                              \
            "movs r1, #0\n\t"                                                                             \
            "str r1, [sp]\n\t" /* the edge pixel once */                                                  \
            "ldrh r1, [r4]\n\t"                                                                           \
            "ldrh r5, [r8]\n\t"                                                                           \
            "ldrh r2, [r9]\n\t"                                                                           \
            "orrs r1, r0\n\t"                                                                             \
            "orrs r5, r0\n\t"                                                                             \
            "orrs r2, r0\n\t"                                                                             \
            "rsb lr, r10, #0\n\t"                                                                         \
            "b 2b\n\t"                                                                                    \
            "3:\n\t"                                                                                      \
            "pop {r3-r11, pc}\n\t");                                                                      \
    }
/* The requantisation of tk_requant.h (SMMLAR, the sign fix, ASR by the shift in r5's low byte, SSAT):
 * 12 instructions per channel for 9 MACs. */
TK_C1_RUN(c1_run_exact,
          "smmlar r1, r0, r1, r2\n\tadd r1, r1, r0, asr #31\n\tasrs r1, r1, r5\n\tssat r1, #8, r1\n\t")
/* With an output zero point of -128 the sign fix changes nothing: a negative sum (positive multiplier)
 * gives at most the zero point either way, -128 after SSAT. The table scaled by 2^k (build_c1_table)
 * makes every channel's shift TK_C1_R: with P = sum * multiplier, v = floor((P + 2^31) / 2^32) and
 * g = floor(2^k * frac((P + 2^31) / 2^32)) in [0, 2^k), SMMLA gives floor(2^k * P / 2^32) + 2^k * add
 * + 2^(k - 1) = 2^k * (v + add) + g, so its ASR by k + shift is (v + add) >> shift. SMMLA and SSAT ASR
 * #TK_C1_R: 10 instructions per channel. */
TK_C1_RUN(c1_run_scaled, "smmla r1, r0, r1, r2\n\tssat r1, #8, r1, asr #" TK_C1_STR(TK_C1_R) "\n\t")
typedef void (*c1_run_fn)(int32_t from, int8_t *d, const c1_state_t *state, uint32_t edge);
#undef TK_C1_RUN
#undef TK_C1_ENTRY
#undef TK_C1_PAIR
#undef TK_C1_NEXT
#undef TK_C1_CHANNEL
#undef TK_C1_STR
#undef TK_C1_STR2

/* Whether c1_run_scaled is exact for the layer: every channel with output zero point -128 (add word
 * 2^(shift - 1) - 128 * 2^shift), k = TK_C1_R - shift in 1 .. 7 (the weights times 2^(k + 1) stay int16)
 * and every sum times 2^k inside int32 (|2 * bias| + 9 * 2 * 128 * 128 bounds the doubled sum). */
static int c1_scalable(const tk_conv2d_gemm_params_t *p) {
    for (int32_t j = 0; j < p->out_c; ++j) {
        const int32_t *rq = p->rq + 4 * j;
        const int32_t k = TK_C1_R - rq[3]; /* shift 5 .. 11 from here on: the terms below fit int32 */
        if (k < 1 || k > 7 || rq[2] != (1 << (rq[3] - 1)) - (128 << rq[3])) return 0;
        const uint32_t bias = rq[0] < 0 ? 0u - (uint32_t)rq[0] : (uint32_t)rq[0];
        if (bias >= (1u << (31 - k)) - 9u * 2u * 128u * 128u) return 0;
    }
    return 1;
}

/* One pixel on the left or right border (window columns x0 .. x0 + 2, not all inside), kernel rows at
 * rows[0..2]: its three words, the zero point in the bytes of the outside columns (the fourth value, of
 * weight 0, is 0), then c1_run on them. Only the last column outside: a halfword per row; otherwise the
 * values at column indices clamped into the row, masked. */
__attribute__((noinline)) static void c1_border_pixel(const tk_conv2d_gemm_params_t *p,
                                                      const int8_t *const rows[3], int32_t x0, int8_t *d,
                                                      c1_state_t *state, c1_run_fn run) {
    const int32_t in_w = p->in_w;
    const uint32_t pad = (uint8_t)p->input_zero_point;
    uint32_t words[3];
    if (x0 >= 0 && x0 + 2 == in_w) {
        for (int32_t ky = 0; ky < 3; ++ky) {
            uint16_t pair;
            memcpy(&pair, rows[ky] + x0, 2);
            words[ky] = pair | pad << 16;
        }
    } else {
        int32_t ix[3];
        uint32_t mask = 0; /* 0xff in the bytes of the inside columns */
        for (int32_t kx = 0; kx < 3; ++kx) {
            const int32_t i = x0 + kx;
            ix[kx] = i < 0 ? 0 : (i < in_w ? i : in_w - 1);
            mask |= i >= 0 && i < in_w ? 0xffu << (8 * kx) : 0u;
        }
        const uint32_t padded = pad * 0x00010101u & ~mask;
        for (int32_t ky = 0; ky < 3; ++ky) {
            const uint8_t *row = (const uint8_t *)rows[ky];
            const uint32_t word = row[ix[0]] | (uint32_t)row[ix[1]] << 8 | (uint32_t)row[ix[2]] << 16;
            words[ky] = (word & mask) | padded;
        }
    }
    const int8_t *end = (const int8_t *)words + state->step;
    state->end0 = end, state->end1 = end + 4, state->end2 = end + 8;
    run(-state->step, d, state, 0);
}

/* The one-channel 3x3 path (is_c1_rows3): output row by output row, the pixels whose window columns are
 * inside in one c1_run over the input rows (with the pixel after them when only its last column is
 * padding), the other pixels on the left and right border one by one. A kernel row above or below the
 * input is read from an inside row, with the table rebuilt for that set of rows (build_c1_table: zero
 * weights, its share in the bias), at most a few times per layer. c1_run_scaled where c1_scalable, else
 * c1_run_exact. */
static void conv_c1_rows3(const tk_conv2d_gemm_params_t *p, const int8_t *input, int8_t *output,
                          int32_t *table) {
    c1_state_t *state = (c1_state_t *)(void *)(table + TK_C1_WORDS * p->out_c);
    const int32_t in_w = p->in_w, sw = p->stride_w, out_c = p->out_c, out_w = p->out_w;
    state->skip = (TK_C1_MAX_OUT - out_c) >> 1; /* channel pairs jumped over */
    state->step = sw;
    state->table = table;
    const int scaled = c1_scalable(p);
    const c1_run_fn run = scaled ? c1_run_scaled : c1_run_exact;
    /* the pixels [lo, hi) of a row whose window columns are inside, one word each: 0 <= x0, x0 + 4 <= in_w */
    int32_t lo = p->pad_left > 0 ? tk_min_i32((p->pad_left + sw - 1) / sw, out_w) : 0;
    const int32_t last = in_w - 4 + p->pad_left; /* the largest x0 + pad_left of the run */
    int32_t hi = last >= 0 ? tk_min_i32(last / sw + 1, out_w) : 0;
    if (hi <= lo) lo = hi = out_w; /* no inside run: every pixel on the border */
    /* the pixel after the run when only its last column is padding (SAME, stride 2, even width) */
    const int32_t x_hi = hi * sw - p->pad_left;
    const uint32_t pad = (uint8_t)p->input_zero_point;
    const uint32_t edge = hi < out_w && x_hi >= 0 && x_hi + 2 == in_w ? pad << 16 | 1u << 24 : 0u;
    const int32_t after_run = hi + (edge != 0);
    const ptrdiff_t run_in = (ptrdiff_t)(hi - lo) * sw, run_out = (ptrdiff_t)(hi - lo) * out_c;
    const int32_t x_lo = lo * sw - p->pad_left;
    uint32_t built = 8; /* the set of inside kernel rows the table holds (none yet) */
    int8_t *d = output;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        const int32_t y0 = oy * p->stride_h - p->pad_top;
        const int8_t *rows[3];
        uint32_t inside = 7;
        if (y0 >= 0 && y0 + 2 < p->in_h) {
            rows[0] = input + (ptrdiff_t)y0 * in_w, rows[1] = rows[0] + in_w, rows[2] = rows[1] + in_w;
        } else { /* an outside row reads the first inside row (or row 0) */
            inside = 0;
            for (int32_t ky = 2; ky >= 0; --ky) inside = (inside << 1) | (y0 + ky >= 0 && y0 + ky < p->in_h);
            const int32_t first = inside ? y0 + __builtin_ctz(inside) : 0;
            for (int32_t ky = 0; ky < 3; ++ky) {
                rows[ky] = input + (ptrdiff_t)((inside >> ky) & 1u ? y0 + ky : first) * in_w;
            }
        }
        if (inside != built) build_c1_table(p, table, built = inside, scaled);
        int32_t ox = 0;
        for (; ox < lo; ++ox, d += out_c) c1_border_pixel(p, rows, ox * sw - p->pad_left, d, state, run);
        if (lo < hi) { /* the inside run: word loads */
            const ptrdiff_t end = x_lo + run_in;
            state->end0 = rows[0] + end, state->end1 = rows[1] + end, state->end2 = rows[2] + end;
            run(-(int32_t)run_in, d, state, edge);
            d += run_out + (edge ? out_c : 0);
            ox = after_run;
        }
        for (; ox < out_w; ++ox, d += out_c) c1_border_pixel(p, rows, ox * sw - p->pad_left, d, state, run);
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
