/* ADD, int8 (see tk_add.h).  Each output element is written after both of its inputs were read, in
 * output raster order, so the output may overlap an input of the same shape at shift <= 0. */
#include "tk_add.h"

#include "tk_common.h"

TK_INLINE int8_t tk_add_one(const tk_add_params_t *p, int32_t x1, int32_t x2) {
    const int32_t shifted1 = (x1 + p->in1_offset) * (1 << p->left_shift);
    const int32_t shifted2 = (x2 + p->in2_offset) * (1 << p->left_shift);
    const int32_t scaled1 = tk_requantize_lt1(shifted1, p->in1_multiplier, p->in1_shift);
    const int32_t scaled2 = tk_requantize_lt1(shifted2, p->in2_multiplier, p->in2_shift);
    const int32_t sum = scaled1 + scaled2;
    const int32_t raw = tk_requantize_lt1(sum, p->out_multiplier, p->out_shift) + p->out_offset;
    return (int8_t)tk_clamp_i32(raw, p->act_min, p->act_max);
}

void tk_add_s8(const tk_add_params_t *p, const void *const *in, void *const *out, void *scratch) {
    (void)scratch;
    int next_input = 0;
    const int8_t *x1 = p->in1_const ? p->in1_const : (const int8_t *)in[next_input++];
    const int8_t *x2 = p->in2_const ? p->in2_const : (const int8_t *)in[next_input++];
    int8_t *y = (int8_t *)out[0];

    if (!p->broadcast) {
        for (int32_t i = 0; i < p->size; ++i) y[i] = tk_add_one(p, x1[i], x2[i]);
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
        for (int32_t i = 0; i < row; ++i) y[o + i] = tk_add_one(p, r1[i * step1], r2[i * step2]);
        tk_bcast_next_row(&c, p->out_shape, p->in1_strides, p->in2_strides);
    }
}
