/* ADD, int8 (see tk_add.h).  Each output element is written after both of its inputs were read, in
 * output raster order, so the output may overlap an input of the same shape at shift <= 0. */
#include "tk_add.h"

#include "tk_common.h"

TK_INLINE int8_t tk_add_one(const void *params, int32_t x1, int32_t x2) {
    const tk_add_params_t *p = (const tk_add_params_t *)params;
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
    tk_bcast_binary_s8(x1, x2, (int8_t *)out[0], p->size, p->broadcast, p->out_shape, p->in1_strides,
                       p->in2_strides, tk_add_one, p);
}
