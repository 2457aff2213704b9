/* gpu_test_backend.c: the GPU backend's devices, memory, transfers and fences.
 *
 * Without a GPU (or in a build without CUDA) it checks that the device count is 0, that the
 * device list and the creation failure say why, and then skips (77). With one it checks:
 * the description names the device, cuDNN and cuBLAS; alloc returns zeroed memory; a pinned
 * upload may be changed after a fence without changing what arrived; an upload waits for the
 * ops queued before it (it must not overwrite data they still read); zero; many fences
 * (more than the event ring holds); an out-of-range device index lists the devices; an
 * impossible allocation fails with a clear message and does not poison later calls. */
#include "check.h"
#include "hd/backend.h"
#include "hd/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check_without_device(void) {
    char list[1024];
    hd_gpu_list_devices(list, sizeof list);
    CHECK(list[0] != '\0', "hd_gpu_list_devices says nothing when no device answers");
    hd_clear_error();
    hd_gpu_options opts = {0, 0, 0, 0};
    hd_backend *be = hd_gpu_backend_create(&opts);
    CHECK(be == NULL, "hd_gpu_backend_create succeeded without a device");
    CHECK(hd_last_error()[0] != '\0', "no message when the GPU backend cannot be created");
    printf("without a device: list \"%s\"; create fails with \"%s\"\n", list, hd_last_error());
    hd_backend_destroy(be);
}

static void check_transfers(hd_backend *be, uint64_t *rng) {
    const size_t count = 100003; /* not a multiple of anything */
    float *dev = be->ops->alloc(be, count);
    float *other = be->ops->alloc(be, count);
    float *host = be->ops->host_alloc(be, count * sizeof(float));
    float *back = malloc(count * sizeof(float));
    float *expect = malloc(count * sizeof(float));
    CHECK(dev && other && host && back && expect, "allocation failed: %s", hd_last_error());
    if (!dev || !other || !host || !back || !expect)
        goto done;

    for (size_t i = 0; i < count; i++)
        back[i] = 1.0f;
    be->ops->download(be, back, dev, count * sizeof(float));
    size_t nonzero = 0;
    for (size_t i = 0; i < count; i++)
        nonzero += back[i] != 0.0f;
    CHECK(nonzero == 0, "alloc: %zu of %zu elements not zero", nonzero, count);

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
    be->ops->dropout_forward(be, count, 0.0f, 1, 0, 0, dev, other);
    float *second = malloc(count * sizeof(float));
    CHECK(second != NULL, "malloc");
    if (second) {
        test_fill_uniform(second, count, -3.0f, -2.0f, rng);
        be->ops->upload(be, dev, second, count * sizeof(float)); /* pageable source */
        be->ops->download(be, back, other, count * sizeof(float));
        CHECK(memcmp(back, expect, count * sizeof(float)) == 0, "an upload overtook an op queued before it");
        be->ops->download(be, back, dev, count * sizeof(float));
        CHECK(memcmp(back, second, count * sizeof(float)) == 0, "the second upload did not arrive");
        free(second);
    }

    be->ops->zero(be, dev, count * sizeof(float));
    be->ops->download(be, back, dev, count * sizeof(float));
    nonzero = 0;
    for (size_t i = 0; i < count; i++)
        nonzero += back[i] != 0.0f;
    CHECK(nonzero == 0, "zero left %zu elements", nonzero);

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
}

int main(void) {
    uint64_t rng = test_fresh_seed();
    int count = hd_gpu_device_count();
    CHECK(count >= 0, "negative device count %d", count);
    if (count == 0) {
        check_without_device();
        test_skip("no CUDA device answers");
        return test_finish();
    }
    char list[4096];
    hd_gpu_list_devices(list, sizeof list);
    printf("devices:\n%s\n", list);
    CHECK(strncmp(list, "0: ", 3) == 0, "device list does not start with device 0: %s", list);

    hd_gpu_options bad = {count, 0, 0, 0};
    hd_backend *none = hd_gpu_backend_create(&bad);
    CHECK(none == NULL, "device %d (out of range) was created", count);
    CHECK(strstr(hd_last_error(), "0: ") != NULL, "out-of-range message does not list the devices: %s",
          hd_last_error());
    hd_backend_destroy(none);

    hd_gpu_options opts = {0, 0, 0, 1};
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

    hd_clear_error();
    float *huge = be->ops->alloc(be, (size_t)1 << 42); /* 16 TiB */
    CHECK(huge == NULL, "a 16 TiB allocation succeeded");
    CHECK(strstr(hd_last_error(), "out of GPU memory") != NULL, "out-of-memory message: \"%s\"",
          hd_last_error());
    be->ops->free(be, huge);
    float *small = be->ops->alloc(be, 1000);
    CHECK(small != NULL, "allocation after an out-of-memory failure: %s", hd_last_error());
    be->ops->free(be, small);

    hd_backend_destroy(be);
    return test_finish();
}
