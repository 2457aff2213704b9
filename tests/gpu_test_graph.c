/* gpu_test_graph.c: training steps replayed from CUDA graphs against the same steps run op by
 * op, both on the GPU.
 *
 * Two GPU backends, both deterministic (cuDNN's heuristic order, each candidate tried: the same
 * algorithms on both): one records and replays steps (hd_train_step), the other is opened with
 * no_graphs and has no record ops. Same weights, same fresh random batches, fed as the data
 * pipeline feeds them: two device batches used in turn, the upload of batch s+1 (from pinned
 * memory) queued before step s runs on the other one, and a smaller batch every 7th step.
 * Dropout is on and Adam's step size changes every step, both read from the model's step
 * scalars. So a replay that read a recorded step's scalars instead of this step's, ran before
 * its own batch had arrived, or missed an op ends with other weights.
 *
 * Tolerance: exact (GPU_TOL_EXACT) for the parameters, Adam's m and v, and the loss and
 * correct-count sums. A graph changes how the work is launched, not what it computes: the same
 * kernels with the same arguments on the same data, in the same order. */
#include "check.h"
#include "gpu_compare.h"
#include "tolerances.h"
#include "hd/common.h"
#include "hd/model.h"
#include "hd/optimizer.h"
#include "hd/train_step.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH  48
#define STEPS  40
#define PIXELS 784

typedef struct {
    hd_backend *be;
    hd_model model;
    hd_optimizer opt;
    hd_train_step runner;
    float *own_input; /* the model's own buffers, pointed back at before it is destroyed */
    int32_t *own_labels;
    float *host_images[2], *device_images[2]; /* host: pinned (host_alloc) */
    int32_t *host_labels[2], *device_labels[2];
    int fence[2];
} trainer;

static int trainer_open(trainer *t, int no_graphs, uint64_t init_seed, uint64_t dropout_seed) {
    memset(t, 0, sizeof *t);
    hd_gpu_options options = {.device = 0, .deterministic = 1, .verbose = 1, .no_graphs = no_graphs};
    t->be = hd_gpu_backend_create(&options);
    CHECK(t->be != NULL, "GPU backend (no_graphs %d): %s", no_graphs, hd_last_error());
    if (!t->be)
        return 0;
    int ok = hd_model_create(&t->model, t->be, HD_DEFAULT_SPEC, 1, 28, 28, BATCH) == 0;
    CHECK(ok, "model: %s", hd_last_error());
    if (!ok)
        return 0;
    t->own_input = t->model.input;
    t->own_labels = t->model.labels;
    hd_model_init_weights(&t->model, init_seed);
    hd_optimizer_defaults(&t->opt, HD_OPT_ADAM);
    t->opt.ema_decay = 0.99; /* the average's weight changes every step: a replay must read this step's */
    CHECK(hd_optimizer_init(&t->opt, &t->model) == 0, "optimizer: %s", hd_last_error());
    hd_train_step_init(&t->runner, &t->model, &t->opt, dropout_seed);
    for (int b = 0; b < 2; b++) {
        t->host_images[b] = t->be->ops->host_alloc(t->be, (size_t)BATCH * PIXELS * sizeof(float));
        t->host_labels[b] = t->be->ops->host_alloc(t->be, (size_t)BATCH * sizeof(int32_t));
        t->device_images[b] = t->be->ops->alloc(t->be, (size_t)BATCH * PIXELS);
        t->device_labels[b] = hd_backend_alloc_int32(t->be, BATCH);
        t->fence[b] = -1;
        ok = ok && t->host_images[b] && t->host_labels[b] && t->device_images[b] && t->device_labels[b];
    }
    CHECK(ok, "batch buffers: %s", hd_last_error());
    return ok;
}

