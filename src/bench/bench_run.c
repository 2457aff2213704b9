/* bench_run.c: one whole benchmark: opens the backend (timed), makes the resident data
 * (timed when it is read from disk), measures the FP32 peak, then training at each batch
 * size, inference and latency. Progress lines go to stderr so that stdout stays clean for
 * the JSON report. */
#include "hd/bench.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hd/common.h"

#define TIMING_CLOCK "monotonic clock around each repeat, closed by a synchronising 8-byte download"
#define TIMING_EVENTS                                                                                        \
    "device events (fences) around each repeat's steps; single-image latency on the monotonic clock"

static void result_init(const hd_bench_config *config, hd_bench_result *result) {
    memset(result, 0, sizeof(*result));
    result->backend_init_s = result->data_load_s = NAN;
    result->peak_gflops = result->flops_forward = result->flops_backward = NAN;
    hd_bench_stat_from(&result->peak_gflops_stat, NULL, 0);
    hd_bench_stat_from(&result->infer_images_per_s, NULL, 0);
    hd_bench_stat_from(&result->latency_ms, NULL, 0);
    snprintf(result->spec, sizeof(result->spec), "%s", config->spec);
    snprintf(result->timing, sizeof(result->timing), "%s", TIMING_CLOCK);
    const char *blas = openblas_get_config();
    const char *core = openblas_get_corename();
    snprintf(result->blas, sizeof(result->blas), "%s (core %s)", blas ? blas : "OpenBLAS", core ? core : "?");
}

static int resolve_threads(int threads) {
    if (threads > 0)
        return threads;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 0 ? (int)cores : 1;
}

/* The floor: FLOPs per image from the spec, and the device's measured FP32 rate. */
static int measure_floor(hd_backend *be, const hd_bench_config *config, hd_bench_result *result) {
    hd_model model;
    if (hd_bench_model_open(&model, be, config, 1) != 0)
        return -1;
    result->flops_forward = hd_model_flops_forward(&model);
    result->flops_backward = hd_model_flops_backward(&model);
    result->param_count = model.param_count;
    hd_model_destroy(&model);
    if (be->ops->peak_gflops) { /* the GPU: a large cuBLAS SGEMM timed with events */
        double peak = be->ops->peak_gflops(be);
        double samples[1] = {peak};
        if (isfinite(peak)) {
            result->peak_gflops = peak;
            hd_bench_stat_from(&result->peak_gflops_stat, samples, 1);
        }
        snprintf(result->peak_method, sizeof(result->peak_method), "%s",
                 isfinite(peak) ? "cublasSgemm 8192x8192x8192 (4096 when memory is short), FP32 math, "
                                  "CUDA events, best of 5"
                                : "not measured: the backend's SGEMM measurement failed");
        return 0;
    }
    if (be->is_gpu) {
        snprintf(result->peak_method, sizeof(result->peak_method),
                 "not measured: no SGEMM op in this backend");
        return 0;
    }
    int n = config->peak_size;
    result->peak_gflops =
        hd_bench_cpu_peak_gflops(n, result->threads, config->repeats, &result->peak_gflops_stat);
    snprintf(result->peak_method, sizeof(result->peak_method),
             "cblas_sgemm %dx%dx%d, OpenBLAS, %d thread%s, best of %d", n, n, n, result->threads,
             result->threads == 1 ? "" : "s", config->repeats);
    if (!isfinite(result->peak_gflops))
        return hd_fail("bench: SGEMM peak measurement failed (%s)", hd_last_error());
    return 0;
}

static int largest_batch(const hd_bench_config *config) {
    int largest = config->infer_batch;
    for (int i = 0; i < config->n_batch_sizes; i++) {
        int images = config->batch_sizes[i] * config->resident_batches;
        if (images > largest)
            largest = images;
    }
    return largest > 0 ? largest : 1;
}

