/* tinyml-kit kernel: int8 DEPTHWISE_CONV_2D (TFLite reference semantics, per-channel requantisation).
 *
 * ABI: in[0] = input [in_h][in_w][in_c], out[0] = output [out_h][out_w][in_c * depth_multiplier].
 * Two variants:
 *  - depth_multiplier 1: channel by channel, as TinyEngine does. Each input channel is copied,
 *    zero-point padded, into scratch (padded_h * padded_w bytes, rounded up to 4, followed by
 *    4 * out_w bytes of row sums), then its output channel is computed from there. The output either sits exactly on the input (in place, shift 0: writes of
 *    channel c only land on bytes of input channel c) or does not overlap it.
 *  - depth_multiplier > 1: raster order (the output may overlap the input up to the compiler's
 *    raster shift). With one input channel and filter_t given, each output channel is a dot product of window rows with
 *    the transposed filter (4 x int8 SIMD); otherwise all channels of a pixel accumulate in scratch
 *    (4 * out_c bytes). */
#ifndef TK_DWCONV2D_H
#define TK_DWCONV2D_H

#include <stdint.h>

typedef struct {
    const int8_t *filter;      /* [k_h][k_w][out_c] (TFLite 1HWO) */
    const int32_t *bias;       /* [out_c] (zeros when the model has no bias) */
    const int32_t *bias_folded; /* [out_c]: bias + input_offset * sum(filter[.][.][oc]) */
    const int8_t *filter_t;    /* [out_c][k_h][k_w] (transposed) for the one-input-channel path, or NULL */
    const int32_t *multiplier; /* [out_c] Q31 */
    const int32_t *shift;      /* [out_c] */
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w;
    int32_t depth_multiplier;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_top, pad_left;
    int32_t padded_h, padded_w; /* extent of the zero-point padded plane the channel variant stages */
    int32_t input_offset;       /* -input zero point */
    int32_t output_offset;
    int32_t act_min, act_max;
} tk_dwconv2d_params_t;

void tk_dwconv2d_s8(const tk_dwconv2d_params_t *p, const void *const *in, void *const *out, void *scratch);

#endif /* TK_DWCONV2D_H */
