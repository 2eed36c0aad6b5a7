/* tinyml-kit kernel: int8 AVERAGE_POOL_2D, bit-exact with TFLite's reference_integer_ops::AveragePool
 * (average over the taps inside the input, rounded half away from zero). */
#include "tk_avgpool.h"

#include <stddef.h>

#include "tk_common.h"

void tk_avgpool_s8(const tk_avgpool_params_t *p, const void *const *in, void *const *out, void *scratch) {
    const int8_t *input = (const int8_t *)in[0];
    int8_t *output = (int8_t *)out[0];
    (void)scratch;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        const int32_t y0 = oy * p->stride_h - p->pad_top;
        const int32_t ky0 = tk_max_i32(0, -y0), ky1 = tk_min_i32(p->k_h, p->in_h - y0);
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const int32_t x0 = ox * p->stride_w - p->pad_left;
            const int32_t kx0 = tk_max_i32(0, -x0), kx1 = tk_min_i32(p->k_w, p->in_w - x0);
            const int32_t count = (ky1 > ky0 && kx1 > kx0) ? (ky1 - ky0) * (kx1 - kx0) : 0;
            int8_t *dst = output + ((size_t)oy * (size_t)p->out_w + (size_t)ox) * (size_t)p->channels;
            for (int32_t c = 0; c < p->channels; ++c) {
                int32_t acc = 0;
                for (int32_t ky = ky0; ky < ky1; ++ky) {
                    const int8_t *row = input + ((size_t)(y0 + ky) * (size_t)p->in_w) * (size_t)p->channels + c;
                    for (int32_t kx = kx0; kx < kx1; ++kx) acc += row[(size_t)(x0 + kx) * (size_t)p->channels];
                }
                if (count > 0) acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                dst[c] = (int8_t)tk_clamp_i32(acc, p->act_min, p->act_max);
            }
        }
    }
}
