/* cpu_bias_act.c: the activation after a convolution or a dense GEMM on the CPU, and its backward
 * (kernels/gpu_bias_act.cu is its GPU twin): ReLU in place, and the ReLU mask applied to dout in place
 * (out is the post-ReLU output). cpu_conv.c and cpu_dense.c add the bias as they write their output
 * and sum dbias with their own thread split, so only the activation is here. The standalone relu
 * layer's ops (cpu_relu_forward, cpu_relu_backward) are the same selects, out of place. */
#include "cpu_backend.h"

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

void cpu_relu_forward(hd_backend *be, size_t count, const float *in, float *out) {
    long long total = (long long)count;
#pragma omp parallel for simd schedule(static) num_threads(cpu_threads(be))
    for (long long i = 0; i < total; i++)
        out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

void cpu_relu_backward(hd_backend *be, size_t count, const float *out, const float *dout, float *din) {
    long long total = (long long)count;
#pragma omp parallel for simd schedule(static) num_threads(cpu_threads(be))
    for (long long i = 0; i < total; i++)
        din[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}
