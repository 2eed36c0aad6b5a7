/* tinyml-kit kernel: int8 DEPTHWISE_CONV_2D (TFLite reference semantics, per-channel requantisation).
 *
 * ABI: in[0] = input [in_h][in_w][in_c], out[0] = output [out_h][out_w][in_c * depth_multiplier].
 * Two variants:
 *  - raster (default): output pixels in raster order; the output may overlap the input up to the
 *    shift the compiler computed.
 *  - in place (p->inplace && out[0] == in[0], depth_multiplier 1): channel by channel, as in
 *    TinyEngine. Each input channel is first copied, zero-point padded, into scratch
 *    (tk_dwconv2d scratch = padded_h * padded_w bytes), then its output channel overwrites it. */
#ifndef TK_DWCONV2D_H
#define TK_DWCONV2D_H

#include <stdint.h>

typedef struct {
    const int8_t *filter;      /* [k_h][k_w][out_c] (TFLite 1HWO) */
    const int32_t *bias;       /* [out_c] (zeros when the model has no bias) */
    const int32_t *multiplier; /* [out_c] Q31 */
    const int32_t *shift;      /* [out_c] */
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w;
    int32_t depth_multiplier;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_top, pad_left;
    int32_t padded_h, padded_w; /* extent of the padded plane the in-place variant stages */
    int32_t input_offset;       /* -input zero point */
    int32_t output_offset;
    int32_t act_min, act_max;
    int32_t inplace;            /* 1: the plan placed the output on the input (exact shift 0) */
} tk_dwconv2d_params_t;

void tk_dwconv2d_s8(const tk_dwconv2d_params_t *p, const void *const *in, void *const *out, void *scratch);

#endif /* TK_DWCONV2D_H */
