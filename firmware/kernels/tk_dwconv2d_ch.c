/* tinyml-kit kernel: channel-by-channel depthwise convolution for 3x3, 5x5 and 7x7 kernels, stride 1 or 2
 * (see tk_dwconv2d_ch.h), bit-exact with TFLite's reference DepthwiseConvPerChannel: taps in the padding
 * read the input zero point, which contributes 0 once the input offset is folded into the bias.
 * 3x3 (the MobileNet layers) runs on int16 rows, with Cortex-M4 assembly for the staging of four
 * channels and for blocks of six outputs (three for a row's last 1 to 3); 5x5 and 7x7 on a byte plane. */
#include "tk_dwconv2d_ch.h"

#include <stddef.h>
#include <string.h>

#include "tk_common.h"
#include "tk_requant.h"
#include "tk_simd.h"

#define TK_DW_CHUNK 64 /* outputs per accumulator chunk of the portable path */

/* Where the input lands in the plane: rows [y0, y1), columns [x0, x1), starting at input column skip. */
typedef struct {
    int32_t y0, y1, x0, x1, skip;
} tk_dw_interior_t;

static tk_dw_interior_t interior(const tk_dwconv2d_ch_params_t *p) {
    tk_dw_interior_t r;
    r.y0 = tk_clamp_i32(p->pad_top, 0, p->padded_h);
    r.y1 = tk_clamp_i32(p->pad_top + p->in_h, r.y0, p->padded_h);
    r.x0 = tk_clamp_i32(p->pad_left, 0, p->padded_w);
    r.x1 = tk_clamp_i32(p->pad_left + p->in_w, r.x0, p->padded_w);
    r.skip = r.x0 - p->pad_left; /* > 0 when the plane starts inside the input (a patch of a larger frame) */
    return r;
}

/* Copy input channel c into the interior of the plane (the padding around it is the same for every
 * channel and is written once). Four bytes per iteration, gathered with the channel stride. */
static void stage_channel(const tk_dwconv2d_ch_params_t *p, const tk_dw_interior_t *r, const int8_t *input,
                          int32_t c, int8_t *plane) {
    const size_t stride = (size_t)p->channels;
    const int32_t n = r->x1 - r->x0;
    for (int32_t py = r->y0; py < r->y1; ++py) {
        const int8_t *src = input + ((size_t)(py - p->pad_top) * (size_t)p->in_w + (size_t)r->skip) * stride
                            + (size_t)c;
        int8_t *dst = plane + (size_t)py * (size_t)p->padded_w + r->x0;
        int32_t i = 0;
        for (; i + 4 <= n; i += 4, src += 4 * stride, dst += 4) {
            const uint32_t word = (uint32_t)(uint8_t)src[0] | ((uint32_t)(uint8_t)src[stride] << 8)
                                  | ((uint32_t)(uint8_t)src[2 * stride] << 16)
                                  | ((uint32_t)(uint8_t)src[3 * stride] << 24);
            memcpy(dst, &word, 4);
        }
        for (; i < n; ++i, src += stride) *dst++ = *src;
    }
}

typedef struct {
    int32_t mult, add, shift, lo, hi;
} tk_dw_rq_t;

TK_INLINE int8_t dw_out(const tk_dw_rq_t *q, int32_t acc2, const int full_range) {
    return full_range ? tk_rq_fast_sat8(acc2, q->mult, q->add, q->shift)
                      : tk_rq_fast_s8(acc2, q->mult, q->add, q->shift, q->lo, q->hi);
}

#if TK_HAVE_DSP

