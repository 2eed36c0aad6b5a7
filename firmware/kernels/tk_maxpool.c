/* MAX_POOL_2D, int8 (see tk_maxpool.h).  Outputs are produced in raster order (y, x, channel), each one
 * written right after its window was read; the compiler derives the safe output/input overlap from this. */
#include "tk_maxpool.h"

#include "tk_common.h"

void tk_maxpool_s8(const tk_maxpool_params_t *p, const void *const *in, void *const *out, void *scratch) {
    (void)scratch;
    const int8_t *x = (const int8_t *)in[0];
    int8_t *y = (int8_t *)out[0];
    const int32_t row = p->in_w * p->channels;

    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *image = x + b * p->in_h * row;
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int32_t y0 = oy * p->stride_h - p->pad_h;
            const int32_t fy_start = tk_max_i32(0, -y0);
            const int32_t fy_end = tk_min_i32(p->filter_h, p->in_h - y0);
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                const int32_t x0 = ox * p->stride_w - p->pad_w;
                const int32_t fx_start = tk_max_i32(0, -x0);
                const int32_t fx_end = tk_min_i32(p->filter_w, p->in_w - x0);
                for (int32_t c = 0; c < p->channels; ++c) {
                    int32_t best = -128;
                    for (int32_t fy = fy_start; fy < fy_end; ++fy) {
                        const int8_t *src = image + (y0 + fy) * row + c;
                        for (int32_t fx = fx_start; fx < fx_end; ++fx) {
                            const int32_t v = src[(x0 + fx) * p->channels];
                            if (v > best) best = v;
                        }
                    }
                    *y++ = (int8_t)tk_clamp_i32(best, p->act_min, p->act_max);
                }
            }
        }
    }
}
