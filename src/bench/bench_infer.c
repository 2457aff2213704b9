/* bench_infer.c: inference speed: images per second of the eval forward (with the loss
 * and accuracy, no gradient) at a large batch resident on the device (timed between two
 * fences on the device where the backend has fence_elapsed_ms, else on the monotonic clock),
 * and the latency of classifying one image from host memory (upload, forward, download of
 * its logits), which is what the host sees and so always on the monotonic clock. */
#include "hd/bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hd/common.h"

#define MAX_REPEATS   64
#define MAX_LATENCIES 100000

static double timed_eval(hd_model *model, int n, int steps) {
    hd_backend *be = model->be;
    float metrics[2];
    int events = be->ops->fence_elapsed_ms != NULL;
    double start = hd_now_seconds();
    int fence_start = events ? be->ops->fence_record(be) : -1;
    for (int s = 0; s < steps; s++) {
        hd_model_forward(model, n, 0, 0);
        hd_model_loss(model, n, 0);
    }
    int fence_end = events ? be->ops->fence_record(be) : -1;
    be->ops->download(be, metrics, model->metrics, sizeof(metrics));
    double clock_s = hd_now_seconds() - start;
    if (!events)
        return clock_s;
    double device_s = be->ops->fence_elapsed_ms(be, fence_start, fence_end) * 1e-3;
    return isfinite(device_s) && device_s > 0.0 ? device_s : clock_s;
}

int hd_bench_inference(hd_backend *be, const hd_bench_config *config, const hd_bench_data *data,
                       hd_bench_result *result) {
    int n = config->infer_batch;
    result->infer_batch = n;
    hd_bench_stat_from(&result->infer_images_per_s, NULL, 0);
    if (n > data->n_images)
        return hd_fail("bench: inference batch %d is larger than the %d images made", n, data->n_images);
    int repeats = config->repeats < MAX_REPEATS ? config->repeats : MAX_REPEATS;
    if (repeats < 1)
        return hd_fail("bench: repeats must be at least 1, got %d", config->repeats);
    hd_model model;
    if (hd_bench_model_open(&model, be, config, n) != 0)
        return -1;
    be->ops->upload(be, model.input, data->images, (size_t)n * (size_t)data->image_size * sizeof(float));
    be->ops->upload(be, model.labels, data->labels, (size_t)n * sizeof(int32_t));

    int warmup = config->warmup_steps > 1 ? config->warmup_steps : 1;
    double per_step = timed_eval(&model, n, 1);
    if (warmup > 1)
        per_step = timed_eval(&model, n, warmup - 1) / (warmup - 1);
    int steps = hd_bench_steps_per_repeat(config, per_step);
    double images_per_s[MAX_REPEATS];
    for (int r = 0; r < repeats; r++)
        images_per_s[r] = (double)n * steps / timed_eval(&model, n, steps);
    result->infer_steps = steps;
    hd_bench_stat_from(&result->infer_images_per_s, images_per_s, repeats);
    hd_model_destroy(&model);
    return 0;
}

int hd_bench_latency(hd_backend *be, const hd_bench_config *config, const hd_bench_data *data,
                     hd_bench_result *result) {
    hd_bench_stat_from(&result->latency_ms, NULL, 0);
    int iters = config->latency_iters;
    if (iters < 1 || iters > MAX_LATENCIES)
        return hd_fail("bench: latency iterations must be 1..%d, got %d", MAX_LATENCIES, iters);
    double *samples = hd_malloc((size_t)iters * sizeof(double));
    if (!samples)
        return -1;
    hd_model model;
    if (hd_bench_model_open(&model, be, config, 1) != 0) {
        free(samples);
        return -1;
    }
    size_t image_bytes = (size_t)data->image_size * sizeof(float);
    float logits[64];
    size_t logits_bytes = (size_t)model.classes * sizeof(float);
    if (model.classes > 64) {
        hd_model_destroy(&model);
        free(samples);
        return hd_fail("bench: %d classes, latency measures at most 64", model.classes);
    }
    int warmup = config->warmup_steps > 1 ? config->warmup_steps : 1;
    for (int i = -warmup; i < iters; i++) {
        const float *image =
            data->images + (size_t)((i + warmup) % data->n_images) * (size_t)data->image_size;
        double start = hd_now_seconds();
        be->ops->upload(be, model.input, image, image_bytes);
        const float *out = hd_model_forward(&model, 1, 0, 0);
        be->ops->download(be, logits, out, logits_bytes);
        double elapsed = hd_now_seconds() - start;
        if (i >= 0)
            samples[i] = elapsed * 1e3;
    }
    hd_bench_stat_from(&result->latency_ms, samples, iters);
    hd_model_destroy(&model);
    free(samples);
    return 0;
}
