/* gpu_record.cu: backend.h's record_begin / record_end / replay / recording_free as CUDA
 * graphs, and set_step_scalars, which writes the per-step values that recorded ops read.
 *
 * Recording captures the compute stream (cudaStreamBeginCapture, thread-local mode: a call on
 * this thread that cannot be captured fails the capture instead of running). The ops queue
 * their work as usual and it becomes the graph's nodes; cuDNN and cuBLAS calls are captured
 * with the backend's preallocated workspaces (cuBLAS is given its own in gpu_context.cu, so
 * it allocates nothing while captured). What the ops do on the host still happens at record
 * time: the replay has only the device work.
 *
 * Uploads: an op's gpu_use would join the pending uploads into its ranges; while recording it
 * only notes the ranges (gpu_record_use), and replay joins those uploads, outside the graph,
 * before it launches it. So a replay waits for the upload of its own batch and runs beside
 * the upload of the next one, as the op-by-op step does.
 *
 * A recording holds device pointers: the memory it was recorded on must stay allocated, and
 * the shared cuDNN workspace must not move (workspace_generation; replay refuses a stale
 * recording). */
#include "gpu_internal.h"
#include "hd/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    cudaGraphExec_t exec;
    unsigned long long workspace_generation;
    size_t nodes;
    int use_all;
    int n_uses;
    gpu_range uses[HD_GPU_RECORD_USES];
} gpu_recording;

/* ---- the per-step scalars ---- */

/* One thread: the value travels as the kernel's argument, so the host's copy may change at
 * once (an upload from it would have to wait for the copy). */
__global__ void hdgpu_step_scalars_kernel(hd_step_scalars *dst, hd_step_scalars value) {
    *dst = value;
}

static void gpu_set_step_scalars(hd_backend *be, hd_step_scalars *dst, const hd_step_scalars *value) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    gpu_enter(gpu);
    gpu_use(gpu, dst, sizeof *dst);
    hdgpu_step_scalars_kernel<<<1, 1, 0, gpu->compute>>>(dst, *value);
    CUDA_OP_LAUNCH(gpu);
    gpu_op_done(gpu, "set_step_scalars");
}

/* ---- recording ---- */

void gpu_record_use(hd_gpu_backend *gpu, uintptr_t begin, uintptr_t end) {
    gpu_record_state *r = &gpu->record;
    for (int i = 0; i < r->n_uses; i++)
        if (r->uses[i].begin <= begin && end <= r->uses[i].end)
            return; /* already noted (ops touch the same buffers again and again) */
    if (r->n_uses == HD_GPU_RECORD_USES) {
        r->use_all = 1;
        return;
    }
    r->uses[r->n_uses].begin = begin;
    r->uses[r->n_uses].end = end;
    r->n_uses++;
}

void gpu_require_not_recording(const hd_gpu_backend *gpu, const char *what) {
    if (!gpu->record.active)
        return;
    fprintf(stderr, "hd-gpu: %s called while a training step is being recorded (only ops can be)\n", what);
    exit(1);
}

static int gpu_record_begin(hd_backend *be) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    if (gpu->record.active)
        return hd_fail("record_begin: already recording");
    gpu_enter(gpu);
    memset(&gpu->record, 0, sizeof gpu->record);
    CUDA_TRY(cudaStreamBeginCapture(gpu->compute, cudaStreamCaptureModeThreadLocal));
    gpu->record.active = 1;
    return 0;
}

static void *gpu_record_end(hd_backend *be) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    if (!gpu->record.active) {
        hd_fail("record_end: not recording");
        return NULL;
    }
    gpu->record.active = 0;
    cudaGraph_t graph = NULL;
    cudaError_t err = cudaStreamEndCapture(gpu->compute, &graph);
    if (err != cudaSuccess || gpu->record.error[0] || !graph) {
        (void)cudaGetLastError();
        if (graph && cudaGraphDestroy(graph) != cudaSuccess)
            (void)cudaGetLastError();
        hd_fail("the training step could not be recorded as a CUDA graph: %s",
                gpu->record.error[0] ? gpu->record.error : cudaGetErrorString(err));
        return NULL;
    }
    size_t nodes = 0;
    cudaGraphExec_t exec = NULL;
    err = cudaGraphGetNodes(graph, NULL, &nodes);
    if (err == cudaSuccess)
        err = cudaGraphInstantiate(&exec, graph, 0);
    cudaError_t destroyed = cudaGraphDestroy(graph); /* the executable graph is a copy */
    if (err == cudaSuccess)
        err = destroyed;
    if (err == cudaSuccess)
        err = cudaGraphUpload(exec, gpu->compute); /* so the first replay is not slower */
    gpu_recording *rec = NULL;
    if (err == cudaSuccess)
        rec = (gpu_recording *)hd_calloc(1, sizeof *rec);
    if (!rec) {
        if (err != cudaSuccess) {
            (void)cudaGetLastError();
            hd_fail("the training step's CUDA graph could not be instantiated: %s", cudaGetErrorString(err));
        }
        if (exec && cudaGraphExecDestroy(exec) != cudaSuccess)
            (void)cudaGetLastError();
        return NULL;
    }
    rec->exec = exec;
    rec->workspace_generation = gpu->workspace_generation;
    rec->nodes = nodes;
    rec->use_all = gpu->record.use_all;
    rec->n_uses = gpu->record.n_uses;
    memcpy(rec->uses, gpu->record.uses, (size_t)rec->n_uses * sizeof rec->uses[0]);
    if (gpu->options.verbose)
        fprintf(stderr, "hd-gpu: recorded a CUDA graph of %zu nodes touching %d device ranges%s\n", nodes,
                rec->n_uses, rec->use_all ? " (and more: its replays wait for every upload)" : "");
    return rec;
}

static int gpu_replay(hd_backend *be, void *recording) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    gpu_recording *rec = (gpu_recording *)recording;
    if (rec->workspace_generation != gpu->workspace_generation)
        return hd_fail(
            "a recorded step is stale: the cuDNN workspace was re-allocated after it was recorded");
    gpu_enter(gpu);
    if (rec->use_all)
        gpu_use_all(gpu);
    else
        for (int i = 0; i < rec->n_uses; i++)
            gpu_use(gpu, (const void *)rec->uses[i].begin, rec->uses[i].end - rec->uses[i].begin);
    CUDA_CHECK(cudaGraphLaunch(rec->exec, gpu->compute));
    gpu_op_done(gpu, "replay");
    return 0;
}

static void gpu_recording_free(hd_backend *be, void *recording) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    gpu_recording *rec = (gpu_recording *)recording;
    if (!rec)
        return;
    gpu_enter(gpu);
    /* No wait: an executable graph still running is freed when it completes (cudaGraphExecDestroy). */
    CUDA_CHECK(cudaGraphExecDestroy(rec->exec));
    free(rec);
}

void gpu_record_fill_ops(const hd_gpu_backend *gpu, hd_backend_ops *ops) {
    ops->set_step_scalars = gpu_set_step_scalars;
    /* HD_GPU_SYNC=1 synchronises after every op, which a captured stream cannot do. */
    if (gpu->options.no_graphs || gpu->sync_each_op)
        return;
    ops->record_begin = gpu_record_begin;
    ops->record_end = gpu_record_end;
    ops->replay = gpu_replay;
    ops->recording_free = gpu_recording_free;
}
