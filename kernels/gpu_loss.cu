/* gpu_loss.cu: fused softmax + cross-entropy over a batch of logits.
 *
 * Layout: logits and dlogits (n, classes) row-major; labels (n) int32; metrics[0] += summed
 * loss, metrics[1] += number of rows whose arg-max (first maximum) is the label.
 * One thread per row calls hd_softmax_xent_row from shared_math.h, the function the CPU
 * path calls: stable log-sum-exp after the row maximum, the row's loss (against label-smoothed
 * targets when smoothing > 0), its gradient
 * (written with `=`, scaled by 1 / grad_divisor) and whether it is correct. The rows' losses
 * and counts are summed (in double, as the CPU path does) by one block in a fixed order and
 * added to metrics by one thread,
 * so the metrics are the same on every run (no atomics); n is a batch, a few thousand rows
 * at most, so one block of threads suffices. */
#include "gpu_internal.h"
#include "hd/shared_math.h"

#define LOSS_THREADS 256

__global__ void hdgpu_softmax_xent_kernel(int n, int classes, const float *logits, const int32_t *labels,
                                          float smoothing, float *dlogits, float grad_scale, float *metrics) {
    __shared__ double loss_part[LOSS_THREADS];
    __shared__ int correct_part[LOSS_THREADS];
    double loss_sum = 0.0;
    int correct_sum = 0;
    for (int row = threadIdx.x; row < n; row += blockDim.x) {
        int correct = 0;
        size_t offset = (size_t)row * (size_t)classes;
        loss_sum += hd_softmax_xent_row(logits + offset, classes, labels[row], smoothing,
                                        dlogits ? dlogits + offset : NULL, grad_scale, &correct);
        correct_sum += correct;
    }
    loss_part[threadIdx.x] = loss_sum;
    correct_part[threadIdx.x] = correct_sum;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half >>= 1) {
        if ((int)threadIdx.x < half) {
            loss_part[threadIdx.x] += loss_part[threadIdx.x + half];
            correct_part[threadIdx.x] += correct_part[threadIdx.x + half];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        metrics[0] += (float)loss_part[0];
        metrics[1] += (float)correct_part[0];
    }
}

void gpu_softmax_xent(hd_backend *be, int n, int classes, const float *logits, const int32_t *labels,
                      float smoothing, float *dlogits, float grad_divisor, float *metrics) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    if (n <= 0 || classes <= 0)
        return;
    gpu_enter(gpu);
    gpu_use_floats(gpu, logits, (size_t)n * classes);
    gpu_use(gpu, labels, (size_t)n * sizeof(int32_t));
    gpu_use_floats(gpu, dlogits, (size_t)n * classes);
    gpu_use_floats(gpu, metrics, 2);
    float grad_scale = grad_divisor != 0.0f ? 1.0f / grad_divisor : 0.0f;
    hdgpu_softmax_xent_kernel<<<1, LOSS_THREADS, 0, gpu->compute>>>(n, classes, logits, labels, smoothing,
                                                                    dlogits, grad_scale, metrics);
    CUDA_OP_LAUNCH(gpu);
    gpu_op_done(gpu, "softmax_xent");
}
