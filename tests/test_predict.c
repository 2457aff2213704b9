/* test_predict.c: real MNIST test digits written out as image files come back, through
 * hd_digit_image_load (the input path of `hd-gpu predict`), as the digits the model saw.
 *
 * 200 test-set digits (spread over the set) are written twice: as they are (28x28 PNG, white on
 * black) and as a scan would look (inverted to black on white, upscaled bilinearly to 200x200).
 * Without a trained model (the lead checks `hd-gpu predict` end to end after training), "the
 * same digit" is measured two ways:
 *   - pixel correlation with the in-memory digit, best over whole-pixel moves of -1..1 in x and
 *     y (the centre of mass fixes a digit's place only to half a pixel: MNIST's own digits have
 *     it anywhere in [13.5, 14.5], so one near a half pixel may land one pixel over);
 *   - a fixed nearest-centroid classifier (class means of 2,000 training digits, about 77%
 *     right): its answer on the loaded image against its answer on the in-memory digit.
 * Bars: 28x28 files: correlation >= 0.98 and the same class for >= 99% of the digits.
 * 200x200 files: correlation >= 0.90 for >= 97%, the same class for >= 93% of all digits and
 * for >= 99% of the clear-cut ones (second-nearest centroid >= 5% farther). The round trip
 * through a 7x larger bilinear image blurs strokes slightly, which moves digits that sit on a
 * decision boundary of this weak classifier; clear-cut digits must not move. */
#include "check.h"
#include "hd/common.h"
#include "hd/digit_image.h"
#include "hd/idx.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_DIGITS   200
#define N_CENTROID 2000
#define SCAN_SIDE  200

/* The best correlation of b, moved by a whole pixel or not at all in x and y, with a. The
 * centre of mass fixes a digit's place only to within half a pixel (MNIST's own digits have it
 * anywhere in [13.5, 14.5]), so a digit whose centre sits near a half pixel may land one pixel
 * over after the round trip; the model's convolutions and pooling do not mind. */
static double aligned_correlation(const float *a, const float *b, int *shift_x, int *shift_y) {
    double best = -1.0;
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++) {
            float moved[HD_DIGIT_PIXELS];
            for (int y = 0; y < 28; y++)
                for (int x = 0; x < 28; x++) {
                    int sx = x - dx, sy = y - dy;
                    moved[y * 28 + x] = (sx >= 0 && sx < 28 && sy >= 0 && sy < 28) ? b[sy * 28 + sx] : 0.0f;
                }
            double r = test_correlation(a, moved, HD_DIGIT_PIXELS);
            if (r > best) {
                best = r;
                *shift_x = dx;
                *shift_y = dy;
            }
        }
    return best;
}

/* The nearest class centroid; *margin = (second-nearest distance / nearest) - 1. */
static int nearest_centroid(const double centroids[10][HD_DIGIT_PIXELS], const float *img, double *margin) {
    int best = 0;
    double best_distance = INFINITY, second_distance = INFINITY;
    for (int c = 0; c < 10; c++) {
        double d = 0;
        for (int i = 0; i < HD_DIGIT_PIXELS; i++)
            d += (img[i] - centroids[c][i]) * (img[i] - centroids[c][i]);
        d = sqrt(d);
        if (d < best_distance) {
            second_distance = best_distance;
            best_distance = d;
            best = c;
        } else if (d < second_distance) {
            second_distance = d;
        }
    }
    if (margin)
        *margin = second_distance / best_distance - 1.0;
    return best;
}

/* Bilinear upscale of a 28x28 digit to side x side, inverted (black ink on white paper). */
static void upscale_inverted(const uint8_t *digit, uint8_t *out, int side) {
    double step = 28.0 / side;
    for (int y = 0; y < side; y++) {
        double sy = fmin(fmax((y + 0.5) * step - 0.5, 0.0), 27.0);
        int y0 = (int)sy, y1 = y0 < 27 ? y0 + 1 : y0;
        double fy = sy - y0;
        for (int x = 0; x < side; x++) {
            double sx = fmin(fmax((x + 0.5) * step - 0.5, 0.0), 27.0);
            int x0 = (int)sx, x1 = x0 < 27 ? x0 + 1 : x0;
            double fx = sx - x0;
            double v = (1 - fy) * ((1 - fx) * digit[y0 * 28 + x0] + fx * digit[y0 * 28 + x1]) +
                       fy * ((1 - fx) * digit[y1 * 28 + x0] + fx * digit[y1 * 28 + x1]);
            out[y * side + x] = (uint8_t)(255 - lround(v));
        }
    }
}

static int load_set(const char *dir, const char *images, const char *labels, hd_dataset *set) {
    char images_path[4200], labels_path[4200];
    snprintf(images_path, sizeof images_path, "%s/%s", dir, images);
    snprintf(labels_path, sizeof labels_path, "%s/%s", dir, labels);
    return hd_dataset_load_idx(images_path, labels_path, set);
}

typedef struct {
    const char *name;
    double bar;     /* correlation bar */
    int loaded;     /* files that loaded */
    int correlated; /* aligned correlation >= bar */
    int same_class; /* nearest centroid agrees with the in-memory digit's */
    int confident;  /* digits whose in-memory answer has a margin >= CONFIDENT_MARGIN */
    int confident_same;
    int moved; /* best aligned one pixel over */
    double worst_correlation;
} round_trip_score;

/* A digit counts as clear-cut for the centroid classifier when the second-nearest centroid is
 * at least this much (relatively) farther than the nearest. */
#define CONFIDENT_MARGIN 0.05

