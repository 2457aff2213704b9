/* gpu_internal.h: the GPU backend's context and the functions its files share.
 *
 * One hd_gpu_backend (embedding hd_backend first, so a hd_backend * is also a
 * hd_gpu_backend *) owns everything the GPU path needs: the device, a compute stream on which
 * every op is queued in call order, a copy stream for uploads, the cuDNN and cuBLAS handles
 * (both bound to the compute stream), one cuDNN workspace shared by all plans (grown only
 * when a plan is made), cuBLAS's own workspace, and a ring of events for fences. Nothing is
 * global; nothing is allocated and the host never waits inside an op.
 *
 * Layout everywhere: NCHW float32, contiguous; dense activations (n, features) row-major;
 * conv weights (out_c, in_c, k, k); dense weights (out_f, in_f). Gradients are written with
 * `=` (backend.h). Ops must be called from one host thread at a time. */
#ifndef HD_GPU_INTERNAL_H
#define HD_GPU_INTERNAL_H

#include "gpu_check.h"
#include "hd/backend.h"

#include <stddef.h>

#define HD_GPU_FENCE_RING     64  /* fence tokens map to events modulo this */
#define HD_GPU_THREADS        256 /* threads per block of the element-wise kernels */
#define HD_GPU_REDUCE_THREADS 512 /* threads per block of the per-channel reductions */

typedef struct hd_gpu_backend {
    hd_backend base; /* first: the trainer sees only this */
    hd_backend_ops ops_table;
    hd_gpu_options options;
    int sync_each_op; /* HD_GPU_SYNC=1: synchronise after every op (debugging) */

    int device;
    char device_name[256];
    size_t total_memory;
    int cc_major, cc_minor;
    int sm_count;

    cudaStream_t compute;     /* every op, in call order */
    cudaStream_t copy;        /* host -> device uploads */
    cudaEvent_t compute_tail; /* recorded on compute before an upload; the copy waits for it */
    cudaEvent_t copy_done;    /* recorded on copy after an upload; compute waits for it */
    cudaEvent_t fences[HD_GPU_FENCE_RING];
    unsigned fence_count;

    cudnnHandle_t cudnn;
    cublasHandle_t cublas;
    void *workspace; /* cuDNN workspace, shared by all conv plans */
    size_t workspace_bytes;
    void *cublas_workspace;
    size_t cublas_workspace_bytes;

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

/* ---- gpu_bias_act.cu ---- */
/* out[i, c, s] = act(out[i, c, s] + bias[c]) over n x channels x spatial. */
void gpu_bias_act_forward(hd_gpu_backend *gpu, float *out, const float *bias, int n, int channels,
                          int spatial, hd_activation act);
/* With ReLU, zeroes dout where out <= 0 (in place); then dbias[c] = sum over i, s of dout
 * (skipped when dbias is NULL). One block per channel, fixed summation order. */
void gpu_bias_act_backward(hd_gpu_backend *gpu, const float *out, float *dout, float *dbias, int n,
                           int channels, int spatial, hd_activation act);

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

void gpu_dense_forward(hd_backend *be, int n, int in_f, int out_f, const float *in, const float *weight,
                       const float *bias, float *out, hd_activation act);
void gpu_dense_backward(hd_backend *be, int n, int in_f, int out_f, const float *in, const float *weight,
                        const float *out, float *dout, float *din, float *dweight, float *dbias,
                        hd_activation act);

void gpu_dropout_forward(hd_backend *be, size_t count, float rate, uint64_t seed, uint32_t layer_index,
                         uint64_t step, const float *in, float *out);
void gpu_dropout_backward(hd_backend *be, size_t count, float rate, uint64_t seed, uint32_t layer_index,
                          uint64_t step, const float *dout, float *din);

void gpu_softmax_xent(hd_backend *be, int n, int classes, const float *logits, const int32_t *labels,
                      float *dlogits, float grad_divisor, float *metrics);

void gpu_adam_step(hd_backend *be, size_t count, float *params, const float *grads, float *m, float *v,
                   float beta1, float beta2, float eps, float step_size);
void gpu_sgd_step(hd_backend *be, size_t count, float *params, const float *grads, float *velocity, float lr,
                  float momentum, int nesterov);

#ifdef __cplusplus
}
#endif

#endif
