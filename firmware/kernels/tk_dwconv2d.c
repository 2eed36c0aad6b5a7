/* tinyml-kit kernel: int8 DEPTHWISE_CONV_2D, bit-exact with TFLite's
 * reference_integer_ops::DepthwiseConvPerChannel: taps outside the input are skipped (contribute 0).
 * Where every tap is inside, the input offset is pre-folded into `bias_folded`. */
#include "tk_dwconv2d.h"

#include <stddef.h>
#include <string.h>

#include "tk_common.h"
#include "tk_simd.h"

static int8_t finish(const tk_dwconv2d_params_t *p, int32_t acc, int32_t oc) {
    acc = tk_requantize(acc, p->multiplier[oc], p->shift[oc]) + p->output_offset;
    return (int8_t)tk_clamp_i32(acc, p->act_min, p->act_max);
}

/* First tap index k in [0, k_max) with origin + k * dilation inside [0, size); *end: one past the last. */
static int32_t clip_taps(int32_t origin, int32_t k_max, int32_t dilation, int32_t size, int32_t *end) {
    int32_t k0 = 0, k1 = k_max;
    while (k0 < k_max && origin + k0 * dilation < 0) ++k0;
    while (k1 > k0 && origin + (k1 - 1) * dilation >= size) --k1;
    *end = k1;
    return k0;
}

/* Raster order: every output pixel, all its channels, reading the input in place (so the output may
 * overlap the input up to the compiler's raster shift). Taps outside the input are skipped; pixels
 * whose window is fully inside use the pre-folded bias. Channels accumulate in `acc` tap by tap. */
static void dwconv_raster(const tk_dwconv2d_params_t *p, const int8_t *input, int8_t *output, int32_t *acc) {
    const int32_t m = p->depth_multiplier, out_c = p->in_c * m;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        const int32_t y0 = oy * p->stride_h - p->pad_top;
        int32_t ky1;
        const int32_t ky0 = clip_taps(y0, p->k_h, p->dilation_h, p->in_h, &ky1);
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const int32_t x0 = ox * p->stride_w - p->pad_left;
            int32_t kx1;
            const int32_t kx0 = clip_taps(x0, p->k_w, p->dilation_w, p->in_w, &kx1);
            const int full = ky0 == 0 && ky1 == p->k_h && kx0 == 0 && kx1 == p->k_w;
            const int32_t add = full ? 0 : p->input_offset;
            memcpy(acc, full ? p->bias_folded : p->bias, (size_t)out_c * sizeof(int32_t));
            for (int32_t ky = ky0; ky < ky1; ++ky) {
                const int32_t iy = y0 + ky * p->dilation_h;
                for (int32_t kx = kx0; kx < kx1; ++kx) {
                    const int8_t *x = input + ((size_t)iy * (size_t)p->in_w + (size_t)(x0 + kx * p->dilation_w))
                                                  * (size_t)p->in_c;
                    const int8_t *w = p->filter + (size_t)(ky * p->k_w + kx) * (size_t)out_c;
                    int32_t *a = acc;
                    for (int32_t ic = 0; ic < p->in_c; ++ic) {
                        const int32_t v = (int32_t)x[ic] + add;
                        for (int32_t j = 0; j < m; ++j) *a++ += (int32_t)*w++ * v;
                    }
                }
            }
            int8_t *dst = output + ((size_t)oy * (size_t)p->out_w + (size_t)ox) * (size_t)out_c;
            for (int32_t oc = 0; oc < out_c; ++oc) dst[oc] = finish(p, acc[oc], oc);
        }
    }
}

/* One input channel (in_c == 1, out_c == depth_multiplier), raster order: each output channel is a
 * sum of dot products between input rows and the transposed filter rows. */
