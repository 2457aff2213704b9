/* gpu_internal.h: the GPU backend's context and the functions its files share.
 *
 * One hd_gpu_backend (embedding hd_backend first, so a hd_backend * is also a
 * hd_gpu_backend *) owns everything the GPU path needs: the device, a compute stream on which
 * every op is queued in call order, a copy stream for uploads, the cuDNN and cuBLAS handles
 * (both bound to the compute stream), one cuDNN workspace shared by all plans (grown only
 * when a plan is made), cuBLAS's own workspace, the uploads still in flight, and a ring of
 * event pairs for fences. Nothing is global; nothing is allocated and the host never waits
 * inside an op.
 *
 * Uploads (gpu_transfer.cu): an upload waits on the copy stream for all compute queued before
 * it, and is then "pending": the compute stream waits for it only when an op touches memory
 * that overlaps its destination. Every op therefore calls gpu_use() for every device range it
 * reads or writes before queueing work; that is what lets the upload of the next batch run
 * beside the compute of the current one (src/train/pipeline.c's double buffering).
 *
 * Layout everywhere: NCHW float32, contiguous; dense activations (n, features) row-major;
 * conv weights (out_c, in_c, k, k); dense weights (out_f, in_f). Gradients are written with
 * `=` (backend.h). Ops must be called from one host thread at a time. */
#ifndef HD_GPU_INTERNAL_H
#define HD_GPU_INTERNAL_H

#include "gpu_check.h"
#include "hd/backend.h"

#include <stddef.h>
#include <stdint.h>

/* Every __global__ function here is named hdgpu_*: bench/gpu-check points compute-sanitizer's
 * racecheck and synccheck at our kernels alone by that prefix (cuDNN's and cuBLAS's are NVIDIA's to
 * check), and scripts/lint holds the rule. */

#define HD_GPU_FENCE_RING      256 /* fence tokens map to event pairs modulo this */
#define HD_GPU_PENDING_UPLOADS 8   /* uploads in flight the compute stream has not waited for */
#define HD_GPU_THREADS         256 /* threads per block of the element-wise kernels */
#define HD_GPU_REDUCE_THREADS  512 /* threads per block of the per-channel reductions */
#define HD_GPU_RECORD_USES     128 /* device ranges a recording notes; past that it waits for every upload */
#define HD_GPU_BIAS_PARTIALS   65536      /* floats of per-(channel, chunk) sums for the bias gradient */
#define HD_GPU_BIAS_MAX_CHUNKS 64         /* image ranges a channel's bias gradient is cut into, at most */
#define HD_GPU_BOUNCE_BYTES    (4u << 20) /* each of the two pinned buffers that pageable uploads go through */

typedef struct {
    uintptr_t begin, end; /* device bytes [begin, end) */
} gpu_range;

/* Between record_begin and record_end (gpu_record.cu): the compute stream is being captured
 * into a CUDA graph. Ops then only note the device ranges they touch (the replay waits for the
 * uploads into them, as gpu_use would), gpu_op_done does not synchronise, and a failed call in
 * an op (CUDA_OP and friends, gpu_check.h) is kept in `error` instead of ending the process. */
typedef struct {
    int active;
    int use_all; /* more ranges than `uses` holds: the replay waits for every pending upload */
    int n_uses;
    gpu_range uses[HD_GPU_RECORD_USES];
    char error[512]; /* the first failed call; "" when none */
} gpu_record_state;

/* An upload queued on the copy stream that the compute stream has not waited for yet. */
typedef struct {
    uintptr_t begin, end; /* destination bytes [begin, end) */
    cudaEvent_t done;     /* recorded on the copy stream after the copy */
    unsigned long long order;
    int active;
} gpu_pending_upload;

