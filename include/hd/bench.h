/* bench.h: the measurements behind `hd-gpu bench` (src/bench/bench_*.c, src/cli/cmd_bench.c).
 *
 * What is timed and how:
 *   - steady-state training: one step = forward (training, dropout on) + softmax
 *     cross-entropy with its gradient + backward + optimizer update, run as the trainer runs it
 *     (hd_train_step: replayed from a recorded CUDA graph on a GPU, then timed once more op by
 *     op), on batches uploaded to the backend once before timing (data resident on the device;
 *     the model's input pointer is pointed at the resident batch, so no copy is timed). After
 *     warm-up, each repeat runs `steps` steps back to back and ends with a download of
 *     model->metrics (8 bytes), which waits for all queued work; the repeat's time is measured
 *     on the device between two fences (CUDA events) when the backend has fence_elapsed_ms,
 *     else the monotonic clock around that region. The figures are the median, min and max over
 *     the repeats.
 *   - inference: eval forward + loss/accuracy (no gradient) at a large batch, timed the same
 *     way; latency: one image, upload + forward + download of its 10 logits, per image.
 *   - the floor: FLOPs per image from the layer spec, a rough bytes-per-step estimate, and
 *     the device's measured FP32 rate (a large SGEMM: OpenBLAS on the CPU with the same
 *     thread count). Each training figure carries its achieved fraction of that rate.
 *   - start-up: backend creation and data loading.
 *   - with --layers, a per-layer profile (hd_bench_layers): the same steps op by op, each layer's forward
 *     and backward, the loss and the update timed on their own, so that they add up to the step.
 * On a GPU backend the clock-around-a-synchronising-download method includes one
 * host-device round trip per repeat (a few microseconds), negligible against a repeat of
 * many steps. Every figure that cannot be measured is NAN (written as null in JSON). */
#ifndef HD_BENCH_H
#define HD_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "hd/backend.h"
#include "hd/cli.h"
#include "hd/model.h"
#include "hd/optimizer.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HD_BENCH_MAX_BATCHES  8
#define HD_BENCH_EPOCH_IMAGES 54000 /* MNIST's 60,000 less Keras' 10% validation split */

typedef struct {
    double median, min, max;
    int count;
} hd_bench_stat;

/* Median, min and max of n samples (sorts them in place). n = 0 gives NANs. */
void hd_bench_stat_from(hd_bench_stat *stat, double *samples, int n);

typedef struct {
    hd_device_options dev; /* --device, --threads, ... as every command takes them */
    const char *spec;      /* model spec (HD_DEFAULT_SPEC) */
    int real_data;         /* 1: MNIST training images (hd_mnist_load); 0: synthetic ones */
    const char *data_dir;  /* with real_data: --data DIR, or NULL for mnist.h's search order */
    int batch_sizes[HD_BENCH_MAX_BATCHES];
    int n_batch_sizes;
    int resident_batches; /* distinct batches uploaded once and cycled through */
    int warmup_steps;     /* untimed steps before the first repeat */
    int min_steps;        /* timed steps per repeat, at least */
    double min_repeat_s;  /* ... and enough steps to make a repeat last this long */
    int repeats;
    int infer_batch;   /* large-batch inference */
    int latency_iters; /* single-image latency samples */
    int peak_size;     /* n of the n x n x n SGEMM measuring the FP32 rate */
    int epoch_images;
    uint64_t seed;
    int layers; /* --layers: also profile each batch size's step layer by layer (bench_layers.c) */
} hd_bench_config;

/* Full run: batches 64..512, 5 repeats. */
void hd_bench_config_defaults(hd_bench_config *config);
/* A short run (fewer repeats and steps, with the per-layer profile) for development and CI. */
void hd_bench_config_quick(hd_bench_config *config);

/* One layer of the per-layer profile (--layers). Times are ms per step: a repeat's total for the op over
 * its steps, divided by the steps; median [min, max] over the repeats. */
