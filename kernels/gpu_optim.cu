/* gpu_optim.cu: the Adam and SGD-with-momentum updates over all parameters, one launch each, and the
 * weights' moving average (--ema, hd_ema_update).
 *
 * Layout: params, grads and the optimizer state (m, v; or velocity) are `count` contiguous
 * floats with the model's one parameter layout. Each element is updated in place by
 * hd_adam_update / hd_sgd_update from shared_math.h, the functions the CPU path calls.
 * Adam's bias corrections are folded into the step size by the caller (optimizer.c), which
 * the kernels read from backend memory (hd_step_scalars), so a recorded step replays with its
 * own. */
#include "gpu_internal.h"
#include "hd/shared_math.h"

__global__ void hdgpu_adam_kernel(size_t count, float *params, const float *grads, float *m, float *v,
                                  float beta1, float beta2, float eps, const hd_step_scalars *step) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    float step_size = step->step_size;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += stride)
        hd_adam_update(&params[i], &m[i], &v[i], grads[i], beta1, beta2, eps, step_size);
}

__global__ void hdgpu_sgd_kernel(size_t count, float *params, const float *grads, float *velocity,
                                 float momentum, int nesterov, const hd_step_scalars *step) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    float lr = step->step_size;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += stride)
        hd_sgd_update(&params[i], &velocity[i], grads[i], lr, momentum, nesterov);
}

__global__ void hdgpu_ema_kernel(size_t count, float *avg, const float *x, const hd_step_scalars *step) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    float w = step->average_weight;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += stride)
        avg[i] = hd_ema_update(avg[i], x[i], w);
}

void gpu_adam_step(hd_backend *be, size_t count, float *params, const float *grads, float *m, float *v,
                   float beta1, float beta2, float eps, const hd_step_scalars *step) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    if (count == 0)
        return;
    gpu_enter(gpu);
    gpu_use_floats(gpu, params, count);
    gpu_use_floats(gpu, grads, count);
    gpu_use_floats(gpu, m, count);
    gpu_use_floats(gpu, v, count);
    gpu_use(gpu, step, sizeof *step);
    hdgpu_adam_kernel<<<gpu_grid_blocks(gpu, count), HD_GPU_THREADS, 0, gpu->compute>>>(
        count, params, grads, m, v, beta1, beta2, eps, step);
    CUDA_OP_LAUNCH(gpu);
    gpu_op_done(gpu, "adam_step");
}

void gpu_sgd_step(hd_backend *be, size_t count, float *params, const float *grads, float *velocity,
                  float momentum, int nesterov, const hd_step_scalars *step) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    if (count == 0)
        return;
    gpu_enter(gpu);
    gpu_use_floats(gpu, params, count);
    gpu_use_floats(gpu, grads, count);
    gpu_use_floats(gpu, velocity, count);
    gpu_use(gpu, step, sizeof *step);
    hdgpu_sgd_kernel<<<gpu_grid_blocks(gpu, count), HD_GPU_THREADS, 0, gpu->compute>>>(
        count, params, grads, velocity, momentum, nesterov, step);
    CUDA_OP_LAUNCH(gpu);
    gpu_op_done(gpu, "sgd_step");
}

void gpu_ema_update(hd_backend *be, size_t count, float *avg, const float *x, const hd_step_scalars *step) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    if (count == 0)
        return;
    gpu_enter(gpu);
    gpu_use_floats(gpu, avg, count);
    gpu_use_floats(gpu, x, count);
    gpu_use(gpu, step, sizeof *step);
    hdgpu_ema_kernel<<<gpu_grid_blocks(gpu, count), HD_GPU_THREADS, 0, gpu->compute>>>(count, avg, x, step);
    CUDA_OP_LAUNCH(gpu);
    gpu_op_done(gpu, "ema_update");
}
