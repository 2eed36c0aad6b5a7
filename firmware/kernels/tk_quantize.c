/* tinyml-kit kernels: QUANTIZE / DEQUANTIZE / requantise, bit-exact with TFLM's reference kernels. */
#include "tk_quantize.h"

#include <math.h>

#include "tk_common.h"

void tk_quantize_f32_s8(const tk_quantize_params_t *p, const void *const *in, void *const *out, void *scratch) {
    const float *x = (const float *)in[0];
    int8_t *y = (int8_t *)out[0];
    (void)scratch;
    for (int32_t i = 0; i < p->size; ++i) {
        float r = roundf(x[i] / p->scale);           /* TfLiteRound on float, halves away from 0 */
        if (!(r > -1e9f)) r = -1e9f;                 /* keeps the int conversion defined (and NaN) */
        if (r > 1e9f) r = 1e9f;
        y[i] = tk_sat_s8((int32_t)r + p->zero_point);
    }
}

void tk_dequantize_s8_f32(const tk_quantize_params_t *p, const void *const *in, void *const *out, void *scratch) {
    const int8_t *x = (const int8_t *)in[0];
    float *y = (float *)out[0];
    (void)scratch;
    /* TFLite computes double(scale) * (q - zp) then rounds to float; the exact product of a float
     * and a 9-bit integer fits a double, so one float multiply rounds identically. Elements are
     * processed last to first so the wider output may start at the input's address. */
    for (int32_t i = p->size - 1; i >= 0; --i) y[i] = p->scale * (float)((int32_t)x[i] - p->zero_point);
}

void tk_requantize_8(const tk_quantize_params_t *p, const void *const *in, void *const *out, void *scratch) {
    const int8_t *xs = (const int8_t *)in[0];
    const uint8_t *xu = (const uint8_t *)in[0];
    int8_t *ys = (int8_t *)out[0];
    uint8_t *yu = (uint8_t *)out[0];
    const int32_t lo = p->output_unsigned ? 0 : -128, hi = p->output_unsigned ? 255 : 127;
    (void)scratch;
    for (int32_t i = 0; i < p->size; ++i) {
        const int32_t q = (p->input_unsigned ? (int32_t)xu[i] : (int32_t)xs[i]) - p->input_zero_point;
        const int32_t v = tk_clamp_i32(tk_requantize(q, p->multiplier, p->shift) + p->output_zero_point, lo, hi);
        if (p->output_unsigned) yu[i] = (uint8_t)v; else ys[i] = (int8_t)v;
    }
}
