/* cpu_elementwise.c: the CPU ops that are one function of shared_math.h per element or per
 * row: ReLU, dropout, fused softmax + cross-entropy, the Adam and SGD updates; and the write of
 * the per-step scalars, which the CPU reads from its own memory. The GPU kernels call the very
 * same functions. */
#include "cpu_backend.h"
#include "hd/shared_math.h"

/* Both are written as selects, not branches: signs are random, so a branch would be
 * mispredicted half the time (this once cost a fifth of a CPU training step). */
void cpu_relu_inplace(float *x, size_t count) {
#pragma omp simd
    for (size_t i = 0; i < count; i++)
        x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void cpu_relu_mask_grad(const float *out, float *dout, size_t count) {
#pragma omp simd
    for (size_t i = 0; i < count; i++)
        dout[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}

void cpu_set_step_scalars(hd_backend *be, hd_step_scalars *dst, const hd_step_scalars *value) {
    (void)be;
    *dst = *value;
}

void cpu_dropout_forward(hd_backend *be, size_t count, float rate, uint64_t seed, uint32_t layer_index,
                         const hd_step_scalars *step_scalars, const float *in, float *out) {
    long long total = (long long)count;
    uint64_t step = rate > 0.0f ? step_scalars->step : 0;
#pragma omp parallel for schedule(static) num_threads(cpu_threads(be))
    for (long long i = 0; i < total; i++)
        out[i] = in[i] * hd_dropout_multiplier(seed, layer_index, step, (uint64_t)i, rate);
}

void cpu_dropout_backward(hd_backend *be, size_t count, float rate, uint64_t seed, uint32_t layer_index,
                          const hd_step_scalars *step_scalars, const float *dout, float *din) {
    long long total = (long long)count;
    uint64_t step = rate > 0.0f ? step_scalars->step : 0;
#pragma omp parallel for schedule(static) num_threads(cpu_threads(be))
    for (long long i = 0; i < total; i++)
        din[i] = dout[i] * hd_dropout_multiplier(seed, layer_index, step, (uint64_t)i, rate);
}

void cpu_softmax_xent(hd_backend *be, int n, int classes, const float *logits, const int32_t *labels,
                      float *dlogits, float grad_divisor, float *metrics) {
    (void)be;
    /* Rows are few (a batch) and cheap: one thread keeps the summation order fixed. */
    double loss_sum = 0.0;
    int correct_sum = 0;
    float grad_scale = 1.0f / grad_divisor;
    for (int row = 0; row < n; row++) {
        int correct = 0;
        float *grad_row = dlogits ? dlogits + (size_t)row * classes : NULL;
        loss_sum += hd_softmax_xent_row(logits + (size_t)row * classes, classes, labels[row], grad_row,
                                        grad_scale, &correct);
        correct_sum += correct;
    }
    metrics[0] += (float)loss_sum;
    metrics[1] += (float)correct_sum;
}

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