static void trainer_close(trainer *t) {
    if (!t->be)
        return;
    hd_train_step_free(&t->runner);
    if (t->model.be) {
        hd_optimizer_free(&t->opt, &t->model);
        for (int b = 0; b < 2; b++) {
            t->be->ops->free(t->be, t->device_images[b]);
            t->be->ops->free(t->be, t->device_labels[b]);
        }
        t->model.input = t->own_input;
        t->model.labels = t->own_labels;
        hd_model_destroy(&t->model);
    }
    for (int b = 0; b < 2; b++) {
        t->be->ops->host_free(t->be, t->host_images[b]);
        t->be->ops->host_free(t->be, t->host_labels[b]);
    }
    hd_backend_destroy(t->be);
}

/* Queues the upload of a batch into device buffer b, from pinned buffer b once its last upload is done. */
static void upload(trainer *t, int b, const float *images, const int32_t *labels, int n) {
    t->be->ops->fence_wait(t->be, t->fence[b]);
    memcpy(t->host_images[b], images, (size_t)n * PIXELS * sizeof(float));
    memcpy(t->host_labels[b], labels, (size_t)n * sizeof(int32_t));
    t->be->ops->upload(t->be, t->device_images[b], t->host_images[b], (size_t)n * PIXELS * sizeof(float));
    t->be->ops->upload(t->be, t->device_labels[b], t->host_labels[b], (size_t)n * sizeof(int32_t));
    t->fence[b] = t->be->ops->fence_record(t->be);
}

static int batch_size(int step) {
    return step % 7 == 6 ? BATCH - 9 : BATCH;
}

static void fill_batch(float *images, int32_t *labels, uint64_t *rng) {
    test_fill_uniform(images, (size_t)BATCH * PIXELS, 0.0f, 1.0f, rng);
    for (int i = 0; i < BATCH; i++)
        labels[i] = (int32_t)(test_rand_u64(rng) % 10);
}

