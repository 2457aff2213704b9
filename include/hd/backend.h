/* backend.h: the interface between the trainer and the hardware.
 *
 * The model, trainer, data pipeline and CLI call only these functions; the CPU backend
 * (src/cpu/cpu_*.c) and the GPU backend (the .cu files in kernels/) implement them. A backend owns its
 * memory: every `float *` below that is not marked "host" is backend memory, obtained from
 * ops->alloc, and may live on a GPU.
 *
 * Layout: activations are NCHW float32, contiguous (n, channels, height, width). Conv
 * weights are (out_c, in_c, k, k); dense weights are (out_features, in_features), as in
 * PyTorch, so that a checkpoint's tensors load there unchanged. Labels are int32.
 *
 * Gradients: every backward op writes its gradients with `=`, never `+=`, and may
 * overwrite its `dout` input (e.g. to apply the activation mask in place).
 *
 * Ordering: ops run in the order they are called, as if synchronously. A GPU backend may
 * queue them; download() and fence_wait() are the only points where the host waits. */
#ifndef HD_BACKEND_H
#define HD_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { HD_ACT_NONE = 0, HD_ACT_RELU = 1 } hd_activation;

/* A 2-D convolution with stride `stride` and symmetric zero padding `pad`:
 * out = floor((in + 2 pad - k) / stride) + 1 (as PyTorch's Conv2d). */
typedef struct {
    int max_batch;
    int in_c, in_h, in_w;
    int out_c, kernel, pad;
    int out_h, out_w;
    hd_activation act; /* applied to the output after the bias */
    int stride;        /* >= 1 */
} hd_conv_shape;

/* Max or average pooling with a square window `size`, stride `size`, no padding (floor, as Keras). */
typedef struct {
    int max_batch;
    int channels, in_h, in_w;
    int size;
    int out_h, out_w;
} hd_pool_shape;

/* Batch normalisation over `channels` channels of `spatial` (h * w) values each, per image: NCHW
 * input (n, channels, spatial); a flat (n, features) input is channels = features, spatial = 1. */
typedef struct {
    int channels, spatial;
    float eps;      /* added to the variance (PyTorch: 1e-5) */
    float momentum; /* weight of the batch in the running statistics (PyTorch: 0.1); constant */
} hd_batchnorm_shape;

/* The scalars that change from one training step to the next. They live in backend memory
 * (one block per model, written by set_step_scalars before each step) and the ops read them
 * there, so that a recorded step (record_begin below) reads this step's values when replayed. */
typedef struct {
    uint64_t step;        /* the global training step: the dropout mask's counter */
    float step_size;      /* the optimizer's: Adam's bias-corrected learning rate, or SGD's */
    float average_weight; /* the weight average's (--ema): this step's weights' share in it; 0 when off */
} hd_step_scalars;

typedef struct hd_backend hd_backend;
typedef struct hd_backend_ops hd_backend_ops;

struct hd_backend_ops {
    /* ---- lifetime and description ---- */
    void (*destroy)(hd_backend *be);
    /* One line such as "cpu (2 threads, OpenBLAS 0.3.21)" or
     * "NVIDIA H100 80GB HBM3, 79.1 GiB, cuDNN 9.13.0, cuBLAS 13.0.2". */
    const char *(*describe)(hd_backend *be);

    /* ---- memory ---- */
    /* Zero-filled backend memory for `count` floats (or int32s: same size); NULL + hd_fail()
     * when out of memory. */
    float *(*alloc)(hd_backend *be, size_t count);
    void (*free)(hd_backend *be, void *ptr);
    /* Host memory suited to uploads (pinned on a GPU). */
    void *(*host_alloc)(hd_backend *be, size_t bytes);
    void (*host_free)(hd_backend *be, void *ptr);
    /* Host -> backend copy. May return before the copy is done when `src` came from
     * host_alloc: the host must not change `src` until a fence recorded after the upload
     * has been waited for. Any other `src` may change as soon as upload returns (the GPU
     * backend stages it through pinned buffers). Later ops see the copied data. */
    void (*upload)(hd_backend *be, void *dst, const void *src, size_t bytes);
    /* Backend -> host copy; returns when the data is on the host (waits for queued work). */
    void (*download)(hd_backend *be, void *dst, const void *src, size_t bytes);
    void (*zero)(hd_backend *be, void *ptr, size_t bytes);
    /* Fences: fence_record marks "everything queued so far"; fence_wait blocks the host
     * until that work (uploads included) is done. Tokens are small integers. */
    int (*fence_record)(hd_backend *be);
    void (*fence_wait)(hd_backend *be, int fence);
    /* Optional (NULL or 0: unknown): the memory alloc draws from, in bytes (the machine's RAM, the
     * GPU's memory). hd_model_create refuses a model whose buffers alone would not fit, with a
     * clear error, rather than be killed touching memory the system overcommitted. */
    size_t (*memory_bytes)(hd_backend *be);

