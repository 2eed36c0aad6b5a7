/* RESIZE_BILINEAR, int8 (see tk_resize_bilinear.h).
 *
 * The four weights of an output pixel are products of a row and a column weight, each in
 * [-512, 1024] with |1024 - f| + |f| <= 2048, so |sum| <= 128 * 2048 * 2048 = 2^29: the int32
 * accumulator is exact (TFLM uses int64 for the same integer). */
#include "tk_resize_bilinear.h"

#include <stddef.h>

#define TK_BILINEAR_ONE 1024
#define TK_BILINEAR_HALF (1 << 19) /* half of TK_BILINEAR_ONE^2 */

/* acc / 2^20 rounded half away from zero (TFLM's rounding without TFLITE_SINGLE_ROUNDING). */
static int8_t round_down20(int32_t acc) {
    return (int8_t)((acc + (acc > 0 ? TK_BILINEAR_HALF : -TK_BILINEAR_HALF)) / (2 * TK_BILINEAR_HALF));
}

void tk_resize_bilinear_s8(const tk_resize_bilinear_params_t *p, const void *const *in, void *const *out,
                           void *scratch) {
    (void)scratch;
    const int8_t *x = (const int8_t *)in[0];
    int8_t *y = (int8_t *)out[0];
    const int32_t c = p->channels;
    const size_t row = (size_t)p->in_w * (size_t)c;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *image = x + (size_t)b * (size_t)p->in_h * row;
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int8_t *top = image + (size_t)p->y0[oy] * row;
            const int8_t *bottom = image + (size_t)p->y1[oy] * row;
            const int32_t fy = p->fy[oy], gy = TK_BILINEAR_ONE - fy;
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                const size_t left = (size_t)p->x0[ox] * (size_t)c, right = (size_t)p->x1[ox] * (size_t)c;
                const int32_t fx = p->fx[ox], gx = TK_BILINEAR_ONE - fx;
                const int32_t w_tl = gy * gx, w_tr = gy * fx, w_bl = fy * gx, w_br = fy * fx;
                const int8_t *tl = top + left, *tr = top + right, *bl = bottom + left, *br = bottom + right;
                for (int32_t k = 0; k < c; ++k) {
                    const int32_t acc = tl[k] * w_tl + bl[k] * w_bl + tr[k] * w_tr + br[k] * w_br;
                    *y++ = round_down20(acc);
                }
            }
        }
    }
}