/* pkhtb: the top half of a, the bottom half of b. */
TK_INLINE int32_t tk_pack_tb(int32_t a, int32_t b) {
    int32_t r;
    __asm__("pkhtb %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* One kernel row, two stride-1 outputs at x[0] and x[1]: w = {(w0,w2), (w1,w3), (w4,w6), (w5,w7)}
 * (5x5 and 7x7 on the byte plane; 3x3 runs on int16 rows, dw3 below). */
TK_INLINE void row_pair_k5(const int8_t *x, const uint32_t *w, int32_t *a0, int32_t *a1) {
    const uint32_t v0 = tk_load4(x), v1 = tk_load4(x + 4);
    const int32_t e0 = tk_even16(v0), o0 = tk_odd16(v0), e1 = tk_even16(v1), o1 = tk_odd16(v1);
    const int32_t t = tk_pack_tb(e0, e1); /* (x4, x2) */
    *a0 = __smlad(e0, (int32_t)w[0], *a0);
    *a0 = __smlad(o0, (int32_t)w[1], *a0);
    *a0 = __smlad(e1, (int32_t)w[2], *a0);
    *a1 = __smlad(o0, (int32_t)w[0], *a1);
    *a1 = __smladx(t, (int32_t)w[1], *a1);
    *a1 = __smlabb(o1, (int32_t)w[2], *a1);
}

TK_INLINE void row_pair_k7(const int8_t *x, const uint32_t *w, int32_t *a0, int32_t *a1) {
    const uint32_t v0 = tk_load4(x), v1 = tk_load4(x + 4);
    const int32_t e0 = tk_even16(v0), o0 = tk_odd16(v0), e1 = tk_even16(v1), o1 = tk_odd16(v1);
    const int32_t t = tk_pack_tb(e0, e1); /* (x4, x2) */
    *a0 = __smlad(e0, (int32_t)w[0], *a0);
    *a0 = __smlad(o0, (int32_t)w[1], *a0);
    *a0 = __smlad(e1, (int32_t)w[2], *a0);
    *a0 = __smlad(o1, (int32_t)w[3], *a0);
    *a1 = __smlad(o0, (int32_t)w[0], *a1);
    *a1 = __smladx(t, (int32_t)w[1], *a1);
    *a1 = __smlad(o1, (int32_t)w[2], *a1);
    *a1 = __smlatb(e1, (int32_t)w[3], *a1);
}

/* One kernel row, one output at x[0] (any stride): sum over the groups of 4 taps. */
TK_INLINE int32_t row_one(const int8_t *x, const uint32_t *w, const int32_t k, int32_t a) {
    const uint32_t v0 = tk_load4(x);
    a = __smlad(tk_even16(v0), (int32_t)w[0], a);
    a = __smlad(tk_odd16(v0), (int32_t)w[1], a);
    if (k > 4) {
        const uint32_t v1 = tk_load4(x + 4);
        a = __smlad(tk_even16(v1), (int32_t)w[2], a);
        if (k > 5) a = __smlad(tk_odd16(v1), (int32_t)w[3], a);
    }
    return a;
}

/* Outputs of one channel; k (kernel size) and stride are constants in each instantiation. */
TK_INLINE void channel_dsp(const tk_dwconv2d_ch_params_t *p, const int8_t *plane, const uint32_t *wrows,
                           int32_t bias2, const tk_dw_rq_t *q, int8_t *dst, const int32_t k, const int32_t stride,
                           const int full_range) {
    const int32_t rs = 4; /* words per kernel row in filter2 (k 5 or 7: two groups of taps) */
    const size_t pw = (size_t)p->padded_w, c_stride = (size_t)p->channels;
    const size_t row_step = (size_t)p->dilation_h * pw;
    const int32_t out_w = p->out_w, pairs = stride == 1 ? out_w & ~1 : 0;
    for (int32_t oy = 0; oy < p->out_h; ++oy, dst += (size_t)out_w * c_stride) {
        const int8_t *r0 = plane + (size_t)(oy * p->stride_h) * pw;
        int8_t *d = dst;
        int32_t ox = 0;
        for (; ox < pairs; ox += 2) {
            int32_t a0 = bias2, a1 = bias2;
            const int8_t *x = r0 + ox;
            for (int32_t ky = 0; ky < k; ++ky, x += row_step) {
                if (k == 5) {
                    row_pair_k5(x, wrows + rs * ky, &a0, &a1);
                } else {
                    row_pair_k7(x, wrows + rs * ky, &a0, &a1);
                }
            }
            d[0] = dw_out(q, a0, full_range);
            d[c_stride] = dw_out(q, a1, full_range);
            d += 2 * c_stride;
        }
        for (; ox < out_w; ++ox, d += c_stride) {
            int32_t a = bias2;
            const int8_t *x = r0 + (size_t)ox * (size_t)stride;
            for (int32_t ky = 0; ky < k; ++ky, x += row_step) a = row_one(x, wrows + rs * ky, k, a);
            *d = dw_out(q, a, full_range);
        }
    }
}

#define TK_DW_CASE(K, S)                                                                  \
    if (full) {                                                                           \
        channel_dsp(p, plane, wrows, bias2, &q, dst, K, S, 1);                            \
    } else {                                                                              \
        channel_dsp(p, plane, wrows, bias2, &q, dst, K, S, 0);                            \
    }

static void channel(const tk_dwconv2d_ch_params_t *p, const int8_t *plane, int32_t c, int8_t *dst) {
    const int32_t groups = (p->k_w + 3) / 4;
    const uint32_t *wrows = (const uint32_t *)(const void *)(p->filter2 + (size_t)c * (size_t)(p->k_h * 4 * groups));
    const tk_dw_rq_t q = {p->rq_mult[c], p->rq_add[c], p->rq_shift[c], p->act_min, p->act_max};
    const int32_t bias2 = p->bias2[c];
    const int full = p->act_min == -128 && p->act_max == 127;
    if (p->stride_w == 1) {
        if (p->k_w == 5) {
            TK_DW_CASE(5, 1)
        } else {
            TK_DW_CASE(7, 1)
        }
    } else if (p->k_w == 5) {
        TK_DW_CASE(5, 2)
    } else {
        TK_DW_CASE(7, 2)
    }
}

#else /* portable C */

/* Weight (doubled) of tap kx in a kernel row of filter2. */
static int32_t tap(const int16_t *row, int32_t kx) {
    static const int8_t slot[4] = {0, 2, 1, 3};
    return row[(kx & ~3) + slot[kx & 3]];
}

static void channel(const tk_dwconv2d_ch_params_t *p, const int8_t *plane, int32_t c, int8_t *dst) {
    const int32_t k = p->k_w, groups = (k + 3) / 4;
    const int16_t *f = p->filter2 + (size_t)c * (size_t)(p->k_h * 4 * groups);
    int32_t w[7][7];
    for (int32_t ky = 0; ky < p->k_h; ++ky) {
        for (int32_t kx = 0; kx < k; ++kx) w[ky][kx] = tap(f + ky * 4 * groups, kx);
    }
    const tk_dw_rq_t q = {p->rq_mult[c], p->rq_add[c], p->rq_shift[c], p->act_min, p->act_max};
    const int full = p->act_min == -128 && p->act_max == 127;
    const size_t pw = (size_t)p->padded_w, c_stride = (size_t)p->channels;
    const int32_t s = p->stride_w;
    int32_t acc[TK_DW_CHUNK];
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        const int8_t *r0 = plane + (size_t)(oy * p->stride_h) * pw;
        int8_t *d = dst + (size_t)oy * (size_t)p->out_w * c_stride;
        for (int32_t ox0 = 0; ox0 < p->out_w; ox0 += TK_DW_CHUNK) {
            const int32_t n = tk_min_i32(TK_DW_CHUNK, p->out_w - ox0);
            for (int32_t i = 0; i < n; ++i) acc[i] = p->bias2[c];
            for (int32_t ky = 0; ky < p->k_h; ++ky) {
                const int8_t *x = r0 + (size_t)(ky * p->dilation_h) * pw + (size_t)(ox0 * s);
                for (int32_t kx = 0; kx < k; ++kx) {
                    const int32_t wt = w[ky][kx];
                    if (s == 1) { /* contiguous: the compiler vectorises this loop */
                        for (int32_t i = 0; i < n; ++i) acc[i] += wt * x[i + kx];
                    } else {
                        for (int32_t i = 0; i < n; ++i) acc[i] += wt * x[2 * i + kx];
                    }
                }
            }
            for (int32_t i = 0; i < n; ++i, d += c_stride) *d = dw_out(&q, acc[i], full);
        }
    }
}

#if TK_WIDE
/* Hosted 64-bit builds (tk_simd.h): every channel of a pixel at once, eight per vector, instead of
 * channel by channel. The plane rows that the current output row reads are kept sign-extended in a ring
 * of k_h rows [padded_w][c8] (c8: the channels rounded up to 8, zero beyond), each loaded when first
 * needed. An output row is written only after every row it reads is loaded, and (out_w <= in_w,
 * pad_top < k_h) it overwrites only input rows loaded before, so in place (shift 0) stays exact. The
 * weights are regrouped once per call into [tap][c8] vectors. */
#define TK_DW_WIDE_MAX_BYTES (1 << 20) /* stack used by the ring, weights and constants */

static int dw_wide_fits(const tk_dwconv2d_ch_params_t *p) {
    const int64_t c8 = (p->channels + 7) & ~7;
    const int64_t words = c8 * ((int64_t)p->k_h * p->k_w + (int64_t)p->k_h * p->padded_w + 4);
    return 4 * words <= TK_DW_WIDE_MAX_BYTES && p->k_h == p->k_w && p->stride_h == p->stride_w
           && p->dilation_h == 1 && p->out_w <= p->in_w && p->pad_top < p->k_h;
}

/* Plane row r (input row r - pad_top, zero point outside the input) into dst [padded_w][c8]. */
static void dw_wide_load_row(const tk_dwconv2d_ch_params_t *p, const int8_t *input, int32_t r, int32_t c8,
                             int32_t *dst) {
    const int32_t iy = r - p->pad_top, channels = p->channels;
    const int row_inside = iy >= 0 && iy < p->in_h;
    for (int32_t px = 0; px < p->padded_w; ++px, dst += c8) {
        const int32_t ix = px - p->pad_left;
        if (row_inside && ix >= 0 && ix < p->in_w) {
            const int8_t *src = input + ((size_t)iy * (size_t)p->in_w + (size_t)ix) * (size_t)channels;
            for (int32_t c = 0; c < channels; ++c) dst[c] = src[c];
        } else {
            for (int32_t c = 0; c < channels; ++c) dst[c] = p->pad_value;
        }
        for (int32_t c = channels; c < c8; ++c) dst[c] = 0;
    }
}

typedef struct {
    const int32_t *wt, *bias2, *mult, *add, *shift; /* [k * k][c8], then [c8] each */
    int32_t c8;
} tk_dw_wide_t;

/* Output row oy from the ring rows; k and the stride s are constants in each instantiation. */
TK_INLINE void dw_wide_row(const tk_dwconv2d_ch_params_t *p, const tk_dw_wide_t *w, const int32_t *ring,
                           int32_t oy, int8_t *output, const int32_t k, const int32_t s) {
    const int32_t c8 = w->c8, channels = p->channels, out_w = p->out_w;
    const size_t row_words = (size_t)p->padded_w * (size_t)c8;
    const int32_t *rows[7];
    for (int32_t ky = 0; ky < k; ++ky) rows[ky] = ring + (size_t)((oy * s + ky) % k) * row_words;
    int8_t *dst = output + (size_t)oy * (size_t)out_w * (size_t)channels;
    for (int32_t c0 = 0; c0 < c8; c0 += 8) {
        tk_v8i wv[49];
        for (int32_t t = 0; t < k * k; ++t) wv[t] = tk_v8i_load(w->wt + (size_t)t * (size_t)c8 + c0);
        const tk_v8i bias = tk_v8i_load(w->bias2 + c0), mult = tk_v8i_load(w->mult + c0);
        const tk_v8i add = tk_v8i_load(w->add + c0), shift = tk_v8i_load(w->shift + c0);
        const int32_t n = tk_min_i32(8, channels - c0);
        for (int32_t ox = 0; ox < out_w; ++ox) {
            tk_v8i acc = bias;
            for (int32_t ky = 0; ky < k; ++ky) {
                const int32_t *x = rows[ky] + (size_t)(ox * s) * (size_t)c8 + c0;
                for (int32_t kx = 0; kx < k; ++kx) acc += tk_v8i_load(x + (size_t)kx * (size_t)c8) * wv[ky * k + kx];
            }
            int32_t q[8];
            tk_v8i_store(q, tk_v8i_rq_fast_lanes(acc, mult, add, shift, p->act_min, p->act_max));
            int8_t *d = dst + (size_t)ox * (size_t)channels + c0;
            for (int32_t i = 0; i < n; ++i) d[i] = (int8_t)q[i];
        }
    }
}

/* Channel c's doubled bias, multiplier, add and shift (3x3: from its table, see the header). */
static int32_t dw_const(const tk_dwconv2d_ch_params_t *p, int32_t c, int32_t which) {
    if (p->k_w == 3) return p->dw3[(size_t)c * 10 + 6 + (size_t)which];
    const int32_t *arrays[4] = {p->bias2, p->rq_mult, p->rq_add, p->rq_shift};
    return arrays[which][c];
}

/* Channel c's doubled weight at (ky, kx). */
static int32_t dw_tap(const tk_dwconv2d_ch_params_t *p, int32_t c, int32_t ky, int32_t kx) {
    if (p->k_w == 3) { /* (2*w0, 2*w1), (2*w1, 2*w2) */
        const int32_t *w = p->dw3 + (size_t)c * 10 + (size_t)(2 * ky);
        return kx == 0 ? tk_lo16(w[0]) : kx == 1 ? tk_hi16(w[0]) : tk_hi16(w[1]);
    }
    const int32_t groups = (p->k_w + 3) / 4;
    return tap(p->filter2 + (size_t)c * (size_t)(p->k_h * 4 * groups) + ky * 4 * groups, kx);
}

static void dw_wide(const tk_dwconv2d_ch_params_t *p, const int8_t *input, int8_t *output) {
    const int32_t k = p->k_w, s = p->stride_w, channels = p->channels, c8 = (channels + 7) & ~7;
    int32_t wt[k * k * c8] __attribute__((aligned(32)));
    int32_t consts[4][c8] __attribute__((aligned(32)));
    int32_t ring[k * p->padded_w * c8] __attribute__((aligned(32)));
    memset(wt, 0, sizeof wt);
    for (int32_t c = 0; c < c8; ++c) {
        for (int32_t i = 0; i < 4; ++i) consts[i][c] = c < channels ? dw_const(p, c, i) : i == 3;
    }
    for (int32_t c = 0; c < channels; ++c) {
        for (int32_t ky = 0; ky < k; ++ky) {
            for (int32_t kx = 0; kx < k; ++kx) wt[(ky * k + kx) * c8 + c] = dw_tap(p, c, ky, kx);
        }
    }
    const tk_dw_wide_t w = {wt, consts[0], consts[1], consts[2], consts[3], c8};
    const size_t row_words = (size_t)p->padded_w * (size_t)c8;
    int32_t loaded = 0; /* plane rows loaded so far, in order */
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        for (const int32_t last = oy * s + k - 1; loaded <= last; ++loaded) {
            dw_wide_load_row(p, input, loaded, c8, ring + (size_t)(loaded % k) * row_words);
        }
        if (k == 3 && s == 1) {
            dw_wide_row(p, &w, ring, oy, output, 3, 1);
        } else if (k == 3) {
            dw_wide_row(p, &w, ring, oy, output, 3, 2);
        } else if (k == 5) {
            dw_wide_row(p, &w, ring, oy, output, 5, s);
        } else {
            dw_wide_row(p, &w, ring, oy, output, 7, s);
        }
    }
}
#endif

