/* gpu_transfer.cu: the GPU backend's memory, transfers and fences (backend.h's alloc, free,
 * host_alloc, host_free, upload, download, zero, fence_record, fence_wait, fence_elapsed_ms).
 *
 * Streams: every op runs on the compute stream, in call order; uploads run on the copy stream.
 *   - A pinned source (host_alloc) is copied by the DMA engine straight from where it is, so the
 *     caller keeps it unchanged until a fence (backend.h). A pageable source (malloc, the stack)
 *     is first copied by the host into one of two pinned bounce buffers, in pieces of
 *     HD_GPU_BOUNCE_BYTES, and the device copy reads that: CUDA promises that a pageable source
 *     may be reused when the call returns only for synchronous copies, and backend.h promises
 *     it to every caller that did not use host_alloc. Before refilling a bounce buffer the host
 *     waits for the copy out of its previous fill.
 *   - An upload waits (on the copy stream) for all compute work queued before it, so it never
 *     overwrites data that an earlier op still reads or writes.
 *   - It is then pending: the compute stream waits for it only when a later op, download or
 *     zero touches an overlapping range (gpu_use), so later ops see the copied data, while
 *     ops on other memory overlap the copy. src/train/pipeline.c relies on this: it queues the
 *     upload of batch s+1 into one device buffer, then step s computes on the other.
 *   - At most HD_GPU_PENDING_UPLOADS are pending; the oldest is joined to make room.
 *   - While ops are recorded (gpu_record.cu), gpu_use only notes the range: the replay of the
 *     recording joins the pending uploads into it before it launches.
 * Fences: token t records, in slot t % HD_GPU_FENCE_RING, one event on the compute stream and
 * one on the copy stream, so a fence covers queued uploads that no op has waited for yet.
 * Waiting for an old token whose slot was recorded again waits for the newer point, which is
 * later and so still correct; fence_elapsed_ms refuses such a token (NaN). */
#include "gpu_internal.h"
#include "hd/common.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- pending uploads ---- */

static void join_pending(hd_gpu_backend *gpu, gpu_pending_upload *p) {
    CUDA_CHECK(cudaStreamWaitEvent(gpu->compute, p->done, 0));
    p->active = 0;
    gpu->pending_count--;
}

void gpu_use(hd_gpu_backend *gpu, const void *ptr, size_t bytes) {
    if (!ptr || bytes == 0)
        return;
    uintptr_t begin = (uintptr_t)ptr, end = begin + bytes;
    if (gpu->record.active) { /* the replay waits for these (gpu_record.cu) */
        gpu_record_use(gpu, begin, end);
        return;
    }
    if (gpu->pending_count == 0)
        return;
    for (int i = 0; i < HD_GPU_PENDING_UPLOADS; i++) {
        gpu_pending_upload *p = &gpu->pending[i];
        if (p->active && p->begin < end && begin < p->end)
            join_pending(gpu, p);
    }
}

void gpu_use_all(hd_gpu_backend *gpu) {
    if (gpu->record.active) {
        gpu->record.use_all = 1;
        return;
    }
    for (int i = 0; i < HD_GPU_PENDING_UPLOADS && gpu->pending_count > 0; i++)
        if (gpu->pending[i].active)
            join_pending(gpu, &gpu->pending[i]);
}

/* A free pending slot; joins the oldest pending upload when all are taken. */
static gpu_pending_upload *pending_slot(hd_gpu_backend *gpu) {
    gpu_pending_upload *oldest = NULL;
    for (int i = 0; i < HD_GPU_PENDING_UPLOADS; i++) {
        gpu_pending_upload *p = &gpu->pending[i];
        if (!p->active)
            return p;
        if (!oldest || p->order < oldest->order)
            oldest = p;
    }
    join_pending(gpu, oldest);
    return oldest;
}

/* ---- memory ---- */

static float *gpu_alloc(hd_backend *be, size_t count) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    gpu_require_not_recording(gpu, "alloc");
    gpu_enter(gpu);
    size_t bytes = (count ? count : 1) * sizeof(float);
    void *ptr = NULL;
    cudaError_t err = cudaMalloc(&ptr, bytes);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        if (err == cudaErrorMemoryAllocation)
            gpu_fail_out_of_memory("a tensor", bytes);
        else
            hd_fail("cudaMalloc(%zu bytes) failed: %s", bytes, cudaGetErrorString(err));
        return NULL;
    }
    CUDA_CHECK(cudaMemsetAsync(ptr, 0, bytes, gpu->compute));
    return (float *)ptr;
}

