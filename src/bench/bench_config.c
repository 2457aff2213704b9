/* bench_config.c: the benchmark's settings (full and quick) and its summary statistic
 * (median, min, max over repeats). */
#include "hd/bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hd/model.h"

void hd_bench_config_defaults(hd_bench_config *config) {
    memset(config, 0, sizeof(*config));
    hd_device_options_defaults(&config->dev);
    config->spec = HD_DEFAULT_SPEC;
    static const int batches[] = {64, 128, 256, 512};
    config->n_batch_sizes = (int)(sizeof(batches) / sizeof(batches[0]));
    memcpy(config->batch_sizes, batches, sizeof(batches));
    config->resident_batches = 4;
    config->warmup_steps = 5;
    config->min_steps = 10;
    config->min_repeat_s = 0.5;
    config->repeats = 5;
    config->infer_batch = 1024;
    config->latency_iters = 200;
    config->peak_size = 2048;
    config->epoch_images = HD_BENCH_EPOCH_IMAGES;
    config->seed = 42;
}

void hd_bench_config_quick(hd_bench_config *config) {
    config->resident_batches = 2;
    config->warmup_steps = 2;
    config->min_steps = 3;
    config->min_repeat_s = 0.05;
    config->repeats = 3;
    config->latency_iters = 30;
    config->layers = 1; /* so that a short run exercises the per-layer profile too */
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void hd_bench_stat_from(hd_bench_stat *stat, double *samples, int n) {
    stat->count = n;
    if (n <= 0) {
        stat->median = stat->min = stat->max = NAN;
        return;
    }
    qsort(samples, (size_t)n, sizeof(double), compare_doubles);
    stat->min = samples[0];
    stat->max = samples[n - 1];
    stat->median = n % 2 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
}
