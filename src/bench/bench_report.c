/* bench_report.c: a benchmark result as JSON (for bench/run and machines) and as a
 * Markdown table (for people). Figures that were not measured (NAN) are null in JSON and
 * "n/a" in Markdown. The JSON is built as a jansson tree (json_io.h), the Markdown in a growing
 * string. */
#include "hd/bench.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hd/common.h"
#include "hd/json_io.h"

typedef struct {
    char *text;
    size_t len, cap;
    int failed;
} text_buffer;

static void put(text_buffer *b, const char *fmt, ...) HD_PRINTF(2, 3);
static void put(text_buffer *b, const char *fmt, ...) {
    if (b->failed)
        return;
    for (;;) {
        va_list args;
        va_start(args, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->text ? b->text + b->len : NULL, room, fmt, args);
        va_end(args);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
        char *grown = realloc(b->text, cap);
        if (!grown) {
            hd_fail("bench report: out of memory (%zu bytes)", cap);
            b->failed = 1;
            return;
        }
        b->text = grown;
        b->cap = cap;
    }
}

static char *finish(text_buffer *b) {
    if (b->failed) {
        free(b->text);
        return NULL;
    }
    return b->text;
}

/* {"median": ..., "min": ..., "max": ..., "count": N}; figures not measured are null. */
static json_t *json_stat(const hd_bench_stat *s) {
    return json_pack("{s:o, s:o, s:o, s:i}", "median", hd_json_number(s->median), "min",
                     hd_json_number(s->min), "max", hd_json_number(s->max), "count", s->count);
}

static json_t *json_settings(const hd_bench_config *c) {
    json_t *batch_sizes = json_array();
    for (int i = 0; batch_sizes && i < c->n_batch_sizes; i++)
        if (json_array_append_new(batch_sizes, json_integer(c->batch_sizes[i])) != 0) {
            json_decref(batch_sizes);
            batch_sizes = NULL;
        }
    return json_pack("{s:o, s:i, s:i, s:i, s:o, s:i, s:i, s:i, s:i, s:I}", "batch_sizes", batch_sizes,
                     "resident_batches", c->resident_batches, "warmup_steps", c->warmup_steps, "min_steps",
                     c->min_steps, "min_repeat_s", hd_json_number(c->min_repeat_s), "repeats", c->repeats,
                     "infer_batch", c->infer_batch, "latency_iters", c->latency_iters, "epoch_images",
                     c->epoch_images, "seed", (json_int_t)c->seed);
}

static json_t *json_layer_row(const hd_bench_layer_row *row) {
    return json_pack("{s:i, s:s, s:s, s:o, s:[i, i, i], s:o, s:o, s:o, s:o, s:o, s:o}", "index", row->index,
                     "name", row->name, "kind", row->kind, "fused_with",
                     row->fused_with[0] ? json_string(row->fused_with) : json_null(), "output", row->out_c,
                     row->out_h, row->out_w, "forward_ms", json_stat(&row->forward_ms), "backward_ms",
                     json_stat(&row->backward_ms), "flops_per_image", hd_json_number(row->flops), "share",
                     hd_json_number(row->share), "gflops", hd_json_number(row->gflops), "peak_fraction",
                     hd_json_number(row->peak_fraction));
}

/* --layers: {"steps_per_repeat", "layers": [a row per layer], "loss_ms", "update_ms", "sum_ms", ...}, or
 * null when the batch size was not profiled. */
static json_t *json_layers(const hd_bench_layers_result *p) {
    if (p->n_layers == 0)
        return json_null();
    json_t *rows = json_array();
    for (int i = 0; rows && i < p->n_layers; i++)
        if (json_array_append_new(rows, json_layer_row(&p->rows[i])) != 0) {
            json_decref(rows);
            rows = NULL;
        }
    return json_pack("{s:i, s:o, s:o, s:o, s:o, s:o, s:o}", "steps_per_repeat", p->steps, "layers", rows,
                     "loss_ms", json_stat(&p->loss_ms), "loss_share", hd_json_number(p->loss_share),
                     "update_ms", json_stat(&p->update_ms), "update_share", hd_json_number(p->update_share),
                     "sum_ms", json_stat(&p->sum_ms));
}

