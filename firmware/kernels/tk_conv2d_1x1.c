/* tinyml-kit kernel: pointwise convolution / fully connected layer as an int8 GEMM (see tk_conv2d_1x1.h),
 * bit-exact with TFLite's reference ConvPerChannel / FullyConnected. */
#include "tk_conv2d_1x1.h"

#include <stddef.h>

#include "tk_common.h"
#include "tk_gemm.h"

void tk_conv2d_1x1_s8(const tk_conv2d_1x1_params_t *p, const void *const *in, void *const *out, void *scratch) {
    const int8_t *input = (const int8_t *)in[0];
    int8_t *output = (int8_t *)out[0];
    int16_t *cols = (int16_t *)scratch;
    const tk_gemm_t g = {p->filter, p->rq, p->out_c, p->k4, p->act_min, p->act_max};
    const size_t in_c = (size_t)p->in_c, out_c = (size_t)p->out_c;
    tk_cols_zero_tail(cols, p->in_c, p->k4);
    int32_t px = 0;
    for (; px + 2 <= p->pixels; px += 2) {
        const int8_t *src = input + (size_t)px * in_c;
        tk_cols_put(cols, 0, 0, src, p->in_c);
        tk_cols_put(cols, 1, 0, src + in_c, p->in_c);
        int8_t *dst = output + (size_t)px * out_c;
        tk_gemm_cols(&g, cols, dst, dst + out_c);
    }
    if (px < p->pixels) { /* the last pixel in both halves, its outputs written twice */
        tk_cols_put(cols, 0, 0, input + (size_t)px * in_c, p->in_c);
        tk_cols_put(cols, 1, 0, input + (size_t)px * in_c, p->in_c);
        tk_gemm_cols(&g, cols, output + (size_t)px * out_c, output + (size_t)px * out_c);
    }
}
