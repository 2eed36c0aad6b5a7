/* tinyml-kit runtime: iteration over a broadcast binary op (ADD, MUL) in output raster order.
 *
 * The compiler collapses the shapes to at most TK_BCAST_DIMS dimensions (leading ones padded with 1) and
 * gives each input a stride per output dimension: 0 where that input is broadcast.  The kernels walk
 * the output row by row (a row = the innermost dimension); this header advances the two input offsets
 * from one row to the next like an odometer. */
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

#endif /* TK_BCAST_H */
