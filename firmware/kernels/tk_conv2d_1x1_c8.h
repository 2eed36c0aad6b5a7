/* tinyml-kit kernel: int8 pointwise CONV_2D (1x1, stride 1, no padding) with exactly 8 input channels,
 * the full int8 output range and a multiple of 4 output channels (a MobileNet's first pointwise layer).
 *
 * With only 8 values per pixel the GEMM of tk_conv2d_1x1 spends as much on its block set-up as on its
 * multiplies. Here one pixel stays in 4 registers as halfword pairs (x0, x2), (x1, x3), (x4, x6),
 * (x5, x7) while the output channels stream past: per channel one LDM of 8 words, 4 SMLAD, the
 * requantisation of tk_requant.h and one STRB (10 instructions for 8 MACs on Cortex-M4).
 *
 * ABI: in[0] = input [pixels][8], out[0] = output [pixels][out_c]; no scratch. A pixel is read before
 * its outputs are written, so the output may overlap the input in raster order (the compiler computes
 * the shift).
 *
 * stream, packed at compile time (lowering/conv.py: pointwise_c8_stream), per output channel 8 words:
 * the doubled weights as halfword pairs (2 w0, 2 w2), (2 w1, 2 w3), (2 w4, 2 w6), (2 w5, 2 w7), then
 * 2 * folded bias, multiplier, add and shift (tk_requant.h). The last channel's shift word has
 * TK_C8_LAST added: the end of the channel loop (ASR reads only the low byte of its shift register). */
#ifndef TK_CONV2D_1X1_C8_H
#define TK_CONV2D_1X1_C8_H

#include <stdint.h>

#define TK_C8_WORDS 8   /* stream words per output channel */
#define TK_C8_LAST 256  /* added to the last channel's shift word */

typedef struct {
    const int32_t *stream; /* [out_c][TK_C8_WORDS] */
    int32_t pixels, out_c;
} tk_conv2d_1x1_c8_params_t;

void tk_conv2d_1x1_c8_s8(const tk_conv2d_1x1_c8_params_t *p, const void *const *in, void *const *out,
                         void *scratch);

#endif /* TK_CONV2D_1X1_C8_H */
