/* tinyml-kit kernel: int8 pointwise CONV_2D (1x1, stride 1, no padding) and FULLY_CONNECTED as a GEMM.
 *
 * ABI: in[0] = input [pixels][in_c], out[0] = output [pixels][out_c]. scratch: three int16 columns
 * (TK_GEMM_SCRATCH(k4) = 6 * k4 bytes). Pixels are taken in blocks of three (Cortex-M4) or two, all
 * converted into scratch before their outputs are written, so the output may overlap the input in
 * raster order (the compiler computes the shift).
 * Filter packing, doubled bias and fast requantisation: see tk_gemm.h and tk_requant.h. */
#ifndef TK_CONV2D_1X1_H
#define TK_CONV2D_1X1_H

#include <stdint.h>

typedef struct {
    const int8_t *filter;     /* packed pairs of rows [out_c/2][k4/4][2][4] (tk_gemm.h) */
    const int32_t *rq;        /* [even out_c][4]: 2 * folded bias, multiplier, add, shift (tk_gemm.h) */
    int32_t pixels, in_c, out_c, k4;
    int32_t act_min, act_max;
} tk_conv2d_1x1_params_t;

void tk_conv2d_1x1_s8(const tk_conv2d_1x1_params_t *p, const void *const *in, void *const *out, void *scratch);

#endif /* TK_CONV2D_1X1_H */
