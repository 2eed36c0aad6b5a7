/* tinyml-kit harness: runs the generated model on every sample of an input file.
 *
 * The input file holds samples back to back, each the model's inputs concatenated in order (raw
 * little-endian tensor bytes); the output file gets each sample's outputs the same way. For every
 * sample the harness prints "tk: sample <i> <counter> <unit>", the counter spent in tk_invoke()
 * (averaged over `repeat` runs). Exit status 0 on success.
 *
 * Built with -DTK_PROFILE, it also prints one JSON object per op and sample after "tk: profile ":
 * {"sample", "slot", "op", "function", "calls", "count", "unit"}, where count is the counter spent in
 * the op's kernel calls (averaged over `repeat` runs, minus the cost of reading the counter). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "model.h"
#include "tk_platform.h"

static uint8_t sample[TK_INPUT_TOTAL_BYTES > 0 ? TK_INPUT_TOTAL_BYTES : 1];

static void append_u64(char **cursor, uint64_t value) {
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + (int)(value % 10u));
        value /= 10u;
    } while (value != 0u);
    while (n > 0) *(*cursor)++ = digits[--n];
}

static void append_str(char **cursor, const char *text) {
    while (*text) *(*cursor)++ = *text++;
}

static void report(uint64_t index, uint64_t count, const char *unit) {
    char line[96];
    char *cursor = line;
    append_str(&cursor, "tk: sample ");
    append_u64(&cursor, index);
    append_str(&cursor, " ");
    append_u64(&cursor, count);
    append_str(&cursor, " ");
    append_str(&cursor, unit);
    *cursor = '\0';
    tk_platform_print(line);
}

#ifdef TK_PROFILE
/* Least counter difference between two back-to-back reads: the cost of one timed region. */
static uint64_t profile_overhead(void) {
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 16; ++i) {
        const uint64_t a = tk_platform_counter();
        const uint64_t b = tk_platform_counter();
        if (b - a < best) best = b - a;
    }
    return best;
}

static void report_profile(uint64_t index, long repeat, uint64_t overhead) {
    char line[320];
    for (int slot = 0; slot < tk_profile_slots(); ++slot) {
        const uint64_t calls = tk_profile_call_count(slot) / (uint64_t)repeat;
        const uint64_t raw = tk_profile_value(slot) / (uint64_t)repeat;
        const uint64_t cost = calls * overhead;
        char *cursor = line;
        append_str(&cursor, "tk: profile {\"sample\": ");
        append_u64(&cursor, index);
        append_str(&cursor, ", \"slot\": ");
        append_u64(&cursor, (uint64_t)slot);
        append_str(&cursor, ", \"op\": \"");
        append_str(&cursor, tk_profile_name(slot));
        append_str(&cursor, "\", \"function\": \"");
        append_str(&cursor, tk_profile_function(slot));
        append_str(&cursor, "\", \"calls\": ");
        append_u64(&cursor, calls);
        append_str(&cursor, ", \"count\": ");
        append_u64(&cursor, raw > cost ? raw - cost : 0u);
        append_str(&cursor, ", \"unit\": \"");
        append_str(&cursor, tk_platform_counter_unit());
        append_str(&cursor, "\"}");
        *cursor = '\0';
        tk_platform_print(line);
    }
}
#endif

static int fail(const char *message, int status) {
    tk_platform_print(message);
    tk_platform_exit(status);
    return status;
}

/* Copy the sample's inputs into the arena (inputs may be overwritten in place by the model). */
static void load_inputs(void) {
    size_t offset = 0;
    for (int i = 0; i < TK_NUM_INPUTS; ++i) {
        memcpy(tk_input(i), sample + offset, (size_t)tk_input_bytes(i));
        offset += (size_t)tk_input_bytes(i);
    }
}

int main(int argc, char **argv) {
    const char *input_path = "input.bin";
    const char *output_path = "output.bin";
    long repeat = 1;
    tk_platform_init(argc, argv, &input_path, &output_path, &repeat);
    if (repeat < 1) repeat = 1;

    const int in = tk_platform_open(input_path, 0);
    if (in < 0) return fail("tk: error: cannot open the input file", 2);
    const int out = tk_platform_open(output_path, 1);
    if (out < 0) return fail("tk: error: cannot open the output file", 2);

    for (uint64_t index = 0;; ++index) {
        const long got = tk_platform_read(in, sample, (long)TK_INPUT_TOTAL_BYTES);
        if (got == 0) break;
        if (got != (long)TK_INPUT_TOTAL_BYTES) {
            return fail("tk: error: the input file is not a whole number of samples", 2);
        }
        uint64_t spent = 0;
#ifdef TK_PROFILE
        tk_profile_reset();
#endif
        for (long r = 0; r < repeat; ++r) {
            load_inputs();
            const uint64_t start = tk_platform_counter();
            const int status = tk_invoke();
            spent += tk_platform_counter() - start;
            if (status != 0) return fail("tk: error: tk_invoke failed", 3);
        }
        report(index, spent / (uint64_t)repeat, tk_platform_counter_unit());
#ifdef TK_PROFILE
        report_profile(index, repeat, profile_overhead());
#endif
        for (int o = 0; o < TK_NUM_OUTPUTS; ++o) {
            const long bytes = (long)tk_output_bytes(o);
            if (tk_platform_write(out, tk_output(o), bytes) != bytes) {
                return fail("tk: error: cannot write the output file", 2);
            }
        }
    }
    tk_platform_close(in);
    tk_platform_close(out);
    tk_platform_exit(0);
    return 0;
}
