/* test_bench_smoke.c: the benchmark harness in miniature on the CPU (a few steps at tiny
 * batches), so that it never rots: every figure finite, positive and consistent with the
 * others, the JSON well formed and carrying the same numbers, the Markdown tables
 * rectangular, and `hd-gpu bench` itself writing a parseable report. */
#include "check.h"
#include "hd/bench.h"
#include "hd/cli.h"
#include "hd/common.h"
#include "hd/json_io.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int positive(double x) {
    return isfinite(x) && x > 0.0;
}

static int close_to(double got, double want, double rtol) {
    return fabs(got - want) <= rtol * fabs(want);
}

static void check_stat(const char *what, const hd_bench_stat *s, int count) {
    CHECK(s->count == count, "%s: %d samples, expected %d", what, s->count, count);
    CHECK(positive(s->min) && positive(s->median) && positive(s->max), "%s: %g %g %g not all positive", what,
          s->min, s->median, s->max);
    CHECK(s->min <= s->median && s->median <= s->max, "%s: median %g outside [%g, %g]", what, s->median,
          s->min, s->max);
}

static void test_stat_and_bytes(void) {
    double odd[] = {3.0, 1.0, 2.0}, even[] = {4.0, 1.0, 3.0, 2.0};
    hd_bench_stat s;
    hd_bench_stat_from(&s, odd, 3);
    CHECK(s.median == 2.0 && s.min == 1.0 && s.max == 3.0, "stat of {3,1,2}: %g [%g, %g]", s.median, s.min,
          s.max);
    hd_bench_stat_from(&s, even, 4);
    CHECK(s.median == 2.5 && s.min == 1.0 && s.max == 4.0, "stat of {4,1,3,2}: %g [%g, %g]", s.median, s.min,
          s.max);
    hd_bench_stat_from(&s, NULL, 0);
    CHECK(isnan(s.median) && s.count == 0, "stat of nothing: %g", s.median);

    /* flatten + dense 784 -> 10 at batch 2: forward reads 784 and writes 10 floats per image,
     * backward reads 784 + 10 + 10 (no input gradient for the first layer); 7850 parameters
     * moved 10 times; each image (784 floats) and label read once. */
    hd_backend *be = hd_cpu_backend_create(&(hd_cpu_options){1});
    CHECK(be != NULL, "cpu backend: %s", hd_last_error());
    if (!be)
        return;
    hd_model model;
    if (hd_model_create(&model, be, "flatten,dense:10", 1, 28, 28, 2) == 0) {
        double want = 4.0 * 2 * (794 + 804) + 4.0 * 7850 * 10 + 2 * (784 * 4 + 4);
        double got = hd_bench_bytes_per_step(&model, 2);
        CHECK(got == want, "bytes per step %.0f, expected %.0f", got, want);
        hd_model_destroy(&model);
    } else {
        CHECK(0, "model: %s", hd_last_error());
    }
    hd_backend_destroy(be);
}

static void tiny_config(hd_bench_config *c) {
    hd_bench_config_defaults(c);
    hd_bench_config_quick(c);
    c->dev.device = "cpu";
    c->dev.threads = 2;
    c->batch_sizes[0] = 8;
    c->batch_sizes[1] = 16;
    c->n_batch_sizes = 2;
    c->warmup_steps = 1;
    c->min_steps = 2;
    c->min_repeat_s = 0.0;
    c->repeats = 3;
    c->infer_batch = 32;
    c->latency_iters = 5;
    c->peak_size = 256;
}

