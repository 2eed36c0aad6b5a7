/* tinyml-kit kernel: channel-by-channel depthwise convolution for 3x3, 5x5 and 7x7 kernels, stride 1 or 2
 * (see tk_dwconv2d_ch.h), bit-exact with TFLite's reference DepthwiseConvPerChannel: taps in the padding
 * read the input zero point, which contributes 0 once the input offset is folded into the bias. */
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
 * (for 3x3, channel_k3s1 below). */
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

/* 3x3, stride 1: two outputs per step, the nine weights in registers (six halfword pairs). */
TK_INLINE void channel_k3s1(const tk_dwconv2d_ch_params_t *p, const int8_t *plane, const uint32_t *w,
                            int32_t bias2, const tk_dw_rq_t *q, int8_t *dst, const int full_range) {
    const int32_t w0 = (int32_t)w[0], w1 = (int32_t)w[1], w2 = (int32_t)w[2], w3 = (int32_t)w[3];
    const int32_t w4 = (int32_t)w[4], w5 = (int32_t)w[5];
    const size_t pw = (size_t)p->padded_w, cs = (size_t)p->channels, dil = (size_t)p->dilation_h * pw;
    const int32_t out_w = p->out_w, pairs = out_w >> 1;
    for (int32_t oy = 0; oy < p->out_h; ++oy, dst += (size_t)out_w * cs) {
        const int8_t *x = plane + (size_t)(oy * p->stride_h) * pw;
        int8_t *d = dst;
        for (int32_t n = pairs; n > 0; --n, x += 2, d += 2 * cs) {
            int32_t a0 = bias2, a1 = bias2;
            uint32_t v = tk_load4(x);
            int32_t e = tk_even16(v), o = tk_odd16(v);
            a0 = __smlad(e, w0, a0);
            a0 = __smlad(o, w1, a0);
            a1 = __smlad(o, w0, a1);
            a1 = __smlatb(e, w1, a1);
            v = tk_load4(x + dil);
            e = tk_even16(v);
            o = tk_odd16(v);
            a0 = __smlad(e, w2, a0);
            a0 = __smlad(o, w3, a0);
            a1 = __smlad(o, w2, a1);
            a1 = __smlatb(e, w3, a1);
            v = tk_load4(x + 2 * dil);
            e = tk_even16(v);
            o = tk_odd16(v);
            a0 = __smlad(e, w4, a0);
            a0 = __smlad(o, w5, a0);
            a1 = __smlad(o, w4, a1);
            a1 = __smlatb(e, w5, a1);
            d[0] = dw_out(q, a0, full_range);
            d[cs] = dw_out(q, a1, full_range);
        }
        if (out_w & 1) {
            int32_t a = bias2;
            for (int32_t ky = 0; ky < 3; ++ky) a = row_one(x + (size_t)ky * dil, w + 2 * ky, 3, a);
            *d = dw_out(q, a, full_range);
        }
    }
}

/* 3x3, stride 2: one output per step (one word of input per kernel row). */
TK_INLINE void channel_k3s2(const tk_dwconv2d_ch_params_t *p, const int8_t *plane, const uint32_t *w,
                            int32_t bias2, const tk_dw_rq_t *q, int8_t *dst, const int full_range) {
    const int32_t w0 = (int32_t)w[0], w1 = (int32_t)w[1], w2 = (int32_t)w[2], w3 = (int32_t)w[3];
    const int32_t w4 = (int32_t)w[4], w5 = (int32_t)w[5];
    const size_t pw = (size_t)p->padded_w, cs = (size_t)p->channels, dil = (size_t)p->dilation_h * pw;
    for (int32_t oy = 0; oy < p->out_h; ++oy, dst += (size_t)p->out_w * cs) {
        const int8_t *x = plane + (size_t)(oy * p->stride_h) * pw;
        int8_t *d = dst;
        for (int32_t n = p->out_w; n > 0; --n, x += 2, d += cs) {
            int32_t a = bias2;
            uint32_t v = tk_load4(x);
            a = __smlad(tk_even16(v), w0, a);
            a = __smlad(tk_odd16(v), w1, a);
            v = tk_load4(x + dil);
            a = __smlad(tk_even16(v), w2, a);
            a = __smlad(tk_odd16(v), w3, a);
            v = tk_load4(x + 2 * dil);
            a = __smlad(tk_even16(v), w4, a);
            a = __smlad(tk_odd16(v), w5, a);
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
    if (p->k_w == 3 && p->stride_w == 1) {
        if (full) {
            channel_k3s1(p, plane, wrows, bias2, &q, dst, 1);
        } else {
            channel_k3s1(p, plane, wrows, bias2, &q, dst, 0);
        }
    } else if (p->k_w == 3) {
        if (full) {
            channel_k3s2(p, plane, wrows, bias2, &q, dst, 1);
        } else {
            channel_k3s2(p, plane, wrows, bias2, &q, dst, 0);
        }
    } else if (p->stride_w == 1) {
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

void tk_dwconv2d_ch_s8(const tk_dwconv2d_ch_params_t *p, const void *const *in, void *const *out, void *scratch) {
    const int8_t *input = (const int8_t *)in[0];
    int8_t *output = (int8_t *)out[0];
#if TK_WIDE
    if (dw_wide_fits(p)) {
        dw_wide(p, input, output);
        return;
    }
#endif
    int8_t *plane = (int8_t *)scratch;
    const tk_dw_interior_t r = interior(p);
    memset(plane, p->pad_value, (size_t)p->padded_h * (size_t)p->padded_w); /* the padding of every channel */
    for (int32_t c = 0; c < p->channels; ++c) {
        stage_channel(p, &r, input, c, plane);
        channel(p, plane, c, output + c);
    }
}
