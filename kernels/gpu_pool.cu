/* gpu_pool.cu: max pooling (window = stride = size, no padding, floor) on cuDNN pooling
 * descriptors, with the tie rule of backend.h checked at plan time.
 *
 * Layout: in (n, c, in_h, in_w), out (n, c, out_h, out_w), NCHW float32.
 * Gradients: din is written with `=`: every element, also the rows and columns no window
 * covers when size does not divide the input (zeroed first).
 * Ties: backend.h routes a window's gradient to its first maximum (row-major), as the CPU
 * path does. cuDNN's CUDNN_POOLING_MAX_DETERMINISTIC sends it to one maximum, the same on
 * every run, but does not document which. So each plan probes it once: a tiny input with
 * an all-equal window and a window with two equal maxima goes through cudnnPoolingBackward;
 * if the gradients land on the first maxima, backward uses cuDNN, otherwise
 * maxpool_backward_kernel below, which applies the rule itself (one thread per window;
 * windows do not overlap, so no two threads write one element). Forward is always cuDNN:
 * the maximum is exact either way. */
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

__global__ void maxpool_backward_kernel(size_t windows, int in_h, int in_w, int out_h, int out_w, int size,
                                        const float *in, const float *dout, float *din) {
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

/* Runs cudnnPoolingBackward on one plane of size x 2*size: window 0 all ones (first maximum:
 * its first element), window 1 zeros with 2 at (0, 1) and (1, 0) (first maximum: (0, 1)).
 * Sets plan->cudnn_first_max. Plan time only: allocates and waits. */
static int probe_cudnn_ties(hd_gpu_backend *gpu, gpu_pool_plan *plan) {
    int size = plan->shape.size;
    plan->cudnn_first_max = 1;
    if (size < 2)
        return 0; /* a window of one element has no ties */
    int w = 2 * size, count = size * w;
    float host_in[2 * 16 * 16], host_din[2 * 16 * 16], expect[2 * 16 * 16];
    if (size > 16) {
        plan->cudnn_first_max = 0; /* too big to probe here: use our kernel */
        return 0;
    }
    for (int i = 0; i < count; i++) {
        int y = i / w, x = i % w;
        host_in[i] = x < size ? 1.0f : ((y == 0 && x == size + 1) || (y == 1 && x == size) ? 2.0f : 0.0f);
        expect[i] = (i == 0) ? 1.0f : (i == size + 1 ? 2.0f : 0.0f);
    }
    const float host_out[2] = {1.0f, 2.0f}, host_dout[2] = {1.0f, 2.0f};
    cudnnTensorDescriptor_t x_desc = NULL, y_desc = NULL;
    float *buf = NULL;
    int rc = -1;
    cudnnStatus_t status = CUDNN_STATUS_SUCCESS;
    const float one = 1.0f, zero = 0.0f;
    if (cudnnCreateTensorDescriptor(&x_desc) != CUDNN_STATUS_SUCCESS ||
        cudnnCreateTensorDescriptor(&y_desc) != CUDNN_STATUS_SUCCESS ||
        cudnnSetTensor4dDescriptor(x_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, size, w) !=
            CUDNN_STATUS_SUCCESS ||
        cudnnSetTensor4dDescriptor(y_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 1, 2) !=
            CUDNN_STATUS_SUCCESS) {
        hd_fail("maxpool plan: cannot make the tie probe's descriptors");
        goto done;
    }
    if (cudaMalloc(&buf, (2 * (size_t)count + 4) * sizeof(float)) != cudaSuccess) {
        (void)cudaGetLastError();
        buf = NULL;
        hd_fail("maxpool plan: out of GPU memory for the tie probe");
        goto done;
    }
    {
        float *d_in = buf, *d_din = buf + count, *d_out = buf + 2 * count, *d_dout = d_out + 2;
        if (cudaMemcpyAsync(d_in, host_in, count * sizeof(float), cudaMemcpyHostToDevice, gpu->compute) !=
                cudaSuccess ||
            cudaMemcpyAsync(d_out, host_out, sizeof host_out, cudaMemcpyHostToDevice, gpu->compute) !=
                cudaSuccess ||
            cudaMemcpyAsync(d_dout, host_dout, sizeof host_dout, cudaMemcpyHostToDevice, gpu->compute) !=
                cudaSuccess ||
            cudaMemsetAsync(d_din, 0, count * sizeof(float), gpu->compute) != cudaSuccess) {
            hd_fail("maxpool plan: tie probe upload failed: %s", cudaGetErrorString(cudaGetLastError()));
            goto done;
        }
        status = cudnnPoolingBackward(gpu->cudnn, plan->pool_desc, &one, y_desc, d_out, y_desc, d_dout,
                                      x_desc, d_in, &zero, x_desc, d_din);
        if (status != CUDNN_STATUS_SUCCESS) {
            hd_fail("maxpool plan: cudnnPoolingBackward (tie probe) failed: %s", hd_gpu_cudnn_error(status));
            goto done;
        }
        if (cudaMemcpyAsync(host_din, d_din, count * sizeof(float), cudaMemcpyDeviceToHost, gpu->compute) !=
                cudaSuccess ||
            cudaStreamSynchronize(gpu->compute) != cudaSuccess) {
            hd_fail("maxpool plan: tie probe download failed: %s", cudaGetErrorString(cudaGetLastError()));
            goto done;
        }
    }
    for (int i = 0; i < count; i++)
        if (host_din[i] != expect[i])
            plan->cudnn_first_max = 0;
    rc = 0;
done:
    if (buf && cudaFree(buf) != cudaSuccess)
        (void)cudaGetLastError();
    if (x_desc)
        CUDNN_CHECK(cudnnDestroyTensorDescriptor(x_desc));
    if (y_desc)
        CUDNN_CHECK(cudnnDestroyTensorDescriptor(y_desc));
    return rc;
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
    use_batch(plan, n);
    const float one = 1.0f, zero = 0.0f;
    CUDNN_CHECK(cudnnPoolingForward(gpu->cudnn, plan->pool_desc, &one, plan->in_desc, in, &zero,
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
    gpu_enter(gpu);
    if (!plan->covers_input)
        CUDA_CHECK(cudaMemsetAsync(din, 0, (size_t)n * s->channels * s->in_h * s->in_w * sizeof(float),
                                   gpu->compute));
    if (plan->cudnn_first_max) {
        use_batch(plan, n);
        const float one = 1.0f, zero = 0.0f;
        CUDNN_CHECK(cudnnPoolingBackward(gpu->cudnn, plan->pool_desc, &one, plan->out_desc, out,
                                         plan->out_desc, dout, plan->in_desc, in, &zero, plan->in_desc, din));
    } else {
        size_t windows = (size_t)n * s->channels * s->out_h * s->out_w;
        maxpool_backward_kernel<<<gpu_grid_blocks(gpu, windows), HD_GPU_THREADS, 0, gpu->compute>>>(
            windows, s->in_h, s->in_w, s->out_h, s->out_w, s->size, in, dout, din);
        CUDA_CHECK_LAUNCH();
    }
    gpu_op_done(gpu, "maxpool_backward");
}
