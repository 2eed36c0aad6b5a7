/* CONCATENATION, int8 (see tk_concat.h).  Byte loops, never memcpy: outputs may overlap inputs. */
#include "tk_concat.h"

#include "tk_common.h"

void tk_concat_s8(const tk_concat_params_t *p, const void *const *in, void *const *out, void *scratch) {
    (void)scratch;
    int8_t *y = (int8_t *)out[0];
    for (int32_t o = 0; o < p->outer; ++o) {
        for (int32_t k = 0; k < p->num_inputs; ++k) {
            const int32_t n = p->chunk[k];
            const int8_t *src = (const int8_t *)in[k] + o * n;
            for (int32_t i = 0; i < n; ++i) *y++ = src[i];
        }
    }
}
