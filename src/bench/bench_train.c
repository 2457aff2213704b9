/* bench_train.c: steady-state training speed at one batch size (see bench.h for the
 * method): resident batches, warm-up, repeats of back-to-back steps each closed by a
 * synchronising download, median/min/max, the achieved FLOP rate and its fraction of the
 * measured peak. A repeat's time is measured on the device between two fences (CUDA events)
 * where the backend has fence_elapsed_ms (the GPU), else by the monotonic clock (the CPU). */
#include "hd/bench.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "hd/common.h"
#include "hd/optimizer.h"
#include "hd/train_step.h"

#define MAX_REPEATS          64
#define MAX_STEPS_PER_REPEAT 100000

int hd_bench_model_open(hd_model *model, hd_backend *be, const hd_bench_config *config, int max_batch) {
    memset(model, 0, sizeof(*model));
    if (hd_model_create(model, be, config->spec, 1, 28, 28, max_batch) != 0)
        return -1;
    if (hd_model_init_weights(model, config->seed) != 0) {
        hd_model_destroy(model);
        return -1;
    }
    return 0;
}

int hd_bench_steps_per_repeat(const hd_bench_config *config, double seconds_per_step) {
    double steps = config->min_steps;
    if (seconds_per_step > 0.0 && config->min_repeat_s > 0.0)
        steps = fmax(steps, ceil(config->min_repeat_s / seconds_per_step));
    return (int)fmin(steps, MAX_STEPS_PER_REPEAT);
}

/* Batches uploaded once: `count` batches of `batch` images, cycled through by the steps. */
typedef struct {
    float *images;
    int32_t *labels;
    int count;
} resident_batches;

static int resident_upload(hd_backend *be, const hd_bench_data *data, int batch, int count,
                           resident_batches *out) {
    size_t images = (size_t)batch * (size_t)count;
    if (images > (size_t)data->n_images)
        return hd_fail("bench: %d batches of %d need %zu images, only %d made", count, batch, images,
                       data->n_images);
    out->count = count;
    out->images = be->ops->alloc(be, images * (size_t)data->image_size);
    void *labels = be->ops->alloc(be, images); /* int32 labels: same size as floats */
    out->labels = labels;
    if (!out->images || !out->labels)
        return -1;
    be->ops->upload(be, out->images, data->images, images * (size_t)data->image_size * sizeof(float));
    be->ops->upload(be, out->labels, data->labels, images * sizeof(int32_t));
    return 0;
}

static void resident_free(hd_backend *be, resident_batches *r) {
    be->ops->free(be, r->images);
    be->ops->free(be, r->labels);
}

typedef struct {
    hd_model *model;
    hd_train_step *runner; /* replays recorded steps where the backend records (CUDA graphs) */
    const resident_batches *data;
    int batch, image_size;
    uint64_t step;
} train_loop;

/* One training step on the next resident batch: the model's input and labels point at it. */
static void train_step(train_loop *loop) {
    hd_model *model = loop->model;
    int k = (int)(loop->step % (uint64_t)loop->data->count);
    model->input = loop->data->images + (size_t)k * (size_t)loop->batch * (size_t)loop->image_size;
    model->labels = loop->data->labels + (size_t)k * (size_t)loop->batch;
    hd_train_step_run(loop->runner, loop->batch, loop->step);
    loop->step++;
}

/* Runs `steps` steps and waits for them; returns the elapsed seconds: on the device between a
 * fence before the first step and one after the last where the backend measures fences,
 * else on the monotonic clock around the steps and the synchronising download. */
static double timed_steps(train_loop *loop, int steps, float metrics[2]) {
    hd_backend *be = loop->model->be;
    int events = be->ops->fence_elapsed_ms != NULL;
    double start = hd_now_seconds();
    int fence_start = events ? be->ops->fence_record(be) : -1;
    for (int s = 0; s < steps; s++)
        train_step(loop);
    int fence_end = events ? be->ops->fence_record(be) : -1;
    be->ops->download(be, metrics, loop->model->metrics, 2 * sizeof(float));
    double clock_s = hd_now_seconds() - start;
    if (!events)
        return clock_s;
    double device_s = be->ops->fence_elapsed_ms(be, fence_start, fence_end) * 1e-3;
    return isfinite(device_s) && device_s > 0.0 ? device_s : clock_s;
}

