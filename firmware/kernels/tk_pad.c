/* PAD, int8 (see tk_pad.h).  Byte loops, never memcpy: the planner may overlap output and input. */
#include "tk_pad.h"

#include "tk_common.h"

void tk_pad_s8(const tk_pad_params_t *p, const void *const *in, void *const *out, void *scratch) {
    (void)scratch;
    enum { LAST = TK_PAD_DIMS - 1 };
    const int8_t *x = (const int8_t *)in[0];
    int8_t *y = (int8_t *)out[0];
    const int8_t fill = (int8_t)p->pad_value;
    int32_t out_dims[TK_PAD_DIMS];
    int32_t rows = 1;
    for (int d = 0; d < TK_PAD_DIMS; ++d) {
        out_dims[d] = p->pad_before[d] + p->in_dims[d] + p->pad_after[d];
        if (d < LAST) rows *= out_dims[d];
    }
    const int32_t out_row = out_dims[LAST];
    const int32_t in_row = p->in_dims[LAST];
    int32_t index[TK_PAD_DIMS] = {0}; /* output position in the outer dimensions */

    for (int32_t r = 0; r < rows; ++r) {
        int inside = 1;
        for (int d = 0; d < LAST; ++d) {
            const int32_t i = index[d] - p->pad_before[d];
            if (i < 0 || i >= p->in_dims[d]) inside = 0;
        }
        if (!inside) {
            for (int32_t i = 0; i < out_row; ++i) *y++ = fill;
        } else {
            for (int32_t i = 0; i < p->pad_before[LAST]; ++i) *y++ = fill;
            for (int32_t i = 0; i < in_row; ++i) *y++ = *x++;
            for (int32_t i = 0; i < p->pad_after[LAST]; ++i) *y++ = fill;
        }
        for (int d = LAST - 1; d >= 0; --d) {
            if (++index[d] < out_dims[d]) break;
            index[d] = 0;
        }
    }
}