static void score_round_trip(round_trip_score *score, const char *path, const uint8_t *pixels, int side,
                             const float *original, const double centroids[10][HD_DIGIT_PIXELS], int want,
                             double want_margin) {
    float loaded[HD_DIGIT_PIXELS];
    if (hd_write_png_gray(path, pixels, side, side) != 0 || hd_digit_image_load(path, loaded) != 0) {
        CHECK(0, "%s (%dx%d): %s", path, side, side, hd_last_error());
        return;
    }
    score->loaded++;
    int dx = 0, dy = 0;
    double r = aligned_correlation(original, loaded, &dx, &dy);
    score->moved += dx != 0 || dy != 0;
    score->correlated += r >= score->bar;
    score->worst_correlation = fmin(score->worst_correlation, r);
    int same = nearest_centroid(centroids, loaded, NULL) == want;
    score->same_class += same;
    if (want_margin >= CONFIDENT_MARGIN) {
        score->confident++;
        score->confident_same += same;
    }
}

static void report_and_check(const round_trip_score *s, int min_correlated, int min_same) {
    printf("%s: %d loaded; correlation >= %.2f: %d (worst %.4f, %d best one pixel over); same class: %d; "
           "same class where clear-cut: %d of %d\n",
           s->name, s->loaded, s->bar, s->correlated, s->worst_correlation, s->moved, s->same_class,
           s->confident_same, s->confident);
    CHECK(s->loaded == N_DIGITS, "%s: only %d of %d files loaded", s->name, s->loaded, N_DIGITS);
    CHECK(s->correlated >= min_correlated, "%s: only %d of %d with correlation >= %.2f (want >= %d)", s->name,
          s->correlated, N_DIGITS, s->bar, min_correlated);
    CHECK(s->same_class >= min_same, "%s: only %d of %d classified the same (want >= %d)", s->name,
          s->same_class, N_DIGITS, min_same);
    CHECK(s->confident_same >= s->confident * 99 / 100,
          "%s: only %d of %d clear-cut digits classified the same (want >= 99%%)", s->name, s->confident_same,
          s->confident);
}

int main(void) {
#ifndef HD_HAVE_STB
    test_skip("built without stb: images cannot be read");
    return test_finish();
#endif
    const char *mnist = test_mnist_dir();
    if (!mnist) {
        test_skip("real MNIST not found (HD_TEST_DATA_DIR)");
        return test_finish();
    }
    hd_dataset train = {0}, test = {0};
    if (load_set(mnist, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", &train) != 0 ||
        load_set(mnist, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", &test) != 0) {
        CHECK(0, "loading MNIST from %s: %s", mnist, hd_last_error());
        return test_finish();
    }
    CHECK(test.rows == 28 && test.cols == 28 && test.count >= N_DIGITS, "test set %dx%dx%d", test.count,
          test.rows, test.cols);

    static double centroids[10][HD_DIGIT_PIXELS];
    int per_class[10] = {0};
    for (int n = 0; n < N_CENTROID && n < train.count; n++) {
        int c = train.labels[n];
        per_class[c]++;
        for (int i = 0; i < HD_DIGIT_PIXELS; i++)
            centroids[c][i] += train.images[(size_t)n * HD_DIGIT_PIXELS + i] / 255.0;
    }
    for (int c = 0; c < 10; c++)
        for (int i = 0; i < HD_DIGIT_PIXELS; i++)
            centroids[c][i] /= per_class[c] ? per_class[c] : 1;

    char *dir = test_make_temp_dir("predict");
    uint8_t *scan = malloc(SCAN_SIDE * SCAN_SIDE);
    round_trip_score as_is = {"28x28 white on black", 0.98, 0, 0, 0, 0, 0, 0, 1.0};
    round_trip_score as_scan = {"200x200 black on white", 0.90, 0, 0, 0, 0, 0, 0, 1.0};
    int centroid_right = 0;
    for (int k = 0; k < N_DIGITS && dir && scan; k++) {
        int index = k * (test.count / N_DIGITS); /* spread over the whole test set */
        const uint8_t *digit = test.images + (size_t)index * HD_DIGIT_PIXELS;
        float original[HD_DIGIT_PIXELS];
        for (int i = 0; i < HD_DIGIT_PIXELS; i++)
            original[i] = digit[i] / 255.0f;
        double margin;
        int want = nearest_centroid(centroids, original, &margin);
        centroid_right += want == test.labels[index];

        char path[4300];
        snprintf(path, sizeof path, "%s/digit-%05d.png", dir, index);
        score_round_trip(&as_is, path, digit, 28, original, centroids, want, margin);
        upscale_inverted(digit, scan, SCAN_SIDE);
        score_round_trip(&as_scan, path, scan, SCAN_SIDE, original, centroids, want, margin);
    }
    printf("nearest-centroid classifier: %d of %d right on the in-memory digits\n", centroid_right, N_DIGITS);
    /* The classifier is a fair judge: far better than chance (10%) on the originals. */
    CHECK(centroid_right >= N_DIGITS * 70 / 100, "nearest centroid right on only %d of %d", centroid_right,
          N_DIGITS);
    report_and_check(&as_is, N_DIGITS * 99 / 100, N_DIGITS * 99 / 100);
    report_and_check(&as_scan, N_DIGITS * 97 / 100, N_DIGITS * 93 / 100);
    free(scan);
    if (dir) {
        test_remove_tree(dir);
        free(dir);
    }
    hd_dataset_free(&train);
    hd_dataset_free(&test);
    return test_finish();
}
