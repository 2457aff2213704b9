/* gpu_avgpool.cu: average pooling and global average pooling, forward and backward, by our own kernels
 * (src/cpu/cpu_avgpool.c is the CPU twin).
 *
 * Layout: in (n, c, in_h, in_w), out (n, c, out_h, out_w) NCHW float32; gap's out is (n, c).
 * Each output (forward) or input element (backward) is one thread calling the shared_math.h function
 * the CPU path calls (hd_avgpool_window, hd_avgpool_grad, hd_plane_mean), so both backends sum in the
 * same order. Backward gathers (each din element reads its one window's gradient; windows do not
 * overlap): no atomics, every element of din written with `=`, also those no window covers (0). */
#include "gpu_internal.h"
#include "hd/shared_math.h"

__global__ void hdgpu_avgpool_forward_kernel(size_t outputs, int in_h, int in_w, int out_h, int out_w,
                                             int size, const float *in, float *out) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t per_plane = (size_t)out_h * (size_t)out_w;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < outputs; i += stride) {
        size_t plane = i / per_plane;
        int r = (int)(i - plane * per_plane);
        out[i] =
            hd_avgpool_window(in + plane * (size_t)in_h * (size_t)in_w, in_w, size, r / out_w, r % out_w);
    }
}

__global__ void hdgpu_avgpool_backward_kernel(size_t inputs, int in_h, int in_w, int out_h, int out_w,
                                              int size, const float *dout, float *din) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t per_plane = (size_t)in_h * (size_t)in_w;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < inputs; i += stride) {
        size_t plane = i / per_plane;
        int r = (int)(i - plane * per_plane);
        din[i] = hd_avgpool_grad(dout + plane * (size_t)out_h * (size_t)out_w, out_h, out_w, size, r / in_w,
                                 r % in_w);
    }
}

__global__ void hdgpu_gap_forward_kernel(size_t planes, int plane, const float *in, float *out) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t p = (size_t)blockIdx.x * blockDim.x + threadIdx.x; p < planes; p += stride)
        out[p] = hd_plane_mean(in + p * (size_t)plane, plane);
}

__global__ void hdgpu_gap_backward_kernel(size_t inputs, int plane, const float *dout, float *din) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < inputs; i += stride)
        din[i] = dout[i / (size_t)plane] / (float)plane;
}

void gpu_avgpool_forward(hd_backend *be, const hd_pool_shape *shape, int n, const float *in, float *out) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    const hd_pool_shape s = *shape;
    size_t in_count = (size_t)n * s.channels * s.in_h * s.in_w;
    size_t out_count = (size_t)n * s.channels * s.out_h * s.out_w;
    if (out_count == 0)
        return;
    gpu_enter(gpu);
    gpu_use_floats(gpu, in, in_count);
    gpu_use_floats(gpu, out, out_count);
    hdgpu_avgpool_forward_kernel<<<gpu_grid_blocks(gpu, out_count), HD_GPU_THREADS, 0, gpu->compute>>>(
        out_count, s.in_h, s.in_w, s.out_h, s.out_w, s.size, in, out);
    CUDA_OP_LAUNCH(gpu);
    gpu_op_done(gpu, "avgpool_forward");
}

void gpu_avgpool_backward(hd_backend *be, const hd_pool_shape *shape, int n, const float *dout, float *din) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    const hd_pool_shape s = *shape;
    size_t in_count = (size_t)n * s.channels * s.in_h * s.in_w;
    size_t out_count = (size_t)n * s.channels * s.out_h * s.out_w;
    if (in_count == 0)
        return;
    gpu_enter(gpu);
    gpu_use_floats(gpu, dout, out_count);
    gpu_use_floats(gpu, din, in_count);
    hdgpu_avgpool_backward_kernel<<<gpu_grid_blocks(gpu, in_count), HD_GPU_THREADS, 0, gpu->compute>>>(
        in_count, s.in_h, s.in_w, s.out_h, s.out_w, s.size, dout, din);
    CUDA_OP_LAUNCH(gpu);
    gpu_op_done(gpu, "avgpool_backward");
}

void gpu_gap_forward(hd_backend *be, int n, int channels, int plane, const float *in, float *out) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    size_t planes = (size_t)n * channels;
    if (planes == 0 || plane <= 0)
        return;
    gpu_enter(gpu);
    gpu_use_floats(gpu, in, planes * plane);
    gpu_use_floats(gpu, out, planes);
    hdgpu_gap_forward_kernel<<<gpu_grid_blocks(gpu, planes), HD_GPU_THREADS, 0, gpu->compute>>>(planes, plane,
                                                                                                in, out);
    CUDA_OP_LAUNCH(gpu);
    gpu_op_done(gpu, "gap_forward");
}

void gpu_gap_backward(hd_backend *be, int n, int channels, int plane, const float *dout, float *din) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    size_t planes = (size_t)n * channels, inputs = planes * (size_t)(plane > 0 ? plane : 0);
    if (inputs == 0)
        return;
    gpu_enter(gpu);
    gpu_use_floats(gpu, dout, planes);
    gpu_use_floats(gpu, din, inputs);
    hdgpu_gap_backward_kernel<<<gpu_grid_blocks(gpu, inputs), HD_GPU_THREADS, 0, gpu->compute>>>(
        inputs, plane, dout, din);
    CUDA_OP_LAUNCH(gpu);
    gpu_op_done(gpu, "gap_backward");
}
