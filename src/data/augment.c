/* augment.c: the host routines of the random affine augmentation (math in hd/augment.h). */
#include "hd/augment.h"

#include <stddef.h>

void hd_augment_default_ranges(hd_augment_ranges *r) {
    r->max_rotation_deg = HD_AUGMENT_DEFAULT_ROTATION_DEG;
    r->max_shift_px = HD_AUGMENT_DEFAULT_SHIFT_PX;
    r->min_zoom = HD_AUGMENT_DEFAULT_MIN_ZOOM;
    r->max_zoom = HD_AUGMENT_DEFAULT_MAX_ZOOM;
}

void hd_affine_apply(const float *src, float *dst, int rows, int cols, hd_affine t) {
    hd_affine_inverse m = hd_affine_invert(t, rows, cols);
    for (int y = 0; y < rows; y++)
        for (int x = 0; x < cols; x++)
            dst[y * cols + x] = hd_affine_output_pixel(src, rows, cols, &m, x, y);
}

void hd_augment_batch(const hd_augment_ranges *r, uint64_t seed, uint64_t epoch, const uint64_t *indices,
                      int n, const float *src_images, float *dst, int rows, int cols) {
    size_t image_size = (size_t)rows * (size_t)cols;
    for (int i = 0; i < n; i++) {
        hd_affine t = hd_augment_params(r, seed, epoch, indices[i]);
        hd_affine_apply(src_images + (size_t)i * image_size, dst + (size_t)i * image_size, rows, cols, t);
    }
}
