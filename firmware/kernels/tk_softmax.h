/* tinyml-kit kernel: int8 SOFTMAX (int8 in, int8 out with scale 1/256 and zero point -128).
 *
 * ABI: in[0] = input [rows][depth], out[0] = output [rows][depth]. No scratch. The output may sit
 * on the input or before it (each element is read before its output is written). */
#ifndef TK_SOFTMAX_H
#define TK_SOFTMAX_H

#include <stdint.h>

typedef struct {
    int32_t rows, depth;
    int32_t input_multiplier;  /* beta * input_scale in Q(31-5), from PreprocessSoftmaxScaling */
    int32_t input_left_shift;
    int32_t diff_min;          /* differences below this give exp() == 0 */
} tk_softmax_params_t;

void tk_softmax_s8(const tk_softmax_params_t *p, const void *const *in, void *const *out, void *scratch);

#endif /* TK_SOFTMAX_H */
