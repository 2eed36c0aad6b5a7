/* MUL, int8: TFLite's quantised multiplication with broadcasting and fused activation.
 *
 * Bit-exact with TFLM's reference kernel (reference_integer_ops::MulElementwise / BroadcastMul4DSlow):
 * the product of the zero-point-corrected inputs is requantised with one multiplier. */
#ifndef TK_MUL_H
#define TK_MUL_H

#include <stdint.h>

#include "tk_bcast.h"

typedef struct {
    int32_t size;      /* output elements */
    int32_t broadcast; /* 0: both inputs have the output's elements (one flat loop) */
    int32_t out_shape[TK_BCAST_DIMS];
    int32_t in1_strides[TK_BCAST_DIMS];
    int32_t in2_strides[TK_BCAST_DIMS];
    int32_t in1_offset; /* -zero_point of input 1 */
    int32_t in2_offset; /* -zero_point of input 2 */
    int32_t out_offset; /* zero_point of the output */
    int32_t out_multiplier, out_shift;
    int32_t act_min, act_max;
    const int8_t *in1_const; /* input 1 when it is a constant (then not in `in`), else NULL */
    const int8_t *in2_const;
} tk_mul_params_t;

void tk_mul_s8(const tk_mul_params_t *p, const void *const *in, void *const *out, void *scratch);

#endif /* TK_MUL_H */
