/* tinyml-kit kernel: channel-by-channel depthwise convolution for 3x3, 5x5 and 7x7 kernels, stride 1 or 2
 * (see tk_dwconv2d_ch.h), bit-exact with TFLite's reference DepthwiseConvPerChannel: taps in the padding
 * read the input zero point, which contributes 0 once the input offset is folded into the bias.
 * 3x3 (the MobileNet layers) runs on int16 rows, with Cortex-M4 assembly for blocks of four outputs;
 * 5x5 and 7x7 on a byte plane. */
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

static void dw_wide(const tk_dwconv2d_ch_params_t *p, const int8_t *input, int8_t *output) {
    const int32_t k = p->k_w, s = p->stride_w, channels = p->channels, c8 = (channels + 7) & ~7;
    const int32_t groups = (k + 3) / 4;
    int32_t wt[k * k * c8] __attribute__((aligned(32)));
    int32_t consts[4][c8] __attribute__((aligned(32)));
    int32_t ring[k * p->padded_w * c8] __attribute__((aligned(32)));
    memset(wt, 0, sizeof wt);
    for (int32_t c = 0; c < c8; ++c) {
        const int inside = c < channels;
        consts[0][c] = inside ? p->bias2[c] : 0;
        consts[1][c] = inside ? p->rq_mult[c] : 0;
        consts[2][c] = inside ? p->rq_add[c] : 0;
        consts[3][c] = inside ? p->rq_shift[c] : 1;
    }
    for (int32_t c = 0; c < channels; ++c) {
        const int16_t *f = p->filter2 + (size_t)c * (size_t)(k * 4 * groups);
        for (int32_t ky = 0; ky < k; ++ky) {
            for (int32_t kx = 0; kx < k; ++kx) wt[(ky * k + kx) * c8 + c] = tap(f + ky * 4 * groups, kx);
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

#if TK_HAVE_DSP
/* Two pixels (src, src + stride) of four channels as each channel's halfword pair at d + k * set_hw. */
TK_INLINE void dw3_pixels4(const int8_t *src, size_t stride, int16_t *d, size_t set_hw) {
    uint32_t a, b;
    memcpy(&a, src, 4);
    memcpy(&b, src + stride, 4);
    const int32_t ea = tk_even16(a), oa = tk_odd16(a), eb = tk_even16(b), ob = tk_odd16(b);
    uint32_t c0, c1, c2, c3;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(c0) : "r"(ea), "r"(eb));
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(c1) : "r"(oa), "r"(ob));
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(c2) : "r"(eb), "r"(ea));
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(c3) : "r"(ob), "r"(oa));
    memcpy(d, &c0, 4);
    memcpy(d + set_hw, &c1, 4);
    memcpy(d + 2 * set_hw, &c2, 4);
    memcpy(d + 3 * set_hw, &c3, 4);
}
#endif

/* The same for channels c..c+3 at once into four row sets `set_hw` halfwords apart (channels a multiple
 * of 4: one word load gives the four channels of a pixel; with the DSP extension SXTB16 and PKHBT/PKHTB
 * turn two pixels into the four channels' halfword pairs). */
static void dw3_stage_row4(const tk_dwconv2d_ch_params_t *p, const tk_dw_interior_t *r, const int8_t *input,
                           int32_t c, int32_t row, int16_t *dst, size_t set_hw) {
    const int32_t n = r->x1 - r->x0;
    int16_t *d = dst + r->x0;
    const int8_t *src = dw3_row_source(p, r, input, c, row);
    if (src == NULL) {
        for (int32_t k = 0; k < 4; ++k, d += set_hw) {
            for (int32_t i = 0; i < n; ++i) d[i] = (int16_t)p->pad_value;
        }
        return;
    }
    const size_t stride = (size_t)p->channels;
    int32_t i = 0;
#if TK_HAVE_DSP
    for (; i + 2 <= n; i += 2, src += 2 * stride, d += 2) dw3_pixels4(src, stride, d, set_hw);
#endif
    for (; i < n; ++i, src += stride, ++d) {
        for (int32_t k = 0; k < 4; ++k) d[(size_t)k * set_hw] = src[k];
    }
}

