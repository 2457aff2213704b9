/* gpu_dense.cu: fully connected layers through cuBLAS, with bias and ReLU.
 *
 * Layout (row-major, as backend.h): in (n, in_f), weight (out_f, in_f), out and dout
 * (n, out_f), bias (out_f). cuBLAS is column-major, and a row-major (r, c) matrix is the
 * column-major (c, r) matrix, its transpose; so, in column-major terms:
 *   forward  out^T (out_f x n)   = W (stored as W^T, op T) * in^T          : gemm(T, N)
 *   din      din^T (in_f x n)    = W^T (stored, op N)      * dout^T        : gemm(N, N)
 *   dweight  dW^T (in_f x out_f) = in^T (stored, op N)     * dout (op T)   : gemm(N, T)
 * Gradients: din, dweight, dbias written with `=` (beta = 0); dout masked in place by the
 * ReLU. FP32 math unless the backend allows TF32 (cublasSetMathMode in gpu_context.cu). */
#include "gpu_internal.h"

void gpu_dense_forward(hd_backend *be, int n, int in_f, int out_f, const float *in, const float *weight,
                       const float *bias, float *out, hd_activation act) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    if (n <= 0)
        return;
    gpu_enter(gpu);
    gpu_use_floats(gpu, in, (size_t)n * in_f);
    gpu_use_floats(gpu, weight, (size_t)out_f * in_f);
    gpu_use_floats(gpu, bias, (size_t)out_f);
    gpu_use_floats(gpu, out, (size_t)n * out_f);
    const float one = 1.0f, zero = 0.0f;
    CUBLAS_OP(gpu, cublasSgemm(gpu->cublas, CUBLAS_OP_T, CUBLAS_OP_N, out_f, n, in_f, &one, weight, in_f, in,
                               in_f, &zero, out, out_f));
    gpu_bias_act_forward(gpu, out, bias, n, out_f, 1, act);
    gpu_op_done(gpu, "dense_forward");
}

void gpu_dense_backward(hd_backend *be, int n, int in_f, int out_f, const float *in, const float *weight,
                        const float *out, float *dout, float *din, float *dweight, float *dbias,
                        hd_activation act) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    gpu_enter(gpu);
    gpu_use_floats(gpu, dweight, (size_t)out_f * in_f);
    gpu_use_floats(gpu, dbias, (size_t)out_f);
    if (n <= 0) { /* no rows: the gradients are zero */
        CUDA_OP(gpu, cudaMemsetAsync(dweight, 0, (size_t)out_f * in_f * sizeof(float), gpu->compute));
        if (dbias)
            CUDA_OP(gpu, cudaMemsetAsync(dbias, 0, (size_t)out_f * sizeof(float), gpu->compute));
        gpu_op_done(gpu, "dense_backward");
        return;
    }
    gpu_use_floats(gpu, in, (size_t)n * in_f);
    gpu_use_floats(gpu, weight, (size_t)out_f * in_f);
    gpu_use_floats(gpu, out, (size_t)n * out_f);
    gpu_use_floats(gpu, dout, (size_t)n * out_f);
    gpu_use_floats(gpu, din, (size_t)n * in_f);
    /* ReLU mask on dout in place, and dbias = column sums of dout, in one pass. */
    gpu_bias_act_backward(gpu, out, dout, dbias, n, out_f, 1, act);
    const float one = 1.0f, zero = 0.0f;
    if (din)
        CUBLAS_OP(gpu, cublasSgemm(gpu->cublas, CUBLAS_OP_N, CUBLAS_OP_N, in_f, n, out_f, &one, weight, in_f,
                                   dout, out_f, &zero, din, in_f));
    CUBLAS_OP(gpu, cublasSgemm(gpu->cublas, CUBLAS_OP_N, CUBLAS_OP_T, in_f, out_f, n, &one, in, in_f, dout,
                               out_f, &zero, dweight, in_f));
    gpu_op_done(gpu, "dense_backward");
}