#endif

/* ---- 3x3 kernels: sign-extended rows (every build but the TK_WIDE fast path) --------------------------
 * The channels go channel_group (1 or 4) at a time. Each channel of the group has ring_rows rows of
 * halfwords (dw3_row_halfwords each, so that every row starts on a word), either the whole padded plane
 * (ring_rows >= padded_h: staged at once, then every output row in one go) or a ring of 2 * dilation_h
 * + 1 rows (plane row r in slot r % ring_rows, staged just before the first output row that reads it).
 * Halfwords let one word load feed SMLAD with two horizontally adjacent taps. */

/* Halfwords per row (even: every row starts on a word). */
static int32_t dw3_row_halfwords(const tk_dwconv2d_ch_params_t *p) { return (p->padded_w + 1) & ~1; }

/* Two int8 values as a halfword pair (lo, hi): PKHBT on Cortex-M4. */
TK_INLINE uint32_t dw3_pack16(int32_t lo, int32_t hi) {
#if TK_HAVE_DSP
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(lo), "r"(hi));
    return r;
#else
    return (uint32_t)(uint16_t)lo | ((uint32_t)(uint16_t)hi << 16);
#endif
}

/* The first interior value of channel c in plane row ``row`` (in the input), or NULL for a padding row. */
TK_INLINE const int8_t *dw3_row_source(const tk_dwconv2d_ch_params_t *p, const tk_dw_interior_t *r,
                                       const int8_t *input, int32_t c, int32_t row) {
    if (row < r->y0 || row >= r->y1) return NULL;
    return input + ((size_t)(row - p->pad_top) * (size_t)p->in_w + (size_t)r->skip) * (size_t)p->channels
           + (size_t)c;
}

/* Plane row `row` of channel c into dst: columns [x0, x1) (the padding columns hold the zero point
 * from the start of the call); a row outside the input is the zero point. */
