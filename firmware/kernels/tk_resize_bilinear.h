/* tinyml-kit kernel: int8 RESIZE_BILINEAR, NHWC; bit-exact with TFLM (reference_ops::ResizeBilinearInteger,
 * the default double-rounding build).
 *
 * Every output row reads input rows y0 <= y1 and weighs them (1024 - fy) : fy, every output column
 * reads columns x0 <= x1 with weights (1024 - fx) : fx (10 fractional bits). The tables are TFLM's
 * integer source coordinates (align_corners, half_pixel_centers, the clamping at the borders and the
 * extrapolating weights of the first half-pixel row), computed at compile time.
 *
 * ABI: in[0] = input [batches][in_h][in_w][channels], out[0] = output [batches][out_h][out_w][channels],
 * same scale and zero point. No scratch. Each output byte is written right after its four input
 * bytes are read, in raster order, so the output may overlap the input up to the shift the compiler
 * computed. */
#ifndef TK_RESIZE_BILINEAR_H
#define TK_RESIZE_BILINEAR_H

#include <stdint.h>

typedef struct {
    int32_t batches, in_h, in_w, channels;
    int32_t out_h, out_w;
    const int16_t *y0, *y1, *fy; /* out_h entries each: source rows and the weight of row y1 */
    const int16_t *x0, *x1, *fx; /* out_w entries each: source columns and the weight of column x1 */
} tk_resize_bilinear_params_t;

void tk_resize_bilinear_s8(const tk_resize_bilinear_params_t *p, const void *const *in, void *const *out,
                           void *scratch);

#endif /* TK_RESIZE_BILINEAR_H */