/* One channel's constants and loop state (the assembly below reads it: keep the offsets in step). */
typedef struct {
    int32_t w[6];          /* 0: per kernel row, halfword pairs (2*w0, 2*w1) and (2*w2, 0) */
    int32_t bias2;         /* 24 */
    int32_t mult, add;     /* 28, 32 */
    int32_t shift;         /* 36 */
    int32_t out_stride;    /* 40: bytes between two outputs of the channel (the channel count) */
    int8_t *dst;           /* 44: the next output (the calls leave it after their last output) */
    int32_t span;          /* 48: bytes from a row's first block to its last */
    int32_t last;          /* 52: outputs in a row's last block, 1 to 4 */
    int32_t rows;          /* 56: output rows per call (the assembly counts them down) */
    int32_t advance;       /* 60: bytes from the row pointers after a row to the next row's */
    int32_t row_step;      /* 64: bytes between the first plane rows of two output rows */
    int32_t next;          /* 68: bytes from the row pointers after the last row to the next channel's
                            * first rows (its context follows), 0: none */
} tk_dw3_ctx_t;            /* 72 bytes */

/* The fields of a context that depend on the channel: its weights and requantisation. */
static void dw3_channel_consts(const tk_dwconv2d_ch_params_t *p, int32_t c, tk_dw3_ctx_t *q) {
    const int16_t *f = p->filter2 + (size_t)c * 12; /* filter2 rows: (2*w0, 2*w2), (2*w1, 0) */
    for (int32_t ky = 0; ky < 3; ++ky, f += 4) {
        q->w[2 * ky] = (int32_t)((uint32_t)(uint16_t)f[0] | ((uint32_t)(uint16_t)f[2] << 16));
        q->w[2 * ky + 1] = (int32_t)(uint32_t)(uint16_t)f[1];
    }
    q->bias2 = p->bias2[c];
    q->mult = p->rq_mult[c];
    q->add = p->rq_add[c];
    q->shift = p->rq_shift[c];
}

/* The fields that every channel shares (set once per call; the rows and dst are set per channel). */
static void dw3_shape(const tk_dwconv2d_ch_params_t *p, tk_dw3_ctx_t *q) {
    q->out_stride = p->channels;
    const int32_t blocks = (p->out_w + 3) >> 2, block_bytes = 8 * p->stride_w;
    q->span = (blocks - 1) * block_bytes;
    q->last = p->out_w - 4 * (blocks - 1);
    q->row_step = 2 * p->stride_h * dw3_row_halfwords(p);
    q->advance = q->row_step - blocks * block_bytes;
}

#if TK_HAVE_DSP
/* Full-range ([-128, 127]) output rows of a channel in Thumb-2 assembly (GCC spills this loop's 19 live
 * values badly): q->rows rows, four outputs per block; a row's last block stores only the outputs that
 * exist (it may read past the row, into the next row or the slack, for sums it drops). r0-r2: the
 * three rows at the first output, r3: the context. Per kernel row and block: the weights (one LDRD)
 * and the window as halfword pairs, (x0, x1) and (x2, x3) from one LDRD, the odd pairs from unaligned
 * loads; SMLAD takes two taps, SMLABB/SMLATB the third. Requantisation as tk_rq_fast_sat8: SMMLAR, the
 * sign fix, the shift and SSAT. */
#define TK_DW3_RQ(ACC)                         \
    "smmlar r11, " ACC ", r8, r9\n\t"          \
    "add r11, r11, " ACC ", asr #31\n\t"       \
    "asr r11, r11, r10\n\t"                    \
    "ssat r11, #8, r11\n\t"
