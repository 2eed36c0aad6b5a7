/* tinyml-kit kernel: int8 FULLY_CONNECTED (TFLite reference semantics).
 *
 * ABI: in[0] = input [batches][accum_depth], out[0] = output [batches][out_depth]. No scratch.
 * The output must not overlap the input (each row of the input is read out_depth times). Hosted 64-bit
 * builds (TK_WIDE, tk_simd.h) compute 8 outputs at a time and requantise them as one vector. */
#ifndef TK_FC_H
#define TK_FC_H

#include <stdint.h>

typedef struct {
    const int8_t *filter;      /* [out_depth][accum_depth] */
    const int32_t *bias;       /* [out_depth]: bias + input_offset * sum(filter row), folded */
    const int32_t *multiplier; /* [out_depth] Q31 (a per-tensor model repeats one value) */
    const int32_t *shift;      /* [out_depth] */
    int32_t batches, accum_depth, out_depth;
    int32_t output_offset;
    int32_t act_min, act_max;
} tk_fc_params_t;

void tk_fc_s8(const tk_fc_params_t *p, const void *const *in, void *const *out, void *scratch);

#endif /* TK_FC_H */
