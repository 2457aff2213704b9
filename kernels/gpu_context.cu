/* gpu_context.cu: the GPU backend's lifetime, the ops table, and the three hd_gpu_* entry
 * points of backend.h. Memory, transfers and fences are in gpu_transfer.cu (which explains
 * the two streams); the ops in one file each. */
#include "gpu_internal.h"
#include "hd/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HD_GPU_WORKSPACE_ALIGN ((size_t)1 << 20)

/* A kernel that does nothing: asking for its attributes tells whether this build holds code
 * the device can run. */
__global__ void hdgpu_probe_kernel(int *unused) {
    (void)unused;
}

#define CUDA_WARN(call)                                                                                      \
    do {                                                                                                     \
        cudaError_t hd_err_ = (call);                                                                        \
        if (hd_err_ != cudaSuccess)                                                                          \
            fprintf(stderr, "hd-gpu: warning: %s failed: %s\n", #call, cudaGetErrorString(hd_err_));         \
    } while (0)

/* ---- helpers shared with the op files ---- */

void gpu_enter(hd_gpu_backend *gpu) {
    CUDA_OP(gpu, cudaSetDevice(gpu->device));
}

void gpu_op_done(hd_gpu_backend *gpu, const char *op) {
    if (!gpu->sync_each_op || gpu->record.active)
        return;
    cudaError_t err = cudaStreamSynchronize(gpu->compute);
    if (err != cudaSuccess)
        hd_gpu_die("CUDA", op, cudaGetErrorString(err), __FILE__, __LINE__);
}

unsigned gpu_grid_blocks(const hd_gpu_backend *gpu, size_t count) {
    size_t blocks = (count + HD_GPU_THREADS - 1) / HD_GPU_THREADS;
    size_t cap = (size_t)(gpu->sm_count > 0 ? gpu->sm_count : 1) * 32;
    if (blocks > cap)
        blocks = cap;
    return blocks ? (unsigned)blocks : 1u;
}

int gpu_fail_out_of_memory(const char *what, size_t bytes) {
    size_t free_bytes = 0, total_bytes = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess)
        (void)cudaGetLastError();
    return hd_fail("out of GPU memory: %s needs %.1f MiB, %.1f MiB free of %.1f MiB", what,
                   (double)bytes / 1048576.0, (double)free_bytes / 1048576.0,
                   (double)total_bytes / 1048576.0);
}

int gpu_workspace_reserve(hd_gpu_backend *gpu, size_t bytes) {
    if (bytes <= gpu->workspace_bytes)
        return 0;
    bytes = (bytes + HD_GPU_WORKSPACE_ALIGN - 1) / HD_GPU_WORKSPACE_ALIGN * HD_GPU_WORKSPACE_ALIGN;
    /* The new buffer first: a refusal leaves the old one, which the plans made so far fit in, and the
     * recordings that hold it, as they were. */
    void *fresh = NULL;
    cudaError_t err = cudaMalloc(&fresh, bytes);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return gpu_fail_out_of_memory("the cuDNN workspace", bytes);
    }
    CUDA_TRY(cudaStreamSynchronize(gpu->compute)); /* queued ops may still use the old one */
    if (gpu->workspace)
        CUDA_TRY(cudaFree(gpu->workspace));
    gpu->workspace = fresh;
    gpu->workspace_bytes = bytes;
    gpu->workspace_generation++; /* recordings that hold the old pointer are stale */
    return 0;
}

/* ---- lifetime and description ---- */

static void gpu_release(hd_gpu_backend *gpu) {
    if (gpu->compute)
        CUDA_WARN(cudaStreamSynchronize(gpu->compute));
    if (gpu->copy)
        CUDA_WARN(cudaStreamSynchronize(gpu->copy));
    if (gpu->cublas && cublasDestroy(gpu->cublas) != CUBLAS_STATUS_SUCCESS)
        fprintf(stderr, "hd-gpu: warning: cublasDestroy failed\n");
    if (gpu->cudnn && cudnnDestroy(gpu->cudnn) != CUDNN_STATUS_SUCCESS)
        fprintf(stderr, "hd-gpu: warning: cudnnDestroy failed\n");
    if (gpu->workspace)
        CUDA_WARN(cudaFree(gpu->workspace));
    if (gpu->cublas_workspace)
        CUDA_WARN(cudaFree(gpu->cublas_workspace));
    gpu_transfer_release(gpu);
    gpu_bias_act_release(gpu);
    if (gpu->copy)
        CUDA_WARN(cudaStreamDestroy(gpu->copy));
    if (gpu->compute)
        CUDA_WARN(cudaStreamDestroy(gpu->compute));
}

static void gpu_destroy(hd_backend *be) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    CUDA_WARN(cudaSetDevice(gpu->device));
    gpu_release(gpu);
    free(gpu);
}