#define TK_DW3_STORE4                          \
    "ldrd r8, r9, [r12, #28]\n\t"              \
    "ldr r10, [r12, #36]\n\t"                  \
    TK_DW3_RQ("r4") "strb r11, [r3]\n\t"      \
    "ldr r4, [r12, #40]\n\t"                   \
    TK_DW3_RQ("r5") "strb r11, [r3, r4]\n\t"  \
    "add r3, r3, r4, lsl #1\n\t"               \
    TK_DW3_RQ("r6") "strb r11, [r3]\n\t"      \
    TK_DW3_RQ("r7") "strb r11, [r3, r4]\n\t"  \
    "add r3, r3, r4, lsl #1\n\t"
#define TK_DW3_STORE_LAST                      \
    "ldrd r8, r9, [r12, #28]\n\t"              \
    "ldr r10, [r12, #36]\n\t"                  \
    "ldr lr, [r12, #52]\n\t"                   \
    TK_DW3_RQ("r4") "strb r11, [r3]\n\t"      \
    "ldr r4, [r12, #40]\n\t"                   \
    "add r3, r3, r4\n\t"                       \
    TK_DW3_RQ("r5") "strb r11, [r3]\n\t"      \
    "add r3, r3, r4\n\t"                       \
    TK_DW3_RQ("r6") "strb r11, [r3]\n\t"      \
    "add r3, r3, r4\n\t"                       \
    "cmp lr, #3\n\t"                           \
    "beq 3f\n\t"                               \
    TK_DW3_RQ("r7") "strb r11, [r3]\n\t"      \
    "add r3, r3, r4\n\t"                       \
    "b 3f\n\t"
/* the last block of a row when it has 1 or 2 outputs (in r4, r5) */
#define TK_DW3_STORE_LAST2                     \
    "ldrd r8, r9, [r12, #28]\n\t"              \
    "ldr r10, [r12, #36]\n\t"                  \
    TK_DW3_RQ("r4") "strb r11, [r3]\n\t"      \
    "ldr r4, [r12, #40]\n\t"                   \
    "add r3, r3, r4\n\t"                       \
    "cmp lr, #1\n\t"                           \
    "beq 3f\n\t"                               \
    TK_DW3_RQ("r5") "strb r11, [r3]\n\t"      \
    "add r3, r3, r4\n\t"                       \
    "3:\n\t"
/* COMPUTE: a block of four outputs, COMPUTE2: of two (r7 = the bias on entry). Loops: the channels of
 * the context array (q->next != 0: another one follows), each one's q->rows output rows, each row's
 * blocks; the last block of a row has 1 to 4 outputs. */
#define TK_DW3_LOOPS(COMPUTE, COMPUTE2)        \
    "push {r4-r11, lr}\n\t"                    \
    "mov r12, r3\n\t"                          \
    "ldr r3, [r12, #44]\n\t"                   \
    "4:\n\t"                                   \
    "ldr lr, [r12, #48]\n\t"                   \
    "add lr, r0, lr\n\t"                       \
    "cmp r0, lr\n\t"                           \
    "beq 2f\n\t"                               \
    "1:\n\t"                                   \
    "ldr r7, [r12, #24]\n\t" COMPUTE           \
    TK_DW3_STORE4                              \
    "cmp r0, lr\n\t"                           \
    "bne 1b\n\t"                               \
    "2:\n\t"                                   \
    "ldr r7, [r12, #24]\n\t"                   \
    "ldr lr, [r12, #52]\n\t"                   \
    "cmp lr, #2\n\t"                           \
    "bls 6f\n\t"                               \
    COMPUTE TK_DW3_STORE_LAST                  \
    "6:\n\t"                                   \
    COMPUTE2 TK_DW3_STORE_LAST2                \
    "ldr r8, [r12, #56]\n\t"                   \
    "subs r8, r8, #1\n\t"                      \
    "beq 5f\n\t"                               \
    "str r8, [r12, #56]\n\t"                   \
    "ldr r8, [r12, #60]\n\t"                   \
    "add r0, r0, r8\n\t"                       \
    "add r1, r1, r8\n\t"                       \
    "add r2, r2, r8\n\t"                       \
    "b 4b\n\t"                                 \
    "5:\n\t"                                   \
    "str r3, [r12, #44]\n\t"                   \
    "ldr r8, [r12, #68]\n\t"                   \
    "cmp r8, #0\n\t"                           \
    "beq 8f\n\t"                               \
    "add r0, r0, r8\n\t"                       \
    "add r1, r1, r8\n\t"                       \
    "add r2, r2, r8\n\t"                       \
    "add r12, r12, #72\n\t"                    \
    "ldr r3, [r12, #44]\n\t"                   \
    "b 4b\n\t"                                 \
    "8:\n\t"                                   \
    "pop {r4-r11, pc}\n\t"