static void dw3_stage_row(const tk_dwconv2d_ch_params_t *p, const tk_dw_interior_t *r, const int8_t *input,
                          int32_t c, int32_t row, int16_t *dst) {
    const int32_t n = r->x1 - r->x0;
    int16_t *d = dst + r->x0;
    const int8_t *src = dw3_row_source(p, r, input, c, row);
    if (src == NULL) {
        for (int32_t i = 0; i < n; ++i) d[i] = (int16_t)p->pad_value;
        return;
    }
    const size_t stride = (size_t)p->channels;
    int32_t i = 0;
    for (; i + 4 <= n; i += 4, src += 4 * stride, d += 4) {
        const uint32_t lo = dw3_pack16(src[0], src[stride]);
        const uint32_t hi = dw3_pack16(src[2 * stride], src[3 * stride]);
        memcpy(d, &lo, 4);
        memcpy(d + 2, &hi, 4);
    }
    for (; i < n; ++i, src += stride) *d++ = src[0];
}

/* The same for channels c..c+3 at once into four row sets `set_hw` halfwords apart (channels a multiple
 * of 4; with the DSP extension the rows inside the input go through dw3_stage4_asm instead). */
static void dw3_stage_row4(const tk_dwconv2d_ch_params_t *p, const tk_dw_interior_t *r, const int8_t *input,
                           int32_t c, int32_t row, int16_t *dst, size_t set_hw) {
    const int32_t n = r->x1 - r->x0;
    int16_t *d = dst + r->x0;
    const int8_t *src = dw3_row_source(p, r, input, c, row);
    if (src == NULL) { /* the zero point, two halfwords per store */
        const uint32_t pad2 = (uint32_t)(uint16_t)p->pad_value * 0x10001u;
        for (int32_t k = 0; k < 4; ++k, d += set_hw) {
            int32_t i = 0;
            for (; i + 2 <= n; i += 2) memcpy(d + i, &pad2, 4);
            if (i < n) d[i] = (int16_t)p->pad_value;
        }
        return;
    }
    const size_t stride = (size_t)p->channels;
    for (int32_t i = 0; i < n; ++i, src += stride, ++d) {
        for (int32_t k = 0; k < 4; ++k) d[(size_t)k * set_hw] = src[k];
    }
}

#if TK_HAVE_DSP
/* What dw3_stage4_asm needs besides the rows (the assembly reads it: keep the offsets in step). */
typedef struct {
    int32_t stride;    /* 0: bytes between two pixels of the input (the channel count) */
    int32_t span;      /* 4: bytes of a row's pixels in groups of four */
    int32_t rem;       /* 8: the row's pixels after them, 0 to 3 */
    int32_t src_adv;   /* 12: bytes from after a row's pixels to the next row's first */
    int32_t dst_adv;   /* 16: bytes from after a staged row to the next row's first value */
    int32_t set_bytes; /* 20: bytes between the row sets of two channels */
} tk_dw3_stage_t;

static void dw3_stage_plan(const tk_dwconv2d_ch_params_t *p, const tk_dw_interior_t *r, int32_t rw,
                           size_t set_hw, tk_dw3_stage_t *st) {
    const int32_t n = r->x1 - r->x0;
    st->stride = p->channels;
    st->span = (n & ~3) * p->channels;
    st->rem = n & 3;
    st->src_adv = (p->in_w - n) * p->channels;
    st->dst_adv = 2 * (rw - n);
    st->set_bytes = (int32_t)(2 * set_hw);
}

/* Two pixels (r7, r8) of four channels as each channel's halfword pair, stored at d0..d3 (r1, r4, r5,
 * r6; +4 each): SXTB16 splits a pixel into channels (0, 2) and (1, 3), PKHBT/PKHTB pair the pixels. */
#define TK_DW3_PAIR4                           \
    "sxtb16 r9, r7\n\t"                        \
    "sxtb16 r10, r8\n\t"                       \
    "sxtb16 r7, r7, ror #8\n\t"                \
    "sxtb16 r8, r8, ror #8\n\t"                \
    "pkhbt r11, r9, r10, lsl #16\n\t"          \
    "str r11, [r1], #4\n\t"                    \
    "pkhtb r9, r10, r9, asr #16\n\t"           \
    "str r9, [r5], #4\n\t"                     \
    "pkhbt r11, r7, r8, lsl #16\n\t"           \
    "str r11, [r4], #4\n\t"                    \
    "pkhtb r7, r8, r7, asr #16\n\t"            \
    "str r7, [r6], #4\n\t"
#define TK_DW3_LOAD_PAIR                       \
    "ldr r7, [r0]\n\t"                         \
    "ldr r8, [r0, r3]\n\t"                     \
    "add r0, r0, r3, lsl #1\n\t"

/* `rows` rows of `src` (four channels per pixel, pixels st->stride bytes apart) from `dst` on, each
 * channel's values as halfwords in its own row set (st->set_bytes apart). Four pixels per loop. */
__attribute__((naked, noinline)) static void dw3_stage4_asm(const int8_t *src __attribute__((unused)),
                                                           int16_t *dst __attribute__((unused)),
                                                           int32_t rows __attribute__((unused)),
                                                           const tk_dw3_stage_t *st __attribute__((unused))) {
    __asm__ volatile(
        "push {r4-r11, lr}\n\t"
        "mov r12, r3\n\t"
        "ldr r3, [r12, #0]\n\t"
        "ldr r7, [r12, #20]\n\t"
        "add r4, r1, r7\n\t"
        "add r5, r4, r7\n\t"
        "add r6, r5, r7\n\t"
        "4:\n\t"
        "ldr r7, [r12, #4]\n\t"
        "add lr, r0, r7\n\t"
        "cmp r0, lr\n\t"
        "beq 2f\n\t"
        "1:\n\t"
        TK_DW3_LOAD_PAIR TK_DW3_PAIR4 TK_DW3_LOAD_PAIR TK_DW3_PAIR4
        "cmp r0, lr\n\t"
        "bne 1b\n\t"
        "2:\n\t"
        "ldr lr, [r12, #8]\n\t"
        "tst lr, #2\n\t"
        "beq 3f\n\t"
        TK_DW3_LOAD_PAIR TK_DW3_PAIR4
        "3:\n\t"
        "tst lr, #1\n\t"
        "beq 5f\n\t"
        "ldr r7, [r0]\n\t"
        "add r0, r0, r3\n\t"
        "sxtb16 r9, r7\n\t"
        "sxtb16 r7, r7, ror #8\n\t"
        "strh r9, [r1], #2\n\t"
        "strh r7, [r4], #2\n\t"
        "lsr r9, r9, #16\n\t"
        "lsr r7, r7, #16\n\t"
        "strh r9, [r5], #2\n\t"
        "strh r7, [r6], #2\n\t"
        "5:\n\t"
        "ldrd r7, r8, [r12, #12]\n\t"
        "add r0, r0, r7\n\t"
        "add r1, r1, r8\n\t"
        "add r4, r4, r8\n\t"
        "add r5, r5, r8\n\t"
        "add r6, r6, r8\n\t"
        "subs r2, r2, #1\n\t"
        "bne 4b\n\t"
        "pop {r4-r11, pc}\n\t");
}
#endif