    /* ---- convolution ---- */
    /* A plan holds what a shape needs, made once: scratch buffers on the CPU; descriptors,
     * algorithm choices and workspace on the GPU. NULL + hd_fail() on failure. */
    void *(*conv2d_plan)(hd_backend *be, const hd_conv_shape *shape);
    void (*conv2d_plan_free)(hd_backend *be, void *plan);
    /* out = act(conv(in, weight) + bias), for n <= max_batch images. */
    void (*conv2d_forward)(hd_backend *be, void *plan, int n, const float *in, const float *weight,
                           const float *bias, float *out);
    /* Given out (post-activation) and dout, writes din (skipped when NULL), dweight, dbias. */
    void (*conv2d_backward)(hd_backend *be, void *plan, int n, const float *in, const float *weight,
                            const float *out, float *dout, float *din, float *dweight, float *dbias);

    /* ---- max pooling ---- */
    void *(*maxpool_plan)(hd_backend *be, const hd_pool_shape *shape);
    void (*maxpool_plan_free)(hd_backend *be, void *plan);
    void (*maxpool_forward)(hd_backend *be, void *plan, int n, const float *in, float *out);
    /* din gets dout routed to the arg-max of each window (first maximum on ties). */
    void (*maxpool_backward)(hd_backend *be, void *plan, int n, const float *in, const float *out,
                             const float *dout, float *din);

    /* ---- optional: a convolution and the max pooling that takes its output, as one op ---- */
    /* NULL (the GPU's): the model calls the two layers' ops in turn. Same as conv2d_forward then
     * maxpool_forward, bit for bit, but the convolution's output is never written: each of its planes is
     * pooled while it is still in cache (pool_plan keeps the arg-max, as maxpool_forward does). out is the
     * pooling's output. */
    void (*conv2d_maxpool_forward)(hd_backend *be, void *conv_plan, void *pool_plan, int n, const float *in,
                                   const float *weight, const float *bias, float *out);
    /* Same as maxpool_backward then conv2d_backward, bit for bit, from the pooling's out and dout (the
     * convolution's gradient is built from the arg-max and the pooled values, never read from memory). */
    void (*conv2d_maxpool_backward)(hd_backend *be, void *conv_plan, void *pool_plan, int n, const float *in,
                                    const float *weight, const float *out, const float *dout, float *din,
                                    float *dweight, float *dbias);

    /* ---- average pooling (no plan: nothing to keep between calls) ---- */
    /* out = the mean of each size x size window; rows and columns no window covers are ignored. */
    void (*avgpool_forward)(hd_backend *be, const hd_pool_shape *shape, int n, const float *in, float *out);
    /* din = dout / size^2 spread over its window; 0 where no window covers (written with `=`). */
    void (*avgpool_backward)(hd_backend *be, const hd_pool_shape *shape, int n, const float *dout,
                             float *din);
    /* Global average pooling: out[n, c] = the mean of the plane in[n, c, :, :] of `plane` values. */
    void (*gap_forward)(hd_backend *be, int n, int channels, int plane, const float *in, float *out);
    /* din[n, c, :, :] = dout[n, c] / plane. */
    void (*gap_backward)(hd_backend *be, int n, int channels, int plane, const float *dout, float *din);

