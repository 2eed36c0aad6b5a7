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

#endif

void tk_dwconv2d_ch_s8(const tk_dwconv2d_ch_params_t *p, const void *const *in, void *const *out, void *scratch) {
    const int8_t *input = (const int8_t *)in[0];
    int8_t *output = (int8_t *)out[0];
    int8_t *plane = (int8_t *)scratch;
    const tk_dw_interior_t r = interior(p);
    memset(plane, p->pad_value, (size_t)p->padded_h * (size_t)p->padded_w); /* the padding of every channel */
    for (int32_t c = 0; c < p->channels; ++c) {
        stage_channel(p, &r, input, c, plane);
        channel(p, plane, c, output + c);
    }
}
