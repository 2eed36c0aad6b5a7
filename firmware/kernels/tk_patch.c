/* tinyml-kit kernel: place a patch into the full tensor (see tk_patch.h). */
#include "tk_patch.h"

#include <stddef.h>
#include <string.h>

void tk_patch_place_s8(const tk_patch_params_t *p, const void *const *in, void *const *out, void *scratch) {
    const int8_t *src = (const int8_t *)in[0];
    int8_t *dst = (int8_t *)out[0] + p->dst_offset;
    (void)scratch;
    for (int32_t r = 0; r < p->rows; ++r) {
        memcpy(dst + (size_t)r * (size_t)p->dst_stride, src + (size_t)r * (size_t)p->row_bytes,
               (size_t)p->row_bytes);
    }
}