/* One channel's constants and loop state (the assembly below reads it: keep the offsets in step). */
typedef struct {
    int32_t w[6];          /* 0: per kernel row, halfword pairs (2*w0, 2*w1) and (2*w1, 2*w2) */
    int32_t bias2;         /* 24 */
    int32_t mult, add;     /* 28, 32 */
    int32_t shift;         /* 36 */
    int32_t out_stride;    /* 40: bytes between two outputs of the channel (the channel count) */
    int8_t *dst;           /* 44: the next output (the calls leave it after their last output) */
    int32_t span;          /* 48: bytes from a row's first block of six outputs to the end of its last */
    int32_t last;          /* 52: outputs after a row's blocks of six, 0 to 5 */
    int32_t rows;          /* 56: output rows per call (the assembly counts them down) */
    int32_t advance;       /* 60: bytes from the row pointers after a row to the next row's */
    int32_t row_step;      /* 64: bytes between the first plane rows of two output rows */
    int32_t next;          /* 68: bytes from the row pointers after the last row to the next channel's
                            * first rows (its context follows), 0: none */
    const int16_t *end;    /* 72: the assembly's own: where the current row's blocks of six end */
    const int32_t *consts; /* 76: the channel's ten words of p->dw3, copied to offset 0 (w[6] .. shift)
                            * by the assembly, or dw3_channel_consts */
    int32_t single;        /* 80: 6 or 3 when a row is exactly one block of six or three (shorter
                            * loops), else 0 */
} tk_dw3_ctx_t;            /* 84 bytes */

#define TK_DW3_BLOCK 6 /* outputs per block of the assembly; a row's last 1 to 3 outputs: a block of 3 */

/* The fields of a context that depend on the channel: its weights and requantisation, the channel's
 * ten words of p->dw3 (packed at compile time in the context's order). */
static void dw3_channel_consts(tk_dw3_ctx_t *q) {
    memcpy(q, q->consts, 10 * sizeof(int32_t)); /* w[6], bias2, mult, add, shift */
}

/* Bytes a row's blocks move the row pointers: 12 * stride per block of six, of which a row has
 * out_w / 6, and one more when 4 or 5 outputs remain (the block of three moves nothing). */
static int32_t dw3_row_bytes(const tk_dwconv2d_ch_params_t *p) {
    const int32_t rem = p->out_w % TK_DW3_BLOCK, blocks = p->out_w / TK_DW3_BLOCK + (rem > 3);
    return blocks * 2 * TK_DW3_BLOCK * p->stride_w;
}

/* The fields that every channel shares (set once per call; the rows and dst are set per channel). */
static void dw3_shape(const tk_dwconv2d_ch_params_t *p, tk_dw3_ctx_t *q) {
    q->out_stride = p->channels;
    q->span = p->out_w / TK_DW3_BLOCK * 2 * TK_DW3_BLOCK * p->stride_w;
    q->last = p->out_w % TK_DW3_BLOCK;
    q->single = p->out_w == TK_DW3_BLOCK || p->out_w == TK_DW3_BLOCK / 2 ? p->out_w : 0;
    q->row_step = 2 * p->stride_h * dw3_row_halfwords(p);
    q->advance = q->row_step - dw3_row_bytes(p);
}

#if TK_HAVE_DSP
/* Full-range ([-128, 127]) output rows of a channel in Thumb-2 assembly (GCC spills this loop's live
 * values badly): q->rows rows, six outputs per block, then the row's last 4 or 5 outputs from a block of
 * six or its last 1 to 3 from a block of three, storing only the outputs that exist (the sums past the
 * row read past it, into the next row or the slack, and are dropped). r0-r2: the three rows at the
 * first output, r12: the context; the sums r3-r7, lr (the bias on entry, in the last sum to start); the
 * output pointer and the row's end live in the context. Per kernel row and block: the weights (one
 * LDRD: (w0, w1) and (w1, w2)) and the window as halfword pairs from LDRDs; output i takes SMLAD of
 * (x_i, x_i+1) with (w0, w1) and SMLABT of x_i+2 with w2, or (stride 1, odd i) SMLATB of x_i with w0
 * and SMLAD of (x_i+1, x_i+2) with (w1, w2). Requantisation as tk_rq_fast_sat8: SMMLAR, the sign fix,
 * the shift and SSAT, into T. */
#define TK_DW3_RQ(ACC, T)                          \
    "smmlar " T ", " ACC ", r8, r9\n\t"            \
    "add " T ", " T ", " ACC ", asr #31\n\t"       \
    "asr " T ", " T ", r10\n\t"                    \
    "ssat " T ", #8, " T "\n\t"
/* the first four outputs of a block of six (r3-r6), the output pointer left in r4 on the fifth one's
 * place, the stride in r5 */
#define TK_DW3_STORE_FIRST4                        \
    "ldrd r8, r9, [r12, #28]\n\t"                  \
    "ldr r10, [r12, #36]\n\t"                      \
    TK_DW3_RQ("r3", "r11") TK_DW3_RQ("r4", "r3")   \
    "ldr r4, [r12, #44]\n\t"                       \
    "strb r11, [r4]\n\t"                           \
    TK_DW3_RQ("r5", "r11")                         \
    "ldr r5, [r12, #40]\n\t"                       \
    "strb r3, [r4, r5]\n\t"                        \
    "add r4, r4, r5, lsl #1\n\t"                   \
    "strb r11, [r4]\n\t"                           \
    TK_DW3_RQ("r6", "r3")                          \
    "strb r3, [r4, r5]\n\t"                        \
    "add r4, r4, r5, lsl #1\n\t"
#define TK_DW3_STORE6                              \
    TK_DW3_STORE_FIRST4                            \
    TK_DW3_RQ("r7", "r11") TK_DW3_RQ("lr", "r3")   \
    "strb r11, [r4]\n\t"                           \
    "strb r3, [r4, r5]\n\t"                        \
    "add r4, r4, r5, lsl #1\n\t"                   \
    "str r4, [r12, #44]\n\t"
/* the last block of a row when it has 4 or 5 outputs */
#define TK_DW3_STORE_LAST6                         \
    TK_DW3_STORE_FIRST4                            \
    "ldr r6, [r12, #52]\n\t"                       \
    "cmp r6, #4\n\t"                               \
    "beq 7f\n\t"                                   \
    TK_DW3_RQ("r7", "r11")                         \
    "strb r11, [r4]\n\t"                           \
    "add r4, r4, r5\n\t"                           \
    "7:\n\t"                                       \
    "str r4, [r12, #44]\n\t"
/* a block of three outputs (r3-r5), all stored */
#define TK_DW3_STORE3                              \
    "ldrd r8, r9, [r12, #28]\n\t"                  \
    "ldr r10, [r12, #36]\n\t"                      \
    "ldrd r7, r6, [r12, #40]\n\t"                  \
    TK_DW3_RQ("r3", "r11") TK_DW3_RQ("r4", "r3")   \
    "strb r11, [r6]\n\t"                           \
    "strb r3, [r6, r7]\n\t"                        \
    "add r6, r6, r7, lsl #1\n\t"                   \
    TK_DW3_RQ("r5", "r11")                         \
    "strb r11, [r6]\n\t"                           \
    "add r6, r6, r7\n\t"                           \
    "str r6, [r12, #44]\n\t"
