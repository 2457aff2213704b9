/* fuzz_idx.c: IDX files (raw and gzip), read as images and as labels (idx.h). A success must agree
 * with the header: sizes in range, a raw file exactly as long as it promises (labels are any
 * byte: the class count is the trainer's); a
 * failure must leave the outputs zero/NULL and say what is wrong about the file in one line. */
#include "fuzz_util.h"

#include "hd/common.h"
#include "hd/idx.h"

#include <stdlib.h>
#include <string.h>

static int is_gzip(const uint8_t *data, size_t size) {
    return size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
}

static void read_as_images(const char *path, const uint8_t *data, size_t size) {
    int count = -1, rows = -1, cols = -1;
    uint8_t *pixels = (uint8_t *)1;
    hd_clear_error();
    int rc = hd_idx_read_images(path, &count, &rows, &cols, &pixels);
    fuzz_check_result(rc, path);
    if (rc != 0) {
        FUZZ_ASSERT(count == 0 && rows == 0 && cols == 0 && pixels == NULL, "failure left outputs set");
        return;
    }
    FUZZ_ASSERT(count >= 1 && count <= HD_IDX_MAX_COUNT, "count %d", count);
    FUZZ_ASSERT(rows >= 1 && rows <= HD_IDX_MAX_SIDE && cols >= 1 && cols <= HD_IDX_MAX_SIDE, "%dx%d", rows,
                cols);
    size_t bytes = (size_t)count * (size_t)rows * (size_t)cols;
    FUZZ_ASSERT(bytes <= HD_IDX_MAX_BYTES && pixels, "pixels %zu", bytes);
    if (!is_gzip(data, size))
        FUZZ_ASSERT(size == 16 + bytes && memcmp(pixels, data + 16, bytes) == 0,
                    "raw file of %zu bytes read as %zu pixels", size, bytes);
    free(pixels);
}

static void read_as_labels(const char *path, const uint8_t *data, size_t size) {
    int count = -1;
    uint8_t *labels = (uint8_t *)1;
    hd_clear_error();
    int rc = hd_idx_read_labels(path, &count, &labels);
    fuzz_check_result(rc, path);
    if (rc != 0) {
        FUZZ_ASSERT(count == 0 && labels == NULL, "failure left outputs set");
        return;
    }
    FUZZ_ASSERT(count >= 1 && count <= HD_IDX_MAX_COUNT && labels, "count %d", count);
    if (!is_gzip(data, size))
        FUZZ_ASSERT(size == 8 + (size_t)count, "raw file of %zu bytes read as %d labels", size, count);
    free(labels);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_temp_file(data, size);
    read_as_images(path, data, size);
    read_as_labels(path, data, size);
    return 0;
}
