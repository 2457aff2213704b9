/* dataset_split.h: a labelled image set handed out as floats (hd_float_set), the seeded split into training
 * and validation, and each epoch's shuffle (src/train/dataset_split.c): the data the pipeline (pipeline.h)
 * draws its batches from. */
#ifndef HD_DATASET_SPLIT_H
#define HD_DATASET_SPLIT_H

#include <stddef.h>
#include <stdint.h>

/* Images as floats in [0, 1] (or in a normalised convention), row-major, with their labels: either a float
 * copy (images) or, to hold 1 byte a pixel rather than 4, a view of byte images (images NULL, bytes and
 * index set) converted one image at a time by hd_float_set_image. */
typedef struct {
    int count, rows, cols;
    float *images;
    int32_t *labels;
    const uint8_t *bytes; /* borrowed: image i is bytes + index[i] * rows * cols; it must outlive the set */
    int *index;           /* owned; NULL with bytes set: image i is the i-th */
    float mean, std;      /* a byte view's convention: (x - mean) / std, none while 0 and 1 */
} hd_float_set;

/* Copies the rows of `indices` (or all when indices is NULL) from a byte dataset,
 * scaling pixels to [0, 1]. */
int hd_float_set_from_bytes(hd_float_set *out, const uint8_t *images, const uint8_t *labels, int rows,
                            int cols, const int *indices, int count);
/* The same rows as a byte view: no float copy, the byte images must outlive the set. */
int hd_float_set_view_bytes(hd_float_set *out, const uint8_t *images, const uint8_t *labels, int rows,
                            int cols, const int *indices, int count);
/* Image i as floats into dst (rows * cols floats): bit for bit what a float copy normalised by
 * hd_float_set_normalize holds. */
void hd_float_set_image(const hd_float_set *set, int i, float *dst);
/* Puts the set in the model's convention (x - mean) / std: in place for a float copy, at each
 * hd_float_set_image for a byte view. Once per set. */
void hd_float_set_normalize(hd_float_set *set, float mean, float std);
void hd_float_set_free(hd_float_set *set);
/* The mean and standard deviation of all the set's pixels (in double; std 1 for an empty or flat set). */
void hd_float_set_mean_std(const hd_float_set *set, float *mean, float *std);
/* x = (x - mean) / std for n pixels: the model's input convention (hd_model.input_mean, input_std). */
void hd_normalize_pixels(float *x, size_t n, float mean, float std);

/* Seeded split of [0, count) into training and validation indices (a Philox shuffle).
 * *train_idx and *val_idx are malloc'ed. */
int hd_split_indices(int count, double val_fraction, uint64_t seed, int **train_idx, int *n_train,
                     int **val_idx, int *n_val);

/* The permutation of [0, n) for one epoch: a Fisher-Yates shuffle driven by Philox
 * (seed, HD_RNG_STREAM_SHUFFLE, epoch), identical on every machine and thread count. */
void hd_epoch_permutation(int *order, int n, uint64_t seed, uint64_t epoch);

#endif