static int run_measurements(hd_backend *be, const hd_bench_config *config, const hd_bench_data *data,
                            hd_bench_result *result) {
    if (measure_floor(be, config, result) != 0)
        return -1;
    fprintf(stderr, "bench: %s; peak FP32 %.1f GFLOP/s (%s)\n", result->device, result->peak_gflops,
            result->peak_method);
    for (int i = 0; i < config->n_batch_sizes; i++) {
        hd_bench_train_result *train = &result->train[i];
        if (hd_bench_train(be, config, data, config->batch_sizes[i], result, train) != 0)
            return -1;
        result->n_train = i + 1;
        fprintf(
            stderr,
            "bench: train batch %d: %.3f ms/step [%.3f, %.3f], %.0f images/s, %.2f s/epoch, %.1f%% of peak\n",
            train->batch, train->ms_per_step.median, train->ms_per_step.min, train->ms_per_step.max,
            train->images_per_s.median, train->epoch_s.median, 100.0 * train->peak_fraction);
        if (train->recorded)
            fprintf(stderr,
                    "bench: train batch %d: replayed as a CUDA graph; op by op %.3f ms/step (%.2fx)\n",
                    train->batch, train->op_by_op_ms_per_step.median,
                    train->op_by_op_ms_per_step.median / train->ms_per_step.median);
        if (train->layers.n_layers)
            fprintf(stderr,
                    "bench: train batch %d: layer by layer %.3f ms/step [%.3f, %.3f] (the ops summed)\n",
                    train->batch, train->layers.sum_ms.median, train->layers.sum_ms.min,
                    train->layers.sum_ms.max);
    }
    if (hd_bench_inference(be, config, data, result) != 0)
        return -1;
    fprintf(stderr, "bench: inference batch %d: %.0f images/s\n", result->infer_batch,
            result->infer_images_per_s.median);
    if (hd_bench_latency(be, config, data, result) != 0)
        return -1;
    fprintf(stderr, "bench: latency of one image: %.3f ms [%.3f, %.3f]\n", result->latency_ms.median,
            result->latency_ms.min, result->latency_ms.max);
    return 0;
}

int hd_bench_run(const hd_bench_config *config, hd_bench_result *result) {
    result_init(config, result);
    if (config->n_batch_sizes < 1 || config->n_batch_sizes > HD_BENCH_MAX_BATCHES)
        return hd_fail("bench: need 1..%d batch sizes, got %d", HD_BENCH_MAX_BATCHES, config->n_batch_sizes);
    if (config->resident_batches < 1)
        return hd_fail("bench: need at least one resident batch, got %d", config->resident_batches);

    const hd_device_options *dev = &config->dev;
    hd_cpu_options cpu = {dev->threads};
    hd_gpu_options gpu = {.device = 0,
                          .deterministic = dev->deterministic,
                          .allow_tf32 = dev->allow_tf32,
                          .no_graphs = dev->no_graphs};
    double start = hd_now_seconds();
    hd_backend *be = hd_backend_open(dev->device, dev->no_fallback, &cpu, &gpu);
    if (!be)
        return -1;
    result->backend_init_s = hd_now_seconds() - start;
    result->is_gpu = be->is_gpu;
    result->threads = be->is_gpu ? 0 : resolve_threads(dev->threads);
    snprintf(result->backend, sizeof(result->backend), "%s", be->name);
    snprintf(result->device, sizeof(result->device), "%s", be->ops->describe(be));
    if (be->ops->fence_elapsed_ms)
        snprintf(result->timing, sizeof(result->timing), "%s", TIMING_EVENTS);

    hd_bench_data data;
    int rc = hd_bench_data_make(&data, config, largest_batch(config), &result->data_load_s);
    if (rc == 0) {
        snprintf(result->data, sizeof(result->data), "%s", config->real_data ? "mnist" : "synthetic");
        rc = run_measurements(be, config, &data, result);
        hd_bench_data_free(&data);
    }
    hd_backend_destroy(be);
    return rc;
}
