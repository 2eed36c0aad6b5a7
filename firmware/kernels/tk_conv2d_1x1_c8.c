/* tinyml-kit kernel: pointwise convolution with 8 input channels (see tk_conv2d_1x1_c8.h), bit-exact
 * with TFLite's reference ConvPerChannel. */
#include "tk_conv2d_1x1_c8.h"

#include <stddef.h>
#include <stdint.h>

#include "tk_common.h"
#include "tk_requant.h"
#include "tk_simd.h"

/* Pixels [0, pixels) in C: each pixel's 8 values read before its outputs are written. */
static void c8_pixels(const int32_t *stream, int32_t out_c, const int8_t *input, int8_t *output,
                      int32_t pixels) {
    for (int32_t px = 0; px < pixels; ++px, input += 8) {
        int32_t x[8];
        for (int32_t k = 0; k < 8; ++k) x[k] = input[k];
        const int32_t *s = stream;
        for (int32_t c = 0; c < out_c; ++c, s += TK_C8_WORDS) {
            int32_t acc2 = s[4];
            for (int32_t g = 0; g < 4; ++g) { /* word g: the weights of x[e] and x[e + 2], e = 0, 1, 4, 5 */
                const int32_t e = (g & 1) + 4 * (g >> 1);
                acc2 += x[e] * tk_lo16(s[g]) + x[e + 2] * tk_hi16(s[g]);
            }
            *output++ = tk_rq_fast_sat8(acc2, s[5], s[6], s[7] & (TK_C8_LAST - 1));
        }
    }
}

#if TK_HAVE_DSP
/* Cortex-M4: r0 = input (word aligned), r1 = stream, r2 = output, r3 = pixels (>= 1). On the stack:
 * [sp] the next pixel, [sp + 4] the end of the input, [sp + 8] the stream. Per pixel: LDRD and 4 SXTB16
 * give its halfword pairs in r0-r3; per channel (4 per loop pass, the loop ends at the channel whose
 * shift word carries TK_C8_LAST): LDM of the stream words into r4-r11 (weights r4-r7, the doubled bias
 * r8 that becomes the sum, multiplier r9, add r10, shift r11), 4 SMLAD, SMMLAR, the sign fix, ASR, SSAT
 * and STRB. */
#define TK_C8_CHANNEL                  \
    "ldmia r12!, {r4-r11}\n\t"         \
    "smlad r8, r0, r4, r8\n\t"         \
    "smlad r8, r1, r5, r8\n\t"         \
    "smlad r8, r2, r6, r8\n\t"         \
    "smlad r8, r3, r7, r8\n\t"         \
    "smmlar r4, r8, r9, r10\n\t"       \
    "add r4, r4, r8, asr #31\n\t"      \
    "asr r4, r4, r11\n\t"              \
    "ssat r4, #8, r4\n\t"              \
    "strb r4, [lr], #1\n\t"

__attribute__((naked, noinline)) static void c8_pixels_asm(const int8_t *input __attribute__((unused)),
                                                            const int32_t *stream __attribute__((unused)),
                                                            int8_t *output __attribute__((unused)),
                                                            int32_t pixels __attribute__((unused))) {
    __asm__ volatile(
        "push {r4-r11, lr}\n\t"
        "mov r12, r1\n\t"
        "add r1, r0, r3, lsl #3\n\t"
        "mov r3, r12\n\t"
        "push {r0, r1, r3}\n\t"
        "mov lr, r2\n\t"
        "1:\n\t"
        "ldr r12, [sp]\n\t"
        "ldrd r0, r2, [r12], #8\n\t"
        "str r12, [sp]\n\t"
        "sxtb16 r1, r0, ror #8\n\t"
        "sxtb16 r0, r0\n\t"
        "sxtb16 r3, r2, ror #8\n\t"
        "sxtb16 r2, r2\n\t"
        "ldr r12, [sp, #8]\n\t"
        "2:\n\t"
        TK_C8_CHANNEL TK_C8_CHANNEL TK_C8_CHANNEL TK_C8_CHANNEL
        "tst r11, #256\n\t" /* TK_C8_LAST */
        "beq 2b\n\t"
        "ldrd r4, r5, [sp]\n\t"
        "cmp r4, r5\n\t"
        "bne 1b\n\t"
        "add sp, sp, #12\n\t"
        "pop {r4-r11, pc}\n\t");
}
#undef TK_C8_CHANNEL
#endif

void tk_conv2d_1x1_c8_s8(const tk_conv2d_1x1_c8_params_t *p, const void *const *in, void *const *out,
                         void *scratch) {
    (void)scratch;
    const int8_t *input = (const int8_t *)in[0];
    int8_t *output = (int8_t *)out[0];
    if (p->pixels <= 0) return;
#if TK_HAVE_DSP
    if (((uintptr_t)input & 3u) == 0 && (p->out_c & 3) == 0) { /* LDRD needs a word-aligned input */
        c8_pixels_asm(input, p->stream, output, p->pixels);
        return;
    }
#endif
    c8_pixels(p->stream, p->out_c, input, output, p->pixels);
}
