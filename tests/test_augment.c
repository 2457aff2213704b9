/* test_augment.c: the random affine augmentation (hd/augment.h, src/data/augment.c). */
#include "check.h"
#include "hd/augment.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROWS   28
#define COLS   28
#define PIXELS (ROWS * COLS)

/* A synthetic "digit": a ring plus a bar, with varied grey levels, away from the borders. */
static void draw_synthetic_digit(float *img) {
    memset(img, 0, PIXELS * sizeof *img);
    for (int y = 0; y < ROWS; y++) {
        for (int x = 0; x < COLS; x++) {
            float dx = (float)x - 12.0f, dy = (float)y - 11.0f;
            float r = sqrtf(dx * dx + dy * dy);
            if (r >= 4.0f && r <= 7.0f)
                img[y * COLS + x] = 0.5f + 0.05f * (float)((x + 2 * y) % 10);
            if (x == 18 && y >= 8 && y <= 21)
                img[y * COLS + x] = 1.0f - 0.02f * (float)(y - 8);
        }
    }
}

static void centre_of_mass(const float *img, double *mass, double *cx, double *cy) {
    double m = 0, sx = 0, sy = 0;
    for (int y = 0; y < ROWS; y++)
        for (int x = 0; x < COLS; x++) {
            m += img[y * COLS + x];
            sx += img[y * COLS + x] * x;
            sy += img[y * COLS + x] * y;
        }
    *mass = m;
    *cx = sx / m;
    *cy = sy / m;
}

static void test_identity(void) {
    float src[PIXELS], dst[PIXELS];
    draw_synthetic_digit(src);
    hd_affine identity = {0.0f, 0.0f, 0.0f, 1.0f};
    hd_affine_apply(src, dst, ROWS, COLS, identity);
    CHECK(memcmp(src, dst, sizeof src) == 0, "identity transform changes the image");
}

static void test_integer_shift(void) {
    float src[PIXELS], dst[PIXELS];
    draw_synthetic_digit(src);
    const int shift_x = 2, shift_y = -1;
    hd_affine shift = {0.0f, (float)shift_x, (float)shift_y, 1.0f};
    hd_affine_apply(src, dst, ROWS, COLS, shift);
    int wrong = 0;
    for (int y = 0; y < ROWS; y++) {
        for (int x = 0; x < COLS; x++) {
            int sx = x - shift_x, sy = y - shift_y;
            float want = (sx >= 0 && sx < COLS && sy >= 0 && sy < ROWS) ? src[sy * COLS + sx] : 0.0f;
            wrong += dst[y * COLS + x] != want;
        }
    }
    CHECK(wrong == 0, "shift by (%d, %d): %d pixels differ from the exactly shifted image", shift_x, shift_y,
          wrong);
}

/* A fractional shift keeps the mass and moves the centre of mass by exactly the shift. */
static void test_fractional_shift_moves_centre_of_mass(void) {
    float src[PIXELS], dst[PIXELS];
    draw_synthetic_digit(src);
    hd_affine shift = {0.0f, 0.3f, -0.7f, 1.0f};
    hd_affine_apply(src, dst, ROWS, COLS, shift);
    double m0, x0, y0, m1, x1, y1;
    centre_of_mass(src, &m0, &x0, &y0);
    centre_of_mass(dst, &m1, &x1, &y1);
    CHECK(fabs(m1 - m0) < 1e-3 * m0, "mass %.5f -> %.5f under a fractional shift", m0, m1);
    CHECK(fabs(x1 - x0 - 0.3) < 1e-4 && fabs(y1 - y0 + 0.7) < 1e-4,
          "centre of mass moved by (%.5f, %.5f), want (0.3, -0.7)", x1 - x0, y1 - y0);
}

