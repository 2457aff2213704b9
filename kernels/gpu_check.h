/* gpu_check.h: checking every CUDA, cuDNN and cuBLAS call of the GPU backend.
 *
 * Three flavours:
 *   CUDA_OP / CUDNN_OP / CUBLAS_OP / CUDA_OP_LAUNCH (gpu, call): the calls that queue an op's
 *     work, which may be recorded (backend.h's record_begin). A failure prints the failing
 *     call's text, file:line and the library's error string to stderr and exits with status 1
 *     (a GPU fault mid-step is not recoverable); while `gpu` records, it is kept instead (the
 *     first one), and record_end fails with it, so the caller can run the ops directly.
 *   CUDA_CHECK / CUDNN_CHECK / CUBLAS_CHECK: the same without the recording case, for the
 *     calls around ops (memory, transfers, fences, freeing plans).
 *   CUDA_TRY / CUDNN_TRY / CUBLAS_TRY: in functions that return 0 / -1 (backend creation,
 *     plans). A failure records the same message with hd_fail() and returns -1.
 * CUDA_OP_LAUNCH(gpu) follows every kernel launch (cudaGetLastError); with HD_GPU_SYNC=1 in
 * the environment every op also synchronises, so an asynchronous fault is reported at the
 * op that caused it (see gpu_op_done in gpu_internal.h). */
#ifndef HD_GPU_CHECK_H
#define HD_GPU_CHECK_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Print "hd-gpu: <lib> error at file:line: <call>: <what>" and exit(1). */
void hd_gpu_die(const char *library, const char *call, const char *what, const char *file, int line)
    __attribute__((noreturn));
struct hd_gpu_backend;
/* An op's failed call: hd_gpu_die, unless gpu is recording (then the first failure is kept). */
void hd_gpu_op_failed(struct hd_gpu_backend *gpu, const char *library, const char *call, const char *what,
                      const char *file, int line);
/* Record the same message with hd_fail(); returns -1. */
int hd_gpu_fail_call(const char *library, const char *call, const char *what, const char *file, int line);
/* cuDNN's status string followed by its last detailed message, in a thread-local buffer. */
const char *hd_gpu_cudnn_error(cudnnStatus_t status);

#ifdef __cplusplus
}
#endif

#define CUDA_OP(gpu, call)                                                                                   \
    do {                                                                                                     \
        cudaError_t hd_err_ = (call);                                                                        \
        if (hd_err_ != cudaSuccess)                                                                          \
            hd_gpu_op_failed((gpu), "CUDA", #call, cudaGetErrorString(hd_err_), __FILE__, __LINE__);         \
    } while (0)

#define CUDA_OP_LAUNCH(gpu) CUDA_OP((gpu), cudaGetLastError())

#define CUDNN_OP(gpu, call)                                                                                  \
    do {                                                                                                     \
        cudnnStatus_t hd_status_ = (call);                                                                   \
        if (hd_status_ != CUDNN_STATUS_SUCCESS)                                                              \
            hd_gpu_op_failed((gpu), "cuDNN", #call, hd_gpu_cudnn_error(hd_status_), __FILE__, __LINE__);     \
    } while (0)

#define CUBLAS_OP(gpu, call)                                                                                 \
    do {                                                                                                     \
        cublasStatus_t hd_status_ = (call);                                                                  \
        if (hd_status_ != CUBLAS_STATUS_SUCCESS)                                                             \
            hd_gpu_op_failed((gpu), "cuBLAS", #call, cublasGetStatusString(hd_status_), __FILE__, __LINE__); \
    } while (0)

/* The calls around ops: a failure always ends the process (no backend, so never "recording"). */
#define CUDA_CHECK(call)   CUDA_OP(NULL, call)
#define CUDNN_CHECK(call)  CUDNN_OP(NULL, call)
#define CUBLAS_CHECK(call) CUBLAS_OP(NULL, call)

#define CUDA_TRY(call)                                                                                       \
    do {                                                                                                     \
        cudaError_t hd_err_ = (call);                                                                        \
        if (hd_err_ != cudaSuccess) {                                                                        \
            (void)cudaGetLastError();                                                                        \
            return hd_gpu_fail_call("CUDA", #call, cudaGetErrorString(hd_err_), __FILE__, __LINE__);         \
        }                                                                                                    \
    } while (0)

#define CUDNN_TRY(call)                                                                                      \
    do {                                                                                                     \
        cudnnStatus_t hd_status_ = (call);                                                                   \
        if (hd_status_ != CUDNN_STATUS_SUCCESS)                                                              \
            return hd_gpu_fail_call("cuDNN", #call, hd_gpu_cudnn_error(hd_status_), __FILE__, __LINE__);     \
    } while (0)

#define CUBLAS_TRY(call)                                                                                     \
    do {                                                                                                     \
        cublasStatus_t hd_status_ = (call);                                                                  \
        if (hd_status_ != CUBLAS_STATUS_SUCCESS)                                                             \
            return hd_gpu_fail_call("cuBLAS", #call, cublasGetStatusString(hd_status_), __FILE__, __LINE__); \
    } while (0)

#endif
