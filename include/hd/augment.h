/* augment.h: random affine augmentation of training images (rotation, shift, zoom).
 *
 * Each image gets its own transform, drawn from Philox: the four parameters of image `index`
 * in epoch `epoch` are hd_random_unit(seed, HD_RNG_STREAM_AUGMENT, epoch, index * 4 + k),
 * k = 0..3 (angle, shift x, shift y, zoom). So a run is reproducible and does not depend on
 * how images are split across threads or batches, or on whether the host or a GPU runs it.
 *
 * Geometry: images are rows x cols floats, row-major, pixel (x, y) = column x, row y with
 * its centre at integer coordinates; c = ((cols - 1) / 2, (rows - 1) / 2) is the image centre.
 * A source point p moves to
 *     q = c + zoom * R(angle) (p - c) + (shift_x, shift_y)
 * where a positive angle turns the picture counter-clockwise as displayed (y points down)
 * and a positive shift moves it right / down. The output is computed by inverse mapping:
 * each output pixel q samples the source at p = c + R(-angle) (q - c - shift) / zoom
 * bilinearly, with zero outside the source.
 *
 * The per-image and per-pixel functions are HD_HOST_DEVICE static inline, so a GPU kernel
 * can run the very same code as the host routine hd_augment_batch (src/data/augment.c). */
#ifndef HD_AUGMENT_H
#define HD_AUGMENT_H

#include <stdint.h>
#include <math.h>

#include "hd/shared_math.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Ranges the random parameters are drawn from (uniformly). */
typedef struct {
    float max_rotation_deg; /* angle in [-max, +max] degrees; default 10 */
    float max_shift_px;     /* each of shift_x, shift_y in [-max, +max] pixels; default 2 */
    float min_zoom;         /* zoom in [min_zoom, max_zoom]; default 0.9 .. 1.1 */
    float max_zoom;
} hd_augment_ranges;

#define HD_AUGMENT_DEFAULT_ROTATION_DEG 10.0f
#define HD_AUGMENT_DEFAULT_SHIFT_PX     2.0f
#define HD_AUGMENT_DEFAULT_MIN_ZOOM     0.9f
#define HD_AUGMENT_DEFAULT_MAX_ZOOM     1.1f
/* The zoom's half-range as train's --augment-zoom takes it: 1 -/+ 0.1f are 0.9f and 1.1f exactly. */
#define HD_AUGMENT_DEFAULT_ZOOM 0.1f

/* One image's transform (see the geometry above). Identity: {0, 0, 0, 1}. */
typedef struct {
    float angle_rad, shift_x, shift_y, zoom;
} hd_affine;

/* The inverse map, ready per pixel: source (sx, sy) = (a q_x + b q_y + tx, c q_x + d q_y + ty). */
typedef struct {
    float a, b, c, d, tx, ty;
} hd_affine_inverse;

void hd_augment_default_ranges(hd_augment_ranges *r);

/* The transform of image `index` in epoch `epoch` (pure function of its arguments). */
HD_HOST_DEVICE static inline hd_affine hd_augment_params(const hd_augment_ranges *r, uint64_t seed,
                                                         uint64_t epoch, uint64_t index) {
    const float deg_to_rad = 0.017453292519943295f;
    uint64_t base = index * 4u;
    float u_angle = hd_random_unit(seed, HD_RNG_STREAM_AUGMENT, epoch, base + 0u);
    float u_shift_x = hd_random_unit(seed, HD_RNG_STREAM_AUGMENT, epoch, base + 1u);
    float u_shift_y = hd_random_unit(seed, HD_RNG_STREAM_AUGMENT, epoch, base + 2u);
    float u_zoom = hd_random_unit(seed, HD_RNG_STREAM_AUGMENT, epoch, base + 3u);
    hd_affine t;
    t.angle_rad = (2.0f * u_angle - 1.0f) * r->max_rotation_deg * deg_to_rad;
    t.shift_x = (2.0f * u_shift_x - 1.0f) * r->max_shift_px;
    t.shift_y = (2.0f * u_shift_y - 1.0f) * r->max_shift_px;
    t.zoom = r->min_zoom + u_zoom * (r->max_zoom - r->min_zoom);
    return t;
}

