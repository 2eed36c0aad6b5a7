/* Table lookup, int8 (see tk_lut.h).  Reads x[i] before writing y[i], in order: in place is safe. */
#include "tk_lut.h"

#include "tk_common.h"

void tk_lut_s8(const tk_lut_params_t *p, const void *const *in, void *const *out, void *scratch) {
    (void)scratch;
    const int8_t *x = (const int8_t *)in[0];
    int8_t *y = (int8_t *)out[0];
    const int8_t *table = p->table + 128;
    for (int32_t i = 0; i < p->size; ++i) y[i] = table[x[i]];
}
