/* transfer.h: what transfer learning adds to a run (src/train/transfer.c): the class count from the
 * training labels, the output layer that follows it, the classes' names, and --init, a start from another
 * model's tensors that match by name and shape.
 *
 * Everything here is checked before a run directory is claimed: a bad input is one line and exit 1, with
 * nothing written. */
#ifndef HD_TRANSFER_H
#define HD_TRANSFER_H

#include "hd/idx.h"
#include "hd/model.h"
#include "hd/safetensors.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The run's class count: `requested` (--num-classes) when above 0, else the training labels' largest + 1
 * (over the whole training file, so --train-limit does not change it). Every training and test label must
 * lie below it: -1 + hd_fail naming the file and the image otherwise. */
int hd_transfer_classes(const hd_dataset *train, const hd_dataset *test, int requested, int *classes);

/* spec with its last layer's units set to `classes` (canonical form) into out. The last layer must be dense
 * (the output layer); -1 + hd_fail otherwise. */
int hd_transfer_spec(const char *spec, int classes, char *out, size_t len);

/* --class-names FILE: one name a line (UTF-8, no control characters, 1..63 bytes each; a last line without a
 * newline counts, blank lines at the end are ignored), exactly `classes` of them. *names gets them joined by
 * '\n' (malloc'ed), as hd_model.class_names holds them. -1 + hd_fail naming the file otherwise. */
int hd_class_names_read(const char *path, int classes, char **names);
/* The same check for names read back from a checkpoint (path names it in messages). */
int hd_class_names_check(const char *path, const char *names, int classes);

/* ---- --init ---- */
typedef enum { HD_INIT_LOADED, HD_INIT_FRESH, HD_INIT_SHAPE_DIFFERS, HD_INIT_UNUSED } hd_init_status;

typedef struct {
    char name[64];         /* "conv1.weight" */
    hd_init_status status; /* loaded; fresh (not in the file); shape differs (fresh); unused (file only) */
    char model_shape[64], file_shape[64];
    size_t offset, count; /* in the model's parameters, or its state (not for unused) */
    int is_state;         /* a batch-norm running statistic: offset and count are into model->state */
} hd_init_row;

typedef struct {
    const char *path;
    hd_safetensors *file;
    hd_init_row rows[4 * HD_MAX_LAYERS];
    int n_rows, loaded;
    int has_input_norm; /* the file records hd.input_mean / hd.input_std */
    float input_mean, input_std;
} hd_init_source;

/* Reads the checkpoint at path (a file; a run directory is resolved by the caller) and matches its tensors
 * against `layout` (hd_model_layout or a built model) by name and shape. -1 + hd_fail, one line naming the
 * file, for a corrupt or non-hd-gpu file, another input shape, or no tensor that matches. */
int hd_init_source_open(hd_init_source *src, const char *path, const hd_model *layout);
/* The table: each tensor, its shapes and loaded / fresh / shape differs / unused. */
void hd_init_source_print(const hd_init_source *src, FILE *out);
/* Copies the matching tensors over the model's parameters and running statistics (the rest keep what they
 * hold: fresh weights from hd_model_init_weights); with take_norm, also the file's input normalisation. */
int hd_init_source_apply(const hd_init_source *src, hd_model *model, int take_norm);
void hd_init_source_free(hd_init_source *src);

#ifdef __cplusplus
}
#endif

#endif
