/* cpu_bias_act.c: the bias and activation after a convolution or a dense GEMM on the CPU, and their
 * backward (kernels/gpu_bias_act.cu is the GPU twin): ReLU in place, the ReLU mask applied to dout in
 * place (out is the post-ReLU output), the convolution's per-channel bias + activation in one pass and
 * its backward (mask + the channel's gradient sum) in one pass. cpu_dense.c adds its bias as it writes
 * its output and sums dbias with its own thread split. The standalone relu layer's ops
 * (cpu_relu_forward, cpu_relu_backward) are the same selects, out of place. */
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

void cpu_bias_act_rows(const float *y, size_t ld, float *out, const float *bias, int rows, int cols,
                       hd_activation act) {
    for (int r = 0; r < rows; r++) {
        const float *src = y + (size_t)r * ld;
        float *dst = out + (size_t)r * cols;
        const float b = bias[r];
        if (act == HD_ACT_RELU) {
#pragma omp simd
            for (int i = 0; i < cols; i++) {
                float v = src[i] + b;
                dst[i] = v > 0.0f ? v : 0.0f;
            }
        } else {
#pragma omp simd
            for (int i = 0; i < cols; i++)
                dst[i] = src[i] + b;
        }
    }
}

/* The sum in CPU_SUM_LANES running partial sums (element i goes to lane i % CPU_SUM_LANES), added
 * lane by lane at the end: a fixed order, so the result depends only on the data, and one the
 * compiler keeps in vector registers (a single running sum is a chain of dependent adds).
 * cpu_lane_sum below sums in the same order (the fused conv + pooling op's dbias must equal this one's bit
 * for bit: tests/test_cpu_layers.c): change both or neither. */
#define CPU_SUM_LANES 16

float cpu_act_grad_gather(const float *out, const float *dout, float *dst, size_t count, hd_activation act) {
    float lanes[CPU_SUM_LANES] = {0};
    const int relu = act == HD_ACT_RELU;
    size_t i = 0;
    for (; i + CPU_SUM_LANES <= count; i += CPU_SUM_LANES) {
#pragma omp simd
        for (int l = 0; l < CPU_SUM_LANES; l++) {
            float d = dout[i + l], o = out[i + l];
            float g = (relu & !(o > 0.0f)) ? 0.0f : d; /* a select: both loads happen, no branch */
            dst[i + l] = g;
            lanes[l] += g;
        }
    }
    for (int l = 0; i < count; i++, l++) {
        float g = (relu & !(out[i] > 0.0f)) ? 0.0f : dout[i];
        dst[i] = g;
        lanes[l] += g;
    }
    float sum = 0.0f;
    for (int l = 0; l < CPU_SUM_LANES; l++)
        sum += lanes[l];
    return sum;
}

float cpu_lane_sum(const float *x, size_t count) {
    float lanes[CPU_SUM_LANES] = {0};
    size_t i = 0;
    for (; i + CPU_SUM_LANES <= count; i += CPU_SUM_LANES) {
#pragma omp simd
        for (int l = 0; l < CPU_SUM_LANES; l++)
            lanes[l] += x[i + l];
    }
    for (int l = 0; i < count; i++, l++)
        lanes[l] += x[i];
    float sum = 0.0f;
    for (int l = 0; l < CPU_SUM_LANES; l++)
        sum += lanes[l];
    return sum;
}
