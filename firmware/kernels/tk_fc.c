/* tinyml-kit kernel: int8 FULLY_CONNECTED, bit-exact with TFLite's reference_integer_ops::
 * FullyConnected / FullyConnectedPerChannel (filter zero point 0, input offset folded into bias). */
#include "tk_fc.h"

#include <stddef.h>

#include "tk_common.h"

void tk_fc_s8(const tk_fc_params_t *p, const void *const *in, void *const *out, void *scratch) {
    const int8_t *input = (const int8_t *)in[0];
    int8_t *output = (int8_t *)out[0];
    (void)scratch;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *x = input + (size_t)b * (size_t)p->accum_depth;
        const int8_t *w = p->filter;
        for (int32_t o = 0; o < p->out_depth; ++o) {
            int32_t acc = p->bias[o];
            int32_t i = 0;
            for (; i + 4 <= p->accum_depth; i += 4) {
                acc += (int32_t)x[i] * w[i] + (int32_t)x[i + 1] * w[i + 1]
                     + (int32_t)x[i + 2] * w[i + 2] + (int32_t)x[i + 3] * w[i + 3];
            }
            for (; i < p->accum_depth; ++i) acc += (int32_t)x[i] * w[i];
            w += p->accum_depth;
            acc = tk_requantize(acc, p->multiplier[o], p->shift[o]) + p->output_offset;
            output[(size_t)b * (size_t)p->out_depth + (size_t)o] = (int8_t)tk_clamp_i32(acc, p->act_min, p->act_max);
        }
    }
}
