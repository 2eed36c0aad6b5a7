/* CONCATENATION, int8, up to TK_CONCAT_MAX_INPUTS inputs along any axis.
 *
 * Like TFLM (reference_ops::Concatenation on int8), the bytes are copied as they are: TFLM does not
 * requantise, and the converter gives every input the output's scale and zero point.  The output is
 * `outer` repetitions of [chunk of input 0, chunk of input 1, ...], written in raster order. */
#ifndef TK_CONCAT_H
#define TK_CONCAT_H

#include <stdint.h>

#define TK_CONCAT_MAX_INPUTS 10

typedef struct {
    int32_t outer;                        /* product of the dimensions before the axis */
    int32_t num_inputs;
    int32_t chunk[TK_CONCAT_MAX_INPUTS]; /* elements of input k per outer index */
} tk_concat_params_t;

void tk_concat_s8(const tk_concat_params_t *p, const void *const *in, void *const *out, void *scratch);

#endif /* TK_CONCAT_H */
