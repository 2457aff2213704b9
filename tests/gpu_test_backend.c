/* gpu_test_backend.c: the GPU backend's devices, memory, transfers, fences and timing.
 *
 * Without a GPU (or in a build without CUDA) it checks that the device count is 0, that the
 * device list and the creation failure say why, that the CPU backend leaves the optional
 * timing ops NULL, and then skips (77). With one it checks: the description names the
 * device, cuDNN and cuBLAS; alloc returns zeroed memory; a pinned upload may be changed after
 * a fence without changing what arrived; an upload waits for the ops queued before it (it
 * must not overwrite data they still read); a pageable source may change once upload returns;
 * an op waits for an upload into any part of what
 * it reads, also when the two ranges only partly overlap and when more uploads are pending
 * than the backend tracks at once; zero; many fences (more than the event ring holds);
 * fence_elapsed_ms (positive, no longer than the host saw, NaN for a recycled token);
 * peak_gflops (a plausible FP32 rate, measured once); an out-of-range device index lists the
 * devices; an impossible allocation fails with a clear message and does not poison later
 * calls. Under compute-sanitizer (gpu_under_sanitizer) the last and the SGEMM are left out. */
#include "check.h"
#include "gpu_compare.h"
#include "hd/backend.h"
#include "hd/common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check_without_device(void) {
    char list[1024];
    hd_gpu_list_devices(list, sizeof list);
    CHECK(list[0] != '\0', "hd_gpu_list_devices says nothing when no device answers");
    hd_clear_error();
    hd_gpu_options opts = {.device = 0};
    hd_backend *be = hd_gpu_backend_create(&opts);
    CHECK(be == NULL, "hd_gpu_backend_create succeeded without a device");
    CHECK(hd_last_error()[0] != '\0', "no message when the GPU backend cannot be created");
    printf("without a device: list \"%s\"; create fails with \"%s\"\n", list, hd_last_error());
    hd_backend_destroy(be);
}

static void check_cpu_timing_ops(void) {
    hd_cpu_options opts = {1};
    hd_backend *cpu = hd_cpu_backend_create(&opts);
    CHECK(cpu != NULL, "CPU backend: %s", hd_last_error());
    if (!cpu)
        return;
    CHECK(cpu->ops->fence_elapsed_ms == NULL && cpu->ops->peak_gflops == NULL,
          "the CPU backend should leave the optional timing ops NULL");
    hd_backend_destroy(cpu);
}

static size_t count_nonzero(const float *x, size_t n) {
    size_t nonzero = 0;
    for (size_t i = 0; i < n; i++)
        nonzero += x[i] != 0.0f;
    return nonzero;
}