static void gpu_free(hd_backend *be, void *ptr) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    gpu_require_not_recording(gpu, "free");
    if (!ptr)
        return;
    gpu_enter(gpu);
    /* Queued ops or a pending upload may still use ptr: let both streams finish first. */
    gpu_use_all(gpu);
    CUDA_CHECK(cudaStreamSynchronize(gpu->copy));
    CUDA_CHECK(cudaStreamSynchronize(gpu->compute));
    CUDA_CHECK(cudaFree(ptr));
}

static void *gpu_host_alloc(hd_backend *be, size_t bytes) {
    gpu_require_not_recording(hd_gpu_from(be), "host_alloc");
    gpu_enter(hd_gpu_from(be));
    void *ptr = NULL;
    cudaError_t err = cudaHostAlloc(&ptr, bytes ? bytes : 1, cudaHostAllocPortable);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        hd_fail("cudaHostAlloc(%zu bytes) failed: %s", bytes, cudaGetErrorString(err));
        return NULL;
    }
    return ptr;
}

static void gpu_host_free(hd_backend *be, void *ptr) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    gpu_require_not_recording(gpu, "host_free");
    if (!ptr)
        return;
    gpu_enter(gpu);
    CUDA_CHECK(cudaStreamSynchronize(gpu->copy)); /* an upload may still read it */
    CUDA_CHECK(cudaFreeHost(ptr));
}

/* ---- transfers ---- */

/* Memory from cudaHostAlloc (host_alloc) or registered with CUDA; not malloc's, nor managed. */
static int host_is_pinned(const void *ptr) {
    cudaPointerAttributes attr;
    if (cudaPointerGetAttributes(&attr, ptr) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return attr.type == cudaMemoryTypeHost;
}

/* A pageable source, through the bounce buffers: when this returns, src may change. */
static void upload_pageable(hd_gpu_backend *gpu, void *dst, const void *src, size_t bytes) {
    for (size_t done = 0; done < bytes;) {
        size_t piece = bytes - done < HD_GPU_BOUNCE_BYTES ? bytes - done : HD_GPU_BOUNCE_BYTES;
        int slot = gpu->bounce_next;
        gpu->bounce_next ^= 1;
        CUDA_CHECK(cudaEventSynchronize(gpu->bounce_done[slot])); /* the copy out of its last fill */
        memcpy(gpu->bounce[slot], (const char *)src + done, piece);
        CUDA_CHECK(
            cudaMemcpyAsync((char *)dst + done, gpu->bounce[slot], piece, cudaMemcpyHostToDevice, gpu->copy));
        CUDA_CHECK(cudaEventRecord(gpu->bounce_done[slot], gpu->copy));
        done += piece;
    }
}

static void gpu_upload(hd_backend *be, void *dst, const void *src, size_t bytes) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    gpu_require_not_recording(gpu, "upload");
    if (bytes == 0)
        return;
    gpu_enter(gpu);
    CUDA_CHECK(cudaEventRecord(gpu->compute_tail, gpu->compute));
    CUDA_CHECK(cudaStreamWaitEvent(gpu->copy, gpu->compute_tail, 0));
    if (host_is_pinned(src))
        CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, gpu->copy));
    else
        upload_pageable(gpu, dst, src, bytes);
    gpu_pending_upload *p = pending_slot(gpu);
    CUDA_CHECK(cudaEventRecord(p->done, gpu->copy));
    p->begin = (uintptr_t)dst;
    p->end = p->begin + bytes;
    p->order = gpu->upload_count++;
    p->active = 1;
    gpu->pending_count++;
    if (gpu->sync_each_op) { /* debugging: no overlap, every upload checked where it is made */
        join_pending(gpu, p);
        gpu_op_done(gpu, "upload");
    }
}

static void gpu_download(hd_backend *be, void *dst, const void *src, size_t bytes) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    gpu_require_not_recording(gpu, "download");
    if (bytes == 0)
        return;
    gpu_enter(gpu);
    gpu_use(gpu, src, bytes);
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, gpu->compute));
    CUDA_CHECK(cudaStreamSynchronize(gpu->compute));
}

static void gpu_zero(hd_backend *be, void *ptr, size_t bytes) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    if (bytes == 0)
        return;
    gpu_enter(gpu);
    gpu_use(gpu, ptr, bytes);
    CUDA_OP(gpu, cudaMemsetAsync(ptr, 0, bytes, gpu->compute));
    gpu_op_done(gpu, "zero");
}

/* ---- fences ---- */

static int gpu_fence_record(hd_backend *be) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    gpu_require_not_recording(gpu, "fence_record");
    gpu_enter(gpu);
    int token = (int)(gpu->fence_count++ & 0x7fffffffu);
    int slot = token % HD_GPU_FENCE_RING;
    CUDA_CHECK(cudaEventRecord(gpu->fence_compute[slot], gpu->compute));
    CUDA_CHECK(cudaEventRecord(gpu->fence_copy[slot], gpu->copy));
    gpu->fence_token[slot] = token;
    return token;
}