/* r0-r2: the rows, r3: the context (read by the assembly only) */
#define TK_DW3_ASM_ARGS                                                                             \
    const int16_t *r0 __attribute__((unused)), const int16_t *r1 __attribute__((unused)),          \
        const int16_t *r2 __attribute__((unused)), tk_dw3_ctx_t *q __attribute__((unused))

/* One kernel row of a block: input row pointer P, the row's weights at byte W of the context. The first
 * multiply-add into the sums r4, r5, r6 adds to A4, A5, A6: r7 (the bias) in the first kernel row, which
 * starts every sum at the bias, else the sums themselves; r7 is also the fourth sum. */
/* stride 1: outputs 0..3 read x0..x5 of each row */
#define TK_DW3S1_ROW(P, W, A4, A5, A6)          \
    "ldrd r8, r9, [r12, #" W "]\n\t"           \
    "ldrd r10, r11, [" P "], #8\n\t"           \
    "smlad r4, r10, r8, " A4 "\n\t"            \
    "smlad r6, r11, r8, " A6 "\n\t"            \
    "smlabb r4, r11, r9, r4\n\t"               \
    "smlatb r5, r11, r9, " A5 "\n\t"           \
    "ldr r10, [" P ", #-6]\n\t"                \
    "smlad r5, r10, r8, r5\n\t"                \
    "ldr r10, [" P ", #-2]\n\t"                \
    "smlad r7, r10, r8, r7\n\t"                \
    "ldr r10, [" P "]\n\t"                     \
    "smlabb r6, r10, r9, r6\n\t"               \
    "smlatb r7, r10, r9, r7\n\t"
#define TK_DW3S1_BLOCK \
    TK_DW3S1_ROW("r0", "0", "r7", "r7", "r7") TK_DW3S1_ROW("r1", "8", "r4", "r5", "r6") \
    TK_DW3S1_ROW("r2", "16", "r4", "r5", "r6")
/* two outputs: x0..x3 */
#define TK_DW3S1_ROW2(P, W, A4, A5)             \
    "ldrd r8, r9, [r12, #" W "]\n\t"           \
    "ldrd r10, r11, [" P "], #8\n\t"           \
    "smlad r4, r10, r8, " A4 "\n\t"            \
    "smlabb r4, r11, r9, r4\n\t"               \
    "smlatb r5, r11, r9, " A5 "\n\t"           \
    "ldr r10, [" P ", #-6]\n\t"                \
    "smlad r5, r10, r8, r5\n\t"
#define TK_DW3S1_BLOCK2 \
    TK_DW3S1_ROW2("r0", "0", "r7", "r7") TK_DW3S1_ROW2("r1", "8", "r4", "r5") \
    TK_DW3S1_ROW2("r2", "16", "r4", "r5")

__attribute__((naked, noinline)) static void dw3s1_rows_asm(TK_DW3_ASM_ARGS) {
    __asm__ volatile(TK_DW3_LOOPS(TK_DW3S1_BLOCK, TK_DW3S1_BLOCK2));
}

