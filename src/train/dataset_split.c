/* dataset_split.c: float conversion, the seeded validation split and per-epoch shuffles. */
#include "hd/dataset_split.h"
#include "hd/common.h"
#include "hd/shared_math.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int hd_float_set_from_bytes(hd_float_set *out, const uint8_t *images, const uint8_t *labels, int rows,
                            int cols, const int *indices, int count) {
    size_t image_size = (size_t)rows * cols;
    *out = (hd_float_set){.count = count, .rows = rows, .cols = cols, .std = 1.0f};
    out->images = hd_malloc(sizeof(float) * image_size * (size_t)count);
    out->labels = hd_malloc(sizeof(int32_t) * (size_t)count);
    if (!out->images || !out->labels) {
        hd_float_set_free(out);
        return -1;
    }
    for (int i = 0; i < count; i++) {
        int src = indices ? indices[i] : i;
        const uint8_t *pixels = images + (size_t)src * image_size;
        float *dst = out->images + (size_t)i * image_size;
        for (size_t j = 0; j < image_size; j++)
            dst[j] = (float)pixels[j] * (1.0f / 255.0f);
        out->labels[i] = labels[src];
    }
    return 0;
}

int hd_float_set_view_bytes(hd_float_set *out, const uint8_t *images, const uint8_t *labels, int rows,
                            int cols, const int *indices, int count) {
    *out = (hd_float_set){.count = count, .rows = rows, .cols = cols, .bytes = images, .std = 1.0f};
    out->labels = hd_malloc(sizeof(int32_t) * (size_t)(count ? count : 1));
    out->index = hd_malloc(sizeof(int) * (size_t)(count ? count : 1));
    if (!out->labels || !out->index) {
        hd_float_set_free(out);
        return -1;
    }
    for (int i = 0; i < count; i++) {
        out->index[i] = indices ? indices[i] : i;
        out->labels[i] = labels[out->index[i]];
    }
    return 0;
}

/* A byte view's pixel as a float: the same two steps as hd_float_set_from_bytes then hd_normalize_pixels,
 * so the same bits. */
static float byte_pixel(const hd_float_set *set, uint8_t p) {
    float x = (float)p * (1.0f / 255.0f);
    return set->mean == 0.0f && set->std == 1.0f ? x : (x - set->mean) / set->std;
}

void hd_float_set_image(const hd_float_set *set, int i, float *dst) {
    size_t image_size = (size_t)set->rows * set->cols;
    if (set->images) {
        memcpy(dst, set->images + (size_t)i * image_size, sizeof(float) * image_size);
        return;
    }
    const uint8_t *pixels = set->bytes + (size_t)(set->index ? set->index[i] : i) * image_size;
    for (size_t j = 0; j < image_size; j++)
        dst[j] = byte_pixel(set, pixels[j]);
}

void hd_float_set_normalize(hd_float_set *set, float mean, float std) {
    if (set->images) {
        hd_normalize_pixels(set->images, (size_t)set->count * (size_t)set->rows * (size_t)set->cols, mean,
                            std);
        return;
    }
    set->mean = mean;
    set->std = std;
}

void hd_float_set_mean_std(const hd_float_set *set, float *mean, float *std) {
    size_t image_size = (size_t)set->rows * (size_t)set->cols, n = (size_t)set->count * image_size;
    double sum = 0.0, sum_sq = 0.0;
    for (int i = 0; i < set->count; i++) { /* pixel by pixel in order, for either kind of set */
        const float *copy = set->images ? set->images + (size_t)i * image_size : NULL;
        const uint8_t *pixels =
            copy ? NULL : set->bytes + (size_t)(set->index ? set->index[i] : i) * image_size;
        for (size_t j = 0; j < image_size; j++) {
            float x = copy ? copy[j] : byte_pixel(set, pixels[j]);
            sum += x;
            sum_sq += (double)x * x;
        }
    }
    double m = n ? sum / (double)n : 0.0, var = n ? sum_sq / (double)n - m * m : 0.0;
    *mean = (float)m;
    *std = var > 1e-12 ? (float)sqrt(var) : 1.0f;
}

void hd_normalize_pixels(float *x, size_t n, float mean, float std) {
    if (mean == 0.0f && std == 1.0f)
        return;
    for (size_t i = 0; i < n; i++)
        x[i] = (x[i] - mean) / std;
}

void hd_float_set_free(hd_float_set *set) {
    free(set->images);
    free(set->labels);
    free(set->index);
    set->images = NULL;
    set->labels = NULL;
    set->index = NULL;
    set->bytes = NULL;
    set->count = 0;
}

void hd_epoch_permutation(int *order, int n, uint64_t seed, uint64_t epoch) {
    for (int i = 0; i < n; i++)
        order[i] = i;
    if (n < 2) /* nothing to shuffle; also keeps n - 1 from wrapping when n is INT_MIN */
        return;
    for (int i = n - 1; i > 0; i--) {
        float u = hd_random_unit(seed, HD_RNG_STREAM_SHUFFLE, epoch, (uint64_t)i);
        int j = (int)(u * (float)(i + 1));
        if (j > i)
            j = i;
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

int hd_split_indices(int count, double val_fraction, uint64_t seed, int **train_idx, int *n_train,
                     int **val_idx, int *n_val) {
    if (!(val_fraction >= 0.0 && val_fraction < 1.0))
        return hd_fail("validation split %.3g: must be in [0, 1)", val_fraction);
    int *order = hd_malloc(sizeof(int) * (size_t)count);
    if (!order)
        return -1;
    /* "epoch" UINT32_MAX: a permutation no training epoch uses. */
    hd_epoch_permutation(order, count, seed, 0xFFFFFFFFull);
    int nv = (int)(count * val_fraction + 0.5);
    *n_val = nv;
    *n_train = count - nv;
    *val_idx = hd_malloc(sizeof(int) * (size_t)(nv ? nv : 1));
    *train_idx = hd_malloc(sizeof(int) * (size_t)(count - nv));
    if (!*val_idx || !*train_idx) {
        free(order);
        free(*val_idx);
        free(*train_idx);
        return -1;
    }
    /* Sorted within each part, so the split is a set, not an order. */
    char *is_val = hd_calloc((size_t)count, 1);
    if (!is_val) {
        free(order);
        free(*val_idx);
        free(*train_idx);
        return -1;
    }
    for (int i = 0; i < nv; i++)
        is_val[order[i]] = 1;
    for (int i = 0, t = 0, v = 0; i < count; i++) {
        if (is_val[i])
            (*val_idx)[v++] = i;
        else
            (*train_idx)[t++] = i;
    }
    free(is_val);
    free(order);
    return 0;
}