static void dwconv_single_channel(const tk_dwconv2d_params_t *p, const int8_t *input, int8_t *output) {
    const int32_t out_c = p->depth_multiplier, taps = p->k_h * p->k_w;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        const int32_t y0 = oy * p->stride_h - p->pad_top;
        int32_t ky1;
        const int32_t ky0 = clip_taps(y0, p->k_h, p->dilation_h, p->in_h, &ky1);
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const int32_t x0 = ox * p->stride_w - p->pad_left;
            int32_t kx1;
            const int32_t kx0 = clip_taps(x0, p->k_w, p->dilation_w, p->in_w, &kx1);
            const int full = ky0 == 0 && ky1 == p->k_h && kx0 == 0 && kx1 == p->k_w;
            const int32_t cols = kx1 - kx0;
            int8_t *dst = output + ((size_t)oy * (size_t)p->out_w + (size_t)ox) * (size_t)out_c;
            for (int32_t oc = 0; oc < out_c; ++oc) {
                const int8_t *w_rows = p->filter_t + (size_t)oc * (size_t)taps + kx0;
                int32_t acc = 0, w_sum = 0;
                for (int32_t ky = ky0; ky < ky1; ++ky) {
                    const int8_t *x = input + (size_t)(y0 + ky * p->dilation_h) * (size_t)p->in_w
                                      + (size_t)(x0 + kx0 * p->dilation_w);
                    const int8_t *w = w_rows + ky * p->k_w;
                    if (p->dilation_w == 1) {
                        acc += tk_dot4(x, w, cols);
                    } else {
                        for (int32_t k = 0; k < cols; ++k) acc += (int32_t)w[k] * x[k * p->dilation_w];
                    }
                    if (!full) {
                        for (int32_t k = 0; k < cols; ++k) w_sum += w[k];
                    }
                }
                acc += full ? p->bias_folded[oc] : p->bias[oc] + p->input_offset * w_sum;
                dst[oc] = finish(p, acc, oc);
            }
        }
    }
}

/* Copy input channel c into a zero-point padded plane. */
static void stage_channel(const tk_dwconv2d_params_t *p, const int8_t *input, int32_t c, int8_t *plane) {
    const int8_t pad_value = (int8_t)(-p->input_offset);
    /* pad_left < 0: the plane starts inside the input (a patch of a larger frame) */
    const int32_t left = tk_clamp_i32(p->pad_left, 0, p->padded_w);
    const int32_t right_end = tk_clamp_i32(p->pad_left + p->in_w, left, p->padded_w);
    for (int32_t py = 0; py < p->padded_h; ++py) {
        const int32_t iy = py - p->pad_top;
        int8_t *row = plane + (size_t)py * (size_t)p->padded_w;
        if (iy < 0 || iy >= p->in_h) {
            memset(row, pad_value, (size_t)p->padded_w);
            continue;
        }
        memset(row, pad_value, (size_t)left);
        const int8_t *src = input + (size_t)iy * (size_t)p->in_w * (size_t)p->in_c + c;
        for (int32_t px = left; px < right_end; ++px) row[px] = src[(size_t)(px - p->pad_left) * (size_t)p->in_c];
        if (right_end < p->padded_w) memset(row + right_end, pad_value, (size_t)(p->padded_w - right_end));
    }
}

#if TK_HAVE_DSP
#define TK_MAC_LO(x, pair, acc) __smlabb((x), (pair), (acc))
#define TK_MAC_HI(x, pair, acc) __smlabt((x), (pair), (acc))
#else
#define TK_MAC_LO(x, pair, acc) ((acc) + (x) * (int32_t)(int16_t)((pair) & 0xFFFF))
#define TK_MAC_HI(x, pair, acc) ((acc) + (x) * ((pair) >> 16))
#endif

static int32_t pack_pair(int32_t lo, int32_t hi) { return (int32_t)(((uint32_t)hi << 16) | ((uint32_t)lo & 0xFFFFu)); }