typedef struct {
    int index;        /* 0-based, in the model's order */
    char name[16];    /* the model's name: conv1, pool1, ... */
    const char *kind; /* as the spec spells it: conv, maxpool, ... (static) */
    /* "" or, where one op runs two layers (hd_layer.fused_pool), the other layer's name: on a conv's row
     * the pooling its op also runs (whose row then times nothing), on the pooling's row that conv. */
    char fused_with[16];
    int out_c, out_h, out_w;
    hd_bench_stat forward_ms;
    hd_bench_stat backward_ms; /* count 0 (NaN) below the lowest trainable layer: no backward work */
    double flops;              /* forward + backward per image (hd_layer_flops_*) */
    double share;              /* (forward + backward medians) / the median per-layer sum (sum_ms) */
    double gflops;             /* batch * flops at the median forward + backward time; NAN without FLOPs */
    double peak_fraction;      /* gflops / measured peak; NAN without FLOPs or peak */
} hd_bench_layer_row;

/* The per-layer profile of one batch size: the same training steps as hd_train_step runs op by op
 * (scalars, forward layer by layer, loss with gradient, backward layer by layer, optimizer update), each
 * op timed on its own: the monotonic clock around it on a synchronous backend (the CPU), device fences
 * before and after it where the backend has fence_elapsed_ms (the GPU). */
typedef struct {
    int n_layers; /* 0: not profiled */
    int steps;    /* steps per repeat (those of the step timing) */
    hd_bench_layer_row rows[HD_MAX_LAYERS];
    hd_bench_stat loss_ms;   /* hd_model_loss with its gradient */
    hd_bench_stat update_ms; /* hd_optimizer_update */
    hd_bench_stat sum_ms;    /* per repeat: every op above summed: the step op by op */
    double loss_share, update_share;
} hd_bench_layers_result;

typedef struct {
    int batch;
    int steps;                 /* timed steps per repeat */
    hd_bench_stat ms_per_step; /* per repeat: elapsed / steps */
    hd_bench_stat images_per_s;
    hd_bench_stat epoch_s; /* ceil(epoch_images / batch) steps */
    double gflops;         /* achieved at the median step time */
    double peak_fraction;  /* gflops / measured peak (NAN when no peak) */
    double bytes_per_step; /* rough estimate, see hd_bench_bytes_per_step */
    double mean_loss;      /* over the timed steps: a sanity check, finite */
    int recorded;          /* 1: the steps were replayed from recordings (CUDA graphs) */
    /* With recorded steps, the same steps run op by op, measured right after (what the graphs
     * save); count 0 and NaNs otherwise. */
    hd_bench_stat op_by_op_ms_per_step;
    hd_bench_layers_result layers; /* --layers; n_layers 0 otherwise */
} hd_bench_train_result;

typedef struct {
    char device[256]; /* backend's describe() line */
    char backend[16]; /* "cpu" or "cuda" */
    int is_gpu;
    int threads;    /* resolved CPU thread count */
    char blas[256]; /* OpenBLAS config line */
    char data[64];  /* "synthetic" or "mnist" */
    char spec[512];
    size_t param_count;
    double backend_init_s; /* creating the backend (device and library initialisation) */
    double data_load_s;    /* reading the MNIST training set (NAN with synthetic data) */
    double peak_gflops;    /* best of the SGEMM repeats (NAN: not measured on this device) */
    hd_bench_stat peak_gflops_stat;
    char peak_method[160];
    double flops_forward, flops_backward; /* per image */
    hd_bench_train_result train[HD_BENCH_MAX_BATCHES];
    int n_train;
    int infer_batch, infer_steps;
    hd_bench_stat infer_images_per_s;
    hd_bench_stat latency_ms;
    char timing[160];
} hd_bench_result;

/* Images and labels on the host, made once: n_images of them. */
typedef struct {
    float *images;   /* n_images x (in_c*in_h*in_w) */
    int32_t *labels; /* n_images */
    int n_images;
    int image_size;
} hd_bench_data;