static const char *gpu_describe(hd_backend *be) {
    return hd_gpu_from(be)->description;
}

static size_t gpu_memory_bytes(hd_backend *be) {
    return hd_gpu_from(be)->total_memory;
}

/* ---- creation ---- */

static void gpu_fill_ops(hd_backend_ops *ops) {
    memset(ops, 0, sizeof *ops);
    ops->destroy = gpu_destroy;
    ops->describe = gpu_describe;
    ops->memory_bytes = gpu_memory_bytes;
    gpu_transfer_fill_ops(ops);
    ops->peak_gflops = gpu_peak_gflops;
    ops->conv2d_plan = gpu_conv2d_plan;
    ops->conv2d_plan_free = gpu_conv2d_plan_free;
    ops->conv2d_forward = gpu_conv2d_forward;
    ops->conv2d_backward = gpu_conv2d_backward;
    ops->maxpool_plan = gpu_maxpool_plan;
    ops->maxpool_plan_free = gpu_maxpool_plan_free;
    ops->maxpool_forward = gpu_maxpool_forward;
    ops->maxpool_backward = gpu_maxpool_backward;
    ops->avgpool_forward = gpu_avgpool_forward;
    ops->avgpool_backward = gpu_avgpool_backward;
    ops->gap_forward = gpu_gap_forward;
    ops->gap_backward = gpu_gap_backward;
    ops->dense_forward = gpu_dense_forward;
    ops->dense_backward = gpu_dense_backward;
    ops->dropout_forward = gpu_dropout_forward;
    ops->dropout_backward = gpu_dropout_backward;
    ops->batchnorm_forward = gpu_batchnorm_forward;
    ops->batchnorm_backward = gpu_batchnorm_backward;
    ops->relu_forward = gpu_relu_forward;
    ops->relu_backward = gpu_relu_backward;
    ops->softmax_xent = gpu_softmax_xent;
    ops->adam_step = gpu_adam_step;
    ops->sgd_step = gpu_sgd_step;
    ops->ema_update = gpu_ema_update;
}

