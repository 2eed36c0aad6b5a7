/* RESIZE_NEAREST_NEIGHBOR, int8 (see tk_resize_nn.h).  Byte loops in output raster order. */
#include "tk_resize_nn.h"

#include "tk_common.h"

void tk_resize_nn_s8(const tk_resize_nn_params_t *p, const void *const *in, void *const *out,
                     void *scratch) {
    (void)scratch;
    const int8_t *x = (const int8_t *)in[0];
    int8_t *y = (int8_t *)out[0];
    const int32_t row = p->in_w * p->channels;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *image = x + b * p->in_h * row;
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int8_t *src_row = image + p->src_y[oy] * row;
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                const int8_t *src = src_row + p->src_x[ox] * p->channels;
                for (int32_t c = 0; c < p->channels; ++c) *y++ = src[c];
            }
        }
    }
}