static int measure(train_loop *loop, const hd_bench_config *config, hd_bench_train_result *out) {
    hd_backend *be = loop->model->be;
    float metrics[2];
    int warmup = config->warmup_steps > 1 ? config->warmup_steps : 1;
    /* Recording steps: each resident batch is seen once op by op, then recorded; both happen in
     * the warm-up, so the repeats time replays only. */
    int recording = loop->runner->recording_on;
    if (recording && loop->data->count > HD_TRAIN_STEP_RECORDINGS)
        fprintf(
            stderr,
            "bench: %d resident batches, more than the %d recordings a step runner keeps: steps run op by "
            "op; use --resident %d or fewer to time replays\n",
            loop->data->count, HD_TRAIN_STEP_RECORDINGS, HD_TRAIN_STEP_RECORDINGS);
    int recording_warmup = 2 * loop->data->count + 1;
    if (recording && warmup < recording_warmup)
        warmup = recording_warmup;
    double first = timed_steps(loop, 1, metrics); /* first touch of every buffer and plan */
    double per_step = first;
    if (warmup > 1)
        per_step = timed_steps(loop, warmup - 1, metrics) / (warmup - 1);
    if (recording) /* the warm-up's steps included the recordings: size the repeats on replays */
        per_step = timed_steps(loop, loop->data->count, metrics) / loop->data->count;
    int steps = hd_bench_steps_per_repeat(config, per_step);
    int repeats = config->repeats < MAX_REPEATS ? config->repeats : MAX_REPEATS;
    if (repeats < 1)
        return hd_fail("bench: repeats must be at least 1, got %d", config->repeats);

    be->ops->zero(be, loop->model->metrics, 2 * sizeof(float));
    double ms[MAX_REPEATS], images_per_s[MAX_REPEATS], epoch_s[MAX_REPEATS];
    double steps_per_epoch = ceil((double)config->epoch_images / loop->batch);
    for (int r = 0; r < repeats; r++) {
        double elapsed = timed_steps(loop, steps, metrics);
        ms[r] = elapsed * 1e3 / steps;
        images_per_s[r] = (double)loop->batch * steps / elapsed;
        epoch_s[r] = elapsed / steps * steps_per_epoch;
    }
    out->steps = steps;
    hd_bench_stat_from(&out->ms_per_step, ms, repeats);
    hd_bench_stat_from(&out->images_per_s, images_per_s, repeats);
    hd_bench_stat_from(&out->epoch_s, epoch_s, repeats);
    out->mean_loss = metrics[0] / ((double)repeats * steps * loop->batch);
    return 0;
}

int hd_bench_train(hd_backend *be, const hd_bench_config *config, const hd_bench_data *data, int batch,
                   hd_bench_result *result, hd_bench_train_result *out) {
    memset(out, 0, sizeof(*out));
    out->batch = batch;
    hd_model model;
    if (hd_bench_model_open(&model, be, config, batch) != 0)
        return -1;
    float *own_input = model.input;
    int32_t *own_labels = model.labels;
    hd_optimizer opt;
    hd_optimizer_defaults(&opt, HD_OPT_ADAM);
    resident_batches resident = {0};
    int rc = -1;
    if (hd_optimizer_init(&opt, &model) != 0) {
        hd_model_destroy(&model);
        return -1;
    }
    if (resident_upload(be, data, batch, config->resident_batches, &resident) == 0) {
        hd_train_step runner;
        hd_train_step_init(&runner, &model, &opt, config->seed);
        train_loop loop = {&model, &runner, &resident, batch, data->image_size, 0};
        rc = measure(&loop, config, out);
        out->recorded = runner.recordings_made > 0 && runner.recording_on;
        hd_train_step_free(&runner);
        hd_bench_stat_from(&out->op_by_op_ms_per_step, NULL, 0);
        if (rc == 0 && out->recorded) { /* the same steps op by op: what recording saves */
            hd_train_step direct;
            hd_train_step_init(&direct, &model, &opt, config->seed);
            direct.recording_on = 0;
            hd_bench_train_result op_by_op;
            memset(&op_by_op, 0, sizeof op_by_op);
            train_loop again = {&model, &direct, &resident, batch, data->image_size, loop.step};
            rc = measure(&again, config, &op_by_op);
            out->op_by_op_ms_per_step = op_by_op.ms_per_step;
            loop.step = again.step;
            hd_train_step_free(&direct);
        }
        if (rc == 0 && config->layers) {
            hd_bench_layers_input in = {&model,           &opt,           resident.images,
                                        resident.labels,  resident.count, batch,
                                        data->image_size, config->seed,   &loop.step};
            int repeats = config->repeats < MAX_REPEATS ? config->repeats : MAX_REPEATS;
            rc = hd_bench_layers(&in, out->steps, repeats, result, &out->layers);
        }
    }
    model.input = own_input;
    model.labels = own_labels;
    resident_free(be, &resident);
    if (rc == 0) {
        double flops = (double)batch * (result->flops_forward + result->flops_backward);
        out->gflops = flops / (out->ms_per_step.median * 1e-3) * 1e-9;
        out->peak_fraction = out->gflops / result->peak_gflops; /* NAN when no peak */
        out->bytes_per_step = hd_bench_bytes_per_step(&model, batch);
        if (!isfinite(out->mean_loss))
            rc = hd_fail("bench: training loss is %g at batch %d", out->mean_loss, batch);
    }
    hd_optimizer_free(&opt, &model);
    hd_model_destroy(&model);
    return rc;
}
