/* tinyml-kit kernel: int8 SOFTMAX, bit-exact with TFLite's reference_ops::Softmax (the path TFLM
 * runs for int8): gemmlowp fixed point, exp of the scaled difference in Q5.26, sum in Q12.19,
 * reciprocal by Newton-Raphson. Values are raw int32 fixed-point numbers; comments give the format. */
#include "tk_softmax.h"

#include "tk_common.h"

/* x * 2^exponent with saturation (gemmlowp SaturatingRoundingMultiplyByPOT, exponent > 0). */
static int32_t sat_shift_left(int32_t x, int exponent) {
    const int32_t threshold = (int32_t)((1u << (31 - exponent)) - 1u);
    if (x > threshold) return INT32_MAX;
    if (x < -threshold) return INT32_MIN;
    return (int32_t)((uint32_t)x << exponent);
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out (Taylor series around -1/8). */
static int32_t exp_on_interval_neg_quarter(int32_t a) {
    const int32_t constant_term = 1895147668;   /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883;
    const int32_t x = a + (1 << 28);            /* a + 1/8 */
    const int32_t x2 = tk_srdhm(x, x);
    const int32_t x3 = tk_srdhm(x2, x);
    const int32_t x4 = tk_srdhm(x2, x2);
    const int32_t x4_over_4 = tk_rdbypot(x4, 2);
    const int32_t poly = tk_rdbypot(tk_srdhm(x4_over_4 + x3, constant_1_over_3) + x2, 1);
    return constant_term + tk_srdhm(constant_term, x + poly);
}

/* exp(a) for a <= 0 given in Q5.26; result in Q0.31 (gemmlowp exp_on_negative_values). */
static int32_t exp_on_negative_values(int32_t a) {
    const int fractional_bits = 26;
    const int32_t one_quarter = 1 << (fractional_bits - 2);
    const int32_t mask = one_quarter - 1;
    const int32_t a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter;
    int32_t result = exp_on_interval_neg_quarter(sat_shift_left(a_mod_quarter_minus_one_quarter, 5));
    const int32_t remainder = a_mod_quarter_minus_one_quarter - a;
    /* exp(-2^k) for k = -2 .. 4, applied for each set bit of the remainder */
    static const int32_t multipliers[7] = {1672461947, 1302514674, 790015084, 290630308,
                                           39332535, 720401, 242};
    for (int k = 0; k < 7; ++k) {
        if (remainder & (1 << (fractional_bits - 2 + k))) result = tk_srdhm(result, multipliers[k]);
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + x) for x in [0, 1), Q0.31 in and out (gemmlowp one_over_one_plus_x_for_x_in_0_1). */
static int32_t one_over_one_plus_x(int32_t a) {
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2); /* Q0.31 */
    const int32_t constant_48_over_17 = 1515870810;                               /* Q2.29 */
    const int32_t constant_neg_32_over_17 = -1010580540;                          /* Q2.29 */
    int32_t x = constant_48_over_17 + tk_srdhm(half_denominator, constant_neg_32_over_17);
    for (int i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = tk_srdhm(half_denominator, x);      /* Q2.29 */
        const int32_t one_minus = (1 << 29) - half_denominator_times_x;             /* Q2.29 */
        x = x + sat_shift_left(tk_srdhm(x, one_minus), 2);                          /* Q4 -> Q2 */
    }
    return sat_shift_left(x, 1); /* x / 2 in Q1.30 == Q0.31 after the rescale */
}

static int count_leading_zeros(uint32_t x) {
    int n = 0;
    if (x == 0) return 32;
#if defined(__GNUC__)
    return __builtin_clz(x);
#endif
    while (!(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
}

void tk_softmax_s8(const tk_softmax_params_t *p, const void *const *in, void *const *out, void *scratch) {
    const int8_t *input = (const int8_t *)in[0];
    int8_t *output = (int8_t *)out[0];
    (void)scratch;
    for (int32_t r = 0; r < p->rows; ++r) {
        const int8_t *x = input + (long)r * p->depth;
        int8_t *y = output + (long)r * p->depth;
        int32_t max_in_row = -128;
        for (int32_t c = 0; c < p->depth; ++c) max_in_row = tk_max_i32(max_in_row, x[c]);

        int32_t sum_of_exps = 0; /* Q12.19 */
        for (int32_t c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t scaled = tk_srdhm(diff * (1 << p->input_left_shift), p->input_multiplier);
                sum_of_exps += tk_rdbypot(exp_on_negative_values(scaled), 12);
            }
        }
        const int headroom_plus_one = count_leading_zeros((uint32_t)sum_of_exps);
        const int num_bits_over_unit = 12 - headroom_plus_one;
        const int32_t shifted_sum_minus_one =
            (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - ((uint32_t)1 << 31));
        const int32_t shifted_scale = one_over_one_plus_x(shifted_sum_minus_one);
        const int exponent = num_bits_over_unit + 31 - 8;

        for (int32_t c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t scaled = tk_srdhm(diff * (1 << p->input_left_shift), p->input_multiplier);
                const int32_t e = exp_on_negative_values(scaled);
                const int32_t unsat = tk_rdbypot(tk_srdhm(shifted_scale, e), exponent);
                y[c] = (int8_t)tk_clamp_i32(unsat - 128, -128, 127);
            } else {
                y[c] = -128;
            }
        }
    }
}
