/* tinyml-kit kernel: int8 CONV_2D, bit-exact with TFLite's reference_integer_ops::ConvPerChannel.
 *
 * Output pixels are taken in raster order, two at a time. Their receptive fields are gathered into
 * scratch (padded taps get the input zero point), then every pair of output channels is a 2x2 block
 * of dot products (tk_simd.h). The input offset is folded into the bias at compile time, so padded
 * taps contribute exactly 0, as in TFLite where they are skipped. Gathering before writing makes
 * raster-order in-place execution safe. */
#include "tk_conv2d.h"

#include <string.h>

#include "tk_common.h"
#include "tk_simd.h"

static void gather_field(const tk_conv2d_params_t *p, const int8_t *input, int32_t pixel, int8_t *field) {
    const int32_t oy = pixel / p->out_w, ox = pixel - oy * p->out_w;
    const int32_t y0 = oy * p->stride_h - p->pad_top;
    const int32_t x0 = ox * p->stride_w - p->pad_left;
    const size_t c = (size_t)p->in_c;
    if (p->k_h == 1 && p->k_w == 1 && y0 >= 0 && y0 < p->in_h && x0 >= 0 && x0 < p->in_w) {
        memcpy(field, input + ((size_t)y0 * (size_t)p->in_w + (size_t)x0) * c, c);
        return;
    }
    for (int32_t ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = y0 + ky * p->dilation_h;
        const int row_inside = iy >= 0 && iy < p->in_h;
        for (int32_t kx = 0; kx < p->k_w; ++kx) {
            const int32_t ix = x0 + kx * p->dilation_w;
            if (row_inside && ix >= 0 && ix < p->in_w) {
                memcpy(field, input + ((size_t)iy * (size_t)p->in_w + (size_t)ix) * c, c);
            } else {
                memset(field, p->input_zero_point, c);
            }
            field += c;
        }
    }
}

static int8_t requantize(const tk_conv2d_params_t *p, int32_t acc, int32_t oc) {
    acc = tk_requantize(acc, p->multiplier[oc], p->shift[oc]) + p->output_offset;
    return (int8_t)tk_clamp_i32(acc, p->act_min, p->act_max);
}

/* Output channels of one or two pixels (dst1 == NULL: one) for groups == 1. */
static void dense_channels(const tk_conv2d_params_t *p, const int8_t *f0, const int8_t *f1, int32_t len,
                           int8_t *dst0, int8_t *dst1) {
    const int8_t *w = p->filter;
    int32_t oc = 0;
    for (; oc + 2 <= p->out_c; oc += 2, w += 2 * len) {
        const int32_t b0 = p->bias[oc], b1 = p->bias[oc + 1];
        if (dst1 != NULL) {
            int32_t acc[4] = {b0, b0, b1, b1};
            tk_dot4x2x2(f0, f1, w, w + len, len, acc);
            dst0[oc] = requantize(p, acc[0], oc);
            dst1[oc] = requantize(p, acc[1], oc);
            dst0[oc + 1] = requantize(p, acc[2], oc + 1);
            dst1[oc + 1] = requantize(p, acc[3], oc + 1);
        } else {
            int32_t acc[2] = {b0, b1};
            tk_dot4x2x1(f0, w, w + len, len, acc);
            dst0[oc] = requantize(p, acc[0], oc);
            dst0[oc + 1] = requantize(p, acc[1], oc + 1);
        }
    }
    if (oc < p->out_c) {
        dst0[oc] = requantize(p, p->bias[oc] + tk_dot4(f0, w, len), oc);
        if (dst1 != NULL) dst1[oc] = requantize(p, p->bias[oc] + tk_dot4(f1, w, len), oc);
    }
}

/* Output channels of one pixel for grouped convolutions (filters see in_c / groups channels). */
static void grouped_channels(const tk_conv2d_params_t *p, const int8_t *field, int8_t *dst) {
    const int32_t taps = p->k_h * p->k_w;
    const int32_t group_in = p->in_c / p->groups;
    const int32_t group_out = p->out_c / p->groups;
    for (int32_t oc = 0; oc < p->out_c; ++oc) {
        const int32_t g = oc / group_out;
        const int8_t *w = p->filter + (size_t)oc * (size_t)(taps * group_in);
        int32_t acc = p->bias[oc];
        for (int32_t t = 0; t < taps; ++t) {
            acc += tk_dot4(field + t * p->in_c + g * group_in, w + t * group_in, group_in);
        }
        dst[oc] = requantize(p, acc, oc);
    }
}

void tk_conv2d_s8(const tk_conv2d_params_t *p, const void *const *in, void *const *out, void *scratch) {
    const int8_t *input = (const int8_t *)in[0];
    int8_t *output = (int8_t *)out[0];
    const int32_t len = p->k_h * p->k_w * p->in_c;
    int8_t *f0 = (int8_t *)scratch;
    int8_t *f1 = f0 + len;
    const int32_t pixels = p->out_h * p->out_w;

    for (int32_t px = 0; px < pixels; px += 2) {
        const int pair = px + 1 < pixels;
        gather_field(p, input, px, f0);
        if (pair) gather_field(p, input, px + 1, f1);
        int8_t *dst0 = output + (size_t)px * (size_t)p->out_c;
        if (p->groups == 1) {
            dense_channels(p, f0, f1, len, dst0, pair ? dst0 + p->out_c : NULL);
        } else {
            grouped_channels(p, f0, dst0);
            if (pair) grouped_channels(p, f1, dst0 + p->out_c);
        }
    }
}
