/* tinyml-kit kernel: int8 CONV_2D (TFLite reference semantics, per-channel requantisation).
 *
 * ABI: in[0] = input [in_h][in_w][in_c], out[0] = output [out_h][out_w][out_c] (NHWC, batch 1).
 * scratch: TK_CONV2D_SCRATCH_BYTES bytes, the receptive fields of two output pixels (processed as a
 * pair), gathered before their outputs are written, so the output may overlap the input in raster
 * order (the compiler computes the allowed shift). */
#ifndef TK_CONV2D_H
#define TK_CONV2D_H

#include <stdint.h>

typedef struct {
    const int8_t *filter;      /* [out_c][k_h][k_w][in_c / groups] (TFLite OHWI) */
    const int32_t *bias;       /* [out_c]: bias + input_offset * sum(filter[oc]), folded at compile time */
    const int32_t *multiplier; /* [out_c] Q31 requantisation multipliers */
    const int32_t *shift;      /* [out_c] requantisation shifts (> 0: left) */
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_top, pad_left;
    int32_t groups;
    int32_t input_zero_point;  /* value of padded taps (contributes 0 once the offset is folded) */
    int32_t output_offset;     /* output zero point */
    int32_t act_min, act_max;  /* clamp range including the fused activation */
} tk_conv2d_params_t;

void tk_conv2d_s8(const tk_conv2d_params_t *p, const void *const *in, void *const *out, void *scratch);

/* Bytes of scratch the kernel needs: two receptive fields (2 * k_h * k_w * in_c). */
#define TK_CONV2D_SCRATCH_BYTES(k_h, k_w, in_c) (2 * (k_h) * (k_w) * (in_c))

#endif /* TK_CONV2D_H */