int main(void) {
    uint64_t rng = test_fresh_seed();
    if (gpu_no_device())
        return test_finish();
    const char *sync_env = getenv("HD_GPU_SYNC");
    int syncing = sync_env && atoi(sync_env) > 0;
    uint64_t init_seed = test_rand_u64(&rng), dropout_seed = test_rand_u64(&rng);
    trainer replayed, direct;
    int ok = trainer_open(&replayed, 0, init_seed, dropout_seed);
    ok = trainer_open(&direct, 1, init_seed, dropout_seed) && ok;
    float *images[2] = {malloc((size_t)BATCH * PIXELS * sizeof(float)),
                        malloc((size_t)BATCH * PIXELS * sizeof(float))};
    int32_t *labels[2] = {malloc(BATCH * sizeof(int32_t)), malloc(BATCH * sizeof(int32_t))};
    ok = ok && images[0] && images[1] && labels[0] && labels[1];
    CHECK(ok, "setup");
    if (ok) {
        printf("GPU: %s\n", replayed.be->ops->describe(replayed.be));
        CHECK(direct.be->ops->record_begin == NULL, "a backend opened with no_graphs has record ops");
        CHECK(syncing || replayed.be->ops->record_begin != NULL, "the GPU backend has no record ops");
        trainer *both[2] = {&replayed, &direct};
        fill_batch(images[0], labels[0], &rng);
        for (int k = 0; k < 2; k++) {
            upload(both[k], 0, images[0], labels[0], batch_size(0));
            both[k]->be->ops->zero(both[k]->be, both[k]->model.metrics, 2 * sizeof(float));
        }
        for (int step = 0; step < STEPS; step++) {
            int b = step % 2, next = (step + 1) % 2;
            if (step + 1 < STEPS)
                fill_batch(images[next], labels[next], &rng);
            for (int k = 0; k < 2; k++) {
                trainer *t = both[k];
                if (step + 1 <
                    STEPS) /* the next batch's upload, queued before this step, as the pipeline does */
                    upload(t, next, images[next], labels[next], batch_size(step + 1));
                t->model.input = t->device_images[b];
                t->model.labels = t->device_labels[b];
                hd_train_step_run(&t->runner, batch_size(step), (uint64_t)step);
            }
        }
        printf("replayed %llu of %d steps from %d recordings; the other backend replayed %llu\n",
               (unsigned long long)replayed.runner.replays, STEPS, replayed.runner.recordings_made,
               (unsigned long long)direct.runner.replays);
        if (syncing) {
            printf("HD_GPU_SYNC is set: the backend records nothing, so both ran op by op\n");
        } else {
            /* (buffer 0 or 1) x (full or smaller batch): the first step on each runs op by op */
            CHECK(replayed.runner.replays == STEPS - 4 && replayed.runner.recordings_made == 4,
                  "replayed %llu of %d steps from %d recordings (expected %d, from 4)",
                  (unsigned long long)replayed.runner.replays, STEPS, replayed.runner.recordings_made,
                  STEPS - 4);
        }
        CHECK(direct.runner.replays == 0, "the no_graphs backend replayed %llu steps",
              (unsigned long long)direct.runner.replays);

        gpu_backend_pair pair = {direct.be, replayed.be}; /* "cpu" here: the op-by-op reference */
        size_t count = replayed.model.param_count;
        gpu_compare_tensors("parameters", &pair, replayed.model.params, direct.model.params, count,
                            GPU_TOL_EXACT, GPU_TOL_EXACT);
        gpu_compare_tensors("adam m", &pair, replayed.opt.m, direct.opt.m, count, GPU_TOL_EXACT,
                            GPU_TOL_EXACT);
        gpu_compare_tensors("adam v", &pair, replayed.opt.v, direct.opt.v, count, GPU_TOL_EXACT,
                            GPU_TOL_EXACT);
        gpu_compare_tensors("weight average", &pair, replayed.opt.average, direct.opt.average, count,
                            GPU_TOL_EXACT, GPU_TOL_EXACT);
        float metrics[2][2];
        for (int k = 0; k < 2; k++)
            both[k]->be->ops->download(both[k]->be, metrics[k], both[k]->model.metrics, sizeof metrics[k]);
        printf("loss sum replayed %.9g op by op %.9g; correct %.0f and %.0f\n", (double)metrics[0][0],
               (double)metrics[1][0], (double)metrics[0][1], (double)metrics[1][1]);
        CHECK(metrics[0][0] == metrics[1][0] && metrics[0][1] == metrics[1][1],
              "the loss and correct sums differ: %.9g/%.0f vs %.9g/%.0f", (double)metrics[0][0],
              (double)metrics[0][1], (double)metrics[1][0], (double)metrics[1][1]);
        CHECK(isfinite(metrics[1][0]) && metrics[1][0] > 0.0f, "loss sum %g", (double)metrics[1][0]);

        /* The weights moved: the steps ran at all (a replay that did nothing would differ
         * anyway, but a comparison of two untouched models would pass). */
        hd_model fresh;
        if (hd_model_create(&fresh, direct.be, HD_DEFAULT_SPEC, 1, 28, 28, 1) == 0) {
            hd_model_init_weights(&fresh, init_seed);
            float *a = gpu_host_copy(direct.be, fresh.params, count);
            float *c = gpu_host_copy(direct.be, direct.model.params, count);
            double moved = 0.0;
            for (size_t i = 0; a && c && i < count; i++)
                moved = fmax(moved, fabs((double)a[i] - c[i]));
            printf("largest weight change over %d steps: %.3g\n", STEPS, moved);
            CHECK(moved > 1e-4, "the weights barely moved (%.3g): the steps did not run", moved);
            free(a);
            free(c);
            hd_model_destroy(&fresh);
        }
    }
    for (int i = 0; i < 2; i++) {
        free(images[i]);
        free(labels[i]);
    }
    trainer_close(&replayed);
    trainer_close(&direct);
    return test_finish();
}