/* the last block of a row when it has 1 to 3 outputs (in r3-r5) */
#define TK_DW3_STORE_LAST3                         \
    "ldrd r8, r9, [r12, #28]\n\t"                  \
    "ldr r10, [r12, #36]\n\t"                      \
    "ldrd r7, r6, [r12, #40]\n\t"                  \
    "ldr lr, [r12, #52]\n\t"                       \
    TK_DW3_RQ("r3", "r11")                         \
    "strb r11, [r6]\n\t"                           \
    "add r6, r6, r7\n\t"                           \
    "cmp lr, #1\n\t"                               \
    "beq 7f\n\t"                                   \
    TK_DW3_RQ("r4", "r11")                         \
    "strb r11, [r6]\n\t"                           \
    "add r6, r6, r7\n\t"                           \
    "cmp lr, #2\n\t"                               \
    "beq 7f\n\t"                                   \
    TK_DW3_RQ("r5", "r11")                         \
    "strb r11, [r6]\n\t"                           \
    "add r6, r6, r7\n\t"                           \
    "7:\n\t"                                       \
    "str r6, [r12, #44]\n\t"
/* the channel's constants (its ten words of p->dw3) into the context */
#define TK_DW3_CONSTS                              \
    "ldr r8, [r12, #76]\n\t"                       \
    "ldm r8, {r3-r11, lr}\n\t"                     \
    "stm r12, {r3-r11, lr}\n\t"
/* Count the channel's output rows down (q->rows): at 0 go to DONE, else move the row pointers by
 * q->advance and go to ROW. */
#define TK_DW3_NEXT_ROW(ROW, DONE)                 \
    "ldrd r8, r9, [r12, #56]\n\t"                  \
    "subs r8, r8, #1\n\t"                          \
    "beq " DONE "\n\t"                             \
    "str r8, [r12, #56]\n\t"                       \
    "add r0, r0, r9\n\t"                           \
    "add r1, r1, r9\n\t"                           \
    "add r2, r2, r9\n\t"                           \
    "b " ROW "\n\t"
/* The next channel's context (q->next != 0: move the row pointers to its rows, go to CHANNEL), else go
 * to RETURN. */
#define TK_DW3_NEXT_CHANNEL(CHANNEL, RETURN)       \
    "ldr r8, [r12, #68]\n\t"                       \
    "cmp r8, #0\n\t"                               \
    "beq " RETURN "\n\t"                           \
    "add r0, r0, r8\n\t"                           \
    "add r1, r1, r8\n\t"                           \
    "add r2, r2, r8\n\t"                           \
    "add r12, r12, #84\n\t"                        \
    "b " CHANNEL "\n\t"
/* COMPUTE6: a block of six outputs (lr = the bias on entry; moves the row pointers past the block),
 * COMPUTE3: of three (r5 = the bias on entry; moves nothing). Loops: the channels of the context array
 * (q->next != 0: another one follows), each one's q->rows output rows, each row's blocks of six, then
 * its last 1 to 5 outputs (out of line, after the return: rows of a multiple of six skip them); rows of
 * exactly six or three outputs (q->single) take loops of their own. */
#define TK_DW3_LOOPS(COMPUTE6, COMPUTE3)           \
    "push {r4-r11, lr}\n\t"                        \
    "mov r12, r3\n\t"                              \
    "ldr r8, [r12, #80]\n\t"                       \
    "cmp r8, #3\n\t"                               \
    "beq 13f\n\t"                                  \
    "bhi 11f\n\t"                                  \
    "0:\n\t"                                       \
    TK_DW3_CONSTS                                  \
    "4:\n\t"                                       \
    "ldr r8, [r12, #48]\n\t"                       \
    "add r8, r0, r8\n\t"                           \
    "str r8, [r12, #72]\n\t"                       \
    "cmp r0, r8\n\t"                               \
    "beq 2f\n\t"                                   \
    "1:\n\t"                                       \
    "ldr lr, [r12, #24]\n\t" COMPUTE6              \
    TK_DW3_STORE6                                  \
    "ldr r8, [r12, #72]\n\t"                       \
    "cmp r0, r8\n\t"                               \
    "bne 1b\n\t"                                   \
    "2:\n\t"                                       \
    "ldr r8, [r12, #52]\n\t"                       \
    "cmp r8, #0\n\t"                               \
    "bne 9f\n\t"                                   \
    "3:\n\t"                                       \
    TK_DW3_NEXT_ROW("4b", "5f")                \
    "5:\n\t"                                       \
    TK_DW3_NEXT_CHANNEL("0b", "8f")            \
    "8:\n\t"                                       \
    "pop {r4-r11, pc}\n\t"                         \
    "9:\n\t"                                       \
    "cmp r8, #3\n\t"                               \
    "bhi 6f\n\t"                                   \
    "ldr r5, [r12, #24]\n\t"                       \
    COMPUTE3 TK_DW3_STORE_LAST3                    \
    "b 3b\n\t"                                     \
    "6:\n\t"                                       \
    "ldr lr, [r12, #24]\n\t"                       \
    COMPUTE6 TK_DW3_STORE_LAST6                    \
    "b 3b\n\t"                                     \
    "11:\n\t"                                      \
    TK_DW3_CONSTS                                  \
    "10:\n\t"                                      \
    "ldr lr, [r12, #24]\n\t"                       \
    COMPUTE6 TK_DW3_STORE6                         \
    TK_DW3_NEXT_ROW("10b", "12f")              \
    "12:\n\t"                                      \
    TK_DW3_NEXT_CHANNEL("11b", "8b")           \
    "13:\n\t"                                      \
    TK_DW3_CONSTS                                  \
    "14:\n\t"                                      \
    "ldr r5, [r12, #24]\n\t"                       \
    COMPUTE3 TK_DW3_STORE3                         \
    TK_DW3_NEXT_ROW("14b", "15f")              \
    "15:\n\t"                                      \
    TK_DW3_NEXT_CHANNEL("13b", "8b")

/* r0-r2: the rows, r3: the context (read by the assembly only) */
#define TK_DW3_ASM_ARGS                                                                             \
    const int16_t *r0 __attribute__((unused)), const int16_t *r1 __attribute__((unused)),          \
        const int16_t *r2 __attribute__((unused)), tk_dw3_ctx_t *q __attribute__((unused))

/* One kernel row of a block: input row pointer P, the row's weights at byte W of the context. The
 * first multiply-add into each sum adds to B3..B7: the bias (lr, or r5 for three outputs: the sum
 * that starts last) in the first kernel row, which starts every sum at the bias, else the sum itself. */
/* A block of 6 (or 3) outputs: the three kernel rows of ROW (one stride's row macro) over r0, r1, r2. */
#define TK_DW3_ROWS6(ROW)                                  \
    ROW("r0", "0", "lr", "lr", "lr", "lr", "lr")           \
    ROW("r1", "8", "r3", "r4", "r5", "r6", "r7")           \
    ROW("r2", "16", "r3", "r4", "r5", "r6", "r7")