/* The inverse map of t for an image of rows x cols (computed once per image). */
HD_HOST_DEVICE static inline hd_affine_inverse hd_affine_invert(hd_affine t, int rows, int cols) {
    float centre_x = 0.5f * (float)(cols - 1);
    float centre_y = 0.5f * (float)(rows - 1);
    float inv_zoom = 1.0f / t.zoom;
    float cos_a = cosf(t.angle_rad) * inv_zoom;
    float sin_a = sinf(t.angle_rad) * inv_zoom;
    /* Forward (y down, counter-clockwise on screen): u = R (p - c), R = [cos sin; -sin cos].
     * Inverse: p - c = R^T (q - c - shift) / zoom, R^T = [cos -sin; sin cos]. */
    hd_affine_inverse m;
    m.a = cos_a;
    m.b = -sin_a;
    m.c = sin_a;
    m.d = cos_a;
    float ox = -centre_x - t.shift_x;
    float oy = -centre_y - t.shift_y;
    m.tx = centre_x + m.a * ox + m.b * oy;
    m.ty = centre_y + m.c * ox + m.d * oy;
    return m;
}

/* Source pixel (x, y), zero outside the image. */
HD_HOST_DEVICE static inline float hd_image_pixel_or_zero(const float *src, int rows, int cols, int x,
                                                          int y) {
    return (x >= 0 && x < cols && y >= 0 && y < rows) ? src[y * cols + x] : 0.0f;
}

/* Bilinear sample of src at the continuous point (sx, sy); zero outside the image. */
HD_HOST_DEVICE static inline float hd_image_sample_bilinear(const float *src, int rows, int cols, float sx,
                                                            float sy) {
    if (!(sx > -1.0f && sx < (float)cols && sy > -1.0f && sy < (float)rows))
        return 0.0f; /* also catches NaN */
    float fx0 = floorf(sx), fy0 = floorf(sy);
    int x0 = (int)fx0, y0 = (int)fy0;
    float wx = sx - fx0, wy = sy - fy0;
    if (x0 >= 0 && x0 + 1 < cols && y0 >= 0 && y0 + 1 < rows) { /* all four inside: no checks */
        const float *p = src + y0 * cols + x0;
        float top_in = (1.0f - wx) * p[0] + wx * p[1];
        float bottom_in = (1.0f - wx) * p[cols] + wx * p[cols + 1];
        return (1.0f - wy) * top_in + wy * bottom_in;
    }
    float top = (1.0f - wx) * hd_image_pixel_or_zero(src, rows, cols, x0, y0) +
                wx * hd_image_pixel_or_zero(src, rows, cols, x0 + 1, y0);
    float bottom = (1.0f - wx) * hd_image_pixel_or_zero(src, rows, cols, x0, y0 + 1) +
                   wx * hd_image_pixel_or_zero(src, rows, cols, x0 + 1, y0 + 1);
    return (1.0f - wy) * top + wy * bottom;
}

/* Output pixel (x, y) of the transformed image: one thread's work in a GPU kernel. */
HD_HOST_DEVICE static inline float hd_affine_output_pixel(const float *src, int rows, int cols,
                                                          const hd_affine_inverse *m, int x, int y) {
    float qx = (float)x, qy = (float)y;
    float sx = m->a * qx + m->b * qy + m->tx;
    float sy = m->c * qx + m->d * qy + m->ty;
    return hd_image_sample_bilinear(src, rows, cols, sx, sy);
}

/* dst = src transformed by t (one rows x cols image; src and dst must not overlap). */
void hd_affine_apply(const float *src, float *dst, int rows, int cols, hd_affine t);

/* Augments n images already gathered into src_images (n x rows x cols): image i gets the
 * transform hd_augment_params(r, seed, epoch, indices[i]), where indices[i] is its index in
 * the training set. Runs on the calling thread. */
void hd_augment_batch(const hd_augment_ranges *r, uint64_t seed, uint64_t epoch, const uint64_t *indices,
                      int n, const float *src_images, float *dst, int rows, int cols);

#ifdef __cplusplus
}
#endif

#endif
