/* cpu_backend.h: internals shared by the CPU backend's files (src/cpu/cpu_*.c). Not part of
 * the public interface: the trainer sees only hd_backend_ops. */
#ifndef HD_CPU_BACKEND_H
#define HD_CPU_BACKEND_H

#include "hd/backend.h"

#include <omp.h>
#include <stdlib.h> /* and with it glibc's features.h: __GLIBC__, for CPU_SIMD */

typedef struct {
    hd_backend base; /* must be first */
    int threads;
    char description[256];
} hd_cpu_backend;

static inline int cpu_threads(hd_backend *be) {
    return ((hd_cpu_backend *)be)->threads;
}

/* Split [0, total) into `parts` nearly equal ranges; range `index` is [*begin, *end). */
static inline void cpu_split_range(int total, int parts, int index, int *begin, int *end) {
    int base = total / parts, extra = total % parts;
    *begin = index * base + (index < extra ? index : extra);
    *end = *begin + base + (index < extra ? 1 : 0);
}

/* The same split for element counts past int: range `index` of `parts` is [*begin, *end). */
static inline void cpu_split_size(size_t total, int parts, int index, size_t *begin, size_t *end) {
    size_t base = total / (size_t)parts, extra = total % (size_t)parts, i = (size_t)index;
    *begin = i * base + (i < extra ? i : extra);
    *end = *begin + base + (i < extra ? 1 : 0);
}

/* Per-thread scratch: each thread's part starts on a 128-byte boundary (a cache line and the one the
 * adjacent-line prefetcher pairs with it), so that two threads never write the same line. A part of
 * `floats` floats takes cpu_part_stride(floats) of the array (a whole number of 128-byte blocks, at least
 * one). cpu_parts_alloc: NULL + hd_fail() when out of memory; free() releases it. */
#define CPU_PART_ALIGN_FLOATS 32
static inline size_t cpu_part_stride(size_t floats) {
    size_t blocks = (floats + CPU_PART_ALIGN_FLOATS - 1) / CPU_PART_ALIGN_FLOATS;
    return (blocks ? blocks : 1) * CPU_PART_ALIGN_FLOATS;
}
void *cpu_parts_alloc(size_t stride, int parts); /* stride in 4-byte elements (floats or int32) */

/* CPU_SIMD: a hot loop compiled three times, for AVX-512, AVX2 and the x86-64 baseline (SSE2), the CPU
 * choosing one when the program loads (GCC and Clang function multiversioning: an ifunc). The baseline
 * build vectorises four floats wide, AVX2 eight, AVX-512 sixteen; the optimizers' loops over every
 * parameter, scalar before (sqrtf kept errno; -fno-math-errno now), ran 2.5-2.8x faster with them
 * (bench --layers, `update`). Every version computes the same bits: the loops are element-wise (no
 * reduction whose order would follow the vector width), and neither reassociation (no -ffast-math) nor
 * FMA contraction (-ffp-contract=off, CMakeLists.txt) is allowed. A CPU_SIMD function is static (Clang
 * names the dispatcher after the function only where every declaration carries the attribute) and holds
 * no OpenMP region (the region's outlined body would not be cloned): a parallel loop calls it for each
 * thread's range. Not for short rows: a 13-wide pooling row left AVX-512 a scalar remainder of most of the
 * row and looked slower (dropped). Where the compiler or the C library has no ifuncs (another
 * architecture, macOS, musl), and in a sanitizer build (the loader runs the dispatcher before the
 * sanitizer's runtime has started: Clang's TSan build crashed in it), the loop is compiled once. */
#if defined(__has_feature) /* Clang */
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define CPU_SIMD_SANITIZED 1
#endif
#endif
#if defined(__has_attribute)
#if __has_attribute(target_clones)
#define CPU_SIMD_CLONES 1
#endif
#endif
#if defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__) && defined(CPU_SIMD_CLONES) &&           \
    !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__) && !defined(CPU_SIMD_SANITIZED)