#define TK_DW3_ROWS3(ROW)                                  \
    ROW("r0", "0", "r5", "r5", "r5")                       \
    ROW("r1", "8", "r3", "r4", "r5")                       \
    ROW("r2", "16", "r3", "r4", "r5")
/* stride 1, six outputs (r3, r4, r5, r6, r7, lr) read x0..x7 as pairs (x0,x1) (x2,x3) (x4,x5) (x6,x7)
 * from two LDRDs: output i takes (x_i, x_i+1) . (w0, w1) and x_i+2 * w2 when i is even, x_i * w0 and
 * (x_i+1, x_i+2) . (w1, w2) when odd, so no load straddles a pair */
#define TK_DW3S1_ROW6(P, W, B3, B4, B5, B6, B7) \
    "ldrd r8, r9, [r12, #" W "]\n\t"           \
    "ldrd r10, r11, [" P "], #12\n\t"          \
    "smlad r3, r10, r8, " B3 "\n\t"            \
    "smlatb r4, r10, r8, " B4 "\n\t"           \
    "smlabt r3, r11, r9, r3\n\t"               \
    "smlad r4, r11, r9, r4\n\t"                \
    "smlad r5, r11, r8, " B5 "\n\t"            \
    "smlatb r6, r11, r8, " B6 "\n\t"           \
    "ldrd r10, r11, [" P ", #-4]\n\t"          \
    "smlabt r5, r10, r9, r5\n\t"               \
    "smlad r6, r10, r9, r6\n\t"                \
    "smlad r7, r10, r8, " B7 "\n\t"            \
    "smlatb lr, r10, r8, lr\n\t"               \
    "smlabt r7, r11, r9, r7\n\t"               \
    "smlad lr, r11, r9, lr\n\t"
/* stride 1, three outputs (r3, r4, r5): x0..x4 */
#define TK_DW3S1_ROW3(P, W, B3, B4, B5)         \
    "ldrd r8, r9, [r12, #" W "]\n\t"           \
    "ldrd r10, r11, [" P "]\n\t"               \
    "smlad r3, r10, r8, " B3 "\n\t"            \
    "smlatb r4, r10, r8, " B4 "\n\t"           \
    "smlabt r3, r11, r9, r3\n\t"               \
    "smlad r4, r11, r9, r4\n\t"                \
    "smlad r5, r11, r8, " B5 "\n\t"            \
    "ldr r10, [" P ", #8]\n\t"                 \
    "smlabt r5, r10, r9, r5\n\t"

__attribute__((naked, noinline)) static void dw3s1_rows_asm(TK_DW3_ASM_ARGS) {
    __asm__ volatile(TK_DW3_LOOPS(TK_DW3_ROWS6(TK_DW3S1_ROW6), TK_DW3_ROWS3(TK_DW3S1_ROW3)));
}

/* stride 2, six outputs: x0..x12, pairs (x0,x1)..(x10,x11) from three LDRDs, x12 from one LDR */
#define TK_DW3S2_ROW6(P, W, B3, B4, B5, B6, B7) \
    "ldrd r8, r9, [r12, #" W "]\n\t"           \
    "ldrd r10, r11, [" P "], #24\n\t"          \
    "smlad r3, r10, r8, " B3 "\n\t"            \
    "smlabt r3, r11, r9, r3\n\t"               \
    "smlad r4, r11, r8, " B4 "\n\t"            \
    "ldrd r10, r11, [" P ", #-16]\n\t"         \
    "smlabt r4, r10, r9, r4\n\t"               \
    "smlad r5, r10, r8, " B5 "\n\t"            \
    "smlabt r5, r11, r9, r5\n\t"               \
    "smlad r6, r11, r8, " B6 "\n\t"            \
    "ldrd r10, r11, [" P ", #-8]\n\t"          \
    "smlabt r6, r10, r9, r6\n\t"               \
    "smlad r7, r10, r8, " B7 "\n\t"            \
    "smlabt r7, r11, r9, r7\n\t"               \
    "smlad lr, r11, r8, lr\n\t"                \
    "ldr r10, [" P "]\n\t"                     \
    "smlabt lr, r10, r9, lr\n\t"
/* stride 2, three outputs: x0..x6 (two LDRDs) */
#define TK_DW3S2_ROW3(P, W, B3, B4, B5)         \
    "ldrd r8, r9, [r12, #" W "]\n\t"           \
    "ldrd r10, r11, [" P "]\n\t"               \
    "smlad r3, r10, r8, " B3 "\n\t"            \
    "smlabt r3, r11, r9, r3\n\t"               \
    "smlad r4, r11, r8, " B4 "\n\t"            \
    "ldrd r10, r11, [" P ", #8]\n\t"           \
    "smlabt r4, r10, r9, r4\n\t"               \
    "smlad r5, r10, r8, " B5 "\n\t"            \
    "smlabt r5, r11, r9, r5\n\t"

__attribute__((naked, noinline)) static void dw3s2_rows_asm(TK_DW3_ASM_ARGS) {
    __asm__ volatile(TK_DW3_LOOPS(TK_DW3_ROWS6(TK_DW3S2_ROW6), TK_DW3_ROWS3(TK_DW3S2_ROW3)));
}

/* One output at column x (the sum before requantisation); reads one halfword past the window. */
TK_INLINE int32_t dw3_one(const int16_t *const *rows, int32_t x, const tk_dw3_ctx_t *q) {
    int32_t a = q->bias2;
    for (int32_t ky = 0; ky < 3; ++ky) {
        int32_t v01, v2;
        memcpy(&v01, rows[ky] + x, 4);
        memcpy(&v2, rows[ky] + x + 2, 4);
        a = __smlad(v01, q->w[2 * ky], a);
        a = __smlabb(v2, tk_hi16(q->w[2 * ky + 1]), a);
    }
    return a;
}
#else
TK_INLINE int32_t dw3_one(const int16_t *const *rows, int32_t x, const tk_dw3_ctx_t *q) {
    int32_t a = q->bias2;
    for (int32_t ky = 0; ky < 3; ++ky) {
        const int16_t *r = rows[ky] + x;
        const int32_t w01 = q->w[2 * ky];
        const int32_t w0 = tk_lo16(w01), w1 = tk_hi16(w01), w2 = tk_hi16(q->w[2 * ky + 1]);
        a += r[0] * w0 + r[1] * w1 + r[2] * w2;
    }
    return a;
}
#endif

/* q->rows output rows of each of the `group` channels q[0..group) (rows[ky]: kernel row ky of channel
 * q[0]'s first output row; the next channel's rows set_hw halfwords further; each output row q->row_step
 * bytes further; q->dst: the first output, left after the last). */