/* stride 2: outputs 0..3 read x0..x8 of each row */
#define TK_DW3S2_ROW(P, W, A4, A5, A6)          \
    "ldrd r8, r9, [r12, #" W "]\n\t"           \
    "ldrd r10, r11, [" P "], #16\n\t"          \
    "smlad r4, r10, r8, " A4 "\n\t"            \
    "smlabb r4, r11, r9, r4\n\t"               \
    "smlad r5, r11, r8, " A5 "\n\t"            \
    "ldrd r10, r11, [" P ", #-8]\n\t"          \
    "smlabb r5, r10, r9, r5\n\t"               \
    "smlad r6, r10, r8, " A6 "\n\t"            \
    "smlabb r6, r11, r9, r6\n\t"               \
    "smlad r7, r11, r8, r7\n\t"                \
    "ldr r10, [" P "]\n\t"                     \
    "smlabb r7, r10, r9, r7\n\t"
#define TK_DW3S2_BLOCK \
    TK_DW3S2_ROW("r0", "0", "r7", "r7", "r7") TK_DW3S2_ROW("r1", "8", "r4", "r5", "r6") \
    TK_DW3S2_ROW("r2", "16", "r4", "r5", "r6")
/* two outputs: x0..x4 */
#define TK_DW3S2_ROW2(P, W, A4, A5)             \
    "ldrd r8, r9, [r12, #" W "]\n\t"           \
    "ldrd r10, r11, [" P "], #16\n\t"          \
    "smlad r4, r10, r8, " A4 "\n\t"            \
    "smlabb r4, r11, r9, r4\n\t"               \
    "smlad r5, r11, r8, " A5 "\n\t"            \
    "ldr r10, [" P ", #-8]\n\t"                \
    "smlabb r5, r10, r9, r5\n\t"
#define TK_DW3S2_BLOCK2 \
    TK_DW3S2_ROW2("r0", "0", "r7", "r7") TK_DW3S2_ROW2("r1", "8", "r4", "r5") \
    TK_DW3S2_ROW2("r2", "16", "r4", "r5")

__attribute__((naked, noinline)) static void dw3s2_rows_asm(TK_DW3_ASM_ARGS) {
    __asm__ volatile(TK_DW3_LOOPS(TK_DW3S2_BLOCK, TK_DW3S2_BLOCK2));
}

/* One output at column x (the sum before requantisation); reads one halfword past the window. */
TK_INLINE int32_t dw3_one(const int16_t *const *rows, int32_t x, const tk_dw3_ctx_t *q) {
    int32_t a = q->bias2;
    for (int32_t ky = 0; ky < 3; ++ky) {
        int32_t v01, v2;
        memcpy(&v01, rows[ky] + x, 4);
        memcpy(&v2, rows[ky] + x + 2, 4);
        a = __smlad(v01, q->w[2 * ky], a);
        a = __smlabb(v2, q->w[2 * ky + 1], a);
    }
    return a;
}
#else
TK_INLINE int32_t dw3_one(const int16_t *const *rows, int32_t x, const tk_dw3_ctx_t *q) {
    int32_t a = q->bias2;
    for (int32_t ky = 0; ky < 3; ++ky) {
        const int16_t *r = rows[ky] + x;
        const int32_t w01 = q->w[2 * ky];
        const int32_t w0 = (int16_t)(w01 & 0xffff), w1 = w01 >> 16, w2 = (int16_t)q->w[2 * ky + 1];
        a += r[0] * w0 + r[1] * w1 + r[2] * w2;
    }
    return a;
}
#endif

/* q->rows output rows of each of the `group` channels q[0..group) (rows[ky]: kernel row ky of channel
 * q[0]'s first output row; the next channel's rows set_hw halfwords further; each output row q->row_step
 * bytes further; q->dst: the first output, left after the last). */
