/* bench_layers.c: the per-layer profile of `hd-gpu bench --layers` (bench.h): the training step that
 * hd_train_step runs op by op (scalars, forward layer by layer, loss with its gradient, backward layer by
 * layer, optimizer update), with each op timed on its own, so that the ops' times add up to the step.
 * A synchronous backend (the CPU) is timed by the monotonic clock around each op; a backend with
 * fence_elapsed_ms (the GPU) by a fence before and after each op, read at once (which waits for the op). */
#include "hd/bench.h"

#include <math.h>
#include <string.h>

#include "hd/common.h"

#define MAX_REPEATS 64

/* Slots of a step's op times: 2 i is layer i's forward, 2 i + 1 its backward, then the loss and the update.
 */
enum { SLOT_LOSS = 2 * HD_MAX_LAYERS, SLOT_UPDATE, N_SLOTS };

/* The spec's names of the layer kinds, indexed by hd_layer_kind. */
static const char *const kind_names[] = {"conv",    "maxpool", "flatten", "dense", "dropout",
                                         "avgpool", "gap",     "bn",      "relu"};

typedef struct {
    hd_backend *be;
    int events; /* 1: device fences (fence_elapsed_ms); 0: the monotonic clock */
    int fence;
    double start;
} op_timer;

static void timer_start(op_timer *t) {
    if (t->events)
        t->fence = t->be->ops->fence_record(t->be);
    else
        t->start = hd_now_seconds();
}

/* Milliseconds since timer_start (NaN where the device could not time the fences). */
static double timer_stop(const op_timer *t) {
    if (!t->events)
        return (hd_now_seconds() - t->start) * 1e3;
    int end = t->be->ops->fence_record(t->be);
    return t->be->ops->fence_elapsed_ms(t->be, t->fence, end);
}

/* One training step on the next resident batch, as hd_train_step_run runs it op by op; adds each op's
 * milliseconds to its slot in ms. */
static void profiled_step(const hd_bench_layers_input *in, op_timer *t, double ms[N_SLOTS]) {
    hd_model *model = in->model;
    uint64_t step = (*in->step)++;
    size_t k = (size_t)(step % (uint64_t)in->n_batches);
    model->input = in->images + k * (size_t)in->batch * (size_t)in->image_size;
    model->labels = in->labels + k * (size_t)in->batch;
    float step_size = hd_optimizer_next_step_size(in->opt);
    hd_model_set_step(model, step, step_size, in->opt->average_weight);
    model->batches_tracked++;
    for (int i = 0; i < model->n_layers; i++) {
        timer_start(t);
        hd_model_forward_layer(model, i, in->batch, 1, in->seed);
        ms[2 * i] += timer_stop(t);
    }
    timer_start(t);
    hd_model_loss(model, in->batch, 1);
    ms[SLOT_LOSS] += timer_stop(t);
    int lowest = hd_model_first_trainable(model);
    for (int i = model->n_layers - 1; i >= lowest; i--) {
        timer_start(t);
        hd_model_backward_layer(model, i, lowest, in->batch, in->seed);
        ms[2 * i + 1] += timer_stop(t);
    }
    timer_start(t);
    hd_optimizer_update(in->opt, model);
    ms[SLOT_UPDATE] += timer_stop(t);
}

/* Layer i's row from its forward and backward samples (ms per step, one per repeat; sorted here). */
static void fill_row(const hd_model *model, int i, int has_backward, double *forward, double *backward,
                     int repeats, hd_bench_layer_row *row) {
    const hd_layer *layer = &model->layers[i];
    row->index = i;
    memcpy(row->name, layer->name, sizeof row->name);
    size_t kind = (size_t)layer->spec.kind;
    row->kind = kind < sizeof kind_names / sizeof kind_names[0] ? kind_names[kind] : "?";
    if (layer->fused_pool)
        memcpy(row->fused_with, layer[1].name, sizeof row->fused_with);
    else if (hd_layer_pooled_by_conv(model, i))
        memcpy(row->fused_with, model->layers[i - 1].name, sizeof row->fused_with);
    row->out_c = layer->out_c;
    row->out_h = layer->out_h;
    row->out_w = layer->out_w;
    hd_bench_stat_from(&row->forward_ms, forward, repeats);
    hd_bench_stat_from(&row->backward_ms, backward, has_backward ? repeats : 0);
    row->flops = hd_layer_flops_forward(model, i) + (has_backward ? hd_layer_flops_backward(model, i) : 0.0);
}

/* Shares of the step and FLOP rates, once the per-layer sum is known. */
static void fill_rates(hd_bench_layers_result *out, int batch, double peak_gflops) {
    double sum = out->sum_ms.median;
    for (int i = 0; i < out->n_layers; i++) {
        hd_bench_layer_row *row = &out->rows[i];
        double ms = row->forward_ms.median + (row->backward_ms.count ? row->backward_ms.median : 0.0);
        row->share = ms / sum;
        row->gflops = row->peak_fraction = NAN;
        if (row->flops > 0.0 && ms > 0.0) {
            row->gflops = (double)batch * row->flops / (ms * 1e-3) * 1e-9;
            row->peak_fraction = row->gflops / peak_gflops; /* NAN when no peak */
        }
    }
    out->loss_share = out->loss_ms.median / sum;
    out->update_share = out->update_ms.median / sum;
}

int hd_bench_layers(const hd_bench_layers_input *in, int steps, int repeats, const hd_bench_result *result,
                    hd_bench_layers_result *out) {
    memset(out, 0, sizeof *out);
    if (repeats < 1 || repeats > MAX_REPEATS || steps < 1 || in->n_batches < 1)
        return hd_fail("bench --layers: need 1..%d repeats, at least one step and one batch (got %d, %d, %d)",
                       MAX_REPEATS, repeats, steps, in->n_batches);
    hd_model *model = in->model;
    op_timer timer = {model->be, model->be->ops->fence_elapsed_ms != NULL, -1, 0.0};
    double samples[N_SLOTS][MAX_REPEATS]; /* ms per step, per op and repeat */
    double sums[MAX_REPEATS];
    for (int r = 0; r < repeats; r++) {
        double ms[N_SLOTS] = {0};
        for (int s = 0; s < steps; s++)
            profiled_step(in, &timer, ms);
        sums[r] = 0.0;
        for (int slot = 0; slot < N_SLOTS; slot++) {
            samples[slot][r] = ms[slot] / steps;
            sums[r] += samples[slot][r];
        }
    }
    int lowest = hd_model_first_trainable(model);
    out->n_layers = model->n_layers;
    out->steps = steps;
    for (int i = 0; i < model->n_layers; i++)
        fill_row(model, i, i >= lowest, samples[2 * i], samples[2 * i + 1], repeats, &out->rows[i]);
    hd_bench_stat_from(&out->loss_ms, samples[SLOT_LOSS], repeats);
    hd_bench_stat_from(&out->update_ms, samples[SLOT_UPDATE], repeats);
    hd_bench_stat_from(&out->sum_ms, sums, repeats);
    fill_rates(out, in->batch, result->peak_gflops);
    return 0;
}
