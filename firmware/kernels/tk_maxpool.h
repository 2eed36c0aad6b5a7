/* MAX_POOL_2D, int8 NHWC, bit-exact with TFLM's reference_integer_ops::MaxPool.
 *
 * The window is clipped to the input (padded positions are ignored, not read as zero), and the maximum
 * is clamped to the fused activation range. */
#ifndef TK_MAXPOOL_H
#define TK_MAXPOOL_H

#include <stdint.h>

typedef struct {
    int32_t batches, in_h, in_w, channels;
    int32_t out_h, out_w;
    int32_t filter_h, filter_w;
    int32_t stride_h, stride_w;
    int32_t pad_h, pad_w; /* top / left padding */
    int32_t act_min, act_max;
} tk_maxpool_params_t;

void tk_maxpool_s8(const tk_maxpool_params_t *p, const void *const *in, void *const *out, void *scratch);

#endif /* TK_MAXPOOL_H */
