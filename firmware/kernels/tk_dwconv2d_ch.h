/* tinyml-kit kernel: int8 DEPTHWISE_CONV_2D, depth multiplier 1, square 3x3, 5x5 or 7x7 kernels,
 * horizontal stride 1 or 2, horizontal dilation 1 (any vertical stride and dilation), channel by channel.
 *
 * ABI: in[0] = input [in_h][in_w][channels], out[0] = output [out_h][out_w][channels]. Padding may be
 * negative (a patch of a larger frame). Scratch (lowering/depthwise.py, channelwise_layout):
 *  - 3x3: channel_group (1, or 4 when channels are a multiple of 4) sets of ring_rows rows of int16 input
 *    values, rw = padded_w rounded up to even halfwords per row, + 16 bytes of slack for the loads past
 *    a row's end (up to 10 bytes, for sums the kernel drops): channel_group * ring_rows * rw * 2 + 16
 *    bytes. ring_rows >= padded_h: each set holds a channel's whole zero-point padded plane, staged
 *    before any of its outputs; else a ring of 2 * dilation_h + 1 rows, row r of the plane in slot
 *    r % ring_rows, staged just before the first output row that reads it. In place (output exactly
 *    on the input, shift 0) is exact with a plane, and with a ring when the output rows never reach
 *    input rows still to be staged (the lowering checks, ring_keeps_input).
 *  - 5x5, 7x7: one byte plane of a channel, padded_h * padded_w bytes + 8 of slack, rounded up to 4;
 *    staged before the channel's outputs, so in place is always exact.
 *
 * 5x5, 7x7: filter2 holds, per channel and kernel row, ceil(k_w / 4) groups of two halfword pairs:
 * (2*w[4m], 2*w[4m+2]) and (2*w[4m+1], 2*w[4m+3]) (zero beyond k_w), the order SXTB16 / SXTB16 ROR #8
 * split a word of 4 input bytes into, so one SMLAD does two taps; the weights are doubled for the fast
 * requantisation (tk_requant.h); bias2, rq_mult, rq_add, rq_shift: one value per channel.
 * 3x3: dw3 holds instead ten words per channel, the order the kernel's context keeps them: per kernel
 * row the halfword pairs (2*w0, 2*w1) and (2*w1, 2*w2) (one word load of two adjacent inputs feeds
 * SMLAD with either), then 2 * bias, the multiplier, add and shift. Hosted 64-bit builds (TK_WIDE,
 * tk_simd.h) work on all channels of a pixel at once from a ring of input rows on the stack instead,
 * when it fits (the scratch is then unused). */
#ifndef TK_DWCONV2D_CH_H
#define TK_DWCONV2D_CH_H

#include <stdint.h>

typedef struct {
    const int16_t *filter2;   /* 5x5, 7x7: [channels][k_h][4 * ceil(k_w / 4)] (see above) */
    const int32_t *bias2;     /* 5x5, 7x7: [channels] 2 * (bias + input_offset * sum(filter)) */
    const int32_t *rq_mult;   /* 5x5, 7x7: [channels] */
    const int32_t *rq_add;    /* 5x5, 7x7: [channels] */
    const int32_t *rq_shift;  /* 5x5, 7x7: [channels] */
    const int32_t *dw3;       /* 3x3: [channels][10] (see above) */
    int32_t in_h, in_w, channels;
    int32_t out_h, out_w;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t dilation_h;
    int32_t pad_top, pad_left;
    int32_t padded_h, padded_w; /* the staged plane */
    int32_t pad_value;          /* input zero point */
    int32_t act_min, act_max;
    int32_t channel_group;      /* 3x3: channels staged together, 1 or 4 (channels a multiple of 4) */
    int32_t ring_rows;          /* 3x3: rows per channel, padded_h (the plane) or 2 * dilation_h + 1 */
} tk_dwconv2d_ch_params_t;

void tk_dwconv2d_ch_s8(const tk_dwconv2d_ch_params_t *p, const void *const *in, void *const *out, void *scratch);

#endif /* TK_DWCONV2D_CH_H */