static void check_result(const hd_bench_config *c, const hd_bench_result *r) {
    CHECK(strcmp(r->backend, "cpu") == 0 && !r->is_gpu && r->threads == 2, "backend %s, %d threads",
          r->backend, r->threads);
    CHECK(positive(r->backend_init_s) && isnan(r->data_load_s), "start-up: init %g s, load %g s (synthetic)",
          r->backend_init_s, r->data_load_s);
    CHECK(positive(r->peak_gflops) && r->peak_gflops == r->peak_gflops_stat.max, "peak %g GFLOP/s",
          r->peak_gflops);
    CHECK(positive(r->flops_forward) && r->flops_backward > r->flops_forward, "FLOPs forward %g backward %g",
          r->flops_forward, r->flops_backward);
    CHECK(r->n_train == 2, "%d training results", r->n_train);
    for (int i = 0; i < r->n_train; i++) {
        const hd_bench_train_result *t = &r->train[i];
        double b = c->batch_sizes[i];
        CHECK(t->batch == c->batch_sizes[i] && t->steps >= c->min_steps, "batch %d, %d steps", t->batch,
              t->steps);
        check_stat("ms_per_step", &t->ms_per_step, c->repeats);
        check_stat("images_per_s", &t->images_per_s, c->repeats);
        check_stat("epoch_s", &t->epoch_s, c->repeats);
        /* with an odd number of repeats the medians are the same repeat seen three ways */
        CHECK(close_to(t->images_per_s.median, b * 1e3 / t->ms_per_step.median, 1e-9), "images/s %g vs ms %g",
              t->images_per_s.median, t->ms_per_step.median);
        CHECK(close_to(t->epoch_s.median, ceil(54000.0 / b) * t->ms_per_step.median * 1e-3, 1e-9),
              "s/epoch %g vs ms %g", t->epoch_s.median, t->ms_per_step.median);
        double gflops = b * (r->flops_forward + r->flops_backward) / (t->ms_per_step.median * 1e-3) * 1e-9;
        CHECK(close_to(t->gflops, gflops, 1e-9) && close_to(t->peak_fraction, gflops / r->peak_gflops, 1e-9),
              "batch %d: %g GFLOP/s, fraction %g", t->batch, t->gflops, t->peak_fraction);
        CHECK(positive(t->bytes_per_step) && positive(t->mean_loss), "bytes %g, loss %g", t->bytes_per_step,
              t->mean_loss);
        CHECK(t->mean_loss < 10.0, "mean loss %g of a 10-class softmax at initialisation", t->mean_loss);
    }
    check_stat("inference", &r->infer_images_per_s, c->repeats);
    check_stat("latency", &r->latency_ms, c->latency_iters);
}

