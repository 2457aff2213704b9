/* gpu_conv.cu: 2-D convolution (any stride, symmetric zero padding) through cuDNN, with bias and ReLU.
 *
 * Layout: in (n, in_c, in_h, in_w), weight (out_c, in_c, k, k), out (n, out_c, out_h, out_w),
 * all NCHW float32; cross-correlation, as PyTorch and Keras compute it.
 * Gradients: din, dweight and dbias are written with `=` (beta = 0); dout is masked in place
 * by the ReLU (backend.h allows it).
 *
 * A plan holds, per batch size, the tensor and convolution descriptors and the algorithm of
 * each direction (forward, backward data, backward filter). The set for max_batch is made
 * with the plan: algorithms measured on the device with cudnnFind*AlgorithmEx on scratch
 * buffers (or, with --deterministic, taken from cudnnGet*Algorithm_v7's heuristic order so
 * that every run picks the same ones), each tried once before it is kept. A smaller batch
 * (the last batch of an epoch) gets one of a few further sets the first time it is seen:
 * made on the host only (descriptor updates and heuristic queries, no allocation, no wait),
 * reusing the max_batch algorithms when their workspace still fits. Such a set's first call
 * of each direction is checked: if cuDNN refuses the algorithm for that batch size, the next
 * ones in its heuristic order are tried on the same tensors, as PyTorch does (each direction
 * overwrites its output, so a retry is harmless); during a recording the refusal fails the
 * recording and the op-by-op rerun retries. All plans share the backend's one workspace,
 * which grows only while a plan is made.
 * Math: FP32 (CUDNN_FMA_MATH, so cuDNN may not use TF32) unless allow_tf32. */
#include "gpu_internal.h"
#include "hd/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONV_BATCH_SETS     8 /* [0]: max_batch; the rest: smaller batches (training, last, evaluation) */
#define CONV_MAX_CANDIDATES 32
#define CONV_FIND_WORKSPACE ((size_t)256 << 20) /* the most workspace an algorithm may use */

typedef enum { CONV_FWD = 0, CONV_BWD_DATA = 1, CONV_BWD_FILTER = 2, CONV_DIRECTIONS = 3 } conv_direction;

static const char *const direction_names[CONV_DIRECTIONS] = {"forward", "backward-data", "backward-filter"};
static const char *const call_names[CONV_DIRECTIONS] = {
    "cudnnConvolutionForward", "cudnnConvolutionBackwardData", "cudnnConvolutionBackwardFilter"};

typedef struct {
    int n; /* batch size these descriptors describe; 0: slot unused */
    cudnnTensorDescriptor_t in_desc, out_desc;
    cudnnConvolutionDescriptor_t conv[CONV_DIRECTIONS];
    int algo[CONV_DIRECTIONS];
    cudnnMathType_t math[CONV_DIRECTIONS];
    size_t workspace[CONV_DIRECTIONS];
    int ran[CONV_DIRECTIONS]; /* cuDNN has accepted the algorithm for this batch size (run or recorded) */
} conv_batch_set;

typedef struct {
    hd_conv_shape shape;
    cudnnFilterDescriptor_t filter_desc;
    conv_batch_set sets[CONV_BATCH_SETS];
    int next_replace; /* round robin over sets[1..] */
} gpu_conv_plan;

/* The tensors of a direction, in the forward's names: forward reads x, w and writes y;
 * backward-data reads w, y (dout) and writes x (din); backward-filter reads x, y (dout) and
 * writes w (dweight). */
typedef struct {
    float *x, *w, *y;
} conv_tensors;

/* Device buffers for measuring and trying algorithms at plan time. */
typedef struct {
    float *x, *w, *y;
    void *workspace;
    size_t workspace_bytes;
} conv_scratch;

typedef struct {
    int algo;
    cudnnStatus_t status;
    size_t memory;
    cudnnDeterminism_t determinism;
    cudnnMathType_t math;
    float time_ms;
} conv_candidate;

/* ---- descriptors ---- */

