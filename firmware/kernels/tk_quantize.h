/* tinyml-kit kernels: QUANTIZE / DEQUANTIZE at the model's edges, and int8/uint8 requantisation.
 *
 * ABI: in[0] -> out[0], `size` elements, element-wise in order; no scratch. One params struct
 * serves all three functions (each reads only its own fields). */
#ifndef TK_QUANTIZE_H
#define TK_QUANTIZE_H

#include <stdint.h>

typedef struct {
    int32_t size;               /* number of elements */
    float scale;                /* quantize: output scale; dequantize: input scale */
    int32_t zero_point;         /* quantize: output zero point; dequantize: input zero point */
    int32_t input_zero_point;   /* requantize */
    int32_t output_zero_point;  /* requantize */
    int32_t multiplier, shift;  /* requantize: input_scale / output_scale in Q31 */
    int32_t input_unsigned;     /* requantize: 1 when the input is uint8 */
    int32_t output_unsigned;    /* requantize: 1 when the output is uint8 */
} tk_quantize_params_t;

/* float32 -> int8: clamp(round(x / scale) + zero_point), as TFLite's AffineQuantize. */
void tk_quantize_f32_s8(const tk_quantize_params_t *p, const void *const *in, void *const *out, void *scratch);
/* int8 -> float32: scale * (q - zero_point), as TFLite's Dequantize. */
void tk_dequantize_s8_f32(const tk_quantize_params_t *p, const void *const *in, void *const *out, void *scratch);
/* int8/uint8 -> int8/uint8 with a new scale and zero point, as TFLite's Requantize. */
void tk_requantize_8(const tk_quantize_params_t *p, const void *const *in, void *const *out, void *scratch);

#endif /* TK_QUANTIZE_H */