/* +90 degrees turns the picture counter-clockwise: source (px, py) lands on (py, N-1-px). */
static void test_rotation_90(void) {
    float src[PIXELS], dst[PIXELS], want[PIXELS];
    draw_synthetic_digit(src);
    for (int py = 0; py < ROWS; py++)
        for (int px = 0; px < COLS; px++)
            want[(ROWS - 1 - px) * COLS + py] = src[py * COLS + px];
    hd_affine quarter_turn = {(float)(M_PI / 2.0), 0.0f, 0.0f, 1.0f};
    hd_affine_apply(src, dst, ROWS, COLS, quarter_turn);
    check_tensor("rotation by +90 degrees", dst, want, PIXELS, 1e-5, 0.0);
    /* Four quarter turns bring the picture back. */
    float tmp[PIXELS];
    memcpy(tmp, dst, sizeof tmp);
    for (int turn = 1; turn < 4; turn++) {
        hd_affine_apply(tmp, dst, ROWS, COLS, quarter_turn);
        memcpy(tmp, dst, sizeof tmp);
    }
    check_tensor("four quarter turns", tmp, src, PIXELS, 1e-4, 0.0);
}

/* Zoom 2 about the centre: output (x, y) samples the source at c + (q - c) / 2. */
static void test_zoom(void) {
    float src[PIXELS], dst[PIXELS];
    for (int i = 0; i < PIXELS; i++)
        src[i] = (float)(i % COLS) * 0.01f + (float)(i / COLS) * 0.03f; /* a linear ramp */
    hd_affine zoom2 = {0.0f, 0.0f, 0.0f, 2.0f};
    hd_affine_apply(src, dst, ROWS, COLS, zoom2);
    int wrong = 0;
    for (int y = 0; y < ROWS; y++)
        for (int x = 0; x < COLS; x++) {
            double sx = 13.5 + (x - 13.5) / 2.0, sy = 13.5 + (y - 13.5) / 2.0;
            double want = sx * 0.01 + sy * 0.03; /* bilinear reproduces a ramp exactly */
            wrong += fabs(dst[y * COLS + x] - want) > 1e-5;
        }
    CHECK(wrong == 0, "zoom 2 of a linear ramp: %d pixels off", wrong);
}

static int affine_equal(hd_affine a, hd_affine b) {
    return a.angle_rad == b.angle_rad && a.shift_x == b.shift_x && a.shift_y == b.shift_y && a.zoom == b.zoom;
}

static void test_params_reproducible(void) {
    hd_augment_ranges r;
    hd_augment_default_ranges(&r);
    int same_seed_differs = 0, other_seed_same = 0, other_epoch_same = 0, other_index_same = 0;
    for (uint64_t index = 0; index < 1000; index++) {
        hd_affine a = hd_augment_params(&r, 42, 3, index);
        hd_affine b = hd_augment_params(&r, 42, 3, index);
        same_seed_differs += !affine_equal(a, b);
        other_seed_same += affine_equal(a, hd_augment_params(&r, 43, 3, index));
        other_epoch_same += affine_equal(a, hd_augment_params(&r, 42, 4, index));
        other_index_same += affine_equal(a, hd_augment_params(&r, 42, 3, index + 1000));
    }
    CHECK(same_seed_differs == 0, "%d of 1000 parameter sets differ for the same seed", same_seed_differs);
    CHECK(other_seed_same == 0, "%d of 1000 parameter sets equal for another seed", other_seed_same);
    CHECK(other_epoch_same == 0, "%d of 1000 parameter sets equal in another epoch", other_epoch_same);
    CHECK(other_index_same == 0, "%d of 1000 parameter sets equal for another image", other_index_same);
}

