/* MEAN, int8 (see tk_mean.h). */
#include "tk_mean.h"

#include "tk_common.h"

/* std::round for float (half away from zero) without libm; exact for every float. */
static float tk_mean_roundf(float x) {
    if (!(x > -8388608.0f && x < 8388608.0f)) return x; /* |x| >= 2^23 is already an integer */
    const float whole = (float)(int32_t)x;
    const float frac = x - whole; /* exact */
    if (frac >= 0.5f) return whole + 1.0f;
    if (frac <= -0.5f) return whole - 1.0f;
    return whole;
}

static int8_t tk_mean_finish(const tk_mean_params_t *p, int32_t sum) {
    if (!p->rescale) return (int8_t)(sum / p->count);
    const float mean = (float)sum / (float)p->count;
    /* volatile keeps the product rounded to float before the add: TFLM's build does not contract
     * mean * scale + bias into a fused multiply-add, so neither may we (e.g. on Cortex-M4F). */
    volatile float scaled = mean * p->scale;
    float result = tk_mean_roundf(scaled + p->bias) + (float)p->out_zero_point;
    if (result > 127.0f) result = 127.0f;
    if (result < -128.0f) result = -128.0f;
    return (int8_t)result;
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
