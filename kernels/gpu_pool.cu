/* gpu_pool.cu: max pooling (window = stride = size, no padding, floor) on cuDNN pooling
 * descriptors, with the tie rule of backend.h checked at plan time.
 *
 * Layout: in (n, c, in_h, in_w), out (n, c, out_h, out_w), NCHW float32.
 * Gradients: din is written with `=`: every element, also the rows and columns no window
 * covers when size does not divide the input (zeroed first).
 * Ties: backend.h routes a window's gradient to its first maximum (row-major), as the CPU
 * path does. cuDNN's CUDNN_POOLING_MAX_DETERMINISTIC sends it to one maximum, the same on
 * every run, but does not document which. So each plan probes it once, on its own shape
 * with tie-heavy input: if cudnnPoolingBackward's gradients equal those of
 * hdgpu_maxpool_backward_kernel below, which applies the rule itself (one thread per window;
 * windows do not overlap, so no two threads write one element), backward uses cuDNN;
 * otherwise that kernel. Forward is always cuDNN: the maximum is exact either way. */
#include "gpu_internal.h"
#include "hd/common.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    hd_pool_shape shape;
    cudnnPoolingDescriptor_t pool_desc;
    cudnnTensorDescriptor_t in_desc, out_desc;
    int described_n;     /* the batch size the tensor descriptors hold now */
    int covers_input;    /* every input element lies in a window */
    int cudnn_first_max; /* the probe found cuDNN's backward follows the first-maximum rule */
} gpu_pool_plan;

__global__ void hdgpu_maxpool_backward_kernel(size_t windows, int in_h, int in_w, int out_h, int out_w,
                                              int size, const float *in, const float *dout, float *din) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t per_plane = (size_t)out_h * (size_t)out_w;
    for (size_t w = (size_t)blockIdx.x * blockDim.x + threadIdx.x; w < windows; w += stride) {
        size_t plane = w / per_plane;
        int r = (int)(w - plane * per_plane);
        int oy = r / out_w, ox = r - (r / out_w) * out_w;
        const float *x = in + plane * (size_t)in_h * (size_t)in_w;
        float *dx = din + plane * (size_t)in_h * (size_t)in_w;
        int best = oy * size * in_w + ox * size;
        float best_value = x[best];
        for (int dy = 0; dy < size; dy++)
            for (int dxi = 0; dxi < size; dxi++) {
                int idx = (oy * size + dy) * in_w + ox * size + dxi;
                if (x[idx] > best_value) {
                    best_value = x[idx];
                    best = idx;
                }
            }
        float g = dout[w];
        for (int dy = 0; dy < size; dy++)
            for (int dxi = 0; dxi < size; dxi++) {
                int idx = (oy * size + dy) * in_w + ox * size + dxi;
                dx[idx] = idx == best ? g : 0.0f;
            }
    }
}

static int set_batch(gpu_pool_plan *plan, int n) {
    const hd_pool_shape *s = &plan->shape;
    if (plan->described_n == n)
        return 0;
    CUDNN_TRY(cudnnSetTensor4dDescriptor(plan->in_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, s->channels,
                                         s->in_h, s->in_w));
    CUDNN_TRY(cudnnSetTensor4dDescriptor(plan->out_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, s->channels,
                                         s->out_h, s->out_w));
    plan->described_n = n;
    return 0;
}

/* The probe runs at two batch sizes, each capped by the plan's max_batch: the default training batch, at
 * which backward runs, and a large one, so that cuDNN is checked with the kernels it picks for both. */
#define PROBE_TRAIN_BATCH 128
#define PROBE_LARGE_BATCH 512

