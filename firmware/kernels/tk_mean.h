/* MEAN, int8, over any set of axes; bit-exact with TFLM's reduce kernel (EvalIntegerMean).
 *
 * As TFLM's reference_ops::QuantizedMeanOrSum: out_zp + MultiplyByQuantizedMultiplier(sum - in_zp *
 * count, multiplier, shift), where the compiler folded 1/count into TFLite's in_scale/out_scale
 * multiplier with the integer steps TFLM takes at run time.  (With no axes at all TFLM copies the
 * input unchanged; `requantize` = 0 reproduces that.)
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
    int32_t requantize;     /* 1: requantise the sum (always, unless there are no axes: 0 = copy) */
    int32_t sum_offset;     /* -in_zero_point * count */
    int32_t multiplier;     /* in_scale / (out_scale * count), TFLite Q31 multiplier ... */
    int32_t shift;          /* ... and its power-of-two exponent */
    int32_t out_zero_point;
} tk_mean_params_t;

void tk_mean_s8(const tk_mean_params_t *p, const void *const *in, void *const *out, void *scratch);

#endif /* TK_MEAN_H */
