/* cpu_loss.c: fused softmax + cross-entropy over a batch of logits on the CPU (kernels/gpu_loss.cu is its
 * GPU twin): each row through hd_softmax_xent_row from shared_math.h, the function the GPU kernel calls;
 * metrics[0] += summed loss, metrics[1] += rows whose arg-max is the label. */
#include "cpu_backend.h"
#include "hd/shared_math.h"

void cpu_softmax_xent(hd_backend *be, int n, int classes, const float *logits, const int32_t *labels,
                      float smoothing, float *dlogits, float grad_divisor, float *metrics) {
    (void)be;
    /* Rows are few (a batch) and cheap: one thread keeps the summation order fixed. */
    double loss_sum = 0.0;
    int correct_sum = 0;
    float grad_scale = 1.0f / grad_divisor;
    for (int row = 0; row < n; row++) {
        int correct = 0;
        float *grad_row = dlogits ? dlogits + (size_t)row * classes : NULL;
        loss_sum += hd_softmax_xent_row(logits + (size_t)row * classes, classes, labels[row], smoothing,
                                        grad_row, grad_scale, &correct);
        correct_sum += correct;
    }
    metrics[0] += (float)loss_sum;
    metrics[1] += (float)correct_sum;
}
