/* cmd_bench.c: `hd-gpu bench`: measures training, inference and start-up speed on one
 * device (see bench.h for the method) and writes the figures as Markdown and/or JSON. */
#include "hd/bench.h"
#include "hd/cli.h"
#include "hd/common.h"
#include "hd/presets.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    hd_bench_config config;
    const char *json_path, *markdown_path;
} bench_settings;

static int parse_batches(const char *value, hd_bench_config *config) {
    char copy[256];
    if (strlen(value) >= sizeof(copy))
        return hd_fail("list too long");
    snprintf(copy, sizeof(copy), "%s", value);
    config->n_batch_sizes = 0;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        int batch;
        if (config->n_batch_sizes == HD_BENCH_MAX_BATCHES)
            return hd_fail("at most %d sizes", HD_BENCH_MAX_BATCHES);
        if (hd_cli_int(item, 1, 65536, &batch) != 0)
            return hd_fail("'%s': expected batch sizes in [1, 65536], comma separated", item);
        config->batch_sizes[config->n_batch_sizes++] = batch;
    }
    if (config->n_batch_sizes == 0)
        return hd_fail("empty list");
    return 0;
}

#define B(s) ((bench_settings *)(s))
#define C(s) (&B(s)->config)
static int set_quick(void *s, const char *v) {
    return (void)v, hd_bench_config_quick(C(s)), 0;
}
static int set_batches(void *s, const char *v) {
    return parse_batches(v, C(s));
}
static int set_repeats(void *s, const char *v) {
    return hd_cli_int(v, 1, 64, &C(s)->repeats);
}
static int set_warmup(void *s, const char *v) {
    return hd_cli_int(v, 0, 100000, &C(s)->warmup_steps);
}
static int set_min_steps(void *s, const char *v) {
    return hd_cli_int(v, 1, 100000, &C(s)->min_steps);
}
static int set_min_time(void *s, const char *v) {
    return hd_cli_real(v, 0, 600, &C(s)->min_repeat_s);
}
static int set_infer_batch(void *s, const char *v) {
    return hd_cli_int(v, 1, 65536, &C(s)->infer_batch);
}
static int set_latency_iters(void *s, const char *v) {
    return hd_cli_int(v, 1, 100000, &C(s)->latency_iters);
}
static int set_peak_size(void *s, const char *v) {
    return hd_cli_int(v, 16, 16384, &C(s)->peak_size);
}
static int set_resident(void *s, const char *v) {
    return hd_cli_int(v, 1, 1024, &C(s)->resident_batches);
}
static int set_spec(void *s, const char *v) { /* a preset's name: its layers (its recipe is train's) */
    return C(s)->spec = hd_preset_layers(v), 0;
}
static int set_mnist(void *s, const char *v) {
    return (void)v, C(s)->real_data = 1, 0;
}
static int set_data(void *s, const char *v) {
    return C(s)->data_dir = v, C(s)->real_data = 1, 0;
}
static int set_seed(void *s, const char *v) {
    int seed;
    return hd_cli_int(v, 0, 0x7fffffff, &seed) ? -1 : (C(s)->seed = (uint64_t)seed, 0);
}
static int set_layers(void *s, const char *v) {
    return (void)v, C(s)->layers = 1, 0;
}
static int set_json(void *s, const char *v) {
    return B(s)->json_path = v, 0;
}
static int set_markdown(void *s, const char *v) {
    return B(s)->markdown_path = v, 0;
}
#undef C
#undef B

