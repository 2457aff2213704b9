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

static hd_step_recording *find(hd_train_step *ts, int n) {
    const hd_model *model = ts->model;
    for (int i = 0; i < HD_TRAIN_STEP_RECORDINGS; i++) {
        hd_step_recording *slot = &ts->slots[i];
        if (slot->recording && slot->input == model->input && slot->labels == model->labels && slot->n == n)
            return slot;
    }
    return NULL;
}

/* Records the step's ops into a free slot (or the least recently used one). NULL when the
 * backend could not record them: recording is then off for good, and nothing ran. */
static hd_step_recording *record(hd_train_step *ts, int n) {
    hd_backend *be = ts->model->be;
    hd_step_recording *slot = &ts->slots[0];
    for (int i = 0; i < HD_TRAIN_STEP_RECORDINGS; i++) {
        if (!ts->slots[i].recording) {
            slot = &ts->slots[i];
            break;
        }
        if (ts->slots[i].last_used < slot->last_used)
            slot = &ts->slots[i];
    }
    drop(ts, slot);
    void *recording = NULL;
    if (be->ops->record_begin(be) == 0) {
        queue_ops(ts, n);
        recording = be->ops->record_end(be);
    }
    if (!recording) {
        fprintf(stderr, "hd-gpu: notice: %s; training steps run op by op\n", hd_last_error());
        ts->recording_on = 0;
        return NULL;
    }
    slot->input = ts->model->input;
    slot->labels = ts->model->labels;
    slot->n = n;
    slot->recording = recording;
    ts->recordings_made++;
    return slot;
}

void hd_train_step_run(hd_train_step *ts, int n, uint64_t step) {
    hd_model *model = ts->model;
    hd_backend *be = model->be;
    hd_model_set_step(model, step, hd_optimizer_next_step_size(ts->opt));
    ts->steps_run++;
    if (!ts->recording_on) {
        queue_ops(ts, n);
        return;
    }
    hd_step_recording *slot = find(ts, n);
    if (!slot)
        slot = record(ts, n);
    if (slot && be->ops->replay(be, slot->recording) != 0) { /* stale: record it again, once */
        drop(ts, slot);
        slot = record(ts, n);
        if (slot && be->ops->replay(be, slot->recording) != 0) {
            fprintf(stderr, "hd-gpu: notice: %s; training steps run op by op\n", hd_last_error());
            drop(ts, slot);
            ts->recording_on = 0;
            slot = NULL;
        }
    }
    if (!slot) {
        queue_ops(ts, n);
        return;
    }
    slot->last_used = ts->steps_run;
    ts->replays++;
}

void hd_train_step_free(hd_train_step *ts) {
    if (!ts->model)
        return;
    for (int i = 0; i < HD_TRAIN_STEP_RECORDINGS; i++)
        drop(ts, &ts->slots[i]);
}
