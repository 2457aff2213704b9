/* idx.h: reading IDX files (the MNIST format), raw or gzip-compressed, into an hd_dataset.
 *
 * IDX layout (big-endian): a 4-byte magic 0x00 0x00 TYPE RANK, RANK 4-byte dimensions, then the data.
 * Images are TYPE 0x08 (unsigned byte), RANK 3 (count, rows, cols), magic 0x00000803; labels are
 * TYPE 0x08, RANK 1 (count), magic 0x00000801. A file whose first two bytes are 1f 8b is read as gzip.
 *
 * Everything is validated before anything large is allocated: magic, dimensions (count 1..10,000,000,
 * rows and cols 1..4096, at most HD_IDX_MAX_BYTES of pixels), the exact file length the header promises
 * (for .gz, the decompressed length, read in a stream that never holds more than the header promised),
 * and equal image and label counts. Labels are any byte, 0..255: the class count is the trainer's
 * (hd_dataset_check_labels). A failure records one line naming the file, e.g.
 * "data/train-images-idx3-ubyte: truncated: header promises 47040016 bytes, file has 1000". */
#ifndef HD_IDX_H
#define HD_IDX_H

#include <stdint.h>

#define HD_IDX_IMAGES_MAGIC 0x00000803u
#define HD_IDX_LABELS_MAGIC 0x00000801u
#define HD_IDX_MAX_COUNT    10000000
#define HD_IDX_MAX_SIDE     4096
#define HD_IDX_MAX_BYTES    ((uint64_t)1 << 31) /* largest pixel block accepted (2 GiB) */

#ifdef __cplusplus
extern "C" {
#endif

/* A labelled image set. images: count*rows*cols bytes, row-major, image i at i*rows*cols;
 * labels: count bytes, each a class 0..255. source: the images file it was read from (malloc'ed; NULL for a
 * set made in memory), for error messages. */
typedef struct {
    int count, rows, cols;
    uint8_t *images;
    uint8_t *labels;
    char *source;
} hd_dataset;

/* What to call a set in a message: its images file, or "the images" for one made in memory. */
const char *hd_dataset_name(const hd_dataset *d);

/* An IDX rank-3 unsigned-byte file; *pixels is malloc'ed (count*rows*cols bytes). On failure all
 * outputs are zero/NULL. */
int hd_idx_read_images(const char *path, int *count, int *rows, int *cols, uint8_t **pixels);
/* An IDX rank-1 unsigned-byte file; *labels is malloc'ed. */
int hd_idx_read_labels(const char *path, int *count, uint8_t **labels);

/* Both files of a set; the counts must match. On failure *out is zeroed and nothing is leaked. */
int hd_dataset_load_idx(const char *images_path, const char *labels_path, hd_dataset *out);
/* Frees the buffers and zeroes the struct; safe on a zeroed struct. */
void hd_dataset_free(hd_dataset *d);
/* The largest label of the set, -1 for an empty one. */
int hd_dataset_max_label(const hd_dataset *d);
/* 0 when every label is below classes; otherwise -1 + hd_fail naming the set's file, the first image whose
 * label is outside and the range. */
int hd_dataset_check_labels(const hd_dataset *d, int classes);

#ifdef __cplusplus
}
#endif

#endif
