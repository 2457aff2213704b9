/* cpu_dense.c: fully connected layer on the CPU, forward and backward side by side.
 * in (n, in_f), weight (out_f, in_f) as PyTorch stores it, bias (out_f), out (n, out_f).
 *   forward:  out = act(in weight^T + bias)
 *   backward: dout *= act'(out);  dweight = dout^T in;  dbias = column sums of dout;
 *             din = dout weight.
 * Threads split the batch rows (forward, din) or the output units (dweight, dbias), so
 * no partial sums need merging. Gradients are written with `=`. */
#include "cpu_backend.h"

#include <cblas.h>

void cpu_dense_forward(hd_backend *be, int n, int in_f, int out_f, const float *in, const float *weight,
                       const float *bias, float *out, hd_activation act) {
    int threads = cpu_threads(be);
#pragma omp parallel num_threads(threads)
    {
        int begin, end;
        cpu_split_range(n, threads, omp_get_thread_num(), &begin, &end);
        if (end > begin) {
            float *y = out + (size_t)begin * out_f;
            for (int row = 0; row < end - begin; row++)
                for (int o = 0; o < out_f; o++)
                    y[(size_t)row * out_f + o] = bias[o];
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, end - begin, out_f, in_f, 1.0f,
                        in + (size_t)begin * in_f, in_f, weight, in_f, 1.0f, y, out_f);
            if (act == HD_ACT_RELU)
                cpu_relu_inplace(y, (size_t)(end - begin) * out_f);
        }
    }
}

void cpu_dense_backward(hd_backend *be, int n, int in_f, int out_f, const float *in, const float *weight,
                        const float *out, float *dout, float *din, float *dweight, float *dbias,
                        hd_activation act) {
    int threads = cpu_threads(be);
    if (act == HD_ACT_RELU)
        cpu_relu_mask_grad(out, dout, (size_t)n * out_f);
#pragma omp parallel num_threads(threads)
    {
        int t = omp_get_thread_num();
        int begin, end;
        cpu_split_range(out_f, threads, t, &begin, &end);
        if (end > begin) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, end - begin, in_f, n, 1.0f, dout + begin,
                        out_f, in, in_f, 0.0f, dweight + (size_t)begin * in_f, in_f);
            for (int o = begin; o < end; o++) {
                float sum = 0.0f;
                for (int row = 0; row < n; row++)
                    sum += dout[(size_t)row * out_f + o];
                dbias[o] = sum;
            }
        }
        if (din) {
            cpu_split_range(n, threads, t, &begin, &end);
            if (end > begin)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, end - begin, in_f, out_f, 1.0f,
                            dout + (size_t)begin * out_f, out_f, weight, in_f, 0.0f,
                            din + (size_t)begin * in_f, in_f);
        }
    }
}