static int set_descriptors(gpu_conv_plan *plan, conv_batch_set *set, int n) {
    const hd_conv_shape *s = &plan->shape;
    CUDNN_TRY(cudnnSetTensor4dDescriptor(set->in_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, s->in_c,
                                         s->in_h, s->in_w));
    CUDNN_TRY(cudnnSetTensor4dDescriptor(set->out_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, s->out_c,
                                         s->out_h, s->out_w));
    int on, oc, oh, ow;
    CUDNN_TRY(cudnnGetConvolution2dForwardOutputDim(set->conv[CONV_FWD], set->in_desc, plan->filter_desc, &on,
                                                    &oc, &oh, &ow));
    if (on != n || oc != s->out_c || oh != s->out_h || ow != s->out_w)
        return hd_fail("conv plan: cuDNN computes output %dx%dx%dx%d, the shape says %dx%dx%dx%d", on, oc, oh,
                       ow, n, s->out_c, s->out_h, s->out_w);
    set->n = n;
    return 0;
}

static int create_set(conv_batch_set *set, const hd_conv_shape *s) {
    CUDNN_TRY(cudnnCreateTensorDescriptor(&set->in_desc));
    CUDNN_TRY(cudnnCreateTensorDescriptor(&set->out_desc));
    for (int d = 0; d < CONV_DIRECTIONS; d++) {
        CUDNN_TRY(cudnnCreateConvolutionDescriptor(&set->conv[d]));
        CUDNN_TRY(cudnnSetConvolution2dDescriptor(set->conv[d], s->pad, s->pad, s->stride, s->stride, 1, 1,
                                                  CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    }
    return 0;
}

static void destroy_set(conv_batch_set *set) {
    for (int d = 0; d < CONV_DIRECTIONS; d++)
        if (set->conv[d])
            CUDNN_CHECK(cudnnDestroyConvolutionDescriptor(set->conv[d]));
    if (set->in_desc)
        CUDNN_CHECK(cudnnDestroyTensorDescriptor(set->in_desc));
    if (set->out_desc)
        CUDNN_CHECK(cudnnDestroyTensorDescriptor(set->out_desc));
}

/* ---- algorithm candidates, workspace sizes and trial runs, per direction ---- */

#define COPY_CANDIDATES(perf, count, out)                                                                    \
    do {                                                                                                     \
        for (int i_ = 0; i_ < (count); i_++) {                                                               \
            (out)[i_].algo = (int)(perf)[i_].algo;                                                           \
            (out)[i_].status = (perf)[i_].status;                                                            \
            (out)[i_].memory = (perf)[i_].memory;                                                            \
            (out)[i_].determinism = (perf)[i_].determinism;                                                  \
            (out)[i_].math = (perf)[i_].mathType;                                                            \
            (out)[i_].time_ms = (perf)[i_].time;                                                             \
        }                                                                                                    \
    } while (0)

/* Candidates in preference order: measured on the device (scratch given and measure set), or
 * the heuristic order. Returns the count, or -1 + hd_fail(). */
static int list_candidates(hd_gpu_backend *gpu, gpu_conv_plan *plan, conv_batch_set *set, conv_direction dir,
                           const conv_scratch *scratch, int measure, conv_candidate *out) {
    cudnnHandle_t h = gpu->cudnn;
    int max_count = 0, returned = 0;
    if (dir == CONV_FWD) {
        cudnnConvolutionFwdAlgoPerf_t perf[CONV_MAX_CANDIDATES];
        CUDNN_TRY(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max_count));
        max_count = max_count < CONV_MAX_CANDIDATES ? max_count : CONV_MAX_CANDIDATES;
        if (measure)
            CUDNN_TRY(cudnnFindConvolutionForwardAlgorithmEx(
                h, set->in_desc, scratch->x, plan->filter_desc, scratch->w, set->conv[dir], set->out_desc,
                scratch->y, max_count, &returned, perf, scratch->workspace, scratch->workspace_bytes));
        else
            CUDNN_TRY(cudnnGetConvolutionForwardAlgorithm_v7(h, set->in_desc, plan->filter_desc,
                                                             set->conv[dir], set->out_desc, max_count,
                                                             &returned, perf));
        COPY_CANDIDATES(perf, returned, out);
    } else if (dir == CONV_BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CONV_MAX_CANDIDATES];
        CUDNN_TRY(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &max_count));
        max_count = max_count < CONV_MAX_CANDIDATES ? max_count : CONV_MAX_CANDIDATES;
        if (measure)
            CUDNN_TRY(cudnnFindConvolutionBackwardDataAlgorithmEx(
                h, plan->filter_desc, scratch->w, set->out_desc, scratch->y, set->conv[dir], set->in_desc,
                scratch->x, max_count, &returned, perf, scratch->workspace, scratch->workspace_bytes));
        else
            CUDNN_TRY(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, plan->filter_desc, set->out_desc,
                                                                  set->conv[dir], set->in_desc, max_count,
                                                                  &returned, perf));
        COPY_CANDIDATES(perf, returned, out);
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[CONV_MAX_CANDIDATES];
        CUDNN_TRY(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &max_count));
        max_count = max_count < CONV_MAX_CANDIDATES ? max_count : CONV_MAX_CANDIDATES;
        if (measure)
            CUDNN_TRY(cudnnFindConvolutionBackwardFilterAlgorithmEx(
                h, set->in_desc, scratch->x, set->out_desc, scratch->y, set->conv[dir], plan->filter_desc,
                scratch->w, max_count, &returned, perf, scratch->workspace, scratch->workspace_bytes));
        else
            CUDNN_TRY(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, set->in_desc, set->out_desc,
                                                                    set->conv[dir], plan->filter_desc,
                                                                    max_count, &returned, perf));
        COPY_CANDIDATES(perf, returned, out);
    }
    return returned;
}

