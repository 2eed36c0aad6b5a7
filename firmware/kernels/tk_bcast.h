/* tinyml-kit runtime: iteration over a broadcast binary op (ADD, MUL) in output raster order.
 *
 * The compiler collapses the shapes to at most TK_BCAST_DIMS dimensions (leading ones padded with 1) and
 * gives each input a stride per output dimension: 0 where that input is broadcast.  tk_bcast_binary_s8
 * walks the output row by row (a row = the innermost dimension), advancing the two input offsets from
 * one row to the next like an odometer, and calls the kernel's per-element operation.  Each output
 * element is written after both of its inputs were read, in output raster order. */
#ifndef TK_BCAST_H
#define TK_BCAST_H

#include <stdint.h>

#include "tk_common.h"

#define TK_BCAST_DIMS 6

typedef struct {
    int32_t index[TK_BCAST_DIMS - 1]; /* position in the outer (non-innermost) dimensions */
    int32_t offset1;                  /* element offset of the current row in input 1 */
    int32_t offset2;                  /* element offset of the current row in input 2 */
} tk_bcast_cursor_t;

TK_INLINE void tk_bcast_start(tk_bcast_cursor_t *c) {
    for (int d = 0; d < TK_BCAST_DIMS - 1; ++d) c->index[d] = 0;
    c->offset1 = 0;
    c->offset2 = 0;
}

/* Moves the cursor to the next output row. */
TK_INLINE void tk_bcast_next_row(tk_bcast_cursor_t *c, const int32_t *shape, const int32_t *strides1,
                                 const int32_t *strides2) {
    for (int d = TK_BCAST_DIMS - 2; d >= 0; --d) {
        c->offset1 += strides1[d];
        c->offset2 += strides2[d];
        if (++c->index[d] < shape[d]) return;
        c->offset1 -= strides1[d] * shape[d];
        c->offset2 -= strides2[d] * shape[d];
        c->index[d] = 0;
    }
}

/* One output element of a binary kernel from one element of each input; `params` is the kernel's. */
typedef int8_t (*tk_bcast_op_s8_t)(const void *params, int32_t x1, int32_t x2);

/* y[i] = op(params, x1[.], x2[.]) over the output: one flat loop when `broadcast` is 0 (both inputs have
 * the output's `size` elements), else row by row with the strides (0 where an input is broadcast).
 * Always inlined with a constant `op`, which gcc then inlines too: no indirect call per element. */
TK_INLINE void tk_bcast_binary_s8(const int8_t *x1, const int8_t *x2, int8_t *y, int32_t size,
                                  int32_t broadcast, const int32_t *shape, const int32_t *strides1,
                                  const int32_t *strides2, tk_bcast_op_s8_t op, const void *params) {
    if (!broadcast) {
        for (int32_t i = 0; i < size; ++i) y[i] = op(params, x1[i], x2[i]);
        return;
    }
    const int32_t row = shape[TK_BCAST_DIMS - 1];
    const int32_t step1 = strides1[TK_BCAST_DIMS - 1];
    const int32_t step2 = strides2[TK_BCAST_DIMS - 1];
    tk_bcast_cursor_t c;
    tk_bcast_start(&c);
    for (int32_t o = 0; o < size; o += row) {
        const int8_t *r1 = x1 + c.offset1;
        const int8_t *r2 = x2 + c.offset2;
        for (int32_t i = 0; i < row; ++i) y[o + i] = op(params, r1[i * step1], r2[i * step2]);
        tk_bcast_next_row(&c, shape, strides1, strides2);
    }
}

#endif /* TK_BCAST_H */