    /* ---- dense ---- */
    /* out[n, out_f] = act(in[n, in_f] weight[out_f, in_f]^T + bias) */
    void (*dense_forward)(hd_backend *be, int n, int in_f, int out_f, const float *in, const float *weight,
                          const float *bias, float *out, hd_activation act);
    void (*dense_backward)(hd_backend *be, int n, int in_f, int out_f, const float *in, const float *weight,
                           const float *out, float *dout, float *din, float *dweight, float *dbias,
                           hd_activation act);

    /* ---- batch normalisation (shared_math.h's hd_bn_*) ---- */
    /* out = gamma (in - mean) / sqrt(var + eps) + beta per channel. running holds 2 * channels floats:
     * the running mean, then the running variance. batch_stats = 1 (training): mean and var are the
     * batch's (biased variance) over n * spatial values, and running is updated with momentum (the
     * unbiased variance for the variance); batch_stats = 0 (evaluation, a frozen layer): the running
     * statistics, left unchanged. Either way saved (2 * channels floats, backend memory) receives the
     * mean and 1 / sqrt(var + eps) used, for the backward. No allocation, no host wait. */
    void (*batchnorm_forward)(hd_backend *be, const hd_batchnorm_shape *shape, int n, int batch_stats,
                              const float *in, const float *gamma, const float *beta, float *running,
                              float *saved, float *out);
    /* From the forward's in and saved: dgamma = sum dout xhat, dbeta = sum dout per channel, and din
     * (skipped when NULL) with the full batch-norm gradient when batch_stats (the statistics depend
     * on in), else dout gamma / sqrt(running_var + eps). All written with `=`; dout is not changed. */
    void (*batchnorm_backward)(hd_backend *be, const hd_batchnorm_shape *shape, int n, int batch_stats,
                               const float *in, const float *gamma, const float *saved, const float *dout,
                               float *din, float *dgamma, float *dbeta);

    /* ---- standalone ReLU over `count` contiguous floats ---- */
    /* out = max(in, 0). */
    void (*relu_forward)(hd_backend *be, size_t count, const float *in, float *out);
    /* din = out > 0 ? dout : 0 (out is the forward's output). */
    void (*relu_backward)(hd_backend *be, size_t count, const float *out, const float *dout, float *din);

    /* ---- the per-step scalars (see hd_step_scalars) ---- */
    /* Queues *dst = *value, in order with the other ops; dst is backend memory. */
    void (*set_step_scalars)(hd_backend *be, hd_step_scalars *dst, const hd_step_scalars *value);

    /* ---- dropout (inverted; mask from hd_dropout_multiplier in shared_math.h) ---- */
    /* The mask's counter is step->step (backend memory; not read, and may be NULL, when rate is 0). */
    void (*dropout_forward)(hd_backend *be, size_t count, float rate, uint64_t seed, uint32_t layer_index,
                            const hd_step_scalars *step, const float *in, float *out);
    void (*dropout_backward)(hd_backend *be, size_t count, float rate, uint64_t seed, uint32_t layer_index,
                             const hd_step_scalars *step, const float *dout, float *din);

    /* ---- loss ---- */
    /* Fused softmax + cross-entropy over n rows, against targets smoothed by `smoothing` in [0, 1)
     * (hd_softmax_xent_row in shared_math.h; 0: one-hot). Adds the summed loss to metrics[0] and the
     * number of correct arg-max predictions to metrics[1] (backend floats, read back by the
     * trainer only when it logs). When dlogits is not NULL it receives the gradient of the
     * mean loss over `grad_divisor` rows (normally n). */
    void (*softmax_xent)(hd_backend *be, int n, int classes, const float *logits, const int32_t *labels,
                         float smoothing, float *dlogits, float grad_divisor, float *metrics);

    /* ---- optimizers: one call updates all `count` parameters ---- */
    /* The step size is step->step_size (backend memory): Adam's bias-corrected learning rate (see
     * hd_adam_update), SGD's learning rate. */
    void (*adam_step)(hd_backend *be, size_t count, float *params, const float *grads, float *m, float *v,
                      float beta1, float beta2, float eps, const hd_step_scalars *step);
    void (*sgd_step)(hd_backend *be, size_t count, float *params, const float *grads, float *velocity,
                     float momentum, int nesterov, const hd_step_scalars *step);
    /* The weights' moving average (--ema): avg = hd_ema_update(avg, x, step->average_weight) over `count`
     * floats (backend memory). */
    void (*ema_update)(hd_backend *be, size_t count, float *avg, const float *x, const hd_step_scalars *step);

