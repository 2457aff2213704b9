/* gpu_test_pipeline.c: the double-buffered data pipeline (src/train/pipeline.c) on the GPU backend.
 *
 * The pipeline queues the upload of batch s+1 into one device buffer while step s computes
 * on the other, and hands pinned host slots back only after their fences; the GPU backend
 * must order each upload after the compute still reading its buffer, and each op after the
 * upload it reads. Two epochs of a random data set (the last batch smaller) go through the
 * pipeline on both backends with the same model and weights; every step runs the eval
 * forward and the loss on model->input / model->labels and copies the batch it saw into a
 * device-side record, with no download or synchronisation inside the epoch: the only host
 * waits are the pipeline's own fence waits for the work queued two steps back, so the device
 * always has later steps queued and a missing dependency is a real race. Then:
 *   - the GPU saw exactly the images and labels of each epoch's permutation (exact);
 *   - its logits and per-step loss sums match the CPU's (GPU_TOL_RTOL / GPU_TOL_ATOL_SCALE,
 *     GPU_TOL_LOSS_RTOL from tests/test_util/tolerances.h);
 *   - the model's own input buffers are restored at the end of each epoch. */
#include "check.h"
#include "gpu_compare.h"
#include "tolerances.h"
#include "hd/common.h"
#include "hd/model.h"
#include "hd/pipeline.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMAGES  700 /* 10 full batches of 64 and one of 60 per epoch */
#define BATCH   64
#define EPOCHS  2
#define PIXELS  784
#define CLASSES 10

typedef struct {
    float *images;  /* every step's input, in order: EPOCHS * IMAGES * PIXELS */
    float *labels;  /* the labels' bits, copied as floats: EPOCHS * IMAGES */
    float *logits;  /* EPOCHS * IMAGES * CLASSES */
    float *metrics; /* per step: loss sum, correct count */
} step_record;

/* Runs EPOCHS epochs through the pipeline on `be`, recording on the device. Returns steps. */
static int run_epochs(hd_model *model, const hd_float_set *data, uint64_t seed, step_record *rec) {
    hd_backend *be = model->be;
    hd_pipeline *pipeline = NULL;
    hd_pipeline_config config;
    memset(&config, 0, sizeof config);
    config.data = data;
    config.batch = BATCH;
    config.seed = seed;
    config.augment = 0;
    CHECK(hd_pipeline_create(&pipeline, be, &config) == 0, "pipeline on %s: %s", be->name, hd_last_error());
    if (!pipeline)
        return 0;
    float *own_input = model->input;
    int32_t *own_labels = model->labels;
    size_t seen = 0;
    int step = 0;
    for (int epoch = 0; epoch < EPOCHS; epoch++) {
        int steps = hd_pipeline_start_epoch(pipeline, (uint64_t)epoch);
        CHECK(steps == (IMAGES + BATCH - 1) / BATCH, "%d steps per epoch", steps);
        int n;
        while ((n = hd_pipeline_next(pipeline, model)) > 0) {
            const float *logits = hd_model_forward(model, n, 0, 0);
            be->ops->softmax_xent(be, n, CLASSES, logits, model->labels, 0.0f, NULL, (float)n,
                                  rec->metrics + 2 * (size_t)step);
            /* Dropout at rate 0 is a plain copy on both backends: the record of this step. */
            be->ops->dropout_forward(be, (size_t)n * PIXELS, 0.0f, 0, 0, NULL, model->input,
                                     rec->images + seen * PIXELS);
            be->ops->dropout_forward(be, (size_t)n, 0.0f, 0, 0, NULL,
                                     (const float *)(const void *)model->labels, rec->labels + seen);
            be->ops->dropout_forward(be, (size_t)n * CLASSES, 0.0f, 0, 0, NULL, logits,
                                     rec->logits + seen * CLASSES);
            seen += (size_t)n;
            step++;
        }
        CHECK(model->input == own_input && model->labels == own_labels,
              "%s: the model's own buffers were not restored after epoch %d", be->name, epoch);
    }
    CHECK(seen == (size_t)EPOCHS * IMAGES, "%s: %zu images went through, expected %d", be->name, seen,
          EPOCHS * IMAGES);
    hd_pipeline_destroy(pipeline);
    return step;
}

static int record_alloc(hd_backend *be, step_record *rec, int max_steps) {
    rec->images = gpu_device_copy(be, NULL, (size_t)EPOCHS * IMAGES * PIXELS);
    rec->labels = gpu_device_copy(be, NULL, (size_t)EPOCHS * IMAGES);
    rec->logits = gpu_device_copy(be, NULL, (size_t)EPOCHS * IMAGES * CLASSES);
    rec->metrics = gpu_device_copy(be, NULL, 2 * (size_t)max_steps);
    CHECK(rec->images && rec->labels && rec->logits && rec->metrics, "%s: record buffers: %s", be->name,
          hd_last_error());
    return rec->images && rec->labels && rec->logits && rec->metrics;
}

static void record_free(hd_backend *be, step_record *rec) {
    be->ops->free(be, rec->images);
    be->ops->free(be, rec->labels);
    be->ops->free(be, rec->logits);
    be->ops->free(be, rec->metrics);
}