static void gpu_fence_wait(hd_backend *be, int fence) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    gpu_require_not_recording(gpu, "fence_wait");
    if (fence < 0)
        return;
    gpu_enter(gpu);
    int slot = fence % HD_GPU_FENCE_RING;
    CUDA_CHECK(cudaEventSynchronize(gpu->fence_compute[slot]));
    CUDA_CHECK(cudaEventSynchronize(gpu->fence_copy[slot]));
}

static float gpu_fence_elapsed_ms(hd_backend *be, int fence_a, int fence_b) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    if (fence_a < 0 || fence_b < 0)
        return NAN;
    int slot_a = fence_a % HD_GPU_FENCE_RING, slot_b = fence_b % HD_GPU_FENCE_RING;
    if (gpu->fence_token[slot_a] != fence_a || gpu->fence_token[slot_b] != fence_b)
        return NAN; /* recorded again since: the event no longer marks that point */
    gpu_enter(gpu);
    CUDA_CHECK(cudaEventSynchronize(gpu->fence_compute[slot_b]));
    float ms = NAN;
    cudaError_t err = cudaEventElapsedTime(&ms, gpu->fence_compute[slot_a], gpu->fence_compute[slot_b]);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        fprintf(stderr, "hd-gpu: warning: cudaEventElapsedTime failed: %s\n", cudaGetErrorString(err));
        return NAN;
    }
    return ms;
}

/* ---- setup ---- */

int gpu_transfer_init(hd_gpu_backend *gpu) {
    CUDA_TRY(cudaEventCreateWithFlags(&gpu->compute_tail, cudaEventDisableTiming));
    for (int i = 0; i < HD_GPU_PENDING_UPLOADS; i++)
        CUDA_TRY(cudaEventCreateWithFlags(&gpu->pending[i].done, cudaEventDisableTiming));
    for (int i = 0; i < 2; i++) {
        CUDA_TRY(
            cudaEventCreateWithFlags(&gpu->bounce_done[i], cudaEventDisableTiming | cudaEventBlockingSync));
        CUDA_TRY(cudaHostAlloc(&gpu->bounce[i], HD_GPU_BOUNCE_BYTES, cudaHostAllocPortable));
    }
    for (int i = 0; i < HD_GPU_FENCE_RING; i++) {
        gpu->fence_token[i] = -1;
        /* Timing stays on for fence_elapsed_ms; blocking sync lets a waiting host sleep. */
        CUDA_TRY(cudaEventCreateWithFlags(&gpu->fence_compute[i], cudaEventBlockingSync));
        CUDA_TRY(
            cudaEventCreateWithFlags(&gpu->fence_copy[i], cudaEventDisableTiming | cudaEventBlockingSync));
    }
    return 0;
}

static void destroy_event(cudaEvent_t *event) {
    if (!*event)
        return;
    cudaError_t err = cudaEventDestroy(*event);
    if (err != cudaSuccess)
        fprintf(stderr, "hd-gpu: warning: cudaEventDestroy failed: %s\n", cudaGetErrorString(err));
    *event = NULL;
}

void gpu_transfer_release(hd_gpu_backend *gpu) {
    destroy_event(&gpu->compute_tail);
    for (int i = 0; i < 2; i++) {
        destroy_event(&gpu->bounce_done[i]);
        if (gpu->bounce[i]) { /* the copy stream was synchronised (gpu_release) */
            cudaError_t err = cudaFreeHost(gpu->bounce[i]);
            if (err != cudaSuccess)
                fprintf(stderr, "hd-gpu: warning: cudaFreeHost failed: %s\n", cudaGetErrorString(err));
            gpu->bounce[i] = NULL;
        }
    }
    for (int i = 0; i < HD_GPU_PENDING_UPLOADS; i++)
        destroy_event(&gpu->pending[i].done);
    for (int i = 0; i < HD_GPU_FENCE_RING; i++) {
        destroy_event(&gpu->fence_compute[i]);
        destroy_event(&gpu->fence_copy[i]);
    }
}

void gpu_transfer_fill_ops(hd_backend_ops *ops) {
    ops->alloc = gpu_alloc;
    ops->free = gpu_free;
    ops->host_alloc = gpu_host_alloc;
    ops->host_free = gpu_host_free;
    ops->upload = gpu_upload;
    ops->download = gpu_download;
    ops->zero = gpu_zero;
    ops->fence_record = gpu_fence_record;
    ops->fence_wait = gpu_fence_wait;
    ops->fence_elapsed_ms = gpu_fence_elapsed_ms;
}
