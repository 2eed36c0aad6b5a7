/* MEAN, int8 (see tk_mean.h). */
#include "tk_mean.h"

#include "tk_common.h"

static int8_t tk_mean_finish(const tk_mean_params_t *p, int32_t sum) {
    if (!p->requantize) return (int8_t)sum; /* count == 1: a copy */
    const int32_t v = tk_requantize(sum + p->sum_offset, p->multiplier, p->shift) + p->out_zero_point;
    return tk_sat_s8(v);
}

void tk_mean_s8(const tk_mean_params_t *p, const void *const *in, void *const *out, void *scratch) {
    (void)scratch;
    const int8_t *x = (const int8_t *)in[0];
    int8_t *y = (int8_t *)out[0];
    const int32_t *kd = p->kept_dims, *ks = p->kept_strides;
    const int32_t *rd = p->reduced_dims, *rs = p->reduced_strides;

    for (int32_t k0 = 0; k0 < kd[0]; ++k0)
        for (int32_t k1 = 0; k1 < kd[1]; ++k1)
            for (int32_t k2 = 0; k2 < kd[2]; ++k2) {
                const int8_t *base = x + k0 * ks[0] + k1 * ks[1] + k2 * ks[2];
                int32_t sum = 0;
                for (int32_t r0 = 0; r0 < rd[0]; ++r0)
                    for (int32_t r1 = 0; r1 < rd[1]; ++r1) {
                        const int8_t *src = base + r0 * rs[0] + r1 * rs[1];
                        for (int32_t r2 = 0; r2 < rd[2]; ++r2) sum += src[r2 * rs[2]];
                    }
                *y++ = tk_mean_finish(p, sum);
            }
}
