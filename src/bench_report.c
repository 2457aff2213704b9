/* bench_report.c: a benchmark result as JSON (for bench/run and machines) and as a
 * Markdown table (for people). Figures that were not measured (NAN) are null in JSON and
 * "n/a" in Markdown. Both are built in a growing string. */
#include "hd/bench.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hd/common.h"

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

/* A JSON string: quotes, backslashes and control characters escaped. */
static void put_json_string(text_buffer *b, const char *s) {
    put(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            put(b, "\\%c", *p);
        else if (*p < 0x20)
            put(b, "\\u%04x", *p);
        else
            put(b, "%c", *p);
    }
    put(b, "\"");
}

static void put_json_number(text_buffer *b, double x) {
    if (isfinite(x))
        put(b, "%.6g", x);
    else
        put(b, "null");
}

static void put_json_stat(text_buffer *b, const char *key, const hd_bench_stat *s) {
    put(b, "\"%s\": {\"median\": ", key);
    put_json_number(b, s->median);
    put(b, ", \"min\": ");
    put_json_number(b, s->min);
    put(b, ", \"max\": ");
    put_json_number(b, s->max);
    put(b, ", \"count\": %d}", s->count);
}

static void put_json_settings(text_buffer *b, const hd_bench_config *c) {
    put(b, "  \"settings\": {\"batch_sizes\": [");
    for (int i = 0; i < c->n_batch_sizes; i++)
        put(b, "%s%d", i ? ", " : "", c->batch_sizes[i]);
    put(b, "], \"resident_batches\": %d, \"warmup_steps\": %d, \"min_steps\": %d, \"min_repeat_s\": ",
        c->resident_batches, c->warmup_steps, c->min_steps);
    put_json_number(b, c->min_repeat_s);
    put(b,
        ", \"repeats\": %d, \"infer_batch\": %d, \"latency_iters\": %d, \"epoch_images\": %d, \"seed\": "
        "%llu},\n",
        c->repeats, c->infer_batch, c->latency_iters, c->epoch_images, (unsigned long long)c->seed);
}

static void put_json_train(text_buffer *b, const hd_bench_train_result *t, int last) {
    put(b, "    {\"batch\": %d, \"steps_per_repeat\": %d, ", t->batch, t->steps);
    put_json_stat(b, "ms_per_step", &t->ms_per_step);
    put(b, ", ");
    put_json_stat(b, "images_per_s", &t->images_per_s);
    put(b, ", ");
    put_json_stat(b, "epoch_s", &t->epoch_s);
    put(b, ", \"gflops\": ");
    put_json_number(b, t->gflops);
    put(b, ", \"peak_fraction\": ");
    put_json_number(b, t->peak_fraction);
    put(b, ", \"bytes_per_step\": ");
    put_json_number(b, t->bytes_per_step);
    put(b, ", \"mean_loss\": ");
    put_json_number(b, t->mean_loss);
    put(b, ", \"recorded\": %s, ", t->recorded ? "true" : "false");
    put_json_stat(b, "op_by_op_ms_per_step", &t->op_by_op_ms_per_step);
    put(b, "}%s\n", last ? "" : ",");
}

char *hd_bench_json(const hd_bench_config *config, const hd_bench_result *r) {
    text_buffer b = {0};
    put(&b, "{\n  \"tool\": \"hd-gpu\",\n  \"version\": \"%s\",\n  \"device\": {\"backend\": ", HD_VERSION);
    put_json_string(&b, r->backend);
    put(&b, ", \"description\": ");
    put_json_string(&b, r->device);
    put(&b, ", \"is_gpu\": %s, \"threads\": %d},\n  \"blas\": ", r->is_gpu ? "true" : "false", r->threads);
    put_json_string(&b, r->blas);
    put(&b, ",\n  \"spec\": ");
    put_json_string(&b, r->spec);
    put(&b, ",\n  \"param_count\": %zu,\n  \"data\": ", r->param_count);
    put_json_string(&b, r->data);
    put(&b, ",\n");
    put_json_settings(&b, config);
    put(&b, "  \"timing\": ");
    put_json_string(&b, r->timing);
    put(&b, ",\n  \"startup\": {\"backend_init_s\": ");
    put_json_number(&b, r->backend_init_s);
    put(&b, ", \"data_load_s\": ");
    put_json_number(&b, r->data_load_s);
    put(&b, "},\n  \"floor\": {\"flops_forward_per_image\": ");
    put_json_number(&b, r->flops_forward);
    put(&b, ", \"flops_backward_per_image\": ");
    put_json_number(&b, r->flops_backward);
    put(&b, ", \"peak_gflops\": ");
    put_json_number(&b, r->peak_gflops);
    put(&b, ", ");
    put_json_stat(&b, "peak_gflops_samples", &r->peak_gflops_stat);
    put(&b, ", \"peak_method\": ");
    put_json_string(&b, r->peak_method);
    put(&b, "},\n  \"train\": [\n");
    for (int i = 0; i < r->n_train; i++)
        put_json_train(&b, &r->train[i], i == r->n_train - 1);
    put(&b, "  ],\n  \"inference\": {\"batch\": %d, \"steps_per_repeat\": %d, ", r->infer_batch,
        r->infer_steps);
    put_json_stat(&b, "images_per_s", &r->infer_images_per_s);
    put(&b, "},\n  ");
    put_json_stat(&b, "latency_ms", &r->latency_ms);
    put(&b, "\n}\n");
    return finish(&b);
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
    return finish(&b);
}