static const hd_cli_option bench_options[] = {
    HD_CLI_OPTION_EARLY("quick", NULL, set_quick,
                        "short run (fewer steps and repeats), for development and CI;\n"
                        "the other options override it, in any order"),
    HD_CLI_OPTION("batches", "LIST", set_batches,
                  "training batch sizes, comma separated (default 64,128,256,512)"),
    HD_CLI_OPTION("repeats", "N", set_repeats, "timed repeats per figure (default 5)"),
    HD_CLI_OPTION("warmup", "N", set_warmup, "untimed steps first (default 5)"),
    HD_CLI_OPTION("min-steps", "N", set_min_steps, "timed steps per repeat, at least (default 10)"),
    HD_CLI_OPTION("min-time", "S", set_min_time, "... and enough to last S seconds (default 0.5)"),
    HD_CLI_OPTION("infer-batch", "N", set_infer_batch, "inference batch (default 1024)"),
    HD_CLI_OPTION("latency-iters", "N", set_latency_iters, "single-image latency samples (default 200)"),
    HD_CLI_OPTION("peak-size", "N", set_peak_size, "N x N x N SGEMM for the FP32 peak (default 2048)"),
    HD_CLI_OPTION("resident", "N", set_resident, "distinct batches uploaded once and cycled (default 4)"),
    HD_CLI_OPTION("spec", "SPEC", set_spec,
                  "model spec, or a preset's name for its layers (default the Keras MNIST CNN)"),
    HD_CLI_OPTION("mnist", NULL, set_mnist, "train on MNIST images (default: synthetic images)"),
    HD_CLI_OPTION("data", "DIR", set_data, "MNIST directory (implies --mnist)"),
    HD_CLI_OPTION("seed", "N", set_seed, "weights and synthetic data seed (default 42)"),
    HD_CLI_OPTION("layers", NULL, set_layers,
                  "also time each layer's forward and backward, the loss and the update,\n"
                  "per batch size (the step run op by op; --quick turns it on)"),
    HD_CLI_OPTION("json", "PATH", set_json, "write the JSON report (- for stdout)"),
    HD_CLI_OPTION("markdown", "PATH", set_markdown,
                  "write the Markdown report (- for stdout; the default when no --json)"),
};
static const hd_cli_group bench_groups[] = {
    HD_CLI_GROUP_WHOLE(NULL, bench_options),
    HD_CLI_GROUP("Device:", hd_device_cli_options, bench_settings, config.dev),
    HD_CLI_GROUP(NULL, hd_graph_cli_options, bench_settings, config.dev),
};
const hd_cli_command hd_cli_bench = {
    .name = "bench",
    .summary = "measure training and inference speed",
    .synopsis = "[options]",
    .description =
        "Times steady-state training (batches resident on the device, after warm-up, median [min, max] of\n"
        "repeats), inference, single-image latency and start-up, against the device's measured FP32 rate.\n"
        "With --layers, each batch size's step is also run op by op with every layer's forward and "
        "backward,\n"
        "the loss and the optimizer update timed on their own (bench/README.md).",
    .groups = bench_groups,
    .n_groups = sizeof bench_groups / sizeof bench_groups[0],
    .run = hd_cmd_bench,
};

static int write_report(const char *path, char *text) {
    if (!text)
        return -1;
    int rc = 0;
    if (strcmp(path, "-") == 0) {
        if (fputs(text, stdout) == EOF || fflush(stdout) != 0)
            rc = hd_fail("stdout: cannot write the report");
    } else {
        rc = hd_write_file_atomic(path, text, strlen(text));
    }
    free(text);
    return rc;
}

int hd_cmd_bench(int argc, char **argv) {
    bench_settings s;
    memset(&s, 0, sizeof s);
    hd_bench_config_defaults(&s.config);
    int first_operand;
    int parsed = hd_cli_parse(&hd_cli_bench, &s, argc, argv, &first_operand);
    if (parsed != 0)
        return parsed > 0 ? HD_EXIT_OK : HD_EXIT_USAGE;
    if (!s.json_path && !s.markdown_path)
        s.markdown_path = "-";
    hd_bench_config config = s.config;
    struct {
        const char *json_path, *markdown_path;
    } paths = {s.json_path, s.markdown_path};

    hd_bench_result result;
    if (hd_bench_run(&config, &result) != 0) {
        fprintf(stderr, "hd-gpu bench: %s\n", hd_last_error());
        return HD_EXIT_RUNTIME;
    }
    if (paths.json_path && write_report(paths.json_path, hd_bench_json(&config, &result)) != 0) {
        fprintf(stderr, "hd-gpu bench: %s\n", hd_last_error());
        return HD_EXIT_RUNTIME;
    }
    if (paths.markdown_path && write_report(paths.markdown_path, hd_bench_markdown(&config, &result)) != 0) {
        fprintf(stderr, "hd-gpu bench: %s\n", hd_last_error());
        return HD_EXIT_RUNTIME;
    }
    return HD_EXIT_OK;
}