/* In the probe: a failed call records its text, file:line and error, then cleans up. */
#define PROBE_CUDA(call)                                                                                     \
    do {                                                                                                     \
        cudaError_t probe_err_ = (call);                                                                     \
        if (probe_err_ != cudaSuccess) {                                                                     \
            (void)cudaGetLastError();                                                                        \
            hd_gpu_fail_call("CUDA", #call, cudaGetErrorString(probe_err_), __FILE__, __LINE__);             \
            goto done;                                                                                       \
        }                                                                                                    \
    } while (0)
#define PROBE_CUDNN(call)                                                                                    \
    do {                                                                                                     \
        cudnnStatus_t probe_status_ = (call);                                                                \
        if (probe_status_ != CUDNN_STATUS_SUCCESS) {                                                         \
            hd_gpu_fail_call("cuDNN", #call, hd_gpu_cudnn_error(probe_status_), __FILE__, __LINE__);         \
            goto done;                                                                                       \
        }                                                                                                    \
    } while (0)

/* Tie-heavy input, like pooling after a ReLU: 60% zeros, the rest one of three levels. */
static void fill_ties(float *x, size_t count) {
    uint32_t state = 12345u;
    for (size_t i = 0; i < count; i++) {
        state = state * 1664525u + 1013904223u;
        uint32_t r = (state >> 8) % 10u;
        x[i] = r < 6u ? 0.0f : (float)(r - 5u) / 4.0f; /* 0, 0.25, 0.5, 0.75, 1 */
    }
}

/* Runs cuDNN's backward and hdgpu_maxpool_backward_kernel on the plan's own shape for n images with
 * tie-heavy input; plan->cudnn_first_max stays 1 only when both give bit-equal gradients (cuDNN
 * routes ties to the first maximum, as backend.h asks). Plan time only: allocates and waits. */
static int probe_cudnn_ties_at(hd_gpu_backend *gpu, gpu_pool_plan *plan, int n) {
    const hd_pool_shape *s = &plan->shape;
    size_t in_count = (size_t)n * s->channels * s->in_h * s->in_w;
    size_t out_count = (size_t)n * s->channels * s->out_h * s->out_w;
    size_t total = 3 * in_count + 2 * out_count;
    float *host = (float *)malloc(total * sizeof(float)), *dev = NULL;
    if (!host)
        return hd_fail("maxpool plan: out of host memory for the tie probe");
    float *h_in = host, *h_dout = host + in_count, *h_din_cudnn = h_dout + out_count;
    float *h_din_ours = h_din_cudnn + in_count;
    fill_ties(h_in, in_count);
    for (size_t i = 0; i < out_count; i++)
        h_dout[i] = (float)(i % 7u) + 1.0f; /* non-zero: every routed gradient shows */
    int rc = -1;
    if (cudaMalloc(&dev, total * sizeof(float)) != cudaSuccess) {
        (void)cudaGetLastError();
        dev = NULL;
        rc = gpu_fail_out_of_memory("the max-pooling tie probe", total * sizeof(float));
        goto done;
    }
    {
        float *d_in = dev, *d_dout = dev + in_count, *d_din_cudnn = d_dout + out_count;
        float *d_din_ours = d_din_cudnn + in_count, *d_out = d_din_ours + in_count;
        const float one = 1.0f, zero = 0.0f;
        PROBE_CUDA(cudaMemcpyAsync(d_in, h_in, (in_count + out_count) * sizeof(float), cudaMemcpyHostToDevice,
                                   gpu->compute));
        PROBE_CUDA(cudaMemsetAsync(d_din_cudnn, 0, 2 * in_count * sizeof(float), gpu->compute));
        if (set_batch(plan, n) != 0)
            goto done;
        PROBE_CUDNN(cudnnPoolingForward(gpu->cudnn, plan->pool_desc, &one, plan->in_desc, d_in, &zero,
                                        plan->out_desc, d_out));
        /* cuDNN's backward failing here only means ours does backward: not a failed plan. */
        cudnnStatus_t backward_status =
            cudnnPoolingBackward(gpu->cudnn, plan->pool_desc, &one, plan->out_desc, d_out, plan->out_desc,
                                 d_dout, plan->in_desc, d_in, &zero, plan->in_desc, d_din_cudnn);
        if (backward_status != CUDNN_STATUS_SUCCESS) {
            (void)cudaGetLastError(); /* a failed launch inside cuDNN must not fail a later op */
            if (gpu->options.verbose)
                fprintf(stderr,
                        "hd-gpu: maxpool %dx%dx%d size %d: cudnnPoolingBackward failed (%s); ours runs\n",
                        s->channels, s->in_h, s->in_w, s->size, hd_gpu_cudnn_error(backward_status));
            plan->cudnn_first_max = 0;
            rc = 0;
            goto done;
        }
        hdgpu_maxpool_backward_kernel<<<gpu_grid_blocks(gpu, out_count), HD_GPU_THREADS, 0, gpu->compute>>>(
            out_count, s->in_h, s->in_w, s->out_h, s->out_w, s->size, d_in, d_dout, d_din_ours);
        PROBE_CUDA(cudaGetLastError());
        PROBE_CUDA(cudaMemcpyAsync(h_din_cudnn, d_din_cudnn, 2 * in_count * sizeof(float),
                                   cudaMemcpyDeviceToHost, gpu->compute));
        PROBE_CUDA(cudaStreamSynchronize(gpu->compute));
    }
    {
        size_t differ = 0;
        for (size_t i = 0; i < in_count; i++)
            differ += h_din_cudnn[i] != h_din_ours[i];
        if (differ)
            plan->cudnn_first_max = 0;
        if (gpu->options.verbose && differ)
            fprintf(stderr,
                    "hd-gpu: maxpool %dx%dx%d size %d, %d images: cuDNN routes %zu of %zu tie gradients "
                    "elsewhere\n",
                    s->channels, s->in_h, s->in_w, s->size, n, differ, in_count);
    }
    rc = 0;
done:
    if (dev) {
        /* Waits for the probe's queued work (also after a failure) before the memory goes. */
        if (cudaStreamSynchronize(gpu->compute) != cudaSuccess)
            (void)cudaGetLastError();
        if (cudaFree(dev) != cudaSuccess)
            (void)cudaGetLastError();
    }
    free(host);
    return rc;
}

/* Keeps cuDNN for backward (plan->cudnn_first_max) only when it routes ties as ours does at both probe
 * batch sizes; a window of one element has no ties. */
static int probe_cudnn_ties(hd_gpu_backend *gpu, gpu_pool_plan *plan) {
    const hd_pool_shape *s = &plan->shape;
    plan->cudnn_first_max = 1;
    if (s->size < 2)
        return 0;
    int train_n = s->max_batch < PROBE_TRAIN_BATCH ? s->max_batch : PROBE_TRAIN_BATCH;
    int large_n = s->max_batch < PROBE_LARGE_BATCH ? s->max_batch : PROBE_LARGE_BATCH;
    if (probe_cudnn_ties_at(gpu, plan, train_n) != 0)
        return -1;
    if (plan->cudnn_first_max && large_n != train_n && probe_cudnn_ties_at(gpu, plan, large_n) != 0)
        return -1;
    return 0;
}

static int plan_init(hd_gpu_backend *gpu, gpu_pool_plan *plan) {
    const hd_pool_shape *s = &plan->shape;
    if (s->max_batch < 1 || s->channels < 1 || s->size < 1 || s->out_h != s->in_h / s->size ||
        s->out_w != s->in_w / s->size || s->out_h < 1 || s->out_w < 1)
        return hd_fail("maxpool plan: inconsistent shape %dx%dx%d -> %dx%d, size %d, max_batch %d",
                       s->channels, s->in_h, s->in_w, s->out_h, s->out_w, s->size, s->max_batch);
    CUDNN_TRY(cudnnCreatePoolingDescriptor(&plan->pool_desc));
    CUDNN_TRY(cudnnSetPooling2dDescriptor(plan->pool_desc, CUDNN_POOLING_MAX_DETERMINISTIC,
                                          CUDNN_NOT_PROPAGATE_NAN, s->size, s->size, 0, 0, s->size, s->size));
    CUDNN_TRY(cudnnCreateTensorDescriptor(&plan->in_desc));
    CUDNN_TRY(cudnnCreateTensorDescriptor(&plan->out_desc));
    if (set_batch(plan, s->max_batch) != 0)
        return -1;
    int on, oc, oh, ow;
    CUDNN_TRY(cudnnGetPooling2dForwardOutputDim(plan->pool_desc, plan->in_desc, &on, &oc, &oh, &ow));
    if (on != s->max_batch || oc != s->channels || oh != s->out_h || ow != s->out_w)
        return hd_fail("maxpool plan: cuDNN computes output %dx%dx%dx%d, the shape says %dx%dx%dx%d", on, oc,
                       oh, ow, s->max_batch, s->channels, s->out_h, s->out_w);
    plan->covers_input = s->out_h * s->size == s->in_h && s->out_w * s->size == s->in_w;
    if (probe_cudnn_ties(gpu, plan) != 0)
        return -1;
    if (gpu->options.verbose)
        fprintf(stderr, "hd-gpu: maxpool %dx%dx%d size %d: backward by %s\n", s->channels, s->in_h, s->in_w,
                s->size,
                plan->cudnn_first_max ? "cuDNN (ties go to the first maximum)"
                                      : "our kernel (cuDNN does not send ties to the first maximum)");
    return 0;
}

void gpu_maxpool_plan_free(hd_backend *be, void *plan_ptr) {
    gpu_require_not_recording(hd_gpu_from(be), "maxpool_plan_free");
    gpu_pool_plan *plan = (gpu_pool_plan *)plan_ptr;
    if (!plan)
        return;
    gpu_enter(hd_gpu_from(be));
    if (plan->pool_desc)
        CUDNN_CHECK(cudnnDestroyPoolingDescriptor(plan->pool_desc));
    if (plan->in_desc)
        CUDNN_CHECK(cudnnDestroyTensorDescriptor(plan->in_desc));
    if (plan->out_desc)
        CUDNN_CHECK(cudnnDestroyTensorDescriptor(plan->out_desc));
    free(plan);
}

void *gpu_maxpool_plan(hd_backend *be, const hd_pool_shape *shape) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    gpu_require_not_recording(gpu, "maxpool_plan");
    gpu_enter(gpu);
    gpu_pool_plan *plan = (gpu_pool_plan *)hd_calloc(1, sizeof *plan);
    if (!plan)
        return NULL;
    plan->shape = *shape;
    if (plan_init(gpu, plan) != 0) {
        gpu_maxpool_plan_free(be, plan);
        return NULL;
    }
    return plan;
}

/* Descriptors for n images (host only: cuDNN reads them when an op is queued). */
static void use_batch(gpu_pool_plan *plan, int n) {
    if (n > plan->shape.max_batch) {
        fprintf(stderr, "hd-gpu: maxpool: batch of %d images exceeds the plan's max_batch %d\n", n,
                plan->shape.max_batch);
        exit(1);
    }
    if (set_batch(plan, n) != 0) {
        fprintf(stderr, "hd-gpu: maxpool: %s\n", hd_last_error());
        exit(1);
    }
}

void gpu_maxpool_forward(hd_backend *be, void *plan_ptr, int n, const float *in, float *out) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    gpu_pool_plan *plan = (gpu_pool_plan *)plan_ptr;
    if (n <= 0)
        return;
    gpu_enter(gpu);
    const hd_pool_shape *s = &plan->shape;
    gpu_use_floats(gpu, in, (size_t)n * s->channels * s->in_h * s->in_w);
    gpu_use_floats(gpu, out, (size_t)n * s->channels * s->out_h * s->out_w);
    use_batch(plan, n);
    const float one = 1.0f, zero = 0.0f;
    CUDNN_OP(gpu, cudnnPoolingForward(gpu->cudnn, plan->pool_desc, &one, plan->in_desc, in, &zero,
                                      plan->out_desc, out));
    gpu_op_done(gpu, "maxpool_forward");
}