static json_t *json_train(const hd_bench_train_result *t) {
    return json_pack("{s:i, s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:o, s:o}", "batch", t->batch,
                     "steps_per_repeat", t->steps, "ms_per_step", json_stat(&t->ms_per_step), "images_per_s",
                     json_stat(&t->images_per_s), "epoch_s", json_stat(&t->epoch_s), "gflops",
                     hd_json_number(t->gflops), "peak_fraction", hd_json_number(t->peak_fraction),
                     "bytes_per_step", hd_json_number(t->bytes_per_step), "mean_loss",
                     hd_json_number(t->mean_loss), "recorded", t->recorded, "op_by_op_ms_per_step",
                     json_stat(&t->op_by_op_ms_per_step), "layer_profile", json_layers(&t->layers));
}

char *hd_bench_json(const hd_bench_config *config, const hd_bench_result *r) {
    json_t *train = json_array();
    for (int i = 0; train && i < r->n_train; i++)
        if (json_array_append_new(train, json_train(&r->train[i])) != 0) {
            json_decref(train);
            train = NULL;
        }
    json_t *device = json_pack("{s:s, s:s, s:b, s:i}", "backend", r->backend, "description", r->device,
                               "is_gpu", r->is_gpu, "threads", r->threads);
    json_t *startup = json_pack("{s:o, s:o}", "backend_init_s", hd_json_number(r->backend_init_s),
                                "data_load_s", hd_json_number(r->data_load_s));
    json_t *floor =
        json_pack("{s:o, s:o, s:o, s:o, s:s}", "flops_forward_per_image", hd_json_number(r->flops_forward),
                  "flops_backward_per_image", hd_json_number(r->flops_backward), "peak_gflops",
                  hd_json_number(r->peak_gflops), "peak_gflops_samples", json_stat(&r->peak_gflops_stat),
                  "peak_method", r->peak_method);
    json_t *inference = json_pack("{s:i, s:i, s:o}", "batch", r->infer_batch, "steps_per_repeat",
                                  r->infer_steps, "images_per_s", json_stat(&r->infer_images_per_s));
    /* json_pack's "o" takes over each reference, also when it fails (a NULL part fails it). */
    json_t *root = json_pack("{s:s, s:s, s:o, s:s, s:s, s:I, s:s, s:o, s:s, s:o, s:o, s:o, s:o, s:o}", "tool",
                             "hd-gpu", "version", HD_VERSION, "device", device, "blas", r->blas, "spec",
                             r->spec, "param_count", (json_int_t)r->param_count, "data", r->data, "settings",
                             json_settings(config), "timing", r->timing, "startup", startup, "floor", floor,
                             "train", train, "inference", inference, "latency_ms", json_stat(&r->latency_ms));
    /* Six significant digits, as measured figures deserve; one member per line at the top. */
    char *text = hd_json_text("bench report", root, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    if (!text)
        return NULL;
    size_t len = strlen(text);
    char *with_newline = realloc(text, len + 2);
    if (!with_newline) {
        free(text);
        hd_fail("bench report: out of memory (%zu bytes)", len + 2);
        return NULL;
    }
    memcpy(with_newline + len, "\n", 2);
    return with_newline;
}

/* A Markdown cell: the value with `digits` decimals, or n/a. */
static void put_cell(text_buffer *b, double x, int digits) {
    if (isfinite(x))
        put(b, " %.*f |", digits, x);
    else
        put(b, " n/a |");
}

static void put_stat_cells(text_buffer *b, const hd_bench_stat *s, int digits) {
    if (isfinite(s->median))
        put(b, " %.*f [%.*f, %.*f] |", digits, s->median, digits, s->min, digits, s->max);
    else
        put(b, " n/a |");
}

/* A layer's output shape: C x H x W, or C alone for a flat output. */
static void put_shape(text_buffer *b, int c, int h, int w) {
    if (h == 1 && w == 1)
        put(b, " %d |", c);
    else
        put(b, " %dx%dx%d |", c, h, w);
}

static void put_layer_row(text_buffer *b, const hd_bench_layer_row *row) {
    put(b, "| %d | %s | %s", row->index, row->name, row->kind);
    if (row->fused_with[0]) /* one op runs the two: the conv's row times both */
        put(b, strcmp(row->kind, "conv") == 0 ? " + %s |" : ", in %s's op |", row->fused_with);
    else
        put(b, " |");
    put_shape(b, row->out_c, row->out_h, row->out_w);
    put_stat_cells(b, &row->forward_ms, 4);
    put_stat_cells(b, &row->backward_ms, 4);
    put_cell(b, 100.0 * row->share, 1);
    put_cell(b, row->gflops, 1);
    put_cell(b, 100.0 * row->peak_fraction, 1);
    put(b, "\n");
}

/* The loss's or the update's row: its time in the forward column. */
static void put_op_row(text_buffer *b, const char *name, const char *kind, const hd_bench_stat *ms,
                       double share) {
    put(b, "| | %s | %s | |", name, kind);
    put_stat_cells(b, ms, 4);
    put(b, " |");
    put_cell(b, 100.0 * share, 1);
    put(b, " | |\n");
}

/* --layers: one table per batch size, then the per-layer sum beside the whole step. */
static void put_layers(text_buffer *b, const hd_bench_result *r) {
    for (int i = 0; i < r->n_train; i++) {
        const hd_bench_train_result *t = &r->train[i];
        const hd_bench_layers_result *p = &t->layers;
        if (p->n_layers == 0)
            continue;
        put(b, "\n## Per layer, batch %d (ms per step, median [min, max] of %d repeats of %d steps)\n\n",
            t->batch, p->sum_ms.count, p->steps);
        put(b, "| # | layer | kind | output | forward ms | backward ms | of step (%%) | GFLOP/s | of peak "
               "(%%) |\n");
        put(b, "|---:|---|---|---|---:|---:|---:|---:|---:|\n");
        for (int k = 0; k < p->n_layers; k++)
            put_layer_row(b, &p->rows[k]);
        put_op_row(b, "loss", "softmax xent + gradient", &p->loss_ms, p->loss_share);
        put_op_row(b, "update", "Adam", &p->update_ms, p->update_share);
        const hd_bench_stat *sum = &p->sum_ms;
        put(b,
            "\nThe ops summed (the step op by op, layer by layer): %.3f ms [%.3f, %.3f]; the whole step as "
            "timed "
            "above: %.3f ms",
            sum->median, sum->min, sum->max, t->ms_per_step.median);
        if (t->recorded)
            put(b, " (replayed; op by op %.3f ms)", t->op_by_op_ms_per_step.median);
        put(b, ".\n");
    }
}

char *hd_bench_markdown(const hd_bench_config *config, const hd_bench_result *r) {
    text_buffer b = {0};
    put(&b, "# hd-gpu %s benchmark\n\n", HD_VERSION);
    put(&b, "- device: %s\n- BLAS: %s\n- model: `%s` (%zu parameters), %s data\n", r->device, r->blas,
        r->spec, r->param_count, r->data);
    put(&b, "- timing: %s; median [min, max] of %d repeats after %d warm-up steps\n", r->timing,
        config->repeats, config->warmup_steps);
    if (r->n_train > 0)
        put(&b, "- training steps: %s\n",
            r->train[0].recorded ? "replayed from recordings (CUDA graphs)" : "run op by op");
    put(&b, "- FLOPs per image: forward %.4g, backward %.4g; peak FP32: ", r->flops_forward,
        r->flops_backward);
    if (isfinite(r->peak_gflops))
        put(&b, "%.1f GFLOP/s (%s)\n\n", r->peak_gflops, r->peak_method);
    else
        put(&b, "n/a (%s)\n\n", r->peak_method);
    put(&b,
        "| batch | ms/step | images/s | s/epoch (%d images) | GFLOP/s | of peak | MB/step (est.) "
        "| ms/step op by op |\n",
        config->epoch_images);
    put(&b, "|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < r->n_train; i++) {
        const hd_bench_train_result *t = &r->train[i];
        put(&b, "| %d |", t->batch);
        put_stat_cells(&b, &t->ms_per_step, 3);
        put_stat_cells(&b, &t->images_per_s, 0);
        put_stat_cells(&b, &t->epoch_s, 2);
        put_cell(&b, t->gflops, 1);
        put_cell(&b, 100.0 * t->peak_fraction, 1);
        put_cell(&b, t->bytes_per_step * 1e-6, 1);
        put_stat_cells(&b, &t->op_by_op_ms_per_step, 3);
        put(&b, "\n");
    }
    put(&b, "\n| figure | value |\n|---|---:|\n");
    put(&b, "| inference, batch %d (images/s) |", r->infer_batch);
    put_stat_cells(&b, &r->infer_images_per_s, 0);
    put(&b, "\n| latency of one image (ms) |");
    put_stat_cells(&b, &r->latency_ms, 3);
    put(&b, "\n| backend initialisation (ms) |");
    put_cell(&b, r->backend_init_s * 1e3, 3);
    put(&b, "\n| data loading (ms) |");
    put_cell(&b, r->data_load_s * 1e3, 1);
    put(&b, "\n");
    put_layers(&b, r);
    return finish(&b);
}