static void check_transfers(hd_backend *be, uint64_t *rng) {
    const size_t count = 100003; /* not a multiple of anything */
    float *dev = be->ops->alloc(be, count);
    float *other = be->ops->alloc(be, count);
    float *host = be->ops->host_alloc(be, count * sizeof(float));
    float *back = malloc(count * sizeof(float));
    float *expect = malloc(count * sizeof(float));
    float *second = malloc(count * sizeof(float));
    CHECK(dev && other && host && back && expect && second, "allocation failed: %s", hd_last_error());
    if (!dev || !other || !host || !back || !expect || !second)
        goto done;

    for (size_t i = 0; i < count; i++)
        back[i] = 1.0f;
    be->ops->download(be, back, dev, count * sizeof(float));
    CHECK(count_nonzero(back, count) == 0, "alloc: %zu of %zu elements not zero", count_nonzero(back, count),
          count);

    /* Pinned upload, fence, then change the host buffer: the device keeps what was sent. */
    test_fill_uniform(host, count, -1.0f, 1.0f, rng);
    memcpy(expect, host, count * sizeof(float));
    be->ops->upload(be, dev, host, count * sizeof(float));
    int fence = be->ops->fence_record(be);
    be->ops->fence_wait(be, fence);
    for (size_t i = 0; i < count; i++)
        host[i] = -7.0f;
    be->ops->download(be, back, dev, count * sizeof(float));
    CHECK(memcmp(back, expect, count * sizeof(float)) == 0, "upload/download round trip changed the data");

    /* An op reads dev (dropout at rate 0 copies it to other), then an upload overwrites dev:
     * the op must still see the first contents. */
    test_fill_uniform(host, count, 2.0f, 3.0f, rng);
    memcpy(expect, host, count * sizeof(float));
    be->ops->upload(be, dev, host, count * sizeof(float));
    be->ops->dropout_forward(be, count, 0.0f, 1, 0, NULL, dev, other);
    test_fill_uniform(second, count, -3.0f, -2.0f, rng);
    be->ops->upload(be, dev, second, count * sizeof(float)); /* pageable source */
    be->ops->download(be, back, other, count * sizeof(float));
    CHECK(memcmp(back, expect, count * sizeof(float)) == 0, "an upload overtook an op queued before it");
    be->ops->download(be, back, dev, count * sizeof(float));
    CHECK(memcmp(back, second, count * sizeof(float)) == 0, "the second upload did not arrive");

    be->ops->zero(be, dev, count * sizeof(float));
    be->ops->download(be, back, dev, count * sizeof(float));
    CHECK(count_nonzero(back, count) == 0, "zero left %zu elements", count_nonzero(back, count));

    /* Partial overlap: an upload into [40000, 41000), then an op that reads [40900, 42000)
     * only: its first 100 elements must be the uploaded ones. */
    test_fill_uniform(host, 1000, 5.0f, 6.0f, rng);
    be->ops->upload(be, dev + 40000, host, 1000 * sizeof(float));
    be->ops->dropout_forward(be, 1100, 0.0f, 1, 0, NULL, dev + 40900, other);
    be->ops->download(be, back, other, 1100 * sizeof(float));
    CHECK(memcmp(back, host + 900, 100 * sizeof(float)) == 0 && count_nonzero(back + 100, 1000) == 0,
          "an op reading part of an upload's range did not wait for it");

    /* More uploads pending than the backend tracks at once (20 slices from one pinned
     * buffer), and an op that reads them all. */
    const size_t slice = 5000;
    test_fill_uniform(host, 20 * slice, -9.0f, 9.0f, rng);
    be->ops->zero(be, dev, count * sizeof(float));
    for (int s = 0; s < 20; s++)
        be->ops->upload(be, dev + (size_t)s * slice, host + (size_t)s * slice, slice * sizeof(float));
    be->ops->dropout_forward(be, 20 * slice, 0.0f, 1, 0, NULL, dev, other);
    be->ops->download(be, back, other, 20 * slice * sizeof(float));
    CHECK(memcmp(back, host, 20 * slice * sizeof(float)) == 0, "20 pending uploads: an op missed one");
    fence = be->ops->fence_record(be);
    be->ops->fence_wait(be, fence); /* before the pinned buffer is reused or freed */

    /* More fences than the ring has events; the oldest tokens must still be waitable. */
    int first = be->ops->fence_record(be), last = first;
    for (int i = 0; i < 300; i++)
        last = be->ops->fence_record(be);
    be->ops->fence_wait(be, first);
    be->ops->fence_wait(be, last);
    CHECK(last != first, "fence tokens do not change");
done:
    be->ops->free(be, dev);
    be->ops->free(be, other);
    be->ops->host_free(be, host);
    free(back);
    free(expect);
    free(second);
}