/* Synthetic images (uniform [0,1) from the seed) or, with config->real_data, the first
 * n_images MNIST training images (hd_mnist_load, never downloading); *load_s receives the
 * time hd_mnist_load took to read both sets (NAN for synthetic data). */
int hd_bench_data_make(hd_bench_data *data, const hd_bench_config *config, int n_images, double *load_s);
void hd_bench_data_free(hd_bench_data *data);

/* FP32 rate of cblas_sgemm n x n x n with OpenBLAS on `threads` threads: repeats
 * timed calls after one warm-up, GFLOP/s in *stat; returns the best. */
double hd_bench_cpu_peak_gflops(int n, int threads, int repeats, hd_bench_stat *stat);

/* Rough bytes moved to and from memory by one training step at batch n, assuming every
 * tensor is touched once per use and nothing stays in cache:
 *   activations: forward reads each layer's input and writes its output; backward reads
 *     input, output and output gradient and writes the input gradient (4 bytes each);
 *   parameters: forward and backward read the weights, backward writes the gradients,
 *     Adam reads parameters, gradients, m, v and writes parameters, m, v (10 passes);
 *   the input batch and labels are read once; batch norm reads its input twice more in the forward
 *     (mean, variance) and its input and output gradient once more in the backward (the sums);
 *   a conv and its max pooling run as one op (hd_layer.fused_pool) move the conv's input, input gradient
 *   and the pooled output and its gradient, never the conv's output.
 *   Convolution scratch (im2col) is left out. */
double hd_bench_bytes_per_step(const hd_model *model, int n);

/* A model of the config's spec for batches up to max_batch, Glorot weights from the seed. */
int hd_bench_model_open(hd_model *model, hd_backend *be, const hd_bench_config *config, int max_batch);
/* Timed steps per repeat: at least min_steps, and enough to last min_repeat_s. */
int hd_bench_steps_per_repeat(const hd_bench_config *config, double seconds_per_step);

/* The measurements. Each returns 0 or -1 + hd_fail(). */
int hd_bench_train(hd_backend *be, const hd_bench_config *config, const hd_bench_data *data, int batch,
                   hd_bench_result *result, hd_bench_train_result *out);
/* The per-layer profile (--layers) of `repeats` repeats of `steps` steps on the resident batches
 * (n_batches of `batch` images each, cycled), run after the step timing's warm-up on the same model and
 * optimizer; the steps are numbered from *step on, which it advances. FLOP rates need
 * result->peak_gflops. */
typedef struct {
    hd_model *model;
    hd_optimizer *opt;
    float *images;   /* backend memory: n_batches * batch images */
    int32_t *labels; /* backend memory: n_batches * batch labels */
    int n_batches, batch, image_size;
    uint64_t seed;
    uint64_t *step;
} hd_bench_layers_input;
int hd_bench_layers(const hd_bench_layers_input *in, int steps, int repeats, const hd_bench_result *result,
                    hd_bench_layers_result *out);
int hd_bench_inference(hd_backend *be, const hd_bench_config *config, const hd_bench_data *data,
                       hd_bench_result *result);
int hd_bench_latency(hd_backend *be, const hd_bench_config *config, const hd_bench_data *data,
                     hd_bench_result *result);

/* Everything: opens the backend (timed), makes the data (timed), measures the peak, trains
 * at each batch size, then inference and latency. Progress lines go to stderr. */
int hd_bench_run(const hd_bench_config *config, hd_bench_result *result);

/* Reports as malloc'ed NUL-terminated strings (NULL + hd_fail() when out of memory). */
char *hd_bench_json(const hd_bench_config *config, const hd_bench_result *result);
char *hd_bench_markdown(const hd_bench_config *config, const hd_bench_result *result);

#ifdef __cplusplus
}
#endif

#endif
