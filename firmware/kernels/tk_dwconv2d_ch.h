/* tinyml-kit kernel: int8 DEPTHWISE_CONV_2D, depth multiplier 1, kernel width 3, 5 or 7, horizontal stride
 * 1 or 2, horizontal dilation 1 (any kernel height, vertical stride and dilation), channel by channel.
 *
 * ABI: in[0] = input [in_h][in_w][channels], out[0] = output [out_h][out_w][channels]. scratch: one
 * zero-point padded plane of a channel (padded_h * padded_w bytes + 8 bytes of slack for word loads,
 * rounded up to 4). Each channel is staged into the plane before its outputs are written, so the output
 * may sit exactly on the input (in place, shift 0) or apart from it. Padding may be negative (a patch of
 * a larger frame).
 *
 * filter2 holds, per channel and kernel row, ceil(k_w / 4) groups of two halfword pairs: (2*w[4m],
 * 2*w[4m+2]) and (2*w[4m+1], 2*w[4m+3]) (zero beyond k_w), the order SXTB16 / SXTB16 ROR #8 split a word
 * of 4 input bytes into, so one SMLAD does two taps; the weights are doubled for the fast requantisation
 * (tk_requant.h). With stride 1, two outputs share each word of input. Hosted 64-bit builds (TK_WIDE,
 * tk_simd.h) work on all channels of a pixel at once from a ring of input rows on the stack instead
 * (the scratch plane is then unused). */
#ifndef TK_DWCONV2D_CH_H
#define TK_DWCONV2D_CH_H

#include <stdint.h>

typedef struct {
    const int16_t *filter2;   /* [channels][k_h][4 * ceil(k_w / 4)] (see above) */
    const int32_t *bias2;     /* [channels] 2 * (bias + input_offset * sum(filter)) */
    const int32_t *rq_mult;   /* [channels] */
    const int32_t *rq_add;    /* [channels] */
    const int32_t *rq_shift;  /* [channels] */
    int32_t in_h, in_w, channels;
    int32_t out_h, out_w;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t dilation_h;
    int32_t pad_top, pad_left;
    int32_t padded_h, padded_w; /* the staged plane */
    int32_t pad_value;          /* input zero point */
    int32_t act_min, act_max;
} tk_dwconv2d_ch_params_t;

void tk_dwconv2d_ch_s8(const tk_dwconv2d_ch_params_t *p, const void *const *in, void *const *out, void *scratch);

#endif /* TK_DWCONV2D_CH_H */