TK_INLINE void dw3_run(const tk_dwconv2d_ch_params_t *p, const int16_t *const *rows, int32_t group,
                       size_t set_hw, tk_dw3_ctx_t *q, const int full) {
    const int32_t s = p->stride_w;
#if TK_HAVE_DSP
    if (full) {
        if (s == 1) {
            dw3s1_rows_asm(rows[0], rows[1], rows[2], q);
        } else {
            dw3s2_rows_asm(rows[0], rows[1], rows[2], q);
        }
        return;
    }
#endif
    for (int32_t k = 0; k < group; ++k, ++q) {
        dw3_channel_consts(q);
        const tk_dw_rq_t rq = {q->mult, q->add, q->shift, p->act_min, p->act_max};
        const size_t step = (size_t)q->row_step / 2, offset = (size_t)k * set_hw;
        const int16_t *at[3] = {rows[0] + offset, rows[1] + offset, rows[2] + offset};
        int8_t *d = q->dst;
        for (int32_t n = 0; n < q->rows; ++n) {
            for (int32_t ox = 0; ox < p->out_w; ++ox, d += q->out_stride) {
                *d = dw_out(&rq, dw3_one(at, ox * s, q), full);
            }
            for (int32_t ky = 0; ky < 3; ++ky) at[ky] += step;
        }
        q->dst = d;
    }
}

/* Where and how the rows of a call are staged. */
typedef struct {
    const tk_dwconv2d_ch_params_t *p;
    const int8_t *input;
    int16_t *sets;
    size_t set_hw;
    int32_t rw, group;
    tk_dw_interior_t r;
#if TK_HAVE_DSP
    tk_dw3_stage_t st;
#endif
} tk_dw3_stager_t;

/* Stage plane rows [row, row + count) of channels c0.. (group 1 or 4) into consecutive rows of their
 * row sets from dst (channel c0's set) on. */
TK_INLINE void dw3_stage(const tk_dw3_stager_t *g, int32_t c0, int32_t row, int32_t count, int16_t *dst) {
#if TK_HAVE_DSP
    if (g->group == 4 && row >= g->r.y0 && row + count <= g->r.y1) { /* rows inside the input */
        if (count > 0) {
            dw3_stage4_asm(dw3_row_source(g->p, &g->r, g->input, c0, row), dst + g->r.x0, count, &g->st);
        }
        return;
    }
#endif
    for (int32_t k = 0; k < count; ++k, dst += g->rw) {
        if (g->group == 4) {
            dw3_stage_row4(g->p, &g->r, g->input, c0, row + k, dst, g->set_hw);
        } else {
            dw3_stage_row(g->p, &g->r, g->input, c0, row + k, dst);
        }
    }
}

/* The 3x3 kernel. */
static void dw3(const tk_dwconv2d_ch_params_t *p, const int8_t *input, int8_t *output, int16_t *sets) {
    const int32_t rw = dw3_row_halfwords(p), dil = p->dilation_h, slots = p->ring_rows;
    const int32_t group = p->channel_group == 4 ? 4 : 1, plane = slots >= p->padded_h;
    const int32_t step = p->stride_h % slots;
    const size_t set_hw = (size_t)slots * (size_t)rw;
    tk_dw3_stager_t g = {p, input, sets, set_hw, rw, group, interior(p)};
#if TK_HAVE_DSP
    dw3_stage_plan(p, &g.r, rw, set_hw, &g.st);
#endif
    const int full = p->act_min == -128 && p->act_max == 127;
    const uint32_t pad2 = (uint32_t)(uint16_t)p->pad_value * 0x10001u; /* the padding, two per store */
    for (size_t i = 0; i < (size_t)group * set_hw; i += 2) memcpy(sets + i, &pad2, 4); /* set_hw is even */
    tk_dw3_ctx_t q[4];
    for (int32_t k = 0; k < group; ++k) {
        dw3_shape(p, &q[k]);
        /* the row pointers end after the last block of the last row (output row rows - 1) */
        const int32_t used = (plane ? p->out_h - 1 : 0) * q[k].row_step + dw3_row_bytes(p);
        q[k].next = k + 1 < group ? (int32_t)(2 * set_hw) - used : 0;
    }
    const int32_t rows_per_call = plane ? p->out_h : 1;
    for (int32_t c0 = 0; c0 < p->channels; c0 += group) {
        for (int32_t k = 0; k < group; ++k) {
            q[k].consts = p->dw3 + (size_t)(c0 + k) * 10;
            q[k].dst = output + (size_t)(c0 + k);
            q[k].rows = rows_per_call; /* the assembly counts it down */
        }
        if (plane) { /* the input rows (the padding rows keep the zero point), then every output row */
            dw3_stage(&g, c0, g.r.y0, g.r.y1 - g.r.y0, sets + (size_t)g.r.y0 * (size_t)rw);
            const int16_t *rows[3] = {sets, sets + (size_t)(dil * rw), sets + (size_t)(2 * dil * rw)};
            dw3_run(p, rows, group, set_hw, q, full);
            continue;
        }
        /* a ring: plane row r in slot r % slots, staged just before the first output row that reads it */
        int16_t *const ring_end = sets + set_hw;
        int16_t *stage_at = sets;    /* the slot of the next plane row to stage */
        const int16_t *top = sets;   /* the slot of the output row's first plane row */
        int32_t next = 0;            /* the next plane row to stage */
#if TK_HAVE_DSP
        const int8_t *src = dw3_row_source(p, &g.r, input, c0, g.r.y0); /* the next input row (in order) */
#endif
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            for (const int32_t bottom = oy * p->stride_h + 2 * dil; next <= bottom; ++next) {
#if TK_HAVE_DSP
                if (group == 4 && next >= g.r.y0 && next < g.r.y1) {
                    dw3_stage4_asm(src, stage_at + g.r.x0, 1, &g.st);
                    src += (size_t)p->in_w * (size_t)p->channels;
                } else {
                    dw3_stage(&g, c0, next, 1, stage_at);
                }
#else
                dw3_stage(&g, c0, next, 1, stage_at);
#endif
                stage_at += rw;
                stage_at = stage_at == ring_end ? sets : stage_at;
            }
            const int16_t *mid = top + (size_t)(dil * rw), *low;
            mid -= mid >= ring_end ? set_hw : 0;
            low = mid + (size_t)(dil * rw);
            low -= low >= ring_end ? set_hw : 0;
            const int16_t *rows[3] = {top, mid, low};
            dw3_run(p, rows, group, set_hw, q, full); /* leaves every q[k].dst on its next output row */
            top += (size_t)(step * rw);
            top -= top >= ring_end ? set_hw : 0;
        }
    }
}

void tk_dwconv2d_ch_s8(const tk_dwconv2d_ch_params_t *p, const void *const *in, void *const *out, void *scratch) {
    const int8_t *input = (const int8_t *)in[0];
    int8_t *output = (int8_t *)out[0];
#if TK_WIDE
    if (dw_wide_fits(p)) {
        dw_wide(p, input, output);
        return;
    }
#endif
    if (p->k_h == 3 && p->k_w == 3) {
        dw3(p, input, output, (int16_t *)scratch);
        return;
    }
    int8_t *plane = (int8_t *)scratch;
    const tk_dw_interior_t r = interior(p);
    memset(plane, p->pad_value, (size_t)p->padded_h * (size_t)p->padded_w); /* the padding of every channel */
    for (int32_t c = 0; c < p->channels; ++c) {
        stage_channel(p, &r, input, c, plane);
        channel(p, plane, c, output + c);
    }
}
