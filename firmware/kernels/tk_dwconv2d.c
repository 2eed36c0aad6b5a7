/* tinyml-kit kernel: int8 DEPTHWISE_CONV_2D, bit-exact with TFLite's
 * reference_integer_ops::DepthwiseConvPerChannel (padded taps are skipped, i.e. contribute 0). */
#include "tk_dwconv2d.h"

#include <stddef.h>

#include "tk_common.h"

static int8_t finish(const tk_dwconv2d_params_t *p, int32_t acc, int32_t oc) {
    acc = tk_requantize(acc, p->multiplier[oc], p->shift[oc]) + p->output_offset;
    return (int8_t)tk_clamp_i32(acc, p->act_min, p->act_max);
}

/* Raster order: every output pixel, every channel; taps outside the input are skipped. */
static void dwconv_raster(const tk_dwconv2d_params_t *p, const int8_t *input, int8_t *output) {
    const int32_t out_c = p->in_c * p->depth_multiplier;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        const int32_t y0 = oy * p->stride_h - p->pad_top;
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const int32_t x0 = ox * p->stride_w - p->pad_left;
            int8_t *dst = output + ((size_t)oy * (size_t)p->out_w + (size_t)ox) * (size_t)out_c;
            for (int32_t ic = 0; ic < p->in_c; ++ic) {
                for (int32_t m = 0; m < p->depth_multiplier; ++m) {
                    const int32_t oc = ic * p->depth_multiplier + m;
                    int32_t acc = p->bias[oc];
                    for (int32_t ky = 0; ky < p->k_h; ++ky) {
                        const int32_t iy = y0 + ky * p->dilation_h;
                        if (iy < 0 || iy >= p->in_h) continue;
                        const int8_t *row = input + (size_t)iy * (size_t)p->in_w * (size_t)p->in_c;
                        const int8_t *w = p->filter + (size_t)ky * (size_t)p->k_w * (size_t)out_c + oc;
                        for (int32_t kx = 0; kx < p->k_w; ++kx) {
                            const int32_t ix = x0 + kx * p->dilation_w;
                            if (ix < 0 || ix >= p->in_w) continue;
                            acc += (int32_t)w[(size_t)kx * (size_t)out_c]
                                 * ((int32_t)row[(size_t)ix * (size_t)p->in_c + ic] + p->input_offset);
                        }
                    }
                    dst[oc] = finish(p, acc, oc);
                }
            }
        }
    }
}

/* In place (output buffer == input buffer, depth_multiplier 1): one channel at a time. The channel
 * is staged into a zero-point padded plane, so its output can overwrite it; writes of channel c
 * only ever land on bytes of input channel c because input and output share the channel stride. */
static void dwconv_inplace(const tk_dwconv2d_params_t *p, int8_t *data, int8_t *plane) {
    const int32_t c_stride = p->in_c;
    const int8_t pad_value = (int8_t)(-p->input_offset);
    for (int32_t c = 0; c < p->in_c; ++c) {
        for (int32_t py = 0; py < p->padded_h; ++py) {
            const int32_t iy = py - p->pad_top;
            int8_t *dst = plane + (size_t)py * (size_t)p->padded_w;
            for (int32_t px = 0; px < p->padded_w; ++px) {
                const int32_t ix = px - p->pad_left;
                dst[px] = (iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w)
                              ? data[((size_t)iy * (size_t)p->in_w + (size_t)ix) * (size_t)c_stride + c]
                              : pad_value;
            }
        }
        /* sum(w * (x + offset)) = sum(w * x) + offset * sum(w); padded taps hold -offset -> 0 */
        int32_t w_sum = 0;
        for (int32_t t = 0; t < p->k_h * p->k_w; ++t) w_sum += p->filter[(size_t)t * (size_t)c_stride + c];
        const int32_t base = p->bias[c] + p->input_offset * w_sum;
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                const int8_t *src = plane + (size_t)(oy * p->stride_h) * (size_t)p->padded_w
                                    + (size_t)(ox * p->stride_w);
                int32_t acc = base;
                for (int32_t ky = 0; ky < p->k_h; ++ky) {
                    const int8_t *srow = src + (size_t)(ky * p->dilation_h) * (size_t)p->padded_w;
                    const int8_t *w = p->filter + (size_t)ky * (size_t)p->k_w * (size_t)c_stride + c;
                    for (int32_t kx = 0; kx < p->k_w; ++kx) {
                        acc += (int32_t)w[(size_t)kx * (size_t)c_stride] * srow[kx * p->dilation_w];
                    }
                }
                data[((size_t)oy * (size_t)p->out_w + (size_t)ox) * (size_t)c_stride + c] = finish(p, acc, c);
            }
        }
    }
}

void tk_dwconv2d_s8(const tk_dwconv2d_params_t *p, const void *const *in, void *const *out, void *scratch) {
    if (p->inplace && p->depth_multiplier == 1 && (const void *)out[0] == in[0] && scratch != NULL) {
        dwconv_inplace(p, (int8_t *)out[0], (int8_t *)scratch);
    } else {
        dwconv_raster(p, (const int8_t *)in[0], (int8_t *)out[0]);
    }
}
