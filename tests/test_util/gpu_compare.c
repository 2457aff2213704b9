/* gpu_compare.c: the GPU-vs-CPU test helpers declared in gpu_compare.h. */
#include "gpu_compare.h"
#include "check.h"
#include "hd/common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gpu_no_device(void) {
    if (hd_gpu_device_count() > 0)
        return 0;
    char why[512];
    hd_gpu_list_devices(why, sizeof why); /* the CUDA runtime's reason */
    const char *require = getenv("HD_TEST_REQUIRE_GPU");
    if (require && atoi(require) > 0) {
        CHECK(0, "HD_TEST_REQUIRE_GPU is set, but no CUDA device answers %s", why);
        return 1;
    }
    char reason[600];
    snprintf(reason, sizeof reason, "no CUDA device answers %s", why);
    test_skip(reason);
    return 1;
}

int gpu_pair_open(gpu_backend_pair *pair, const hd_gpu_options *gpu_options) {
    pair->cpu = pair->gpu = NULL;
    if (gpu_no_device())
        return 0;
    hd_cpu_options cpu_options = {2};
    hd_gpu_options options = {.device = 0};
    if (gpu_options)
        options = *gpu_options;
    if (gpu_under_sanitizer() && !options.deterministic) {
        /* Deterministic plans take cuDNN's heuristic order instead of timing every algorithm,
         * which instrumented would take minutes; the code under test is the same. */
        printf("under compute-sanitizer: GPU plans made with --deterministic\n");
        options.deterministic = 1;
    }
    pair->cpu = hd_cpu_backend_create(&cpu_options);
    CHECK(pair->cpu != NULL, "CPU backend: %s", hd_last_error());
    pair->gpu = hd_gpu_backend_create(&options);
    CHECK(pair->gpu != NULL, "GPU backend: %s", hd_last_error());
    if (!pair->cpu || !pair->gpu) {
        gpu_pair_close(pair);
        return 0;
    }
    printf("GPU: %s\n", pair->gpu->ops->describe(pair->gpu));
    return 1;
}

void gpu_pair_close(gpu_backend_pair *pair) {
    hd_backend_destroy(pair->gpu);
    hd_backend_destroy(pair->cpu);
    pair->cpu = pair->gpu = NULL;
}

static int env_mentions(const char *name, const char *word) {
    const char *value = getenv(name);
    return value && strstr(value, word) != NULL;
}

/* compute-sanitizer's own libraries mapped into this process (once CUDA has started). */
static int maps_show_sanitizer(void) {
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps)
        return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, maps))
        found = strstr(line, "libsanitizer-collection.so") || strstr(line, "libsanitizer-public.so");
    fclose(maps);
    return found;
}

int gpu_under_sanitizer(void) {
    const char *flag = getenv("HD_TEST_SANITIZER");
    if (flag && flag[0])
        return atoi(flag) > 0;
    return getenv("NV_SANITIZER_INJECTION_PORT_BASE") != NULL ||
           env_mentions("CUDA_INJECTION64_PATH", "libsanitizer-collection") || maps_show_sanitizer();
}

float *gpu_device_copy(hd_backend *be, const void *host, size_t count) {
    float *dev = be->ops->alloc(be, count);
    if (dev && host)
        be->ops->upload(be, dev, host, count * sizeof(float));
    return dev;
}

float *gpu_host_copy(hd_backend *be, const void *dev, size_t count) {
    float *host = malloc(count * sizeof(float) + 1);
    if (host && dev)
        be->ops->download(be, host, dev, count * sizeof(float));
    return host;
}

void gpu_poison(hd_backend *be, float *dev, size_t count) {
    float *nan_fill = malloc(count * sizeof(float) + 1);
    CHECK(nan_fill != NULL, "malloc");
    if (!nan_fill || !dev) {
        free(nan_fill);
        return;
    }
    for (size_t i = 0; i < count; i++)
        nan_fill[i] = NAN;
    be->ops->upload(be, dev, nan_fill, count * sizeof(float));
    /* A pageable upload's source may be reused as soon as upload returns; the download
     * only makes the poisoning visible in order with everything else. */
    be->ops->download(be, nan_fill, dev, sizeof(float));
    CHECK(isnan(nan_fill[0]), "poisoning %s memory did not arrive", be->name);
    free(nan_fill);
}

void gpu_expect_untouched(const char *name, hd_backend *be, const float *dev, size_t from, size_t to) {
    if (from >= to)
        return;
    float *host = gpu_host_copy(be, dev, to);
    CHECK(host != NULL, "%s: download failed", name);
    if (!host)
        return;
    size_t written = 0;
    for (size_t i = from; i < to; i++)
        written += !isnan(host[i]);
    CHECK(written == 0, "%s on %s: %zu of the %zu elements past the batch were written", name, be->name,
          written, to - from);
    free(host);
}

double gpu_max_abs(const float *x, size_t count) {
    double m = 0.0;
    for (size_t i = 0; i < count; i++)
        m = fmax(m, fabs((double)x[i]));
    return m;
}

double gpu_norm_rel_error(const float *got, const float *ref, size_t count) {
    double diff = 0.0, norm = 0.0;
    for (size_t i = 0; i < count; i++) {
        double d = (double)got[i] - (double)ref[i];
        diff += d * d;
        norm += (double)ref[i] * ref[i];
    }
    return norm > 0 ? sqrt(diff / norm) : sqrt(diff);
}

int gpu_compare_tensors_at(const char *name, const gpu_backend_pair *pair, const void *gpu_dev,
                           const void *cpu_dev, size_t count, double rtol, double atol_scale,
                           const char *file, int line) {
    float *got = gpu_host_copy(pair->gpu, gpu_dev, count);
    float *ref = gpu_host_copy(pair->cpu, cpu_dev, count);
    int ok = 0;
    test_check(got && ref && gpu_dev && cpu_dev, file, line, "%s: no memory or no tensor to compare", name);
    if (got && ref && gpu_dev && cpu_dev) {
        CHECK(count > 0, "%s: nothing to compare", name);
        ok = check_tensor_at(name, got, ref, count, atol_scale * gpu_max_abs(ref, count), rtol, file, line);
    }
    free(got);
    free(ref);
    return ok;
}