static void check_timing(hd_backend *be) {
    CHECK(be->ops->fence_elapsed_ms != NULL && be->ops->peak_gflops != NULL,
          "the GPU backend lacks fence_elapsed_ms or peak_gflops");
    if (!be->ops->fence_elapsed_ms || !be->ops->peak_gflops)
        return;
    const size_t count = (size_t)1 << 20;
    float *a = be->ops->alloc(be, count), *b = be->ops->alloc(be, count);
    hd_step_scalars *step = hd_backend_alloc_step_scalars(be);
    CHECK(a && b && step, "alloc: %s", hd_last_error());
    if (a && b && step) {
        double host_start = hd_now_seconds();
        int fa = be->ops->fence_record(be);
        for (int i = 0; i < 20; i++) { /* 20 passes of Philox over 1M elements */
            const hd_step_scalars value = {(uint64_t)i, 0.0f, 0.0f};
            be->ops->set_step_scalars(be, step, &value);
            be->ops->dropout_forward(be, count, 0.5f, 7, 0, step, a, b);
        }
        int fb = be->ops->fence_record(be);
        float ms = be->ops->fence_elapsed_ms(be, fa, fb);
        double host_ms = (hd_now_seconds() - host_start) * 1e3;
        printf("fence_elapsed_ms: %.3f ms on the device, %.3f ms seen by the host\n", (double)ms, host_ms);
        CHECK(isfinite(ms) && ms > 0.0f, "fence_elapsed_ms gave %g", (double)ms);
        CHECK(ms <= host_ms + 0.5, "the device took %.3f ms, longer than the host waited (%.3f ms)",
              (double)ms, host_ms);
        float again = be->ops->fence_elapsed_ms(be, fa, fb);
        CHECK(again == ms, "fence_elapsed_ms changed on a second call: %g vs %g", (double)again, (double)ms);
        for (int i = 0; i < 1000; i++) /* recycles fa's event */
            be->ops->fence_wait(be, be->ops->fence_record(be));
        float stale = be->ops->fence_elapsed_ms(be, fa, fb);
        CHECK(isnan(stale), "fence_elapsed_ms of recycled tokens gave %g instead of NaN", (double)stale);
    }
    be->ops->free(be, a);
    be->ops->free(be, b);
    be->ops->free(be, step);

    if (gpu_under_sanitizer()) {
        printf(
            "under compute-sanitizer: peak_gflops left out (an instrumented 8192^3 SGEMM takes minutes)\n");
        return;
    }
    double peak = be->ops->peak_gflops(be);
    printf("peak_gflops: %.1f GFLOP/s\n", peak);
    /* Any GPU this runs on does more than 100 GFLOP/s in FP32, none yet 1000 TFLOP/s. */
    CHECK(isfinite(peak) && peak > 100.0 && peak < 1e6, "peak_gflops %g is not a plausible FP32 rate", peak);
    CHECK(be->ops->peak_gflops(be) == peak, "peak_gflops is not measured once and kept");
}

/* The two orderings of the upload stream against compute, on buffers large enough that a
 * missing wait shows (a 64 MiB upload takes a millisecond or more, a pass over it tens of
 * microseconds): an upload queued after ops that read its destination must not overwrite
 * it under them, and a replayed recording must wait for the upload of its input queued just
 * before it (as the pipeline queues the next batch). Dropout at rate 0 is the copy op. */
static void check_large_transfer_ordering(hd_backend *be, uint64_t *rng) {
    const size_t count = (size_t)16 << 20, bytes = count * sizeof(float);
    float *dev = be->ops->alloc(be, count), *other = be->ops->alloc(be, count);
    float *first = be->ops->host_alloc(be, bytes), *second = be->ops->host_alloc(be, bytes);
    float *back = malloc(bytes);
    CHECK(dev && other && first && second && back, "allocation failed: %s", hd_last_error());
    if (!dev || !other || !first || !second || !back)
        goto done;
    test_fill_uniform(first, count, 1.0f, 2.0f, rng);
    test_fill_uniform(second, count, -2.0f, -1.0f, rng);

    be->ops->upload(be, dev, first, bytes);
    for (int pass = 0; pass < 8; pass++) /* several reads of dev, queued before the next upload */
        be->ops->dropout_forward(be, count, 0.0f, 1, 0, NULL, dev, other);
    be->ops->upload(be, dev, second, bytes);
    be->ops->download(be, back, other, bytes);
    CHECK(memcmp(back, first, bytes) == 0,
          "64 MiB: an upload overwrote its destination under ops queued before it");
    be->ops->download(be, back, dev, bytes);
    CHECK(memcmp(back, second, bytes) == 0, "64 MiB: the second upload did not arrive");

    if (be->ops->record_begin) {
        CHECK(be->ops->record_begin(be) == 0, "record_begin: %s", hd_last_error());
        be->ops->dropout_forward(be, count, 0.0f, 1, 0, NULL, dev, other);
        void *recording = be->ops->record_end(be);
        CHECK(recording != NULL, "recording a copy: %s", hd_last_error());
        if (recording) {
            be->ops->zero(be, other, bytes); /* so that a replay that did not run fails too */
            be->ops->upload(be, dev, first, bytes);
            CHECK(be->ops->replay(be, recording) == 0, "replay: %s", hd_last_error());
            be->ops->download(be, back, other, bytes);
            CHECK(memcmp(back, first, bytes) == 0,
                  "64 MiB: a replay ran before the upload of its input queued before it had arrived");
            be->ops->recording_free(be, recording);
        }
    }
    int fence = be->ops->fence_record(be);
    be->ops->fence_wait(be, fence); /* before the pinned buffers go */
done:
    free(back);
    if (first)
        be->ops->host_free(be, first);
    if (second)
        be->ops->host_free(be, second);
    be->ops->free(be, dev);
    be->ops->free(be, other);
}