static cudnnStatus_t workspace_size(hd_gpu_backend *gpu, gpu_conv_plan *plan, conv_batch_set *set,
                                    conv_direction dir, int algo, size_t *bytes) {
    if (dir == CONV_FWD)
        return cudnnGetConvolutionForwardWorkspaceSize(gpu->cudnn, set->in_desc, plan->filter_desc,
                                                       set->conv[dir], set->out_desc,
                                                       (cudnnConvolutionFwdAlgo_t)algo, bytes);
    if (dir == CONV_BWD_DATA)
        return cudnnGetConvolutionBackwardDataWorkspaceSize(gpu->cudnn, plan->filter_desc, set->out_desc,
                                                            set->conv[dir], set->in_desc,
                                                            (cudnnConvolutionBwdDataAlgo_t)algo, bytes);
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(gpu->cudnn, set->in_desc, set->out_desc,
                                                          set->conv[dir], plan->filter_desc,
                                                          (cudnnConvolutionBwdFilterAlgo_t)algo, bytes);
}

/* One call of a direction with `algo` on tensors t: queued on the compute stream. */
static cudnnStatus_t conv_call(hd_gpu_backend *gpu, gpu_conv_plan *plan, conv_batch_set *set,
                               conv_direction dir, int algo, const conv_tensors *t, void *workspace,
                               size_t workspace_bytes) {
    const float one = 1.0f, zero = 0.0f;
    if (dir == CONV_FWD)
        return cudnnConvolutionForward(gpu->cudnn, &one, set->in_desc, t->x, plan->filter_desc, t->w,
                                       set->conv[dir], (cudnnConvolutionFwdAlgo_t)algo, workspace,
                                       workspace_bytes, &zero, set->out_desc, t->y);
    if (dir == CONV_BWD_DATA)
        return cudnnConvolutionBackwardData(gpu->cudnn, &one, plan->filter_desc, t->w, set->out_desc, t->y,
                                            set->conv[dir], (cudnnConvolutionBwdDataAlgo_t)algo, workspace,
                                            workspace_bytes, &zero, set->in_desc, t->x);
    return cudnnConvolutionBackwardFilter(gpu->cudnn, &one, set->in_desc, t->x, set->out_desc, t->y,
                                          set->conv[dir], (cudnnConvolutionBwdFilterAlgo_t)algo, workspace,
                                          workspace_bytes, &zero, plan->filter_desc, t->w);
}