static int gpu_context_init(hd_gpu_backend *gpu) {
    CUDA_TRY(cudaSetDevice(gpu->device));
    cudaDeviceProp prop;
    CUDA_TRY(cudaGetDeviceProperties(&prop, gpu->device));
    snprintf(gpu->device_name, sizeof gpu->device_name, "%s", prop.name);
    gpu->total_memory = prop.totalGlobalMem;
    gpu->cc_major = prop.major;
    gpu->cc_minor = prop.minor;
    gpu->sm_count = prop.multiProcessorCount;

    cudaFuncAttributes probe;
    cudaError_t err = cudaFuncGetAttributes(&probe, hdgpu_probe_kernel);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return hd_fail("GPU %d (%s, compute capability %d.%d): this build holds no code it can run (%s); "
                       "reconfigure with -DCMAKE_CUDA_ARCHITECTURES=%d%d",
                       gpu->device, gpu->device_name, prop.major, prop.minor, cudaGetErrorString(err),
                       prop.major, prop.minor);
    }

    size_t cudnn_version = cudnnGetVersion();
    if (cudnn_version / 10000 != CUDNN_MAJOR)
        return hd_fail("cuDNN library version %zu does not match the headers this was built with (%d.%d.%d)",
                       cudnn_version, CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL);

    CUDA_TRY(cudaStreamCreateWithFlags(&gpu->compute, cudaStreamNonBlocking));
    CUDA_TRY(cudaStreamCreateWithFlags(&gpu->copy, cudaStreamNonBlocking));
    if (gpu_transfer_init(gpu) != 0 || gpu_bias_act_init(gpu) != 0)
        return -1;

    CUDNN_TRY(cudnnCreate(&gpu->cudnn));
    CUDNN_TRY(cudnnSetStream(gpu->cudnn, gpu->compute));

    CUBLAS_TRY(cublasCreate(&gpu->cublas));
    CUBLAS_TRY(cublasSetStream(gpu->cublas, gpu->compute)); /* resets the workspace: set it after */
    gpu->cublas_workspace_bytes = (size_t)(prop.major >= 9 ? 32 : 4) << 20; /* cuBLAS's advice */
    err = cudaMalloc(&gpu->cublas_workspace, gpu->cublas_workspace_bytes);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        gpu->cublas_workspace = NULL;
        return gpu_fail_out_of_memory("the cuBLAS workspace", gpu->cublas_workspace_bytes);
    }
    CUBLAS_TRY(cublasSetWorkspace(gpu->cublas, gpu->cublas_workspace, gpu->cublas_workspace_bytes));
    /* FP32 by default: CUBLAS_DEFAULT_MATH never lowers FP32 GEMMs to TF32; TF32 on request. */
    CUBLAS_TRY(cublasSetMathMode(gpu->cublas,
                                 gpu->options.allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    CUBLAS_TRY(cublasSetPointerMode(gpu->cublas, CUBLAS_POINTER_MODE_HOST));
    int cublas_version = 0;
    CUBLAS_TRY(cublasGetVersion(gpu->cublas, &cublas_version));

    snprintf(gpu->description, sizeof gpu->description,
             "%s, %.1f GiB, cuDNN %zu.%zu.%zu, cuBLAS %d.%d.%d, sm_%d%d, %s%s%s%s", gpu->device_name,
             (double)gpu->total_memory / (1024.0 * 1024.0 * 1024.0), cudnn_version / 10000,
             (cudnn_version % 10000) / 100, cudnn_version % 100, cublas_version / 10000,
             (cublas_version % 10000) / 100, cublas_version % 100, prop.major, prop.minor,
             gpu->options.allow_tf32 ? "TF32 allowed" : "FP32 math",
             gpu->options.deterministic ? ", deterministic" : "",
             gpu->ops_table.record_begin ? ", CUDA graphs" : ", no CUDA graphs",
             gpu->test_refuse_new_conv_sets ? ", test: first conv calls refused (HD_GPU_TEST_REFUSE_CONV)"
                                            : "");
    return 0;
}

hd_backend *hd_gpu_backend_create(const hd_gpu_options *options) {
    hd_gpu_options opts;
    memset(&opts, 0, sizeof opts);
    if (options)
        opts = *options;
    int count = hd_gpu_device_count();
    if (count == 0) {
        char list[256];
        hd_gpu_list_devices(list, sizeof list);
        hd_fail("no CUDA GPU answers %s", list);
        return NULL;
    }
    if (opts.device < 0 || opts.device >= count) {
        char list[2048];
        hd_gpu_list_devices(list, sizeof list);
        hd_fail("GPU %d does not exist; the devices present are %s", opts.device, list);
        return NULL;
    }
    hd_gpu_backend *gpu = (hd_gpu_backend *)hd_calloc(1, sizeof *gpu);
    if (!gpu)
        return NULL;
    gpu->options = opts;
    gpu->device = opts.device;
    const char *sync_env = getenv("HD_GPU_SYNC");
    gpu->sync_each_op = sync_env && atoi(sync_env) > 0;
    const char *refuse_env = getenv("HD_GPU_TEST_REFUSE_CONV");
    gpu->test_refuse_new_conv_sets = refuse_env && atoi(refuse_env) > 0;
    gpu_fill_ops(&gpu->ops_table);
    gpu_record_fill_ops(gpu, &gpu->ops_table);
    gpu->base.ops = &gpu->ops_table;
    gpu->base.name = "cuda";
    gpu->base.is_gpu = 1;
    if (gpu_context_init(gpu) != 0) {
        gpu_release(gpu);
        free(gpu);
        return NULL;
    }
    if (opts.verbose)
        fprintf(stderr, "hd-gpu: GPU %d: %s\n", gpu->device, gpu->description);
    return &gpu->base;
}

int hd_gpu_device_count(void) {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return count;
}

void hd_gpu_list_devices(char *buf, size_t buf_len) {
    if (!buf || buf_len == 0)
        return;
    buf[0] = '\0';
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err == cudaErrorInsufficientDriver) { /* also what a machine with no driver at all gets */
        (void)cudaGetLastError();
        int runtime = 0;
        (void)cudaRuntimeGetVersion(&runtime);
        snprintf(buf, buf_len,
                 "(no CUDA devices: no NVIDIA driver, or one older than the CUDA %d.%d runtime needs)",
                 runtime / 1000, runtime % 1000 / 10);
        return;
    }
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(buf, buf_len, "(no CUDA devices: %s)", cudaGetErrorString(err));
        return;
    }
    if (count == 0) {
        snprintf(buf, buf_len, "(no CUDA devices)");
        return;
    }
    size_t used = 0;
    for (int d = 0; d < count && used < buf_len; d++) {
        cudaDeviceProp prop;
        int written;
        err = cudaGetDeviceProperties(&prop, d);
        if (err != cudaSuccess) {
            (void)cudaGetLastError();
            written = snprintf(buf + used, buf_len - used, "%s%d: (unreadable: %s)", d ? "; " : "", d,
                               cudaGetErrorString(err));
        } else {
            written = snprintf(buf + used, buf_len - used, "%s%d: %s, %.1f GiB, sm_%d%d", d ? "; " : "", d,
                               prop.name, (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0),
                               prop.major, prop.minor);
        }
        if (written < 0)
            break;
        used += (size_t)written;
    }
}
