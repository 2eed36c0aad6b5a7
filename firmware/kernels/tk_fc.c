/* tinyml-kit kernel: int8 FULLY_CONNECTED, bit-exact with TFLite's reference_integer_ops::
 * FullyConnected / FullyConnectedPerChannel (filter zero point 0, input offset folded into bias). */
#include "tk_fc.h"

#include <stddef.h>

#include "tk_common.h"
#include "tk_simd.h"

TK_INLINE int8_t finish(const tk_fc_params_t *p, int32_t acc, int32_t o) {
    acc = tk_requantize(acc, p->multiplier[o], p->shift[o]) + p->output_offset;
    return (int8_t)tk_clamp_i32(acc, p->act_min, p->act_max);
}

#if TK_WIDE
/* Hosted 64-bit builds (tk_simd.h): 8 outputs at a time, their dot products in vector lanes reduced
 * together, then requantised as one vector; the last out_depth % 8 outputs one by one. */

/* Lane j of the result: the sum of the lanes of s[j]. */
TK_INLINE tk_v8i hsum8(const tk_v8i *s) {
#if defined(__AVX2__)
    const __m256i a = _mm256_hadd_epi32((__m256i)s[0], (__m256i)s[1]);
    const __m256i b = _mm256_hadd_epi32((__m256i)s[2], (__m256i)s[3]);
    const __m256i c = _mm256_hadd_epi32((__m256i)s[4], (__m256i)s[5]);
    const __m256i d = _mm256_hadd_epi32((__m256i)s[6], (__m256i)s[7]);
    const __m256i ab = _mm256_hadd_epi32(a, b), cd = _mm256_hadd_epi32(c, d);
    /* ab = [s0 s1 s2 s3 (low halves) | s0 s1 s2 s3 (high halves)], likewise cd for s4..s7 */
    return (tk_v8i)_mm256_add_epi32(_mm256_permute2x128_si256(ab, cd, 0x20), _mm256_permute2x128_si256(ab, cd, 0x31));
#else
    tk_v8i r;
    for (int32_t j = 0; j < 8; ++j) {
        int32_t t = 0;
        for (int32_t i = 0; i < 8; ++i) t += s[j][i];
        r[j] = t;
    }
    return r;
#endif
}

static void fc_wide(const tk_fc_params_t *p, const int8_t *input, int8_t *output) {
    const int32_t depth = p->accum_depth, outs = p->out_depth, d8 = depth & ~7;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *x = input + (size_t)b * (size_t)depth;
        int8_t *y = output + (size_t)b * (size_t)outs;
        int32_t o = 0;
        for (; o + 8 <= outs; o += 8) {
            tk_v8i acc = tk_v8i_load(p->bias + o);
            if (depth == 1) { /* a column of weights: contiguous over the outputs */
                acc += tk_v8i_load8(p->filter + o) * x[0];
            } else {
                tk_v8i s[8];
                int32_t tail[8];
                for (int32_t j = 0; j < 8; ++j) {
                    const int8_t *w = p->filter + (size_t)(o + j) * (size_t)depth;
                    s[j] = tk_v8i_splat(0);
                    for (int32_t k = 0; k < d8; k += 8) s[j] += tk_v8i_load8(x + k) * tk_v8i_load8(w + k);
                    tail[j] = 0;
                    for (int32_t k = d8; k < depth; ++k) tail[j] += (int32_t)x[k] * (int32_t)w[k];
                }
                acc += hsum8(s) + tk_v8i_load(tail);
            }
            const tk_v8i q = tk_v8i_requantize(acc, tk_v8i_load(p->multiplier + o), tk_v8i_load(p->shift + o));
            int32_t r[8];
            tk_v8i_store(r, tk_v8i_clamp(q + tk_v8i_splat(p->output_offset), p->act_min, p->act_max));
            for (int32_t i = 0; i < 8; ++i) y[o + i] = (int8_t)r[i];
        }
        for (; o < outs; ++o) {
            const int8_t *w = p->filter + (size_t)o * (size_t)depth;
            int32_t acc = p->bias[o];
            for (int32_t k = 0; k < depth; ++k) acc += (int32_t)x[k] * (int32_t)w[k];
            y[o] = finish(p, acc, o);
        }
    }
}
#endif

void tk_fc_s8(const tk_fc_params_t *p, const void *const *in, void *const *out, void *scratch) {
    const int8_t *input = (const int8_t *)in[0];
    int8_t *output = (int8_t *)out[0];
    (void)scratch;
#if TK_WIDE
    fc_wide(p, input, output);
    return;
#endif
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *x = input + (size_t)b * (size_t)p->accum_depth;
        int8_t *y = output + (size_t)b * (size_t)p->out_depth;
        const int8_t *w = p->filter;
        int32_t o = 0;
        for (; o + 2 <= p->out_depth; o += 2, w += 2 * p->accum_depth) {
            int32_t acc[2] = {p->bias[o], p->bias[o + 1]};
            tk_dot4x2x1(x, w, w + p->accum_depth, p->accum_depth, acc);
            y[o] = finish(p, acc[0], o);
            y[o + 1] = finish(p, acc[1], o + 1);
        }
        if (o < p->out_depth) y[o] = finish(p, p->bias[o] + tk_dot4(x, w, p->accum_depth), o);
    }
}