/* One run of a direction on the scratch buffers; the status of the call and of the stream. */
static cudnnStatus_t trial_run(hd_gpu_backend *gpu, gpu_conv_plan *plan, conv_batch_set *set,
                               conv_direction dir, int algo, const conv_scratch *scratch) {
    const conv_tensors t = {scratch->x, scratch->w, scratch->y};
    cudnnStatus_t status =
        conv_call(gpu, plan, set, dir, algo, &t, scratch->workspace, scratch->workspace_bytes);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    if (cudaStreamSynchronize(gpu->compute) != cudaSuccess)
        return CUDNN_STATUS_EXECUTION_FAILED;
    return CUDNN_STATUS_SUCCESS;
}

/* Keeps the first candidate that is allowed (determinism, math), fits `workspace_limit` and,
 * with scratch buffers, runs. Sets the descriptor's math type to the one kept. */
static int choose_from(hd_gpu_backend *gpu, gpu_conv_plan *plan, conv_batch_set *set, conv_direction dir,
                       const conv_candidate *cand, int count, const conv_scratch *scratch,
                       size_t workspace_limit) {
    int strict_fp32 = !gpu->options.allow_tf32;
    for (int i = 0; i < count; i++) {
        if (cand[i].status != CUDNN_STATUS_SUCCESS)
            continue;
        if (gpu->options.deterministic && cand[i].determinism != CUDNN_DETERMINISTIC)
            continue;
        /* Strict FP32: every candidate runs under CUDNN_FMA_MATH (no TF32), whatever math
         * type cuDNN listed it with; the workspace query and the trial run below then say
         * whether the algorithm works that way. With TF32 allowed, a candidate that may
         * down-convert further (ALLOW_CONVERSION: FP16) runs under DEFAULT_MATH (TF32 at most). */
        cudnnMathType_t math = strict_fp32                                             ? CUDNN_FMA_MATH
                               : cand[i].math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION ? CUDNN_DEFAULT_MATH
                                                                                       : cand[i].math;
        if (cudnnSetConvolutionMathType(set->conv[dir], math) != CUDNN_STATUS_SUCCESS)
            continue;
        size_t need = 0;
        if (workspace_size(gpu, plan, set, dir, cand[i].algo, &need) != CUDNN_STATUS_SUCCESS ||
            need > workspace_limit)
            continue;
        if (scratch && trial_run(gpu, plan, set, dir, cand[i].algo, scratch) != CUDNN_STATUS_SUCCESS) {
            (void)cudaGetLastError();
            continue;
        }
        set->algo[dir] = cand[i].algo;
        set->math[dir] = math;
        set->workspace[dir] = need;
        if (gpu->options.verbose)
            fprintf(
                stderr,
                "hd-gpu: conv %dx%dx%d -> %dx%dx%d k%d batch %d: %s algorithm %d (%s, %s, %.3f ms, %zu B)\n",
                plan->shape.in_c, plan->shape.in_h, plan->shape.in_w, plan->shape.out_c, plan->shape.out_h,
                plan->shape.out_w, plan->shape.kernel, set->n, direction_names[dir], cand[i].algo,
                scratch ? (gpu->options.deterministic ? "heuristic, tried" : "measured") : "heuristic",
                math == CUDNN_FMA_MATH ? "FMA" : "tensor-op allowed", (double)cand[i].time_ms, need);
        return 0;
    }
    return hd_fail("conv %dx%dx%d -> %dx%dx%d (kernel %d, batch %d): no usable cuDNN %s algorithm among %d "
                   "(workspace limit %zu B%s%s)",
                   plan->shape.in_c, plan->shape.in_h, plan->shape.in_w, plan->shape.out_c, plan->shape.out_h,
                   plan->shape.out_w, plan->shape.kernel, set->n, direction_names[dir], count,
                   workspace_limit, gpu->options.deterministic ? ", deterministic only" : "",
                   strict_fp32 ? ", FP32 only" : "");
}

/* ---- the max_batch set, made with the plan ---- */

