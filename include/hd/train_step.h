/* train_step.h: one training step on the batch in model->input / model->labels: the step's
 * scalars (hd_model_set_step), then forward (dropout on), softmax cross-entropy with its
 * gradient, backward and the optimizer update.
 *
 * Where the backend can record and replay ops (backend.h's record_begin: CUDA graphs on a
 * GPU), the ops after the scalars are recorded the second time a (input, labels, batch size)
 * is seen (the first runs op by op, as a warm-up that keeps one-time set-up such as kernel
 * loading out of the recording) and replayed from then on: one launch instead of some thirty
 * per step. The pipeline alternates between two device batches and an epoch may end on a
 * smaller one, so a few recordings are kept (least recently used goes first). A recording
 * that cannot be made turns recording off for the run, with a one-line notice, and steps run
 * op by op; the results are the same either way (the same kernels on the same memory, in the
 * same order). */
#ifndef HD_TRAIN_STEP_H
#define HD_TRAIN_STEP_H

#include "hd/model.h"
#include "hd/optimizer.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HD_TRAIN_STEP_RECORDINGS 8

typedef struct {
    const float *input;
    const int32_t *labels;
    int n;
    void *recording;    /* NULL: not recorded yet (seen once, run op by op) */
    uint64_t last_used; /* the runner's step count when last used; 0: slot unused */
} hd_step_recording;

typedef struct {
    hd_model *model;
    hd_optimizer *opt;
    uint64_t seed;
    int recording_on; /* the backend records and no recording has failed; clear it after init to
                       * run every step op by op (bench_train.c measures both) */
    hd_step_recording slots[HD_TRAIN_STEP_RECORDINGS];
    uint64_t steps_run;
    int recordings_made; /* for reports and tests */
    uint64_t replays;
} hd_train_step;

/* Records and replays steps when the backend can (record_begin is not NULL). */
void hd_train_step_init(hd_train_step *ts, hd_model *model, hd_optimizer *opt, uint64_t seed);
/* One step of n images (n <= model->max_batch) as global step `step`. */
void hd_train_step_run(hd_train_step *ts, int n, uint64_t step);
/* Frees the recordings (the model and optimizer stay). */
void hd_train_step_free(hd_train_step *ts);

#ifdef __cplusplus
}
#endif

#endif