typedef struct hd_gpu_backend {
    hd_backend base; /* first: the trainer sees only this */
    hd_backend_ops ops_table;
    hd_gpu_options options;
    int sync_each_op; /* HD_GPU_SYNC=1: synchronise after every op (debugging) */
    /* HD_GPU_TEST_REFUSE_CONV=1 (tests): a conv batch set made for a smaller batch has its
     * first call of each direction refused, so that the retry of other algorithms runs. */
    int test_refuse_new_conv_sets;

    int device;
    char device_name[256];
    size_t total_memory;
    int cc_major, cc_minor;
    int sm_count;

    cudaStream_t compute;     /* every op, in call order */
    cudaStream_t copy;        /* host -> device uploads */
    cudaEvent_t compute_tail; /* recorded on compute before an upload; the copy waits for it */
    /* Pageable sources go through these pinned buffers (HD_GPU_BOUNCE_BYTES each, used in turn):
     * the host copies into one once the copy stream is done with its last use. */
    void *bounce[2];
    cudaEvent_t bounce_done[2]; /* recorded on the copy stream after each copy out of bounce[i] */
    int bounce_next;
    gpu_pending_upload pending[HD_GPU_PENDING_UPLOADS];
    int pending_count;
    unsigned long long upload_count;
    /* Fence token t uses slot t % HD_GPU_FENCE_RING: an event on the compute stream (timing
     * enabled, for fence_elapsed_ms) and one on the copy stream (uploads not yet waited for). */
    cudaEvent_t fence_compute[HD_GPU_FENCE_RING];
    cudaEvent_t fence_copy[HD_GPU_FENCE_RING];
    int fence_token[HD_GPU_FENCE_RING]; /* the token last recorded in each slot; -1: none */
    unsigned fence_count;
    double peak_gflops; /* measured once by gpu_peak_gflops; 0: not yet */

    cudnnHandle_t cudnn;
    cublasHandle_t cublas;
    void *workspace; /* cuDNN workspace, shared by all conv plans */
    size_t workspace_bytes;
    unsigned long long workspace_generation; /* counts re-allocations: a recording holds the old one */
    void *cublas_workspace;
    size_t cublas_workspace_bytes;

    gpu_record_state record;

    float *bias_partials; /* HD_GPU_BIAS_PARTIALS floats (gpu_bias_act.cu) */
    size_t bias_partials_count;

    char description[512];
} hd_gpu_backend;

static inline hd_gpu_backend *hd_gpu_from(hd_backend *be) {
    return (hd_gpu_backend *)be;
}