static void free_scratch_buffer(void *ptr) {
    cudaError_t err = cudaFree(ptr);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        fprintf(stderr, "hd-gpu: warning: cudaFree (conv plan scratch) failed: %s\n",
                cudaGetErrorString(err));
    }
}

static void scratch_free(conv_scratch *scratch) {
    free_scratch_buffer(scratch->x);
    free_scratch_buffer(scratch->w);
    free_scratch_buffer(scratch->y);
    free_scratch_buffer(scratch->workspace);
}

static int scratch_alloc(hd_gpu_backend *gpu, const hd_conv_shape *s, conv_scratch *scratch) {
    size_t x_bytes = (size_t)s->max_batch * s->in_c * s->in_h * s->in_w * sizeof(float);
    size_t y_bytes = (size_t)s->max_batch * s->out_c * s->out_h * s->out_w * sizeof(float);
    size_t w_bytes = (size_t)s->out_c * s->in_c * s->kernel * s->kernel * sizeof(float);
    if (cudaMalloc(&scratch->x, x_bytes) != cudaSuccess || cudaMalloc(&scratch->y, y_bytes) != cudaSuccess ||
        cudaMalloc(&scratch->w, w_bytes) != cudaSuccess) {
        (void)cudaGetLastError();
        return hd_fail("conv plan: out of GPU memory for %zu B of scratch buffers",
                       x_bytes + y_bytes + w_bytes);
    }
    /* Non-zero values (each float 0x3c3c3c3c, about 0.0115): zeros can time differently. */
    CUDA_TRY(cudaMemsetAsync(scratch->x, 0x3c, x_bytes, gpu->compute));
    CUDA_TRY(cudaMemsetAsync(scratch->y, 0x3c, y_bytes, gpu->compute));
    CUDA_TRY(cudaMemsetAsync(scratch->w, 0x3c, w_bytes, gpu->compute));
    size_t free_bytes = 0, total_bytes = 0;
    CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
    size_t want = CONV_FIND_WORKSPACE < free_bytes / 4 ? CONV_FIND_WORKSPACE : free_bytes / 4;
    while (want >= ((size_t)1 << 20) && cudaMalloc(&scratch->workspace, want) != cudaSuccess) {
        (void)cudaGetLastError();
        scratch->workspace = NULL;
        want /= 2;
    }
    scratch->workspace_bytes = scratch->workspace ? want : 0;
    return 0;
}

static int make_max_batch_set(hd_gpu_backend *gpu, gpu_conv_plan *plan) {
    conv_batch_set *set = &plan->sets[0];
    if (set_descriptors(plan, set, plan->shape.max_batch) != 0)
        return -1;
    conv_scratch scratch;
    memset(&scratch, 0, sizeof scratch);
    int rc = scratch_alloc(gpu, &plan->shape, &scratch);
    int measure = !gpu->options.deterministic;
    size_t need = 0;
    for (int d = 0; rc == 0 && d < CONV_DIRECTIONS; d++) {
        conv_candidate cand[CONV_MAX_CANDIDATES];
        /* Find* ranks by time under the descriptor's math type: set the one we allow first. */
        if (cudnnSetConvolutionMathType(set->conv[d],
                                        gpu->options.allow_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH) !=
            CUDNN_STATUS_SUCCESS) {
            rc = hd_fail("cudnnSetConvolutionMathType failed");
            break;
        }
        int count = list_candidates(gpu, plan, set, (conv_direction)d, &scratch, measure, cand);
        if (count < 0 && measure) { /* measuring failed: fall back on the heuristic order */
            fprintf(stderr, "hd-gpu: warning: %s; using cuDNN's heuristics instead\n", hd_last_error());
            (void)cudaGetLastError();
            count = list_candidates(gpu, plan, set, (conv_direction)d, &scratch, 0, cand);
        }
        if (count < 0 || choose_from(gpu, plan, set, (conv_direction)d, cand, count, &scratch,
                                     scratch.workspace_bytes) != 0)
            rc = -1;
        else {
            set->ran[d] = 1; /* choose_from ran it on the scratch buffers */
            if (set->workspace[d] > need)
                need = set->workspace[d];
        }
    }
    if (cudaDeviceSynchronize() != cudaSuccess && rc == 0)
        rc = hd_fail("conv plan: device error after choosing algorithms: %s",
                     cudaGetErrorString(cudaGetLastError()));
    scratch_free(&scratch);
    if (rc == 0)
        rc = gpu_workspace_reserve(gpu, need);
    return rc;
}

