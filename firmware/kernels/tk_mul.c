/* MUL, int8 (see tk_mul.h).  Same access pattern as tk_add.c: raster order, read before write. */
#include "tk_mul.h"

#include "tk_common.h"

TK_INLINE int8_t tk_mul_one(const void *params, int32_t x1, int32_t x2) {
    const tk_mul_params_t *p = (const tk_mul_params_t *)params;
    const int32_t product = (x1 + p->in1_offset) * (x2 + p->in2_offset);
    const int32_t raw = p->out_offset + tk_requantize(product, p->out_multiplier, p->out_shift);
    return (int8_t)tk_clamp_i32(raw, p->act_min, p->act_max);
}

void tk_mul_s8(const tk_mul_params_t *p, const void *const *in, void *const *out, void *scratch) {
    (void)scratch;
    int next_input = 0;
    const int8_t *x1 = p->in1_const ? p->in1_const : (const int8_t *)in[next_input++];
    const int8_t *x2 = p->in2_const ? p->in2_const : (const int8_t *)in[next_input++];
    tk_bcast_binary_s8(x1, x2, (int8_t *)out[0], p->size, p->broadcast, p->out_shape, p->in1_strides,
                       p->in2_strides, tk_mul_one, p);
}