static void dw3_run(const tk_dwconv2d_ch_params_t *p, const int16_t *const *rows, int32_t group,
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

/* Stage plane row `row` of channels c0.. (group 1 or 4) into row `slot` of their row sets. */
static void dw3_stage(const tk_dwconv2d_ch_params_t *p, const tk_dw_interior_t *r, const int8_t *input,
                      int32_t c0, int32_t group, int32_t row, int16_t *set, size_t set_hw, int32_t rw,
                      int32_t slot) {
    int16_t *dst = set + (size_t)slot * (size_t)rw;
    if (group == 4) {
        dw3_stage_row4(p, r, input, c0, row, dst, set_hw);
    } else {
        dw3_stage_row(p, r, input, c0, row, dst);
    }
}

/* The 3x3 kernel. */
static void dw3(const tk_dwconv2d_ch_params_t *p, const int8_t *input, int8_t *output, int16_t *sets) {
    const tk_dw_interior_t r = interior(p);
    const int32_t rw = dw3_row_halfwords(p), dil = p->dilation_h, slots = p->ring_rows;
    const int32_t group = p->channel_group == 4 ? 4 : 1, plane = slots >= p->padded_h;
    const int32_t step = p->stride_h % slots;
    const size_t set_hw = (size_t)slots * (size_t)rw;
    const int full = p->act_min == -128 && p->act_max == 127;
    for (size_t i = 0; i < (size_t)group * set_hw; ++i) sets[i] = (int16_t)p->pad_value; /* the padding */
    tk_dw3_ctx_t q[4];
    for (int32_t k = 0; k < group; ++k) {
        dw3_shape(p, &q[k]);
        /* the row pointers end after the last block of the last row (output row rows - 1) */
        const int32_t used = (plane ? p->out_h - 1 : 0) * q[k].row_step + q[k].span + 8 * p->stride_w;
        q[k].next = k + 1 < group ? (int32_t)(2 * set_hw) - used : 0;
    }
    const int32_t rows_per_call = plane ? p->out_h : 1;
    for (int32_t c0 = 0; c0 < p->channels; c0 += group) {
        for (int32_t k = 0; k < group; ++k) {
            dw3_channel_consts(p, c0 + k, &q[k]);
            q[k].dst = output + (size_t)(c0 + k);
            q[k].rows = rows_per_call; /* the assembly counts it down */
        }
        if (plane) { /* the input rows (the padding rows keep the zero point), then every output row */
            for (int32_t row = r.y0; row < r.y1; ++row) {
                dw3_stage(p, &r, input, c0, group, row, sets, set_hw, rw, row);
            }
            const int16_t *rows[3] = {sets, sets + (size_t)(dil * rw), sets + (size_t)(2 * dil * rw)};
            dw3_run(p, rows, group, set_hw, q, full);
            continue;
        }
        int32_t next = 0, next_slot = 0; /* the next plane row to stage and its slot */
        int32_t top_slot = 0;            /* the slot of the output row's first plane row */
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            for (const int32_t bottom = oy * p->stride_h + 2 * dil; next <= bottom; ++next) {
                dw3_stage(p, &r, input, c0, group, next, sets, set_hw, rw, next_slot);
                next_slot = next_slot + 1 == slots ? 0 : next_slot + 1;
            }
            int32_t mid_slot = top_slot + dil, low_slot = top_slot + 2 * dil;
            mid_slot -= mid_slot >= slots ? slots : 0;
            low_slot -= low_slot >= slots ? slots : 0;
            const int16_t *rows[3] = {sets + (size_t)top_slot * (size_t)rw,
                                      sets + (size_t)mid_slot * (size_t)rw,
                                      sets + (size_t)low_slot * (size_t)rw};
            dw3_run(p, rows, group, set_hw, q, full); /* leaves every q[k].dst on its next output row */
            top_slot += step;
            top_slot -= top_slot >= slots ? slots : 0;
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
