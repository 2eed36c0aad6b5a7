/* PAD / PADV2, int8, constant padding; bit-exact with TFLM (reference_ops::Pad).
 *
 * The pad value is the output zero point (PAD) or the constant_values tensor (PADV2).  The compiler
 * merges each unpadded dimension into its outer neighbour and pads the shape to TK_PAD_DIMS with
 * leading size-1 dimensions.  Output is written in raster order, one element at a time. */
#ifndef TK_PAD_H
#define TK_PAD_H

#include <stdint.h>

#define TK_PAD_DIMS 6

typedef struct {
    int32_t in_dims[TK_PAD_DIMS];
    int32_t pad_before[TK_PAD_DIMS];
    int32_t pad_after[TK_PAD_DIMS];
    int32_t pad_value;
} tk_pad_params_t;

void tk_pad_s8(const tk_pad_params_t *p, const void *const *in, void *const *out, void *scratch);

#endif /* TK_PAD_H */
