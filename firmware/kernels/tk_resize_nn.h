/* RESIZE_NEAREST_NEIGHBOR, int8 NHWC; bit-exact with TFLM (reference_ops::ResizeNearestNeighbor).
 *
 * The source row/column of every output row/column (TFLM's GetNearestNeighbor, including
 * align_corners and half_pixel_centers) is computed at compile time into two index tables. */
#ifndef TK_RESIZE_NN_H
#define TK_RESIZE_NN_H

#include <stdint.h>

typedef struct {
    int32_t batches, in_h, in_w, channels;
    int32_t out_h, out_w;
    const int32_t *src_y; /* out_h entries: input row of each output row */
    const int32_t *src_x; /* out_w entries: input column of each output column */
} tk_resize_nn_params_t;

void tk_resize_nn_s8(const tk_resize_nn_params_t *p, const void *const *in, void *const *out,
                     void *scratch);

#endif /* TK_RESIZE_NN_H */
