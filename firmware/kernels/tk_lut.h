/* Element-wise int8 -> int8 function by table lookup: RELU, RELU6, LOGISTIC, HARD_SWISH.
 *
 * An int8 input has only 256 values, so the compiler evaluates TFLM's integer arithmetic for each of
 * them (requantising RELU, gemmlowp's fixed-point logistic, TFLite's int16 fixed-point hard-swish)
 * and the kernel just looks the result up: bit-exact with TFLM by construction, one load per element. */
#ifndef TK_LUT_H
#define TK_LUT_H

#include <stdint.h>

typedef struct {
    int32_t size;         /* elements */
    const int8_t *table;  /* 256 entries; table[x + 128] is the output for input x */
} tk_lut_params_t;

void tk_lut_s8(const tk_lut_params_t *p, const void *const *in, void *const *out, void *scratch);

#endif /* TK_LUT_H */
