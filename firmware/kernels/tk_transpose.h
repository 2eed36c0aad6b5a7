/* TRANSPOSE, int8, up to 6 dimensions; a pure permutation (bit-exact with TFLM by construction).
 *
 * The compiler collapses output dimensions that stay adjacent in the input and pads the shape to
 * TK_TRANSPOSE_DIMS with leading size-1 dimensions.  Output is written in raster order. */
#ifndef TK_TRANSPOSE_H
#define TK_TRANSPOSE_H

#include <stdint.h>

#define TK_TRANSPOSE_DIMS 6

typedef struct {
    int32_t out_dims[TK_TRANSPOSE_DIMS];
    int32_t in_strides[TK_TRANSPOSE_DIMS]; /* input stride (elements) of each output dimension */
} tk_transpose_params_t;

void tk_transpose_s8(const tk_transpose_params_t *p, const void *const *in, void *const *out,
                     void *scratch);

#endif /* TK_TRANSPOSE_H */
