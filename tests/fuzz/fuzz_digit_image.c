/* fuzz_digit_image.c: a user's own image for `hd-gpu predict` (digit_image.h). The input is read as an
 * image file (stb_image: PNG, JPEG, BMP, GIF, ...) and, separately, as raw grey pixels (first byte: the
 * width) for the preparation steps alone. A success must give 784 values in [0, 1] with some ink; a
 * failure must say what is wrong in one line naming the file. */
#include "fuzz_util.h"

#include "hd/common.h"
#include "hd/digit_image.h"

#include <math.h>

static void check_prepared(const float *out, const char *what) {
    double ink = 0.0;
    for (int i = 0; i < HD_DIGIT_PIXELS; i++) {
        FUZZ_ASSERT(isfinite(out[i]) && out[i] >= 0.0f && out[i] <= 1.0f, "%s: pixel %d is %g", what, i,
                    (double)out[i]);
        ink += out[i];
    }
    FUZZ_ASSERT(ink > 0.0, "%s: accepted with no ink", what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    float out[HD_DIGIT_PIXELS];
    const char *path = fuzz_temp_file(data, size);
    hd_clear_error();
    int rc = hd_digit_image_load(path, out);
    fuzz_check_result(rc, path);
    if (rc == 0)
        check_prepared(out, "image file");

    if (size >= 2) {
        int w = 1 + data[0] % 64;
        int h = (int)((size - 1) / (size_t)w);
        if (h > 0) {
            hd_clear_error();
            rc = hd_digit_from_gray(data + 1, w, h, out);
            fuzz_check_result(rc, "");
            if (rc == 0)
                check_prepared(out, "grey pixels");
        }
    }
    return 0;
}