/* ---- smaller batches, in an op: host work only ---- */

static int make_small_batch_set(hd_gpu_backend *gpu, gpu_conv_plan *plan, conv_batch_set *set, int n) {
    if (set_descriptors(plan, set, n) != 0)
        return -1;
    const conv_batch_set *full = &plan->sets[0];
    for (int d = 0; d < CONV_DIRECTIONS; d++) {
        set->ran[d] = 0; /* run_direction checks its first call */
        /* The max_batch choice (its determinism was checked when it was made). */
        const conv_candidate same = {full->algo[d],       CUDNN_STATUS_SUCCESS, 0,
                                     CUDNN_DETERMINISTIC, full->math[d],        0.0f};
        if (choose_from(gpu, plan, set, (conv_direction)d, &same, 1, NULL, gpu->workspace_bytes) == 0)
            continue;
        conv_candidate cand[CONV_MAX_CANDIDATES];
        if (cudnnSetConvolutionMathType(set->conv[d], full->math[d]) != CUDNN_STATUS_SUCCESS)
            return hd_fail("cudnnSetConvolutionMathType failed");
        int count = list_candidates(gpu, plan, set, (conv_direction)d, NULL, 0, cand);
        if (count < 0 ||
            choose_from(gpu, plan, set, (conv_direction)d, cand, count, NULL, gpu->workspace_bytes) != 0)
            return -1;
    }
    return 0;
}

static conv_batch_set *batch_set_for(hd_gpu_backend *gpu, gpu_conv_plan *plan, int n) {
    if (n > plan->shape.max_batch) {
        fprintf(stderr, "hd-gpu: conv: batch of %d images exceeds the plan's max_batch %d\n", n,
                plan->shape.max_batch);
        exit(1);
    }
    for (int i = 0; i < CONV_BATCH_SETS; i++)
        if (plan->sets[i].n == n)
            return &plan->sets[i];
    if (gpu->record.active) {
        /* A recording must not make one (cuDNN's heuristic queries are not documented as safe
         * while a stream is captured): fail the recording; the step then runs op by op and
         * makes it. hd_train_step's warm-up step normally has. */
        hd_gpu_op_failed(gpu, "conv", "batch_set_for", "no descriptors for this batch size yet", __FILE__,
                         __LINE__);
        return &plan->sets[0];
    }
    conv_batch_set *set = &plan->sets[1 + plan->next_replace];
    plan->next_replace = (plan->next_replace + 1) % (CONV_BATCH_SETS - 1);
    set->n = 0;
    if (make_small_batch_set(gpu, plan, set, n) != 0) {
        fprintf(stderr, "hd-gpu: conv: cannot prepare a batch of %d: %s\n", n, hd_last_error());
        exit(1);
    }
    return set;
}

/* A set's first call of direction `dir` refused its algorithm (`why`: cuDNN's words, taken
 * at the refusal): tries the other candidates of cuDNN's heuristic order (as choose_from
 * allows them) on the same tensors. A refusal made up by HD_GPU_TEST_REFUSE_CONV leaves the
 * refused algorithm as the last resort, so the test does not depend on another one fitting
 * the workspace. 0 when one ran. */
