/* cpu_optim.c: the Adam and SGD-with-momentum updates over all parameters on the CPU, and the weights'
 * moving average
 * (kernels/gpu_optim.cu is its GPU twin), element by element through hd_adam_update / hd_sgd_update
 * from shared_math.h, the functions the GPU kernels call. The step size is read from hd_step_scalars,
 * as a recorded GPU step reads it. */
#include "cpu_backend.h"
#include "hd/shared_math.h"

void cpu_adam_step(hd_backend *be, size_t count, float *params, const float *grads, float *m, float *v,
                   float beta1, float beta2, float eps, const hd_step_scalars *step) {
    long long total = (long long)count;
    float step_size = step->step_size;
#pragma omp parallel for schedule(static) num_threads(cpu_threads(be))
    for (long long i = 0; i < total; i++)
        hd_adam_update(&params[i], &m[i], &v[i], grads[i], beta1, beta2, eps, step_size);
}

void cpu_sgd_step(hd_backend *be, size_t count, float *params, const float *grads, float *velocity,
                  float momentum, int nesterov, const hd_step_scalars *step) {
    long long total = (long long)count;
    float lr = step->step_size;
#pragma omp parallel for schedule(static) num_threads(cpu_threads(be))
    for (long long i = 0; i < total; i++)
        hd_sgd_update(&params[i], &velocity[i], grads[i], lr, momentum, nesterov);
}

void cpu_ema_update(hd_backend *be, size_t count, float *avg, const float *x, const hd_step_scalars *step) {
    long long total = (long long)count;
    float w = step->average_weight;
#pragma omp parallel for schedule(static) num_threads(cpu_threads(be))
    for (long long i = 0; i < total; i++)
        avg[i] = hd_ema_update(avg[i], x[i], w);
}