void gpu_maxpool_backward(hd_backend *be, void *plan_ptr, int n, const float *in, const float *out,
                          const float *dout, float *din) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    gpu_pool_plan *plan = (gpu_pool_plan *)plan_ptr;
    const hd_pool_shape *s = &plan->shape;
    if (n <= 0)
        return;
    size_t in_count = (size_t)n * s->channels * s->in_h * s->in_w;
    size_t out_count = (size_t)n * s->channels * s->out_h * s->out_w;
    gpu_enter(gpu);
    gpu_use_floats(gpu, in, in_count);
    gpu_use_floats(gpu, out, out_count);
    gpu_use_floats(gpu, dout, out_count);
    gpu_use_floats(gpu, din, in_count);
    if (!plan->covers_input)
        CUDA_OP(gpu, cudaMemsetAsync(din, 0, in_count * sizeof(float), gpu->compute));
    if (plan->cudnn_first_max) {
        use_batch(plan, n);
        const float one = 1.0f, zero = 0.0f;
        CUDNN_OP(gpu,
                 cudnnPoolingBackward(gpu->cudnn, plan->pool_desc, &one, plan->out_desc, out, plan->out_desc,
                                      dout, plan->in_desc, in, &zero, plan->in_desc, din));
    } else {
        hdgpu_maxpool_backward_kernel<<<gpu_grid_blocks(gpu, out_count), HD_GPU_THREADS, 0, gpu->compute>>>(
            out_count, s->in_h, s->in_w, s->out_h, s->out_w, s->size, in, dout, din);
        CUDA_OP_LAUNCH(gpu);
    }
    gpu_op_done(gpu, "maxpool_backward");
}
