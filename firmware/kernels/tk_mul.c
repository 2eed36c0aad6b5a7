/* MUL, int8 (see tk_mul.h).  Same access pattern as tk_add.c: raster order, read before write. */
#include "tk_mul.h"

#include "tk_common.h"

TK_INLINE int8_t tk_mul_one(const tk_mul_params_t *p, int32_t x1, int32_t x2) {
    const int32_t product = (x1 + p->in1_offset) * (x2 + p->in2_offset);
    const int32_t raw = p->out_offset + tk_requantize(product, p->out_multiplier, p->out_shift);
    return (int8_t)tk_clamp_i32(raw, p->act_min, p->act_max);
}

void tk_mul_s8(const tk_mul_params_t *p, const void *const *in, void *const *out, void *scratch) {
    (void)scratch;
    int next_input = 0;
    const int8_t *x1 = p->in1_const ? p->in1_const : (const int8_t *)in[next_input++];
    const int8_t *x2 = p->in2_const ? p->in2_const : (const int8_t *)in[next_input++];
    int8_t *y = (int8_t *)out[0];

    if (!p->broadcast) {
        for (int32_t i = 0; i < p->size; ++i) y[i] = tk_mul_one(p, x1[i], x2[i]);
        return;
    }
    const int32_t row = p->out_shape[TK_BCAST_DIMS - 1];
    const int32_t step1 = p->in1_strides[TK_BCAST_DIMS - 1];
    const int32_t step2 = p->in2_strides[TK_BCAST_DIMS - 1];
    tk_bcast_cursor_t c;
    tk_bcast_start(&c);
    for (int32_t o = 0; o < p->size; o += row) {
        const int8_t *r1 = x1 + c.offset1;
        const int8_t *r2 = x2 + c.offset2;
        for (int32_t i = 0; i < row; ++i) y[o + i] = tk_mul_one(p, r1[i * step1], r2[i * step2]);
        tk_bcast_next_row(&c, p->out_shape, p->in1_strides, p->in2_strides);
    }
}
