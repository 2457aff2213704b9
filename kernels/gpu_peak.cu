/* gpu_peak.cu: the device's measured FP32 rate (backend.h's peak_gflops), the floor the
 * benchmark holds training against.
 *
 * One cublasSgemm of n x n x n (n = 8192, or 4096 when memory is short), in FP32 math
 * (CUBLAS_DEFAULT_MATH: no TF32, whatever the backend's option), on the compute stream:
 * one warm-up call, then PEAK_REPEATS calls each timed with a pair of CUDA events; the rate
 * is 2 n^3 over the fastest call. Measured once per backend and cached; NaN (with a warning)
 * when the buffers cannot be had or a call fails. Allocates and waits: never call it inside
 * a timed region. */
#include "gpu_internal.h"
#include "hd/common.h"

#include <math.h>
#include <stdio.h>

#define PEAK_REPEATS 5

/* Records the first failure; the measurement goes on to its clean-up and returns NaN. */
#define PEAK_STEP(ok, call, what)                                                                            \
    do {                                                                                                     \
        if ((ok) && !(call)) {                                                                               \
            fprintf(stderr, "hd-gpu: warning: peak_gflops: %s failed\n", what);                              \
            (ok) = 0;                                                                                        \
        }                                                                                                    \
    } while (0)

static double measure_sgemm(hd_gpu_backend *gpu, int n, float *a, float *b, float *c) {
    cudaEvent_t start = NULL, stop = NULL;
    cublasMath_t saved_math = CUBLAS_DEFAULT_MATH;
    int ok = 1, math_saved = 0;
    float best_ms = INFINITY;
    const float one = 1.0f, zero = 0.0f;
    size_t bytes = (size_t)n * (size_t)n * sizeof(float);
    PEAK_STEP(ok, cudaEventCreate(&start) == cudaSuccess && cudaEventCreate(&stop) == cudaSuccess,
              "cudaEventCreate");
    /* 0x3c3c3c3c: about 0.0115 in every element, no zeros, no denormals. */
    PEAK_STEP(ok, cudaMemsetAsync(a, 0x3c, bytes, gpu->compute) == cudaSuccess, "cudaMemsetAsync");
    PEAK_STEP(ok, cudaMemsetAsync(b, 0x3c, bytes, gpu->compute) == cudaSuccess, "cudaMemsetAsync");
    PEAK_STEP(ok, cublasGetMathMode(gpu->cublas, &saved_math) == CUBLAS_STATUS_SUCCESS, "cublasGetMathMode");
    math_saved = ok;
    PEAK_STEP(ok, cublasSetMathMode(gpu->cublas, CUBLAS_DEFAULT_MATH) == CUBLAS_STATUS_SUCCESS,
              "cublasSetMathMode");
    for (int r = -1; ok && r < PEAK_REPEATS; r++) { /* r = -1: warm-up */
        PEAK_STEP(ok, cudaEventRecord(start, gpu->compute) == cudaSuccess, "cudaEventRecord");
        PEAK_STEP(ok,
                  cublasSgemm(gpu->cublas, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a, n, b, n, &zero, c,
                              n) == CUBLAS_STATUS_SUCCESS,
                  "cublasSgemm");
        PEAK_STEP(ok, cudaEventRecord(stop, gpu->compute) == cudaSuccess, "cudaEventRecord");
        PEAK_STEP(ok, cudaEventSynchronize(stop) == cudaSuccess, "cudaEventSynchronize");
        float ms = 0.0f;
        PEAK_STEP(ok, cudaEventElapsedTime(&ms, start, stop) == cudaSuccess, "cudaEventElapsedTime");
        if (ok && r >= 0 && ms > 0.0f && ms < best_ms)
            best_ms = ms;
    }
    if (math_saved && cublasSetMathMode(gpu->cublas, saved_math) != CUBLAS_STATUS_SUCCESS) {
        /* The backend would run on in the wrong math mode: that is not recoverable. */
        hd_gpu_die("cuBLAS", "cublasSetMathMode (restoring after peak_gflops)", "failed", __FILE__, __LINE__);
    }
    if (start)
        (void)cudaEventDestroy(start);
    if (stop)
        (void)cudaEventDestroy(stop);
    (void)cudaGetLastError();
    if (!ok || !isfinite(best_ms))
        return NAN;
    return 2.0 * (double)n * (double)n * (double)n / ((double)best_ms * 1e-3) * 1e-9;
}

double gpu_peak_gflops(hd_backend *be) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    gpu_require_not_recording(gpu, "peak_gflops");
    if (gpu->peak_gflops != 0.0)
        return gpu->peak_gflops;
    gpu_enter(gpu);
    const int sizes[2] = {8192, 4096};
    double rate = NAN;
    for (int i = 0; i < 2 && isnan(rate); i++) {
        int n = sizes[i];
        size_t bytes = (size_t)n * (size_t)n * sizeof(float);
        float *a = NULL, *b = NULL, *c = NULL;
        if (cudaMalloc(&a, bytes) == cudaSuccess && cudaMalloc(&b, bytes) == cudaSuccess &&
            cudaMalloc(&c, bytes) == cudaSuccess) {
            rate = measure_sgemm(gpu, n, a, b, c);
            if (gpu->options.verbose && isfinite(rate))
                fprintf(stderr, "hd-gpu: FP32 SGEMM %dx%dx%d: %.1f GFLOP/s (best of %d)\n", n, n, n, rate,
                        PEAK_REPEATS);
        } else {
            (void)cudaGetLastError();
        }
        /* Waits for the measurement's queued work before the memory goes. */
        CUDA_CHECK(cudaStreamSynchronize(gpu->compute));
        if (a)
            CUDA_CHECK(cudaFree(a));
        if (b)
            CUDA_CHECK(cudaFree(b));
        if (c)
            CUDA_CHECK(cudaFree(c));
    }
    if (isnan(rate))
        fprintf(stderr, "hd-gpu: warning: the FP32 SGEMM rate could not be measured\n");
    gpu->peak_gflops = rate;
    return rate;
}