/* A pageable source (malloc) may change as soon as upload returns (backend.h): overwritten at
 * once, while the copy stream still waits for ops queued before the upload, the data that
 * arrives must be what the source held at the call. Sizes: under one bounce buffer, and 20 MiB,
 * which passes through both bounce buffers more than once. */
static void check_pageable_upload(hd_backend *be, uint64_t *rng) {
    const size_t busy_count = (size_t)16 << 20;
    const size_t counts[2] = {1000, (size_t)5 << 20};
    float *busy_in = be->ops->alloc(be, busy_count), *busy_out = be->ops->alloc(be, busy_count);
    for (int t = 0; t < 2; t++) {
        size_t count = counts[t], bytes = count * sizeof(float);
        float *dev = be->ops->alloc(be, count);
        float *src = malloc(bytes), *want = malloc(bytes), *back = malloc(bytes);
        CHECK(busy_in && busy_out && dev && src && want && back, "allocation failed: %s", hd_last_error());
        if (busy_in && busy_out && dev && src && want && back) {
            test_fill_uniform(src, count, 1.0f, 2.0f, rng);
            memcpy(want, src, bytes);
            for (int pass = 0; pass < 8; pass++) /* keeps the compute stream, and so the upload, waiting */
                be->ops->dropout_forward(be, busy_count, 0.0f, 1, 0, NULL, busy_in, busy_out);
            be->ops->upload(be, dev, src, bytes);
            for (size_t i = 0; i < count; i++)
                src[i] = -1.0f;
            be->ops->download(be, back, dev, bytes);
            CHECK(
                memcmp(back, want, bytes) == 0,
                "%zu floats from pageable memory: what arrived changed with the source after upload returned",
                count);
        }
        be->ops->free(be, dev);
        free(src);
        free(want);
        free(back);
    }
    be->ops->free(be, busy_in);
    be->ops->free(be, busy_out);
}

int main(void) {
    uint64_t rng = test_fresh_seed();
    check_cpu_timing_ops();
    int count = hd_gpu_device_count();
    CHECK(count >= 0, "negative device count %d", count);
    if (count == 0) {
        check_without_device();
        gpu_no_device();
        return test_finish();
    }
    char list[4096];
    hd_gpu_list_devices(list, sizeof list);
    printf("devices:\n%s\n", list);
    CHECK(strncmp(list, "0: ", 3) == 0, "device list does not start with device 0: %s", list);

    hd_gpu_options bad = {.device = count};
    hd_backend *none = hd_gpu_backend_create(&bad);
    CHECK(none == NULL, "device %d (out of range) was created", count);
    CHECK(strstr(hd_last_error(), "0: ") != NULL, "out-of-range message does not list the devices: %s",
          hd_last_error());
    CHECK(strchr(hd_last_error(), '\n') == NULL, "out-of-range message is more than one line: %s",
          hd_last_error());
    hd_backend_destroy(none);

    hd_gpu_options opts = {.device = 0, .verbose = 1};
    hd_backend *be = hd_gpu_backend_create(&opts);
    CHECK(be != NULL, "GPU 0: %s", hd_last_error());
    if (!be)
        return test_finish();
    const char *text = be->ops->describe(be);
    printf("describe: %s\n", text);
    CHECK(be->is_gpu == 1 && strcmp(be->name, "cuda") == 0, "backend header: is_gpu %d name %s", be->is_gpu,
          be->name);
    CHECK(strstr(text, "cuDNN ") && strstr(text, "cuBLAS ") && strstr(text, "GiB"),
          "description lacks the memory or library versions: %s", text);

    check_transfers(be, &rng);
    check_large_transfer_ordering(be, &rng);
    check_pageable_upload(be, &rng);
    check_timing(be);

    if (gpu_under_sanitizer()) {
        printf("under compute-sanitizer: the deliberate out-of-memory allocation is left out\n");
    } else {
        hd_clear_error();
        float *huge = be->ops->alloc(be, (size_t)1 << 42); /* 16 TiB */
        CHECK(huge == NULL, "a 16 TiB allocation succeeded");
        CHECK(strstr(hd_last_error(), "out of GPU memory") != NULL, "out-of-memory message: \"%s\"",
              hd_last_error());
        be->ops->free(be, huge);
    }
    float *small = be->ops->alloc(be, 1000);
    CHECK(small != NULL, "allocation after an out-of-memory failure: %s", hd_last_error());
    be->ops->free(be, small);

    hd_backend_destroy(be);
    return test_finish();
}
