/* tinyml-kit kernel: int8 CONV_2D (groups 1, any kernel size, stride, dilation, padding) as im2col + GEMM;
 * also DEPTHWISE_CONV_2D with one input channel (a convolution with in_c = 1), the usual first layer.
 *
 * ABI: in[0] = input [in_h][in_w][in_c], out[0] = output [out_h][out_w][out_c] (NHWC, batch 1).
 * scratch: TK_GEMM_SCRATCH(k4) = 6 * k4 bytes, three int16 columns: the receptive fields of a block of
 * output pixels (three on Cortex-M4, else two), gathered (padded taps get the input zero point, which contributes 0 once the input offset
 * is folded into the bias) before their outputs are written, so the output may overlap the input in
 * raster order. Padding may be negative (the windows of a patch start inside a larger frame). See
 * tk_gemm.h for the packing. A kernel whose rows are 4 values (k_w * in_c == 4, dilation_w 1, k4 ==
 * 4 * k_h: a 3-wide one-channel kernel padded by the lowering with a zero-weight fourth tap) converts
 * each row from one word of the input. On Cortex-M4 such a layer with one input channel, 3 kernel rows, an
 * even out_c <= 16 and the full int8 range (``c1_table``, set by the lowering, which then declares
 * 32 * out_c + 24 bytes of scratch: 8 table words per output channel and the loop state) instead keeps
 * each pixel's 9 values in registers and loops over the output channels, from a table of int16 filter
 * pairs built in the scratch; pixels in raster order, each read before its outputs are written. */
#ifndef TK_CONV2D_GEMM_H
#define TK_CONV2D_GEMM_H

#include <stdint.h>

typedef struct {
    const int8_t *filter;     /* packed pairs of rows [out_c/2][k4/4][2][4] (tk_gemm.h), taps in (ky, kx, c) order */
    const int32_t *rq;        /* [even out_c][4]: 2 * folded bias, multiplier, add, shift (tk_gemm.h) */
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_top, pad_left;
    int32_t input_zero_point; /* value of padded taps */
    int32_t k4;               /* k_h * k_w * in_c rounded up to a multiple of 4 */
    int32_t act_min, act_max;
    int32_t c1_table;         /* 1: a one-channel 3x3 layer whose scratch holds its table (32 * out_c + 24 bytes) */
} tk_conv2d_gemm_params_t;

void tk_conv2d_gemm_s8(const tk_conv2d_gemm_params_t *p, const void *const *in, void *const *out, void *scratch);

#endif /* TK_CONV2D_GEMM_H */