/* acc[i] = base + 3x3 window sum at plane position i * stride (weights packed two per word). The
 * loop keeps all nine weights in five registers. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void mac_row_3x3(const int8_t *r0, const int32_t *geometry, const int32_t *packed, int32_t *acc, int32_t n) {
    const int32_t row = geometry[0], dil = geometry[1], stride = geometry[2], base = geometry[3];
    const int32_t w01 = packed[0], w23 = packed[1], w45 = packed[2], w67 = packed[3], w8 = packed[4];
    const int8_t *r1 = r0 + row, *r2 = r1 + row;
    for (int32_t i = 0; i < n; ++i, r0 += stride, r1 += stride, r2 += stride) {
        int32_t a = TK_MAC_LO(r0[0], w01, base);
        a = TK_MAC_HI(r0[dil], w01, a);
        a = TK_MAC_LO(r0[2 * dil], w23, a);
        a = TK_MAC_HI(r1[0], w23, a);
        a = TK_MAC_LO(r1[dil], w45, a);
        a = TK_MAC_HI(r1[2 * dil], w45, a);
        a = TK_MAC_LO(r2[0], w67, a);
        a = TK_MAC_HI(r2[dil], w67, a);
        acc[i] = TK_MAC_LO(r2[2 * dil], w8, a);
    }
}

/* acc[i] = base + k_h x k_w window sum at plane position i * stride (any kernel size). */
static void mac_row_any(const tk_dwconv2d_params_t *p, const int8_t *r0, int32_t c, int32_t base, int32_t *acc,
                        int32_t n) {
    const int32_t pw_dil = p->dilation_h * p->padded_w, dw = p->dilation_w, out_c = p->in_c;
    for (int32_t i = 0; i < n; ++i) acc[i] = base;
    const int8_t *w = p->filter + c;
    for (int32_t ky = 0; ky < p->k_h; ++ky, r0 += pw_dil) {
        for (int32_t kx = 0; kx < p->k_w; ++kx, w += out_c) {
            const int32_t wt = *w;
            const int8_t *x = r0 + kx * dw;
            for (int32_t i = 0; i < n; ++i, x += p->stride_w) acc[i] += wt * *x;
        }
    }
}

/* dst[i * stride] = requantised acc[i]. */
static void requantize_row(const tk_dwconv2d_params_t *p, const int32_t *acc, int32_t c, int8_t *dst, int32_t n) {
    const int32_t mult = p->multiplier[c], shift = p->shift[c], off = p->output_offset;
    const int32_t lo = p->act_min, hi = p->act_max, stride = p->in_c;
    for (int32_t i = 0; i < n; ++i, dst += stride) {
        *dst = (int8_t)tk_clamp_i32(tk_requantize(acc[i], mult, shift) + off, lo, hi);
    }
}

/* Channel by channel (depth_multiplier 1): stage, then compute the channel's output from the plane
 * one row at a time (window sums into `acc`, then requantisation). With output == input, writes of
 * channel c land only on bytes of input channel c (same stride), which is already staged. */
static void dwconv_channelwise(const tk_dwconv2d_params_t *p, const int8_t *input, int8_t *output,
                               int8_t *plane, int32_t *acc) {
    const int32_t c_stride = p->in_c, pw = p->padded_w;
    for (int32_t c = 0; c < p->in_c; ++c) {
        stage_channel(p, input, c, plane);
        const int32_t base = p->bias_folded[c];
        int32_t packed[5];
        if (p->k_h == 3 && p->k_w == 3) {
            const int8_t *f = p->filter + c;
            for (int32_t k = 0; k < 4; ++k) packed[k] = pack_pair(f[2 * k * c_stride], f[(2 * k + 1) * c_stride]);
            packed[4] = pack_pair(f[8 * c_stride], 0);
        }
        const int32_t geometry[4] = {p->dilation_h * pw, p->dilation_w, p->stride_w, base};
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int8_t *r0 = plane + (size_t)(oy * p->stride_h) * (size_t)pw;
            if (p->k_h == 3 && p->k_w == 3) {
                mac_row_3x3(r0, geometry, packed, acc, p->out_w);
            } else {
                mac_row_any(p, r0, c, base, acc, p->out_w);
            }
            requantize_row(p, acc, c, output + (size_t)oy * (size_t)p->out_w * (size_t)c_stride + c, p->out_w);
        }
    }
}

void tk_dwconv2d_s8(const tk_dwconv2d_params_t *p, const void *const *in, void *const *out, void *scratch) {
    const int8_t *input = (const int8_t *)in[0];
    int8_t *output = (int8_t *)out[0];
    if (p->depth_multiplier == 1) {
        /* the compiler allows only shift 0 (inplace) or no overlap for this variant */
        const size_t plane = ((size_t)p->padded_h * (size_t)p->padded_w + 3u) & ~(size_t)3u;
        dwconv_channelwise(p, input, output, (int8_t *)scratch, (int32_t *)((int8_t *)scratch + plane));
    } else if (p->in_c == 1 && p->filter_t != NULL) {
        dwconv_single_channel(p, input, output);
    } else {
        dwconv_raster(p, input, output, (int32_t *)scratch);
    }
}
