/* test_pipeline.c: the data pipeline (src/train/pipeline.c) beside the CPU backend, with the
 * batches made in line (as the trainer makes them there) and by the producer thread (as
 * beside a GPU, where gpu_test_pipeline runs it; here it also runs under ASan and UBSan).
 *
 * The data set is random images, so an exact comparison identifies each one. Every batch the
 * model is pointed at must hold the images and labels of the epoch's permutation
 * (hd_epoch_permutation) in order, augmented by hd_augment_batch when augmentation is on
 * (the pipeline splits a batch across threads without changing a bit), with the last batch
 * smaller; the model's own input buffers come back at the end of each epoch. Then epochs
 * left early (after 0, 1 or 2 batches, as a diverged run leaves one) and the next one started
 * at once, while the producer may still be filling a slot: the next epoch must be its own
 * (before the fix in hd_pipeline_start_epoch, the late slot deadlocked the next epoch). */
#include "check.h"
#include "hd/augment.h"
#include "hd/backend.h"
#include "hd/common.h"
#include "hd/model.h"
#include "hd/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ROWS   12
#define COLS   12
#define PIXELS (ROWS * COLS)
#define COUNT  1037 /* 16 batches of 64 and one of 13 */
#define BATCH  64

typedef struct {
    float own_input[1]; /* stand-ins for the model's own buffers */
    int32_t own_labels[1];
    float *gathered, *expected; /* one batch */
    uint64_t positions[BATCH];
    int order[COUNT];
} scratch;

/* Consumes one epoch (or its first `stop_after` batches; -1: all) and checks every batch. */
static void check_epoch(hd_pipeline *p, hd_model *model, const hd_pipeline_config *cfg, scratch *s,
                        uint64_t epoch, int stop_after, const char *what) {
    const hd_float_set *data = cfg->data;
    int steps = hd_pipeline_start_epoch(p, epoch);
    CHECK(steps == (COUNT + BATCH - 1) / BATCH, "%s: %d steps in an epoch", what, steps);
    hd_epoch_permutation(s->order, COUNT, cfg->seed, epoch);
    int step = 0, seen = 0, wrong_sizes = 0, wrong_images = 0, wrong_labels = 0;
    for (; stop_after < 0 || step < stop_after; step++) {
        int n = hd_pipeline_next(p, model);
        if (n == 0)
            break;
        int want = COUNT - step * BATCH < BATCH ? COUNT - step * BATCH : BATCH;
        if (n != want) {
            wrong_sizes++;
            n = n < want ? n : want;
        }
        for (int i = 0; i < n; i++) {
            int index = s->order[step * BATCH + i];
            s->positions[i] = (uint64_t)index;
            memcpy(s->gathered + (size_t)i * PIXELS, data->images + (size_t)index * PIXELS,
                   PIXELS * sizeof(float));
            wrong_labels += model->labels[i] != data->labels[index];
        }
        if (cfg->augment)
            hd_augment_batch(&cfg->ranges, cfg->seed, epoch, s->positions, n, s->gathered, s->expected, ROWS,
                             COLS);
        else
            memcpy(s->expected, s->gathered, (size_t)n * PIXELS * sizeof(float));
        wrong_images += memcmp(model->input, s->expected, (size_t)n * PIXELS * sizeof(float)) != 0;
        seen += n;
    }
    CHECK(wrong_sizes == 0, "%s, epoch %llu: %d batches of the wrong size", what, (unsigned long long)epoch,
          wrong_sizes);
    CHECK(wrong_images == 0, "%s, epoch %llu: %d batches with other images than the permutation's", what,
          (unsigned long long)epoch, wrong_images);
    CHECK(wrong_labels == 0, "%s, epoch %llu: %d labels not the permutation's", what,
          (unsigned long long)epoch, wrong_labels);
    if (stop_after < 0) {
        CHECK(step == steps && seen == COUNT, "%s, epoch %llu: %d batches, %d images", what,
              (unsigned long long)epoch, step, seen);
        CHECK(hd_pipeline_next(p, model) == 0, "%s: a batch after the end of the epoch", what);
    } else {
        hd_pipeline_restore(p, model);
    }
    CHECK(model->input == s->own_input && model->labels == s->own_labels,
          "%s, epoch %llu: the model's own input buffers were not restored", what, (unsigned long long)epoch);
}

static void run_pipeline(hd_backend *be, const hd_float_set *data, hd_producer producer, int augment,
                         uint64_t seed, scratch *s) {
    hd_pipeline_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.data = data;
    cfg.batch = BATCH;
    cfg.seed = seed;
    cfg.augment = augment;
    cfg.producer = producer;
    hd_augment_default_ranges(&cfg.ranges);
    char what[96];
    snprintf(what, sizeof what, "%s producer, augmentation %s",
             producer == HD_PRODUCER_THREAD ? "threaded" : "in-line", augment ? "on" : "off");
    hd_pipeline *p = NULL;
    CHECK(hd_pipeline_create(&p, be, &cfg) == 0, "%s: %s", what, hd_last_error());
    if (!p)
        return;
    hd_model model;
    memset(&model, 0, sizeof model);
    model.input = s->own_input;
    model.labels = s->own_labels;
    check_epoch(p, &model, &cfg, s, 0, -1, what);
    check_epoch(p, &model, &cfg, s, 1, -1, what);
    /* Epochs left early, each followed at once by the start of the next. */
    for (uint64_t epoch = 2; epoch < 14; epoch++)
        check_epoch(p, &model, &cfg, s, epoch, (int)(epoch % 3), what);
    check_epoch(p, &model, &cfg, s, 14, -1, what);
    hd_pipeline_destroy(p);
}

int main(void) {
    alarm(120); /* a pipeline that deadlocks (a slot never made ready) fails here, not at ctest's timeout */
    uint64_t rng = test_fresh_seed();
    hd_cpu_options options = {2};
    hd_backend *be = hd_cpu_backend_create(&options);
    CHECK(be != NULL, "CPU backend: %s", hd_last_error());
    float *images = malloc((size_t)COUNT * PIXELS * sizeof(float));
    int32_t *labels = malloc(COUNT * sizeof(int32_t));
    scratch *s = calloc(1, sizeof *s);
    if (s) {
        s->gathered = malloc((size_t)BATCH * PIXELS * sizeof(float));
        s->expected = malloc((size_t)BATCH * PIXELS * sizeof(float));
    }
    CHECK(images && labels && s && s->gathered && s->expected, "malloc");
    if (be && images && labels && s && s->gathered && s->expected) {
        test_fill_uniform(images, (size_t)COUNT * PIXELS, 0.0f, 1.0f, &rng);
        for (int i = 0; i < COUNT; i++)
            labels[i] = (int32_t)(test_rand_u64(&rng) % 10);
        const hd_float_set data = {
            .count = COUNT, .rows = ROWS, .cols = COLS, .images = images, .labels = labels};
        uint64_t seed = test_rand_u64(&rng);
        for (int augment = 0; augment < 2; augment++) {
            run_pipeline(be, &data, HD_PRODUCER_IN_LINE, augment, seed, s);
            run_pipeline(be, &data, HD_PRODUCER_THREAD, augment, seed, s);
        }
    }
    if (s) {
        free(s->gathered);
        free(s->expected);
    }
    free(s);
    free(images);
    free(labels);
    hd_backend_destroy(be);
    return test_finish();
}