/* The number at obj.key (integer or real), or NAN. */
static double number_at(const json_t *obj, const char *key) {
    const json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void check_json(const char *text, const hd_bench_result *r) {
    json_t *root = NULL;
    int rc = hd_json_load("bench json", text, strlen(text), (size_t)1 << 20, &root);
    CHECK(rc == 0, "JSON does not parse: %s", hd_last_error());
    if (rc != 0)
        return;
    const json_t *tool = json_object_get(root, "tool");
    CHECK(json_is_string(tool) && strcmp(json_string_value(tool), "hd-gpu") == 0, "tool member");
    const json_t *train = json_object_get(root, "train");
    CHECK(json_is_array(train) && (int)json_array_size(train) == r->n_train, "train array");
    const json_t *first = json_array_get(train, 0);
    if (first) {
        CHECK(number_at(first, "batch") == r->train[0].batch, "train[0].batch");
        double ms = number_at(json_object_get(first, "ms_per_step"), "median");
        CHECK(close_to(ms, r->train[0].ms_per_step.median, 1e-5), "JSON ms/step %g, result %g", ms,
              r->train[0].ms_per_step.median);
    }
    const json_t *load = json_object_get(json_object_get(root, "startup"), "data_load_s");
    CHECK(json_is_null(load), "data_load_s is null for synthetic data");
    double latency = number_at(json_object_get(root, "latency_ms"), "median");
    CHECK(close_to(latency, r->latency_ms.median, 1e-5), "JSON latency %g", latency);
    json_decref(root);
}

/* Every table line (starting with '|') has as many cells as its table's header; --quick adds a per-layer
 * table per batch size (a row per layer, the loss's and the update's). */
static void check_markdown(const char *text, const hd_bench_result *r) {
    int n_train = r->n_train, layer_rows = 0;
    for (int i = 0; i < n_train; i++)
        layer_rows += r->train[i].layers.n_layers + 2;
    int tables = 0, rows = 0, header_pipes = -1;
    const char *line = text;
    while (*line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        int pipes = 0;
        for (size_t k = 0; k < len; k++)
            pipes += line[k] == '|';
        if (len > 0 && line[0] == '|') {
            if (header_pipes < 0) {
                header_pipes = pipes;
                tables++;
            } else {
                CHECK(pipes == header_pipes, "markdown row has %d pipes, header %d: %.*s", pipes,
                      header_pipes, (int)len, line);
                rows++;
            }
        } else {
            header_pipes = -1;
        }
        line += len + (end ? 1 : 0);
    }
    CHECK(tables == 2 + n_train, "%d markdown tables, expected %d", tables, 2 + n_train);
    CHECK(rows == 1 + n_train + 1 + 4 + n_train + layer_rows, "%d markdown rows after the headers", rows);
    CHECK(layer_rows == n_train * (8 + 2), "--quick profiles the layers: %d rows", layer_rows);
    CHECK(strstr(text, "n/a") != NULL, "synthetic data: loading time shows n/a");
}

static void test_cli(void) {
    char *dir = test_make_temp_dir("bench");
    if (!dir)
        return;
    char json_path[4096];
    snprintf(json_path, sizeof json_path, "%s/bench.json", dir);
    char *argv[] = {"--quick", "--device",      "cpu", "--threads",       "1",      "--batches",
                    "4",       "--infer-batch", "8",   "--latency-iters", "3",      "--peak-size",
                    "64",      "--min-time",    "0",   "--json",          json_path};
    int rc = hd_cmd_bench((int)(sizeof argv / sizeof argv[0]), argv);
    CHECK(rc == HD_EXIT_OK, "hd-gpu bench exit %d", rc);
    uint8_t *data = NULL;
    size_t size = 0;
    if (rc == HD_EXIT_OK && hd_read_file(json_path, &data, &size) == 0) {
        json_t *root = NULL;
        CHECK(hd_json_load(json_path, data, size, (size_t)1 << 20, &root) == 0, "CLI JSON: %s",
              hd_last_error());
        const json_t *train = json_object_get(root, "train");
        CHECK(json_array_size(train) == 1 && number_at(json_array_get(train, 0), "batch") == 4,
              "CLI JSON: one batch of 4");
        const json_t *profile = json_object_get(json_array_get(train, 0), "layer_profile");
        CHECK(json_array_size(json_object_get(profile, "layers")) == 8,
              "CLI JSON: --quick profiles the default model's 8 layers");
        json_decref(root);
        free(data);
    }
    char *bad[] = {"--batches", "0"};
    CHECK(hd_cmd_bench(2, bad) == HD_EXIT_USAGE, "batch 0 is a usage error");
    char *unknown[] = {"--frobnicate"};
    CHECK(hd_cmd_bench(1, unknown) == HD_EXIT_USAGE, "unknown option is a usage error");
    test_remove_tree(dir);
    free(dir);
}

/* The labels the benchmark trains on lie in the model's classes: synthetic ones drawn over all of them,
 * for a 5-class model as for 10 (the loss reads the logits at the label). */
static void test_labels_follow_classes(void) {
    hd_bench_config c;
    hd_bench_config_defaults(&c);
    c.spec = "conv:4:3:relu,flatten,dense:5";
    hd_bench_data data;
    double load_s = 0;
    int rc = hd_bench_data_make(&data, &c, 400, &load_s);
    CHECK(rc == 0, "bench data: %s", hd_last_error());
    if (rc != 0)
        return;
    int seen[5] = {0}, outside = 0;
    for (int i = 0; i < data.n_images; i++) {
        if (data.labels[i] < 0 || data.labels[i] >= 5)
            outside++;
        else
            seen[data.labels[i]]++;
    }
    CHECK(outside == 0 && seen[0] && seen[1] && seen[2] && seen[3] && seen[4],
          "400 synthetic labels for 5 classes: %d outside, counts %d %d %d %d %d", outside, seen[0], seen[1],
          seen[2], seen[3], seen[4]);
    hd_bench_data_free(&data);
}

int main(void) {
    test_stat_and_bytes();
    test_labels_follow_classes();
    hd_bench_config config;
    tiny_config(&config);
    hd_bench_result result;
    int rc = hd_bench_run(&config, &result);
    CHECK(rc == 0, "bench run: %s", hd_last_error());
    if (rc == 0) {
        check_result(&config, &result);
        char *json = hd_bench_json(&config, &result);
        char *markdown = hd_bench_markdown(&config, &result);
        CHECK(json && markdown, "reports: %s", hd_last_error());
        if (json)
            check_json(json, &result);
        if (markdown)
            check_markdown(markdown, &result);
        free(json);
        free(markdown);
    }
    test_cli();
    return test_finish();
}
