/* tinyml-kit kernel: int8 CONV_2D, bit-exact with TFLite's reference_integer_ops::ConvPerChannel.
 *
 * For each output pixel (raster order) the receptive field is gathered into scratch (padded taps
 * get the input zero point), then every output channel is a dot product with its filter row. The
 * input offset is folded into the bias at compile time, so padded taps contribute exactly 0, as in
 * TFLite where they are skipped. Gathering first makes raster-order in-place execution safe. */
#include "tk_conv2d.h"

#include <string.h>

#include "tk_common.h"

static void gather_field(const tk_conv2d_params_t *p, const int8_t *input, int32_t oy, int32_t ox,
                         int8_t *field) {
    const int32_t y0 = oy * p->stride_h - p->pad_top;
    const int32_t x0 = ox * p->stride_w - p->pad_left;
    const size_t c = (size_t)p->in_c;
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

static int32_t dot_s8(const int8_t *a, const int8_t *b, int32_t n) {
    int32_t acc = 0;
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        acc += (int32_t)a[i] * b[i] + (int32_t)a[i + 1] * b[i + 1]
             + (int32_t)a[i + 2] * b[i + 2] + (int32_t)a[i + 3] * b[i + 3];
    }
    for (; i < n; ++i) acc += (int32_t)a[i] * b[i];
    return acc;
}

static int8_t requantize(const tk_conv2d_params_t *p, int32_t acc, int32_t oc) {
    acc = tk_requantize(acc, p->multiplier[oc], p->shift[oc]) + p->output_offset;
    return (int8_t)tk_clamp_i32(acc, p->act_min, p->act_max);
}

void tk_conv2d_s8(const tk_conv2d_params_t *p, const void *const *in, void *const *out, void *scratch) {
    const int8_t *input = (const int8_t *)in[0];
    int8_t *output = (int8_t *)out[0];
    int8_t *field = (int8_t *)scratch;
    const int32_t taps = p->k_h * p->k_w;
    const int32_t field_len = taps * p->in_c;
    const int32_t group_in = p->in_c / p->groups;
    const int32_t group_out = p->out_c / p->groups;

    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            gather_field(p, input, oy, ox, field);
            int8_t *dst = output + ((size_t)oy * (size_t)p->out_w + (size_t)ox) * (size_t)p->out_c;
            if (p->groups == 1) {
                const int8_t *w = p->filter;
                int32_t oc = 0;
                for (; oc + 2 <= p->out_c; oc += 2) {
                    /* two filter rows share each load of the field */
                    const int8_t *w1 = w + field_len;
                    int32_t acc0 = p->bias[oc], acc1 = p->bias[oc + 1];
                    for (int32_t i = 0; i < field_len; ++i) {
                        const int32_t x = field[i];
                        acc0 += x * w[i];
                        acc1 += x * w1[i];
                    }
                    dst[oc] = requantize(p, acc0, oc);
                    dst[oc + 1] = requantize(p, acc1, oc + 1);
                    w += 2 * field_len;
                }
                if (oc < p->out_c) dst[oc] = requantize(p, p->bias[oc] + dot_s8(field, w, field_len), oc);
            } else {
                const int32_t group_len = taps * group_in;
                for (int32_t oc = 0; oc < p->out_c; ++oc) {
                    const int32_t g = oc / group_out;
                    const int8_t *w = p->filter + (size_t)oc * (size_t)group_len;
                    int32_t acc = p->bias[oc];
                    for (int32_t t = 0; t < taps; ++t) {
                        acc += dot_s8(field + t * p->in_c + g * group_in, w + t * group_in, group_in);
                    }
                    dst[oc] = requantize(p, acc, oc);
                }
            }
        }
    }
}