#ifdef __cplusplus
extern "C" {
#endif

/* ---- gpu_context.cu ---- */
/* Make the backend's device current on the calling thread. */
void gpu_enter(hd_gpu_backend *gpu);
/* End of an op: with HD_GPU_SYNC=1, waits for the compute stream and checks for faults. */
void gpu_op_done(hd_gpu_backend *gpu, const char *op);
/* Blocks for a grid-stride launch over `count` elements. */
unsigned gpu_grid_blocks(const hd_gpu_backend *gpu, size_t count);
/* Grow the shared cuDNN workspace to at least `bytes` (plan time only). */
int gpu_workspace_reserve(hd_gpu_backend *gpu, size_t bytes);
/* "out of GPU memory: <what> needs N MiB, M MiB free of T MiB" via hd_fail; returns -1. */
int gpu_fail_out_of_memory(const char *what, size_t bytes);

/* ---- gpu_transfer.cu: memory, uploads, fences ---- */
/* Before an op touches the device bytes [ptr, ptr + bytes) (reads or writes): the compute
 * stream waits for every pending upload into an overlapping range. No-op for NULL or 0. */
void gpu_use(hd_gpu_backend *gpu, const void *ptr, size_t bytes);
static inline void gpu_use_floats(hd_gpu_backend *gpu, const void *ptr, size_t count) {
    gpu_use(gpu, ptr, count * sizeof(float));
}
/* The compute stream waits for every pending upload. */
void gpu_use_all(hd_gpu_backend *gpu);
/* Fills the memory, transfer and fence entries of the ops table. */
void gpu_transfer_fill_ops(hd_backend_ops *ops);
/* Creates / destroys the upload and fence events (0 / -1 + hd_fail). */
int gpu_transfer_init(hd_gpu_backend *gpu);
void gpu_transfer_release(hd_gpu_backend *gpu);

/* ---- gpu_record.cu: recording and replaying ops (CUDA graphs), the per-step scalars ---- */
/* Fills set_step_scalars and, unless options.no_graphs or HD_GPU_SYNC, the record ops. */
void gpu_record_fill_ops(const hd_gpu_backend *gpu, hd_backend_ops *ops);
/* While recording: notes a device range the recorded ops touch (gpu_use), for replay. */
void gpu_record_use(hd_gpu_backend *gpu, uintptr_t begin, uintptr_t end);
/* Ends the process when a step is being recorded: for the calls around ops (transfers, fences,
 * freeing), which a recording cannot hold. */
void gpu_require_not_recording(const hd_gpu_backend *gpu, const char *what);

/* ---- gpu_peak.cu ---- */
/* The FP32 SGEMM rate in GFLOP/s (backend.h's peak_gflops), measured once. */
double gpu_peak_gflops(hd_backend *be);

/* ---- gpu_bias_act.cu ---- */
/* out[i, c, s] = act(out[i, c, s] + bias[c]) over n x channels x spatial. */
void gpu_bias_act_forward(hd_gpu_backend *gpu, float *out, const float *bias, int n, int channels,
                          int spatial, hd_activation act);
/* With ReLU, zeroes dout where out <= 0 (in place); then dbias[c] = sum over i, s of dout
 * (skipped when dbias is NULL). A (channel x image-chunk) grid, then the chunks' partial sums in
 * chunk order: the same result on every run. */
void gpu_bias_act_backward(hd_gpu_backend *gpu, const float *out, float *dout, float *dbias, int n,
                           int channels, int spatial, hd_activation act);
/* The image ranges a channel's bias gradient is cut into: from the shape alone (about 4096
 * elements a range, at most HD_GPU_BIAS_MAX_CHUNKS, at most n, chunks x channels within
 * `partials`, each range under 2^31 elements); 1 means one block per channel. */
int gpu_bias_chunks(int n, int channels, int spatial, size_t partials);
/* Allocates / frees gpu->bias_partials (0 / -1 + hd_fail). */
int gpu_bias_act_init(hd_gpu_backend *gpu);
void gpu_bias_act_release(hd_gpu_backend *gpu);

/* ---- the ops, one file each ---- */
void *gpu_conv2d_plan(hd_backend *be, const hd_conv_shape *shape);
void gpu_conv2d_plan_free(hd_backend *be, void *plan);
void gpu_conv2d_forward(hd_backend *be, void *plan, int n, const float *in, const float *weight,
                        const float *bias, float *out);
void gpu_conv2d_backward(hd_backend *be, void *plan, int n, const float *in, const float *weight,
                         const float *out, float *dout, float *din, float *dweight, float *dbias);

void *gpu_maxpool_plan(hd_backend *be, const hd_pool_shape *shape);
void gpu_maxpool_plan_free(hd_backend *be, void *plan);
void gpu_maxpool_forward(hd_backend *be, void *plan, int n, const float *in, float *out);
void gpu_maxpool_backward(hd_backend *be, void *plan, int n, const float *in, const float *out,
                          const float *dout, float *din);

void gpu_avgpool_forward(hd_backend *be, const hd_pool_shape *shape, int n, const float *in, float *out);
void gpu_avgpool_backward(hd_backend *be, const hd_pool_shape *shape, int n, const float *dout, float *din);
void gpu_gap_forward(hd_backend *be, int n, int channels, int plane, const float *in, float *out);
void gpu_gap_backward(hd_backend *be, int n, int channels, int plane, const float *dout, float *din);

void gpu_dense_forward(hd_backend *be, int n, int in_f, int out_f, const float *in, const float *weight,
                       const float *bias, float *out, hd_activation act);
void gpu_dense_backward(hd_backend *be, int n, int in_f, int out_f, const float *in, const float *weight,
                        const float *out, float *dout, float *din, float *dweight, float *dbias,
                        hd_activation act);

void gpu_dropout_forward(hd_backend *be, size_t count, float rate, uint64_t seed, uint32_t layer_index,
                         const hd_step_scalars *step, const float *in, float *out);
void gpu_dropout_backward(hd_backend *be, size_t count, float rate, uint64_t seed, uint32_t layer_index,
                          const hd_step_scalars *step, const float *dout, float *din);

void gpu_batchnorm_forward(hd_backend *be, const hd_batchnorm_shape *shape, int n, int batch_stats,
                           const float *in, const float *gamma, const float *beta, float *running,
                           float *saved, float *out);
void gpu_batchnorm_backward(hd_backend *be, const hd_batchnorm_shape *shape, int n, int batch_stats,
                            const float *in, const float *gamma, const float *saved, const float *dout,
                            float *din, float *dgamma, float *dbeta);

/* gpu_bias_act.cu: the standalone relu layer's ops. */
void gpu_relu_forward(hd_backend *be, size_t count, const float *in, float *out);
void gpu_relu_backward(hd_backend *be, size_t count, const float *out, const float *dout, float *din);

void gpu_softmax_xent(hd_backend *be, int n, int classes, const float *logits, const int32_t *labels,
                      float smoothing, float *dlogits, float grad_divisor, float *metrics);

void gpu_adam_step(hd_backend *be, size_t count, float *params, const float *grads, float *m, float *v,
                   float beta1, float beta2, float eps, const hd_step_scalars *step);
void gpu_sgd_step(hd_backend *be, size_t count, float *params, const float *grads, float *velocity,
                  float momentum, int nesterov, const hd_step_scalars *step);
void gpu_ema_update(hd_backend *be, size_t count, float *avg, const float *x, const hd_step_scalars *step);

#ifdef __cplusplus
}
#endif

#endif
