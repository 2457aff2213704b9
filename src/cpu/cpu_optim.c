/* cpu_optim.c: the Adam and SGD-with-momentum updates over all parameters on the CPU, and the weights'
 * moving average
 * (kernels/gpu_optim.cu is its GPU twin), element by element through hd_adam_update / hd_sgd_update
 * from shared_math.h, the functions the GPU kernels call. The step size is read from hd_step_scalars,
 * as a recorded GPU step reads it. */
#include "cpu_backend.h"
#include "hd/shared_math.h"

/* Each loop is a CPU_SIMD function over one thread's range (FOR_EACH_THREAD_RANGE, cpu_backend.h). */
CPU_SIMD static void adam_range(size_t begin, size_t end, float *params, const float *grads, float *m,
                                float *v, float beta1, float beta2, float eps, float step_size) {
#pragma omp simd
    for (size_t i = begin; i < end; i++)
        hd_adam_update(&params[i], &m[i], &v[i], grads[i], beta1, beta2, eps, step_size);
}

void cpu_adam_step(hd_backend *be, size_t count, float *params, const float *grads, float *m, float *v,
                   float beta1, float beta2, float eps, const hd_step_scalars *step) {
    float step_size = step->step_size;
    FOR_EACH_THREAD_RANGE(be, count,
                          adam_range(begin, end, params, grads, m, v, beta1, beta2, eps, step_size));
}

CPU_SIMD static void sgd_range(size_t begin, size_t end, float *params, const float *grads, float *velocity,
                               float lr, float momentum, int nesterov) {
#pragma omp simd
    for (size_t i = begin; i < end; i++)
        hd_sgd_update(&params[i], &velocity[i], grads[i], lr, momentum, nesterov);
}

void cpu_sgd_step(hd_backend *be, size_t count, float *params, const float *grads, float *velocity,
                  float momentum, int nesterov, const hd_step_scalars *step) {
    float lr = step->step_size;
    FOR_EACH_THREAD_RANGE(be, count, sgd_range(begin, end, params, grads, velocity, lr, momentum, nesterov));
}

CPU_SIMD static void ema_range(size_t begin, size_t end, float *avg, const float *x, float w) {
#pragma omp simd
    for (size_t i = begin; i < end; i++)
        avg[i] = hd_ema_update(avg[i], x[i], w);
}

void cpu_ema_update(hd_backend *be, size_t count, float *avg, const float *x, const hd_step_scalars *step) {
    float w = step->average_weight;
    FOR_EACH_THREAD_RANGE(be, count, ema_range(begin, end, avg, x, w));
}
