/* tinyml-kit kernel: int8 FULLY_CONNECTED, bit-exact with TFLite's reference_integer_ops::
 * FullyConnected / FullyConnectedPerChannel (filter zero point 0, input offset folded into bias). */
#include "tk_fc.h"

#include <stddef.h>

#include "tk_common.h"
#include "tk_simd.h"

static int8_t finish(const tk_fc_params_t *p, int32_t acc, int32_t o) {
    acc = tk_requantize(acc, p->multiplier[o], p->shift[o]) + p->output_offset;
    return (int8_t)tk_clamp_i32(acc, p->act_min, p->act_max);
}

void tk_fc_s8(const tk_fc_params_t *p, const void *const *in, void *const *out, void *scratch) {
    const int8_t *input = (const int8_t *)in[0];
    int8_t *output = (int8_t *)out[0];
    (void)scratch;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *x = input + (size_t)b * (size_t)p->accum_depth;
        int8_t *y = output + (size_t)b * (size_t)p->out_depth;
        const int8_t *w = p->filter;
        int32_t o = 0;
        for (; o + 2 <= p->out_depth; o += 2, w += 2 * p->accum_depth) {
            int32_t acc[2] = {p->bias[o], p->bias[o + 1]};
            tk_dot4x2x1(x, w, w + p->accum_depth, p->accum_depth, acc);
            y[o] = finish(p, acc[0], o);
            y[o + 1] = finish(p, acc[1], o + 1);
        }
        if (o < p->out_depth) y[o] = finish(p, p->bias[o] + tk_dot4(x, w, p->accum_depth), o);
    }
}
