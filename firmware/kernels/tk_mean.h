/* MEAN, int8, over any set of axes; bit-exact with TFLM's reduce kernel (EvalIntegerMean).
 *
 * TFLM has two int8 paths and both are reproduced:
 *  - input and output share scale and zero point: the integer sum of the raw values divided by the
 *    element count with C's truncating division (reference_ops::Mean);
 *  - otherwise: a float32 rescale, round(sum / count * scale + bias) + out_zero_point, clamped
 *    (reference_ops::QuantizedMeanOrSum), with scale = in_scale / out_scale and bias = -in_zp * scale.
 *
 * The compiler collapses the input into alternating kept / reduced dimension groups (at most
 * TK_MEAN_GROUPS of each, padded with size 1).  Outputs are produced in raster order, each written
 * after all of its inputs were summed, so no scratch memory is needed. */
#ifndef TK_MEAN_H
#define TK_MEAN_H

#include <stdint.h>

#define TK_MEAN_GROUPS 3

typedef struct {
    int32_t kept_dims[TK_MEAN_GROUPS];       /* sizes of the kept groups, outermost first */
    int32_t kept_strides[TK_MEAN_GROUPS];    /* their input strides in elements */
    int32_t reduced_dims[TK_MEAN_GROUPS];    /* sizes of the reduced groups, outermost first */
    int32_t reduced_strides[TK_MEAN_GROUPS]; /* their input strides in elements */
    int32_t count;                           /* elements averaged per output */
    int32_t rescale;                         /* 0: same quantisation in and out; 1: float32 rescale */
    float scale;                             /* float32(in_scale) / float32(out_scale) */
    float bias;                              /* -in_zero_point * scale, in float32 */
    int32_t out_zero_point;
} tk_mean_params_t;

void tk_mean_s8(const tk_mean_params_t *p, const void *const *in, void *const *out, void *scratch);

#endif /* TK_MEAN_H */