/* The GPU's record against what each epoch's permutation says it must have seen. */
static void check_against_permutation(const gpu_backend_pair *pair, const step_record *rec,
                                      const hd_float_set *data, uint64_t seed) {
    float *images = gpu_host_copy(pair->gpu, rec->images, (size_t)EPOCHS * IMAGES * PIXELS);
    float *labels = gpu_host_copy(pair->gpu, rec->labels, (size_t)EPOCHS * IMAGES);
    int *order = malloc(sizeof(int) * IMAGES);
    CHECK(images && labels && order, "malloc");
    if (images && labels && order) {
        size_t wrong_images = 0, wrong_labels = 0;
        for (int epoch = 0; epoch < EPOCHS; epoch++) {
            hd_epoch_permutation(order, IMAGES, seed, (uint64_t)epoch);
            for (int i = 0; i < IMAGES; i++) {
                size_t at = (size_t)epoch * IMAGES + (size_t)i;
                wrong_images += memcmp(images + at * PIXELS, data->images + (size_t)order[i] * PIXELS,
                                       PIXELS * sizeof(float)) != 0;
                int32_t label;
                memcpy(&label, labels + at, sizeof label);
                wrong_labels += label != data->labels[order[i]];
            }
        }
        printf("GPU pipeline: %zu of %d images and %zu labels differ from the permutation\n", wrong_images,
               EPOCHS * IMAGES, wrong_labels);
        CHECK(wrong_images == 0 && wrong_labels == 0,
              "the GPU computed on %zu wrong images and %zu wrong labels (an upload raced with compute)",
              wrong_images, wrong_labels);
    }
    free(images);
    free(labels);
    free(order);
}

int main(void) {
    uint64_t rng = test_fresh_seed();
    gpu_backend_pair pair;
    if (!gpu_pair_open(&pair, NULL))
        return test_finish();

    hd_float_set data = {.count = IMAGES,
                         .rows = 28,
                         .cols = 28,
                         .images = malloc(sizeof(float) * IMAGES * PIXELS),
                         .labels = malloc(sizeof(int32_t) * IMAGES)};
    hd_model models[2];
    step_record rec[2];
    memset(models, 0, sizeof models);
    memset(rec, 0, sizeof rec);
    hd_backend *be[2] = {pair.cpu, pair.gpu};
    uint64_t init_seed = test_rand_u64(&rng), seed = test_rand_u64(&rng);
    int steps[2] = {0, 0}, ok = data.images && data.labels;
    CHECK(ok, "malloc");
    if (ok) {
        test_fill_uniform(data.images, (size_t)IMAGES * PIXELS, 0.0f, 1.0f, &rng);
        for (int i = 0; i < IMAGES; i++)
            data.labels[i] = (int32_t)(test_rand_u64(&rng) % CLASSES);
    }
    const int max_steps = EPOCHS * ((IMAGES + BATCH - 1) / BATCH);
    for (int k = 0; ok && k < 2; k++) {
        ok = hd_model_create(&models[k], be[k], HD_DEFAULT_SPEC, 1, 28, 28, BATCH) == 0 &&
             hd_model_init_weights(&models[k], init_seed) == 0;
        CHECK(ok, "model on %s: %s", be[k]->name, hd_last_error());
        ok = ok && record_alloc(be[k], &rec[k], max_steps);
        if (ok)
            steps[k] = run_epochs(&models[k], &data, seed, &rec[k]);
    }
    if (ok) {
        CHECK(steps[0] == max_steps && steps[1] == max_steps, "steps: cpu %d gpu %d, expected %d", steps[0],
              steps[1], max_steps);
        check_against_permutation(&pair, &rec[1], &data, seed);
        gpu_compare_tensors("pipeline logits", &pair, rec[1].logits, rec[0].logits,
                            (size_t)EPOCHS * IMAGES * CLASSES, GPU_TOL_RTOL, GPU_TOL_ATOL_SCALE);
        float *m_gpu = gpu_host_copy(pair.gpu, rec[1].metrics, 2 * (size_t)max_steps);
        float *m_cpu = gpu_host_copy(pair.cpu, rec[0].metrics, 2 * (size_t)max_steps);
        CHECK(m_gpu && m_cpu, "malloc");
        if (m_gpu && m_cpu) {
            int bad = 0;
            for (int s = 0; s < max_steps; s++)
                bad += !(fabs((double)m_gpu[2 * s] - m_cpu[2 * s]) <=
                             GPU_TOL_LOSS_RTOL * fabs((double)m_cpu[2 * s]) &&
                         m_cpu[2 * s] > 0.0f);
            CHECK(bad == 0, "per-step loss sums differ (or are zero) at %d of %d steps", bad, max_steps);
        }
        free(m_gpu);
        free(m_cpu);
    }
    for (int k = 0; k < 2; k++) {
        if (rec[k].images || rec[k].labels || rec[k].logits || rec[k].metrics)
            record_free(be[k], &rec[k]);
        if (models[k].be)
            hd_model_destroy(&models[k]);
    }
    free(data.images);
    free(data.labels);
    gpu_pair_close(&pair);
    return test_finish();
}