#define CPU_SIMD __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CPU_SIMD
#endif

/* The element loops run in CPU_SIMD functions, one range of elements per thread (cpu_split_size): a loop
 * written inside an OpenMP parallel region is compiled into the region's outlined function, which
 * target_clones does not reach. FOR_EACH_THREAD_RANGE runs `call` once per thread with its [begin, end). */
#define FOR_EACH_THREAD_RANGE(be, count, call)                                                               \
    do {                                                                                                     \
        int threads_ = cpu_threads(be);                                                                      \
        _Pragma("omp parallel for schedule(static, 1) num_threads(threads_)") for (int t_ = 0;               \
                                                                                   t_ < threads_; t_++) {    \
            size_t begin, end;                                                                               \
            cpu_split_size((count), threads_, t_, &begin, &end);                                             \
            call;                                                                                            \
        }                                                                                                    \
    } while (0)

/* The ops, declared by file in the order of the ops table; each src/cpu_X.c has its twin in
 * kernels/gpu_X.cu, with the same ops in the same order. */

/* cpu_transfer.c: memory and fences. */
float *cpu_alloc(hd_backend *be, size_t count);
void cpu_free(hd_backend *be, void *ptr);
void *cpu_host_alloc(hd_backend *be, size_t bytes);
void cpu_copy(hd_backend *be, void *dst, const void *src, size_t bytes); /* upload and download */
void cpu_zero(hd_backend *be, void *ptr, size_t bytes);
int cpu_fence_record(hd_backend *be);
void cpu_fence_wait(hd_backend *be, int fence);

/* cpu_conv.c */
void cpu_conv2d_plan_free(hd_backend *be, void *plan);
void *cpu_conv2d_plan(hd_backend *be, const hd_conv_shape *shape);
void cpu_conv2d_forward(hd_backend *be, void *plan, int n, const float *in, const float *weight,
                        const float *bias, float *out);
void cpu_conv2d_backward(hd_backend *be, void *plan, int n, const float *in, const float *weight,
                         const float *out, float *dout, float *din, float *dweight, float *dbias);
/* The convolution and the max pooling after it as one op (hd_backend_ops.conv2d_maxpool_*). */
void cpu_conv2d_maxpool_forward(hd_backend *be, void *conv_plan, void *pool_plan, int n, const float *in,
                                const float *weight, const float *bias, float *out);
void cpu_conv2d_maxpool_backward(hd_backend *be, void *conv_plan, void *pool_plan, int n, const float *in,
                                 const float *weight, const float *out, const float *dout, float *din,
                                 float *dweight, float *dbias);

/* cpu_pool.c */
void cpu_maxpool_plan_free(hd_backend *be, void *plan);
void *cpu_maxpool_plan(hd_backend *be, const hd_pool_shape *shape);
void cpu_maxpool_forward(hd_backend *be, void *plan, int n, const float *in, float *out);
void cpu_maxpool_backward(hd_backend *be, void *plan, int n, const float *in, const float *out,
                          const float *dout, float *din);
/* One plane's part of each, for the fused op (cpu_conv.c): plane p of the batch (image * channels +
 * channel) pooled from x into y, its arg-max kept in the plan, with thread `thread`'s scratch (the conv's
 * thread number: both plans have the backend's thread count); and the
 * gradient dx of the plane's input that maxpool_backward followed by the convolution's act'(out) mask
 * gives (y, dy: the plane's pooled output and its gradient). */
void cpu_maxpool_plane_forward(void *plan, int thread, int p, const float *x, float *y);
size_t cpu_maxpool_plane_outputs(const void *plan); /* a plane's pooled outputs: out_h * out_w */
void cpu_maxpool_plane_backward(const void *plan, int p, const float *y, const float *dy, float *dx,
                                hd_activation act);

