/* safetensors.h: reading and writing float32 (and int64) tensors in Hugging Face's safetensors format.
 *
 * Layout of a file (all integers little-endian):
 *   8 bytes   N, the length of the JSON header
 *   N bytes   {"__metadata__": {"key": "value", ...},
 *              "name": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...}
 *             padded with spaces so the data starts at a multiple of 8
 *   the data  every tensor's values (float32, or int64 for "I64"), row-major, back to back; offsets
 *             are relative to the start of the data section
 * The writer adds the metadata key "hd.data_crc32": the zlib CRC-32 of the whole data section
 * as 8 lowercase hex digits. The reader checks it when present, and checks everything else
 * before trusting a byte: header length against the file size, the JSON, dtype (F32 or I64),
 * shape against the byte range, ranges inside the data section, contiguous and without
 * overlap, and the data section exactly as long as the tensors. Files from other writers
 * (e.g. Python's safetensors) load as long as their tensors are F32 or I64 of rank <= 4.
 *
 * Writes are atomic (hd_write_file_atomic): a reader sees the old file or the new one. */
#ifndef HD_SAFETENSORS_H
#define HD_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HD_ST_MAX_RANK 4
#define HD_ST_CRC_KEY  "hd.data_crc32"
/* CRC32 of the other metadata entries (key NUL value NUL, in file order), so that a damaged
 * value (an epoch, a learning rate) is caught as surely as damaged weights. */
#define HD_ST_META_CRC_KEY "hd.meta_crc32"

typedef enum {
    HD_ST_F32 = 0, /* float32 (the default of a zeroed hd_st_tensor) */
    HD_ST_I64 = 1  /* int64, as PyTorch saves a batch norm's num_batches_tracked */
} hd_st_dtype;

typedef struct {
    const char *name;
    const void *data;  /* host memory, product(dims) values of dtype */
    int rank;          /* 0 (a scalar) .. HD_ST_MAX_RANK */
    hd_st_dtype dtype; /* beside rank: no padding */
    int64_t dims[HD_ST_MAX_RANK];
} hd_st_tensor;

typedef struct {
    const char *key;
    const char *value;
} hd_st_meta;

/* Writes the tensors (in the given order) and metadata to path. Names and keys must be
 * unique; "__metadata__", HD_ST_CRC_KEY and HD_ST_META_CRC_KEY are reserved. */
int hd_safetensors_write(const char *path, const hd_st_tensor *tensors, int n, const hd_st_meta *meta,
                         int n_meta);

/* A loaded, fully checked file. */
typedef struct hd_safetensors hd_safetensors;

/* Reads and checks the whole file; -1 + hd_fail("PATH: what is wrong") when anything is off. */
int hd_safetensors_read(const char *path, hd_safetensors **out);
void hd_safetensors_free(hd_safetensors *file);

/* The named F32 tensor's data (valid until hd_safetensors_free), or NULL if absent or of another
 * dtype. rank and dims (unused entries set to 0) may be NULL. */
const float *hd_safetensors_find(const hd_safetensors *file, const char *name, int *rank,
                                 int64_t dims[HD_ST_MAX_RANK]);
/* Any tensor: its bytes (not necessarily aligned for its type: copy them out with memcpy), dtype,
 * rank and dims (each may be NULL), or NULL if absent. */
const void *hd_safetensors_find_any(const hd_safetensors *file, const char *name, hd_st_dtype *dtype,
                                    int *rank, int64_t dims[HD_ST_MAX_RANK]);
/* "F32" or "I64". */
const char *hd_st_dtype_name(hd_st_dtype dtype);

/* Tensors in name order: count and the i-th name. */
int hd_safetensors_count(const hd_safetensors *file);
const char *hd_safetensors_name(const hd_safetensors *file, int index);

/* The metadata value for key, or NULL if absent. */
const char *hd_safetensors_meta(const hd_safetensors *file, const char *key);
/* Number of metadata entries. */
int hd_safetensors_meta_count(const hd_safetensors *file);

/* Formats a shape as "[2, 3, 4]" into buf, for messages. */
void hd_st_format_shape(int rank, const int64_t *dims, char *buf, size_t buf_len);

#ifdef __cplusplus
}
#endif

#endif
