/* test_bench_layers.c: the per-layer split of the passes and `hd-gpu bench --layers` on the CPU. The
 * passes layer by layer (hd_model_forward_layer, hd_model_backward_layer) give the whole passes' logits,
 * gradients and running statistics bit for bit on fresh random weights and inputs; the per-layer FLOP counts
 * sum to the model's totals and match hand counts; and a tiny profile (batch 8, one repeat, a few steps)
 * has a row per layer with the model's names, finite times, shares that add up, and reports that carry it. */
#include "check.h"
#include "hd/bench.h"
#include "hd/common.h"
#include "hd/json_io.h"
#include "hd/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every kind whose pass could differ: conv, pooling, bn (batch statistics, running ones updated), dense,
 * dropout (masks of the step's counter), relu. */
#define SPEC  "conv:4:3:relu,maxpool:2,bn,conv:6:3,relu,flatten,dense:16:relu,dropout:0.5,dense:10"
#define BATCH 8
#define HW    28

static void fill_batch(hd_model *model, uint64_t *rng) {
    size_t n = (size_t)BATCH * HW * HW;
    float *images = malloc(n * sizeof(float));
    int32_t labels[BATCH];
    if (!images)
        return;
    test_fill_uniform(images, n, 0.0f, 1.0f, rng);
    for (int i = 0; i < BATCH; i++)
        labels[i] = (int32_t)(test_rand_u64(rng) % 10);
    model->be->ops->upload(model->be, model->input, images, n * sizeof(float));
    model->be->ops->upload(model->be, model->labels, labels, sizeof labels);
    free(images);
}

/* A host copy of n floats of backend memory (NULL when out of memory). */
static float *host_copy(const hd_model *model, const float *src, size_t n) {
    float *host = malloc(n * sizeof(float));
    if (host)
        model->be->ops->download(model->be, host, src, n * sizeof(float));
    return host;
}

static void check_same(const char *what, const hd_model *a, const float *pa, const hd_model *b,
                       const float *pb, size_t n) {
    float *x = host_copy(a, pa, n), *y = host_copy(b, pb, n);
    CHECK(x && y && memcmp(x, y, n * sizeof(float)) == 0, "%s: layer by layer differs from the whole pass",
          what);
    free(x);
    free(y);
}

/* Two models with the same weights and batch: one runs hd_model_forward/backward, the other the same
 * passes layer by layer. */
static void test_layer_by_layer_is_the_pass(hd_backend *be, uint64_t *rng) {
    hd_model whole, split;
    int ok = hd_model_create(&whole, be, SPEC, 1, HW, HW, BATCH) == 0;
    ok = ok && hd_model_create(&split, be, SPEC, 1, HW, HW, BATCH) == 0;
    CHECK(ok, "model: %s", hd_last_error());
    if (!ok)
        return;
    uint64_t init_seed = test_rand_u64(rng), seed = test_rand_u64(rng);
    hd_model_init_weights(&whole, init_seed);
    hd_model_init_weights(&split, init_seed);
    fill_batch(&whole, rng);
    split.be->ops->upload(be, split.input, whole.input, (size_t)BATCH * HW * HW * sizeof(float));
    split.be->ops->upload(be, split.labels, whole.labels, BATCH * sizeof(int32_t));
    for (int step = 1; step <= 2; step++) { /* the second step sees the first's running statistics */
        hd_model_set_step(&whole, (uint64_t)step, 0.0f, 0.0f);
        hd_model_set_step(&split, (uint64_t)step, 0.0f, 0.0f);
        const float *logits = hd_model_forward(&whole, BATCH, 1, seed);
        for (int i = 0; i < split.n_layers; i++)
            hd_model_forward_layer(&split, i, BATCH, 1, seed);
        const float *split_logits = split.layers[split.n_layers - 1].out;
        check_same("training logits", &whole, logits, &split, split_logits, (size_t)BATCH * 10);
        hd_model_loss(&whole, BATCH, 1);
        hd_model_loss(&split, BATCH, 1);
        hd_model_backward(&whole, BATCH, seed);
        int lowest = hd_model_first_trainable(&split);
        CHECK(lowest == 0, "the first trainable layer is %d, expected the first conv", lowest);
        for (int i = split.n_layers - 1; i >= lowest; i--)
            hd_model_backward_layer(&split, i, lowest, BATCH, seed);
        check_same("gradients", &whole, whole.grads, &split, split.grads, whole.param_count);
        check_same("running statistics", &whole, whole.state, &split, split.state, whole.state_count);
    }
    hd_model_destroy(&whole);
    hd_model_destroy(&split);
}

static void test_flops(hd_backend *be) {
    hd_model model;
    int ok = hd_model_create(&model, be, SPEC, 1, HW, HW, 1) == 0;
    CHECK(ok, "model: %s", hd_last_error());
    if (!ok)
        return;
    double forward = 0.0, backward = 0.0;
    for (int i = 0; i < model.n_layers; i++) {
        forward += hd_layer_flops_forward(&model, i);
        backward += hd_layer_flops_backward(&model, i);
    }
    CHECK(forward == hd_model_flops_forward(&model) && backward == hd_model_flops_backward(&model),
          "layer FLOPs sum to %g + %g, model totals %g + %g", forward, backward,
          hd_model_flops_forward(&model), hd_model_flops_backward(&model));
    /* conv1: 4 x 1 x 3 x 3 weights at 26 x 26 outputs, 2 FLOPs each; no input gradient (first layer). */
    CHECK(hd_layer_flops_forward(&model, 0) == 2.0 * 36 * 676 &&
              hd_layer_flops_backward(&model, 0) == 2.0 * 36 * 676,
          "conv1 FLOPs %g / %g", hd_layer_flops_forward(&model, 0), hd_layer_flops_backward(&model, 0));
    /* conv2 (layer 3): 6 x 4 x 3 x 3 at 11 x 11; backward: weight and input gradients. */
    double conv2 = 2.0 * 216 * 121;
    CHECK(hd_layer_flops_forward(&model, 3) == conv2 && hd_layer_flops_backward(&model, 3) == 2.0 * conv2,
          "conv2 FLOPs %g / %g, expected %g / %g", hd_layer_flops_forward(&model, 3),
          hd_layer_flops_backward(&model, 3), conv2, 2.0 * conv2);
    /* bn (layer 2) on 4 x 13 x 13: 7 forward and 9 backward per value; pooling and relu: none. */
    CHECK(hd_layer_flops_forward(&model, 2) == 7.0 * 676 && hd_layer_flops_backward(&model, 2) == 9.0 * 676,
          "bn FLOPs %g / %g", hd_layer_flops_forward(&model, 2), hd_layer_flops_backward(&model, 2));
    CHECK(hd_layer_flops_forward(&model, 1) == 0.0 && hd_layer_flops_backward(&model, 4) == 0.0,
          "pool and relu count no FLOPs");
    hd_model_destroy(&model);
}

static void check_rows(const hd_bench_result *r, const hd_model *model) {
    const hd_bench_layers_result *p = &r->train[0].layers;
    CHECK(p->n_layers == model->n_layers && p->steps == r->train[0].steps, "%d rows of %d steps", p->n_layers,
          p->steps);
    double share = p->loss_share + p->update_share, parts = p->loss_ms.median + p->update_ms.median;
    for (int i = 0; i < p->n_layers && i < model->n_layers; i++) {
        const hd_bench_layer_row *row = &p->rows[i];
        const hd_layer *layer = &model->layers[i];
        CHECK(row->index == i && strcmp(row->name, layer->name) == 0 && row->kind && row->kind[0],
              "row %d: %d %s (%s), expected %s", i, row->index, row->name, row->kind ? row->kind : "?",
              layer->name);
        CHECK(row->out_c == layer->out_c && row->out_h == layer->out_h && row->out_w == layer->out_w,
              "row %d: output %dx%dx%d", i, row->out_c, row->out_h, row->out_w);
        CHECK(row->forward_ms.count == 1 && row->backward_ms.count == 1, "row %d: %d / %d samples", i,
              row->forward_ms.count, row->backward_ms.count);
        CHECK(isfinite(row->forward_ms.median) && row->forward_ms.median >= 0.0 &&
                  isfinite(row->backward_ms.median) && row->backward_ms.median >= 0.0,
              "row %d (%s): forward %g ms, backward %g ms", i, row->name, row->forward_ms.median,
              row->backward_ms.median);
        double flops = hd_layer_flops_forward(model, i) + hd_layer_flops_backward(model, i);
        CHECK(row->flops == flops && (flops > 0.0) == isfinite(row->gflops), "row %d: %g FLOPs, %g GFLOP/s",
              i, row->flops, row->gflops);
        share += row->share;
        parts += row->forward_ms.median + row->backward_ms.median;
    }
    CHECK(strcmp(p->rows[0].kind, "conv") == 0 && strcmp(p->rows[2].kind, "bn") == 0, "kinds %s, %s",
          p->rows[0].kind, p->rows[2].kind);
    /* conv1 and pool1 run as one op on the CPU: each row names the other; conv2 (no pooling after it), none
     */
    CHECK(strcmp(p->rows[0].fused_with, "pool1") == 0 && strcmp(p->rows[1].fused_with, "conv1") == 0 &&
              p->rows[3].fused_with[0] == 0,
          "fused_with: '%s', '%s', '%s'", p->rows[0].fused_with, p->rows[1].fused_with,
          p->rows[3].fused_with);
    CHECK(isfinite(p->loss_ms.median) && p->loss_ms.median >= 0.0 && isfinite(p->update_ms.median) &&
              p->update_ms.median > 0.0,
          "loss %g ms, update %g ms", p->loss_ms.median, p->update_ms.median);
    /* one repeat: the median sum is the sum of the medians */
    CHECK(fabs(parts - p->sum_ms.median) <= 1e-9 * p->sum_ms.median && p->sum_ms.median > 0.0,
          "the ops add up to %g ms, sum_ms %g", parts, p->sum_ms.median);
    CHECK(fabs(share - 1.0) < 1e-9, "shares add up to %g", share);
}

/* The JSON's train[0].layer_profile: a row per layer with its name; the Markdown's per-layer table. */
static void check_reports(const hd_bench_config *c, const hd_bench_result *r) {
    char *json = hd_bench_json(c, r), *markdown = hd_bench_markdown(c, r);
    CHECK(json && markdown, "reports: %s", hd_last_error());
    json_t *root = NULL;
    if (json && hd_json_load("bench json", json, strlen(json), (size_t)1 << 20, &root) == 0) {
        const json_t *profile =
            json_object_get(json_array_get(json_object_get(root, "train"), 0), "layer_profile");
        const json_t *rows = json_object_get(profile, "layers");
        CHECK((int)json_array_size(rows) == r->train[0].layers.n_layers, "JSON: %zu layer rows",
              json_array_size(rows));
        const json_t *name = json_object_get(json_array_get(rows, 3), "name");
        CHECK(json_is_string(name) && strcmp(json_string_value(name), "conv2") == 0,
              "JSON: row 3 is not conv2");
        const json_t *fused = json_object_get(json_array_get(rows, 1), "fused_with");
        CHECK(json_is_string(fused) && strcmp(json_string_value(fused), "conv1") == 0 &&
                  json_is_null(json_object_get(json_array_get(rows, 3), "fused_with")),
              "JSON: fused_with of pool1 and conv2");
        double sum = json_number_value(json_object_get(json_object_get(profile, "sum_ms"), "median"));
        CHECK(fabs(sum - r->train[0].layers.sum_ms.median) <= 1e-5 * sum, "JSON sum_ms %g", sum);
        json_decref(root);
    } else {
        CHECK(0, "JSON does not parse: %s", hd_last_error());
    }
    if (markdown) {
        CHECK(strstr(markdown, "## Per layer, batch 8") != NULL, "Markdown: no per-layer table for batch 8");
        CHECK(strstr(markdown, "| 3 | conv2 | conv | 6x11x11 |") != NULL, "Markdown: no conv2 row");
        CHECK(strstr(markdown, "| 0 | conv1 | conv + pool1 | 4x26x26 |") != NULL &&
                  strstr(markdown, "| 1 | pool1 | maxpool, in conv1's op | 4x13x13 |") != NULL,
              "Markdown: no fused conv1 / pool1 rows");
        CHECK(strstr(markdown, "| | update | Adam |") != NULL, "Markdown: no update row");
    }
    free(json);
    free(markdown);
}

static void test_profile(hd_backend *be) {
    hd_bench_config c;
    hd_bench_config_defaults(&c);
    c.spec = SPEC;
    c.dev.device = "cpu";
    c.dev.threads = 1;
    c.batch_sizes[0] = BATCH;
    c.n_batch_sizes = 1;
    c.resident_batches = 2;
    c.warmup_steps = 1;
    c.min_steps = 3;
    c.min_repeat_s = 0.0;
    c.repeats = 1;
    c.infer_batch = 8;
    c.latency_iters = 2;
    c.peak_size = 64;
    c.layers = 1;
    hd_bench_result r;
    int rc = hd_bench_run(&c, &r);
    CHECK(rc == 0, "bench run: %s", hd_last_error());
    hd_model model;
    if (rc != 0 || hd_model_create(&model, be, SPEC, 1, HW, HW, 1) != 0)
        return;
    check_rows(&r, &model);
    check_reports(&c, &r);
    hd_model_destroy(&model);
}

int main(void) {
    uint64_t rng = test_fresh_seed();
    hd_backend *be = hd_cpu_backend_create(&(hd_cpu_options){1});
    CHECK(be != NULL, "cpu backend: %s", hd_last_error());
    if (!be)
        return test_finish();
    test_layer_by_layer_is_the_pass(be, &rng);
    test_flops(be);
    test_profile(be);
    hd_backend_destroy(be);
    return test_finish();
}
