/* tinyml-kit kernel: int8 AVERAGE_POOL_2D, bit-exact with TFLite's reference_integer_ops::AveragePool
 * (average over the taps inside the input, rounded half away from zero).
 *
 * Per output pixel the channels go TK_AVG_CHUNK at a time: the window's rows are summed tap by tap over
 * contiguous channels (with the DSP extension four channels per word: SXTB16 and SADD16 into halfword
 * sums, exact while a window has at most TK_AVG_MAX_TAPS16 taps), then each sum is divided once. A pixel's
 * outputs are written after its window is read (the lowering's overlap rule needs no more). */
#include "tk_avgpool.h"

#include <stddef.h>
#include <string.h>

#include "tk_common.h"
#include "tk_simd.h"

#define TK_AVG_CHUNK 64       /* channels summed at once (multiple of 4) */
#define TK_AVG_MAX_TAPS16 255 /* 255 * 128 < 2^15: halfword sums cannot overflow */

/* The rounded average of ``acc`` over ``count`` taps, clamped. */
TK_INLINE int8_t avg_out(int32_t acc, int32_t count, int32_t lo, int32_t hi) {
    if (count > 0) acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
    return (int8_t)tk_clamp_i32(acc, lo, hi);
}

/* Channels [c0, c0 + n) of one output pixel: rows ky0..ky1 and columns kx0..kx1 of the window at (y0, x0). */
static void avg_chunk(const tk_avgpool_params_t *p, const int8_t *input, int32_t c0, int32_t n, int32_t y0,
                      int32_t ky0, int32_t ky1, int32_t x0, int32_t kx0, int32_t kx1, int8_t *dst) {
    const size_t channels = (size_t)p->channels;
    const int32_t count = (ky1 > ky0 && kx1 > kx0) ? (ky1 - ky0) * (kx1 - kx0) : 0;
#if TK_HAVE_DSP
    if (count <= TK_AVG_MAX_TAPS16) {
        int32_t sums[TK_AVG_CHUNK / 2]; /* per 4 channels: (c0, c2) and (c1, c3) as halfword pairs */
        const int32_t words = (n + 3) >> 2;
        memset(sums, 0, sizeof(int32_t) * 2 * (size_t)words);
        int8_t tail[4];
        for (int32_t ky = ky0; ky < ky1; ++ky) {
            for (int32_t kx = kx0; kx < kx1; ++kx) {
                const int8_t *src = input + ((size_t)(y0 + ky) * (size_t)p->in_w + (size_t)(x0 + kx)) * channels
                                    + (size_t)c0;
                int32_t *s = sums;
                int32_t i = 0;
                for (; i + 4 <= n; i += 4, s += 2) {
                    const uint32_t v = tk_load4(src + i);
                    s[0] = __sadd16(s[0], tk_even16(v));
                    s[1] = __sadd16(s[1], tk_odd16(v));
                }
                if (i < n) { /* the last 1-3 channels, zero-padded */
                    memset(tail, 0, sizeof tail);
                    memcpy(tail, src + i, (size_t)(n - i));
                    const uint32_t v = tk_load4(tail);
                    s[0] = __sadd16(s[0], tk_even16(v));
                    s[1] = __sadd16(s[1], tk_odd16(v));
                }
            }
        }
        for (int32_t i = 0; i < n; ++i) {
            const int32_t word = sums[2 * (i >> 2) + (i & 1)];
            const int32_t acc = (i & 2) ? tk_hi16(word) : tk_lo16(word);
            dst[i] = avg_out(acc, count, p->act_min, p->act_max);
        }
        return;
    }
#endif
    int32_t sums[TK_AVG_CHUNK];
    memset(sums, 0, sizeof(int32_t) * (size_t)n);
    for (int32_t ky = ky0; ky < ky1; ++ky) {
        for (int32_t kx = kx0; kx < kx1; ++kx) {
            const int8_t *src = input + ((size_t)(y0 + ky) * (size_t)p->in_w + (size_t)(x0 + kx)) * channels
                                + (size_t)c0;
            for (int32_t i = 0; i < n; ++i) sums[i] += src[i];
        }
    }
    for (int32_t i = 0; i < n; ++i) dst[i] = avg_out(sums[i], count, p->act_min, p->act_max);
}

void tk_avgpool_s8(const tk_avgpool_params_t *p, const void *const *in, void *const *out, void *scratch) {
    const int8_t *input = (const int8_t *)in[0];
    int8_t *output = (int8_t *)out[0];
    (void)scratch;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        const int32_t y0 = oy * p->stride_h - p->pad_top;
        const int32_t ky0 = tk_max_i32(0, -y0), ky1 = tk_min_i32(p->k_h, p->in_h - y0);
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const int32_t x0 = ox * p->stride_w - p->pad_left;
            const int32_t kx0 = tk_max_i32(0, -x0), kx1 = tk_min_i32(p->k_w, p->in_w - x0);
            int8_t *dst = output + ((size_t)oy * (size_t)p->out_w + (size_t)ox) * (size_t)p->channels;
            for (int32_t c0 = 0; c0 < p->channels; c0 += TK_AVG_CHUNK) {
                const int32_t n = tk_min_i32(TK_AVG_CHUNK, p->channels - c0);
                avg_chunk(p, input, c0, n, y0, ky0, ky1, x0, kx0, kx1, dst + c0);
            }
        }
    }
}
