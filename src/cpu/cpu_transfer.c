/* cpu_transfer.c: the CPU backend's memory and fences (backend.h's alloc, free, host_alloc, host_free,
 * upload, download, zero, fence_record, fence_wait; kernels/gpu_transfer.cu is its GPU twin). Backend
 * memory is host memory, 64-byte aligned and zero-filled; an upload or download is a copy, and every op
 * has finished when it returns, so a fence is a no-op. */
#include "cpu_backend.h"
#include "hd/common.h"

#include <stdlib.h>
#include <string.h>

float *cpu_alloc(hd_backend *be, size_t count) {
    (void)be;
    void *p = NULL;
    size_t bytes = (count ? count : 1) * sizeof(float);
    bytes = (bytes + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, bytes) != 0) {
        hd_fail("out of memory: cannot allocate %zu bytes of CPU tensor memory", bytes);
        return NULL;
    }
    memset(p, 0, bytes);
    return p;
}

void cpu_free(hd_backend *be, void *ptr) {
    (void)be;
    free(ptr);
}

void *cpu_host_alloc(hd_backend *be, size_t bytes) {
    return cpu_alloc(be, (bytes + sizeof(float) - 1) / sizeof(float));
}

void cpu_copy(hd_backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes)
        memcpy(dst, src, bytes);
}

void cpu_zero(hd_backend *be, void *ptr, size_t bytes) {
    (void)be;
    memset(ptr, 0, bytes);
}

int cpu_fence_record(hd_backend *be) {
    (void)be;
    return 0; /* every CPU op has finished when it returns */
}

void cpu_fence_wait(hd_backend *be, int fence) {
    (void)be;
    (void)fence;
}

void *cpu_parts_alloc(size_t stride, int parts) {
    size_t bytes = sizeof(float) * stride * (size_t)parts;
    void *p = aligned_alloc(CPU_PART_ALIGN_FLOATS * sizeof(float), bytes);
    if (!p)
        hd_fail("out of memory: %zu bytes of per-thread scratch", bytes);
    return p;
}