static int retry_direction(hd_gpu_backend *gpu, gpu_conv_plan *plan, conv_batch_set *set, conv_direction dir,
                           const conv_tensors *t, const char *why) {
    const int refused = set->algo[dir];
    conv_candidate cand[CONV_MAX_CANDIDATES];
    int count = list_candidates(gpu, plan, set, dir, NULL, 0, cand);
    for (int pass = 0; pass < 1 + gpu->test_refuse_new_conv_sets; pass++) {
        for (int i = 0; i < count; i++) {
            if ((cand[i].algo == refused) != (pass == 1) ||
                choose_from(gpu, plan, set, dir, &cand[i], 1, NULL, gpu->workspace_bytes) != 0)
                continue;
            if (conv_call(gpu, plan, set, dir, set->algo[dir], t, gpu->workspace, gpu->workspace_bytes) !=
                CUDNN_STATUS_SUCCESS) {
                (void)cudaGetLastError(); /* a failed launch inside cuDNN must not fail the next op */
                continue;
            }
            fprintf(stderr,
                    "hd-gpu: notice: conv batch %d: cuDNN refused %s algorithm %d (%s); algorithm %d runs\n",
                    set->n, direction_names[dir], refused, why, set->algo[dir]);
            return 0;
        }
    }
    return -1;
}

/* Queues direction `dir` with the set's algorithm. The first call on a set made on the host
 * only may find the algorithm refused for this batch size: then the others are tried. While
 * recording, a refusal fails the recording instead, and the op-by-op rerun retries. */
static void run_direction(hd_gpu_backend *gpu, gpu_conv_plan *plan, conv_batch_set *set, conv_direction dir,
                          const conv_tensors *t) {
    cudnnStatus_t status =
        gpu->test_refuse_new_conv_sets && !set->ran[dir]
            ? CUDNN_STATUS_NOT_SUPPORTED /* HD_GPU_TEST_REFUSE_CONV: the retry path, on demand */
            : conv_call(gpu, plan, set, dir, set->algo[dir], t, gpu->workspace, gpu->workspace_bytes);
    if (status != CUDNN_STATUS_SUCCESS) {
        char why[512];
        snprintf(why, sizeof why, "%s",
                 gpu->test_refuse_new_conv_sets && !set->ran[dir] ? "refused by HD_GPU_TEST_REFUSE_CONV"
                                                                  : hd_gpu_cudnn_error(status));
        (void)cudaGetLastError(); /* as in retry_direction */
        if (!set->ran[dir] && !gpu->record.active && retry_direction(gpu, plan, set, dir, t, why) == 0)
            status = CUDNN_STATUS_SUCCESS;
        else
            hd_gpu_op_failed(gpu, "cuDNN", call_names[dir], why, __FILE__, __LINE__);
    }
    if (status == CUDNN_STATUS_SUCCESS)
        set->ran[dir] = 1;
}

/* ---- the ops ---- */

void gpu_conv2d_plan_free(hd_backend *be, void *plan_ptr) {
    gpu_require_not_recording(hd_gpu_from(be), "conv2d_plan_free");
    gpu_conv_plan *plan = (gpu_conv_plan *)plan_ptr;
    if (!plan)
        return;
    gpu_enter(hd_gpu_from(be));
    for (int i = 0; i < CONV_BATCH_SETS; i++)
        destroy_set(&plan->sets[i]);
    if (plan->filter_desc)
        CUDNN_CHECK(cudnnDestroyFilterDescriptor(plan->filter_desc));
    free(plan);
}

static int plan_init(hd_gpu_backend *gpu, gpu_conv_plan *plan) {
    const hd_conv_shape *s = &plan->shape;
    if (s->max_batch < 1 || s->in_c < 1 || s->out_c < 1 || s->kernel < 1 || s->pad < 0 || s->stride < 1 ||
        s->in_h + 2 * s->pad < s->kernel || s->in_w + 2 * s->pad < s->kernel ||
        s->out_h != (s->in_h + 2 * s->pad - s->kernel) / s->stride + 1 ||
        s->out_w != (s->in_w + 2 * s->pad - s->kernel) / s->stride + 1)
        return hd_fail("conv plan: inconsistent shape %dx%dx%d -> %dx%dx%d, kernel %d, stride %d, pad %d, "
                       "max_batch %d",
                       s->in_c, s->in_h, s->in_w, s->out_c, s->out_h, s->out_w, s->kernel, s->stride, s->pad,
                       s->max_batch);
    CUDNN_TRY(cudnnCreateFilterDescriptor(&plan->filter_desc));
    CUDNN_TRY(cudnnSetFilter4dDescriptor(plan->filter_desc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s->out_c,
                                         s->in_c, s->kernel, s->kernel));
    for (int i = 0; i < CONV_BATCH_SETS; i++)
        if (create_set(&plan->sets[i], s) != 0)
            return -1;
    return make_max_batch_set(gpu, plan);
}