    /* ---- optional timing (NULL on the CPU) ---- */
    /* Optional (NULL on the CPU): milliseconds between two fences, measured on the device (CUDA events).
     * Waits for fence_b. */
    float (*fence_elapsed_ms)(hd_backend *be, int fence_a, int fence_b);
    /* Optional: the device's measured FP32 rate in GFLOP/s (a large SGEMM, timed with events); NaN if
     * unknown. */
    double (*peak_gflops)(hd_backend *be);

    /* ---- optional: recording ops once and replaying them (NULL on the CPU) ---- */
    /* Between record_begin and record_end the ops called are recorded, not run (their host-side
     * work still happens; set-up such as a conv plan's descriptors for a batch size not seen
     * before is refused, so run each shape once before recording it). record_end returns the
     * recording, or NULL + hd_fail() when the ops could not be recorded: then none of them ran,
     * and the caller runs them directly. Only ops may be called while recording: no transfer,
     * fence or free. replay queues the recorded ops again, with the same arguments and memory;
     * a value that changes between replays must therefore be read from backend memory
     * (hd_step_scalars). replay returns -1 + hd_fail() when the
     * recording is stale (the backend's workspace moved since): free it and record again. */
    int (*record_begin)(hd_backend *be);
    void *(*record_end)(hd_backend *be);
    int (*replay)(hd_backend *be, void *recording);
    void (*recording_free)(hd_backend *be, void *recording);
};

/* Every backend starts with this header; implementations embed it as their first member. */
struct hd_backend {
    const hd_backend_ops *ops;
    const char *name; /* "cpu" or "cuda" */
    int is_gpu;
};

/* ---- creating backends ---- */

typedef struct {
    int threads; /* CPU worker threads; 0 = all cores */
} hd_cpu_options;

typedef struct {
    int device;        /* CUDA device index */
    int deterministic; /* only deterministic cuDNN algorithms */
    int allow_tf32;    /* TF32 tensor-core math in cuBLAS/cuDNN (off by default) */
    int verbose;
    int no_graphs;      /* no record/replay ops (CUDA graphs): every training step runs op by op */
    int quiet_fallback; /* hd_backend_open: no notice on stderr when it falls back to the CPU */
} hd_gpu_options;

hd_backend *hd_cpu_backend_create(const hd_cpu_options *options);

/* Defined in kernels/ when built with CUDA; otherwise a stub that fails with
 * "built without CUDA". NULL + hd_fail() when the device cannot be used. */
hd_backend *hd_gpu_backend_create(const hd_gpu_options *options);
/* Number of usable CUDA devices (0 without a driver, a GPU or CUDA support). Never fails. */
int hd_gpu_device_count(void);
/* The devices on one line, "; " between them ("0: NVIDIA H100 80GB HBM3, 79.1 GiB, sm_90"), or the
 * CUDA runtime's reason for none in parentheses, into buf. */
void hd_gpu_list_devices(char *buf, size_t buf_len);

/* Picks a backend from a --device string: "cpu", a GPU index ("0"), or "auto" (GPU 0 if
 * one answers, else the CPU with a one-line notice on stderr, unless no_fallback). */
hd_backend *hd_backend_open(const char *device, int no_fallback, const hd_cpu_options *cpu,
                            const hd_gpu_options *gpu);

/* Backend memory for `count` int32 values (alloc counts 4-byte elements). */
static inline int32_t *hd_backend_alloc_int32(hd_backend *be, size_t count) {
    void *p = be->ops->alloc(be, count);
    return (int32_t *)p;
}

/* Backend memory for one hd_step_scalars block (zeroed). */
static inline hd_step_scalars *hd_backend_alloc_step_scalars(hd_backend *be) {
    void *p = be->ops->alloc(be, sizeof(hd_step_scalars) / sizeof(float));
    return (hd_step_scalars *)p;
}

static inline void hd_backend_destroy(hd_backend *be) {
    if (be)
        be->ops->destroy(be);
}

#ifdef __cplusplus
}
#endif

#endif
