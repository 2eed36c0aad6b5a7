/* ADD, int8: TFLite's quantised addition with broadcasting and fused activation.
 *
 * Bit-exact with TFLM's reference kernel (reference_integer_ops::AddFunc): both inputs are moved to a
 * common scale with 20 bits of headroom, summed, and requantised to the output scale. */
#ifndef TK_ADD_H
#define TK_ADD_H

#include <stdint.h>

#include "tk_bcast.h"

typedef struct {
    int32_t size;      /* output elements */
    int32_t broadcast; /* 0: both inputs have the output's elements (one flat loop) */
    int32_t out_shape[TK_BCAST_DIMS];   /* collapsed output shape (broadcast only) */
    int32_t in1_strides[TK_BCAST_DIMS]; /* element strides, 0 where input 1 is broadcast */
    int32_t in2_strides[TK_BCAST_DIMS];
    int32_t in1_offset; /* -zero_point of input 1 */
    int32_t in2_offset; /* -zero_point of input 2 */
    int32_t out_offset; /* zero_point of the output */
    int32_t left_shift; /* 20 for int8 */
    int32_t in1_multiplier, in1_shift;
    int32_t in2_multiplier, in2_shift;
    int32_t out_multiplier, out_shift;
    int32_t act_min, act_max;
    const int8_t *in1_const; /* input 1 when it is a constant (then not in `in`), else NULL */
    const int8_t *in2_const; /* input 2 when it is a constant, else NULL */
} tk_add_params_t;

void tk_add_s8(const tk_add_params_t *p, const void *const *in, void *const *out, void *scratch);

#endif /* TK_ADD_H */
