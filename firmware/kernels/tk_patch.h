/* tinyml-kit kernel: copy one patch of a patch stage into the full output tensor.
 *
 * ABI: in[0] = the patch (rows x row_bytes, contiguous: the last op of the stage wrote it),
 * out[0] = the stage's full output tensor (NHWC, batch 1). Row r of the patch goes to
 * out[0] + dst_offset + r * dst_stride. No scratch. The patch is a separate buffer of the stage. */
#ifndef TK_PATCH_H
#define TK_PATCH_H

#include <stdint.h>

typedef struct {
    int32_t rows;       /* output rows of the patch */
    int32_t row_bytes;  /* patch width * channels */
    int32_t dst_offset; /* (first row * full width + first column) * channels */
    int32_t dst_stride; /* full width * channels */
} tk_patch_params_t;

void tk_patch_place_s8(const tk_patch_params_t *p, const void *const *in, void *const *out, void *scratch);

#endif /* TK_PATCH_H */