void *gpu_conv2d_plan(hd_backend *be, const hd_conv_shape *shape) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    gpu_require_not_recording(gpu, "conv2d_plan");
    gpu_enter(gpu);
    gpu_conv_plan *plan = (gpu_conv_plan *)hd_calloc(1, sizeof *plan);
    if (!plan)
        return NULL;
    plan->shape = *shape;
    if (plan_init(gpu, plan) != 0) {
        gpu_conv2d_plan_free(be, plan);
        return NULL;
    }
    return plan;
}

void gpu_conv2d_forward(hd_backend *be, void *plan_ptr, int n, const float *in, const float *weight,
                        const float *bias, float *out) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    gpu_conv_plan *plan = (gpu_conv_plan *)plan_ptr;
    if (n <= 0)
        return;
    gpu_enter(gpu);
    const hd_conv_shape *s = &plan->shape;
    gpu_use_floats(gpu, in, (size_t)n * s->in_c * s->in_h * s->in_w);
    gpu_use_floats(gpu, weight, (size_t)s->out_c * s->in_c * s->kernel * s->kernel);
    gpu_use_floats(gpu, bias, (size_t)s->out_c);
    gpu_use_floats(gpu, out, (size_t)n * s->out_c * s->out_h * s->out_w);
    conv_batch_set *set = batch_set_for(gpu, plan, n);
    const conv_tensors t = {(float *)in, (float *)weight, out};
    run_direction(gpu, plan, set, CONV_FWD, &t);
    gpu_bias_act_forward(gpu, out, bias, n, plan->shape.out_c, plan->shape.out_h * plan->shape.out_w,
                         plan->shape.act);
    gpu_op_done(gpu, "conv2d_forward");
}

void gpu_conv2d_backward(hd_backend *be, void *plan_ptr, int n, const float *in, const float *weight,
                         const float *out, float *dout, float *din, float *dweight, float *dbias) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    gpu_conv_plan *plan = (gpu_conv_plan *)plan_ptr;
    const hd_conv_shape *s = &plan->shape;
    size_t in_count = (size_t)n * s->in_c * s->in_h * s->in_w;
    size_t out_count = (size_t)n * s->out_c * s->out_h * s->out_w;
    size_t weight_count = (size_t)s->out_c * s->in_c * s->kernel * s->kernel;
    gpu_enter(gpu);
    gpu_use_floats(gpu, dweight, weight_count);
    gpu_use_floats(gpu, dbias, (size_t)s->out_c);
    if (n <= 0) { /* no images: the gradients are zero */
        CUDA_OP(gpu, cudaMemsetAsync(dweight, 0, weight_count * sizeof(float), gpu->compute));
        if (dbias)
            CUDA_OP(gpu, cudaMemsetAsync(dbias, 0, (size_t)s->out_c * sizeof(float), gpu->compute));
        gpu_op_done(gpu, "conv2d_backward");
        return;
    }
    gpu_use_floats(gpu, in, in_count);
    gpu_use_floats(gpu, weight, weight_count);
    gpu_use_floats(gpu, out, out_count);
    gpu_use_floats(gpu, dout, out_count);
    gpu_use_floats(gpu, din, in_count);
    conv_batch_set *set = batch_set_for(gpu, plan, n);
    /* ReLU mask on dout in place, and dbias, in one pass. */
    gpu_bias_act_backward(gpu, out, dout, dbias, n, s->out_c, s->out_h * s->out_w, s->act);
    if (din) {
        const conv_tensors data = {din, (float *)weight, dout};
        run_direction(gpu, plan, set, CONV_BWD_DATA, &data);
    }
    const conv_tensors filter = {(float *)in, dweight, dout};
    run_direction(gpu, plan, set, CONV_BWD_FILTER, &filter);
    gpu_op_done(gpu, "conv2d_backward");
}
