/* train_step.c: one training step, run op by op or replayed from a recording (train_step.h). */
#include "hd/train_step.h"
#include "hd/common.h"

#include <stdio.h>
#include <string.h>

void hd_train_step_init(hd_train_step *ts, hd_model *model, hd_optimizer *opt, uint64_t seed) {
    memset(ts, 0, sizeof *ts);
    ts->model = model;
    ts->opt = opt;
    ts->seed = seed;
    const hd_backend_ops *ops = model->be->ops;
    ts->recording_on = ops->record_begin && ops->record_end && ops->replay && ops->recording_free;
}

/* The step's ops after its scalars: what a recording holds. */
static void queue_ops(hd_train_step *ts, int n) {
    hd_model_forward(ts->model, n, 1, ts->seed);
    hd_model_loss(ts->model, n, 1);
    hd_model_backward(ts->model, n, ts->seed);
    hd_optimizer_update(ts->opt, ts->model);
}

static void drop(hd_train_step *ts, hd_step_recording *slot) {
    hd_backend *be = ts->model->be;
    if (slot->recording)
        be->ops->recording_free(be, slot->recording);
    memset(slot, 0, sizeof *slot);
}

/* The slot of this step's (input, labels, n), or NULL when it has none. */
static hd_step_recording *find(hd_train_step *ts, int n) {
    const hd_model *model = ts->model;
    for (int i = 0; i < HD_TRAIN_STEP_RECORDINGS; i++) {
        hd_step_recording *slot = &ts->slots[i];
        if (slot->last_used && slot->input == model->input && slot->labels == model->labels && slot->n == n)
            return slot;
    }
    return NULL;
}

/* A slot for a new (input, labels, n): a free one, else the least recently used. */
static hd_step_recording *claim(hd_train_step *ts, int n) {
    hd_step_recording *slot = &ts->slots[0];
    for (int i = 0; i < HD_TRAIN_STEP_RECORDINGS; i++) {
        if (!ts->slots[i].last_used) {
            slot = &ts->slots[i];
            break;
        }
        if (ts->slots[i].last_used < slot->last_used)
            slot = &ts->slots[i];
    }
    drop(ts, slot);
    slot->input = ts->model->input;
    slot->labels = ts->model->labels;
    slot->n = n;
    return slot;
}

/* Turns recording off for the run: steps run op by op from now on. */
static void stop_recording(hd_train_step *ts) {
    fprintf(stderr, "hd-gpu: notice: %s; training steps run op by op\n", hd_last_error());
    ts->recording_on = 0;
}

/* Records the step's ops into the slot. 0 when the backend could not record them: recording is
 * then off for good (with a notice), and nothing ran. */
static int record(hd_train_step *ts, hd_step_recording *slot, int n) {
    hd_backend *be = ts->model->be;
    if (be->ops->record_begin(be) == 0) {
        queue_ops(ts, n);
        slot->recording = be->ops->record_end(be);
    }
    if (!slot->recording) {
        stop_recording(ts);
        return 0;
    }
    ts->recordings_made++;
    return 1;
}

/* Replays the slot's recording, recording it first when it has none (and once more when the
 * backend finds it stale). 0 when the step has not run: the caller runs it op by op. */
static int replay(hd_train_step *ts, hd_step_recording *slot, int n) {
    hd_backend *be = ts->model->be;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!slot->recording && !record(ts, slot, n))
            return 0;
        if (be->ops->replay(be, slot->recording) == 0)
            return 1;
        be->ops->recording_free(be, slot->recording); /* stale */
        slot->recording = NULL;
    }
    stop_recording(ts);
    return 0;
}

void hd_train_step_run(hd_train_step *ts, int n, uint64_t step) {
    hd_model *model = ts->model;
    float step_size = hd_optimizer_next_step_size(ts->opt); /* counts the step: sets its average_weight */
    hd_model_set_step(model, step, step_size, ts->opt->average_weight);
    ts->steps_run++;
    model->batches_tracked++; /* every bn layer's num_batches_tracked */
    if (ts->recording_on) {
        /* The first step on a (input, labels, n) runs op by op: a warm-up that does the one-time
         * work (loading kernels, library set-up) outside the recording. The next is recorded. */
        hd_step_recording *slot = find(ts, n);
        int warm = slot != NULL;
        if (!slot)
            slot = claim(ts, n);
        slot->last_used = ts->steps_run;
        if (warm && replay(ts, slot, n)) {
            ts->replays++;
            return;
        }
    }
    queue_ops(ts, n);
}

void hd_train_step_free(hd_train_step *ts) {
    if (!ts->model)
        return;
    for (int i = 0; i < HD_TRAIN_STEP_RECORDINGS; i++)
        drop(ts, &ts->slots[i]);
}