static void test_params_within_ranges(uint64_t seed) {
    hd_augment_ranges r;
    hd_augment_default_ranges(&r);
    CHECK(r.max_rotation_deg == 10.0f && r.max_shift_px == 2.0f && r.min_zoom == 0.9f && r.max_zoom == 1.1f,
          "default ranges %g deg, %g px, zoom %g..%g", r.max_rotation_deg, r.max_shift_px, r.min_zoom,
          r.max_zoom);
    const float max_angle = 10.0f * (float)M_PI / 180.0f;
    float lo[4] = {1e9f, 1e9f, 1e9f, 1e9f}, hi[4] = {-1e9f, -1e9f, -1e9f, -1e9f};
    double sum_angle = 0;
    const int draws = 20000;
    int outside = 0;
    for (int i = 0; i < draws; i++) {
        hd_affine t = hd_augment_params(&r, seed, (uint64_t)(i % 7), (uint64_t)i);
        float v[4] = {t.angle_rad, t.shift_x, t.shift_y, t.zoom};
        for (int k = 0; k < 4; k++) {
            lo[k] = fminf(lo[k], v[k]);
            hi[k] = fmaxf(hi[k], v[k]);
        }
        outside += fabsf(t.angle_rad) > max_angle * 1.000001f || fabsf(t.shift_x) > 2.0f ||
                   fabsf(t.shift_y) > 2.0f || t.zoom < 0.9f || t.zoom > 1.1f;
        sum_angle += t.angle_rad;
    }
    CHECK(outside == 0, "%d of %d draws outside the ranges", outside, draws);
    /* The draws fill the ranges: extremes within 1% of the ends, angle mean near 0. */
    CHECK(lo[0] < -0.99f * max_angle && hi[0] > 0.99f * max_angle, "angle spans %g..%g rad", lo[0], hi[0]);
    CHECK(lo[1] < -1.98f && hi[1] > 1.98f, "shift x spans %g..%g", lo[1], hi[1]);
    CHECK(lo[2] < -1.98f && hi[2] > 1.98f, "shift y spans %g..%g", lo[2], hi[2]);
    CHECK(lo[3] < 0.902f && hi[3] > 1.098f, "zoom spans %g..%g", lo[3], hi[3]);
    CHECK(fabs(sum_angle / draws) < 0.02 * max_angle, "mean angle %g rad", sum_angle / draws);
}

/* The batch result depends only on each image's dataset index, not on how it is split. */
static void test_batch_split_independent(uint64_t seed) {
    enum { N = 10 };
    static float src[N * PIXELS], whole[N * PIXELS], split[N * PIXELS], one[PIXELS];
    uint64_t indices[N];
    uint64_t state = seed;
    test_fill_uniform(src, N * PIXELS, 0.0f, 1.0f, &state);
    for (int i = 0; i < N; i++)
        indices[i] = test_rand_u64(&state) % 60000;
    hd_augment_ranges r;
    hd_augment_default_ranges(&r);
    hd_augment_batch(&r, seed, 5, indices, N, src, whole, ROWS, COLS);
    hd_augment_batch(&r, seed, 5, indices, 3, src, split, ROWS, COLS);
    hd_augment_batch(&r, seed, 5, indices + 3, N - 3, src + 3 * PIXELS, split + 3 * PIXELS, ROWS, COLS);
    CHECK(memcmp(whole, split, sizeof whole) == 0, "batch of 10 differs from batches of 3 + 7");
    hd_affine t = hd_augment_params(&r, seed, 5, indices[6]);
    hd_affine_apply(src + 6 * PIXELS, one, ROWS, COLS, t);
    CHECK(memcmp(one, whole + 6 * PIXELS, sizeof one) == 0, "batch image 6 differs from hd_affine_apply");
    /* The augmentation does change the images, and another epoch changes them differently. */
    CHECK(memcmp(whole, src, sizeof whole) != 0, "augmentation left the batch unchanged");
    hd_augment_batch(&r, seed, 6, indices, N, src, split, ROWS, COLS);
    CHECK(memcmp(whole, split, sizeof whole) != 0, "epochs 5 and 6 gave the same augmentation");
}

int main(void) {
    uint64_t seed = test_fresh_seed();
    test_identity();
    test_integer_shift();
    test_fractional_shift_moves_centre_of_mass();
    test_rotation_90();
    test_zoom();
    test_params_reproducible();
    test_params_within_ranges(seed);
    test_batch_split_independent(seed);
    return test_finish();
}
