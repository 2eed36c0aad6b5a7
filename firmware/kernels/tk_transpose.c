/* TRANSPOSE, int8 (see tk_transpose.h). */
#include "tk_transpose.h"

#include "tk_common.h"

void tk_transpose_s8(const tk_transpose_params_t *p, const void *const *in, void *const *out,
                     void *scratch) {
    (void)scratch;
    enum { LAST = TK_TRANSPOSE_DIMS - 1 };
    const int8_t *x = (const int8_t *)in[0];
    int8_t *y = (int8_t *)out[0];
    int32_t rows = 1;
    for (int d = 0; d < LAST; ++d) rows *= p->out_dims[d];
    const int32_t row = p->out_dims[LAST];
    const int32_t step = p->in_strides[LAST];
    int32_t index[TK_TRANSPOSE_DIMS] = {0};
    int32_t offset = 0; /* input offset of the current output row */

    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *src = x + offset;
        for (int32_t i = 0; i < row; ++i) *y++ = src[i * step];
        for (int d = LAST - 1; d >= 0; --d) {
            offset += p->in_strides[d];
            if (++index[d] < p->out_dims[d]) break;
            offset -= p->in_strides[d] * p->out_dims[d];
            index[d] = 0;
        }
    }
}
