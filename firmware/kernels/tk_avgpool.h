/* tinyml-kit kernel: int8 AVERAGE_POOL_2D (TFLite reference semantics).
 *
 * ABI: in[0] = input [in_h][in_w][channels], out[0] = output [out_h][out_w][channels]. No scratch.
 * Output pixels are written in raster order; the output may overlap the input up to the shift the
 * compiler computed. */
#ifndef TK_AVGPOOL_H
#define TK_AVGPOOL_H

#include <stdint.h>

typedef struct {
    int32_t in_h, in_w, channels;
    int32_t out_h, out_w;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left;
    int32_t act_min, act_max;
} tk_avgpool_params_t;

void tk_avgpool_s8(const tk_avgpool_params_t *p, const void *const *in, void *const *out, void *scratch);

#endif /* TK_AVGPOOL_H */