/* cpu_avgpool.c: average pooling and global average pooling */
void cpu_avgpool_forward(hd_backend *be, const hd_pool_shape *shape, int n, const float *in, float *out);
void cpu_avgpool_backward(hd_backend *be, const hd_pool_shape *shape, int n, const float *dout, float *din);
void cpu_gap_forward(hd_backend *be, int n, int channels, int plane, const float *in, float *out);
void cpu_gap_backward(hd_backend *be, int n, int channels, int plane, const float *dout, float *din);

/* cpu_dense.c */
void cpu_dense_forward(hd_backend *be, int n, int in_f, int out_f, const float *in, const float *weight,
                       const float *bias, float *out, hd_activation act);
void cpu_dense_backward(hd_backend *be, int n, int in_f, int out_f, const float *in, const float *weight,
                        const float *out, float *dout, float *din, float *dweight, float *dbias,
                        hd_activation act);

/* cpu_bias_act.c: ReLU applied in place / its gradient mask applied to dout in place (out is post-ReLU),
 * for cpu_conv.c and cpu_dense.c. */
void cpu_relu_inplace(float *x, size_t count);
void cpu_relu_mask_grad(const float *out, float *dout, size_t count);
/* out (rows, cols) = act(y + bias[row]), y's rows `ld` floats apart: a convolution's bias and
 * activation, one pass from its GEMM's output to the layer's. */
void cpu_bias_act_rows(const float *y, size_t ld, float *out, const float *bias, int rows, int cols,
                       hd_activation act);
/* dst = dout * act'(out) (out post-activation), and returns the sum of dst, summed in a fixed order that
 * depends only on count (a convolution's dbias for one channel and image). */
float cpu_act_grad_gather(const float *out, const float *dout, float *dst, size_t count, hd_activation act);
/* The sum of x in a fixed order that depends only on count (cpu_act_grad_gather's; the fused op's dbias). */
float cpu_lane_sum(const float *x, size_t count);

/* cpu_batchnorm.c */
void cpu_batchnorm_forward(hd_backend *be, const hd_batchnorm_shape *shape, int n, int batch_stats,
                           const float *in, const float *gamma, const float *beta, float *running,
                           float *saved, float *out);
void cpu_batchnorm_backward(hd_backend *be, const hd_batchnorm_shape *shape, int n, int batch_stats,
                            const float *in, const float *gamma, const float *saved, const float *dout,
                            float *din, float *dgamma, float *dbeta);

/* cpu_bias_act.c: the standalone ReLU layer's ops. */
void cpu_relu_forward(hd_backend *be, size_t count, const float *in, float *out);
void cpu_relu_backward(hd_backend *be, size_t count, const float *out, const float *dout, float *din);

/* cpu_record.c */
void cpu_set_step_scalars(hd_backend *be, hd_step_scalars *dst, const hd_step_scalars *value);

/* cpu_dropout.c */
void cpu_dropout_forward(hd_backend *be, size_t count, float rate, uint64_t seed, uint32_t layer_index,
                         const hd_step_scalars *step_scalars, const float *in, float *out);
void cpu_dropout_backward(hd_backend *be, size_t count, float rate, uint64_t seed, uint32_t layer_index,
                          const hd_step_scalars *step_scalars, const float *dout, float *din);

/* cpu_loss.c */
void cpu_softmax_xent(hd_backend *be, int n, int classes, const float *logits, const int32_t *labels,
                      float smoothing, float *dlogits, float grad_divisor, float *metrics);

/* cpu_optim.c */
void cpu_adam_step(hd_backend *be, size_t count, float *params, const float *grads, float *m, float *v,
                   float beta1, float beta2, float eps, const hd_step_scalars *step);
void cpu_sgd_step(hd_backend *be, size_t count, float *params, const float *grads, float *velocity,
                  float momentum, int nesterov, const hd_step_scalars *step);
void cpu_ema_update(hd_backend *be, size_t count, float *avg, const float *x, const hd_step_scalars *step);

#endif
