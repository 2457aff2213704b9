/* cmd_bench.c: `hd-gpu bench`: measures training, inference and start-up speed on one
 * device (see bench.h for the method) and writes the figures as Markdown and/or JSON. */
#include "hd/bench.h"
#include "hd/cli.h"
#include "hd/common.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out) {
    fprintf(
        out,
        "usage: hd-gpu bench [options]\n"
        "Times steady-state training (batches resident on the device, after warm-up, median [min, max] of\n"
        "repeats), inference, single-image latency and start-up, against the device's measured FP32 rate.\n"
        "%s"
        "  --quick            short run (fewer steps and repeats), for development and CI\n"
        "  --batches LIST     training batch sizes, comma separated (default 64,128,256,512)\n"
        "  --repeats N        timed repeats per figure (default 5)\n"
        "  --warmup N         untimed steps first (default 5)\n"
        "  --min-steps N      timed steps per repeat, at least (default 10)\n"
        "  --min-time S       ... and enough to last S seconds (default 0.5)\n"
        "  --infer-batch N    inference batch (default 1024)\n"
        "  --latency-iters N  single-image latency samples (default 200)\n"
        "  --peak-size N      N x N x N SGEMM for the FP32 peak (default 2048)\n"
        "  --resident N       distinct batches uploaded once and cycled (default 4)\n"
        "  --spec SPEC        model spec (default the Keras MNIST CNN)\n"
        "  --mnist            train on MNIST images (default: synthetic images)\n"
        "  --data DIR         MNIST directory (implies --mnist)\n"
        "  --seed N           weights and synthetic data seed (default 42)\n"
        "  --json PATH        write the JSON report (- for stdout)\n"
        "  --markdown PATH    write the Markdown report (- for stdout; the default when no --json)\n",
        hd_device_options_usage());
}

static int parse_int(const char *option, const char *value, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end || v < lo || v > hi) {
        fprintf(stderr, "hd-gpu bench: %s '%s': expected an integer in %ld..%ld\n", option, value, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_batches(const char *value, hd_bench_config *config) {
    char copy[256];
    if (strlen(value) >= sizeof(copy)) {
        fprintf(stderr, "hd-gpu bench: --batches: list too long\n");
        return -1;
    }
    snprintf(copy, sizeof(copy), "%s", value);
    config->n_batch_sizes = 0;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        long batch;
        if (config->n_batch_sizes == HD_BENCH_MAX_BATCHES) {
            fprintf(stderr, "hd-gpu bench: --batches: at most %d sizes\n", HD_BENCH_MAX_BATCHES);
            return -1;
        }
        if (parse_int("--batches", item, 1, 65536, &batch) != 0)
            return -1;
        config->batch_sizes[config->n_batch_sizes++] = (int)batch;
    }
    if (config->n_batch_sizes == 0) {
        fprintf(stderr, "hd-gpu bench: --batches: empty list\n");
        return -1;
    }
    return 0;
}

typedef struct {
    const char *json_path, *markdown_path;
} report_paths;

/* The options that take an integer: where it goes and its range. */
typedef struct {
    const char *name;
    int *field;
    long lo, hi;
} int_option;

/* One option that takes a value (argv[*i + 1]); 1 consumed, 0 not ours, -1 bad. */
static int parse_valued(hd_bench_config *c, report_paths *paths, int argc, char **argv, int *i) {
    const int_option ints[] = {
        {"--repeats", &c->repeats, 1, 64},
        {"--warmup", &c->warmup_steps, 0, 100000},
        {"--min-steps", &c->min_steps, 1, 100000},
        {"--infer-batch", &c->infer_batch, 1, 65536},
        {"--latency-iters", &c->latency_iters, 1, 100000},
        {"--peak-size", &c->peak_size, 16, 16384},
        {"--resident", &c->resident_batches, 1, 1024},
    };
    static const char *const others[] = {"--batches", "--min-time", "--spec",    "--data",
                                         "--seed",    "--json",     "--markdown"};
    const char *opt = argv[*i];
    const int_option *int_opt = NULL;
    for (size_t k = 0; k < sizeof(ints) / sizeof(ints[0]); k++)
        if (strcmp(opt, ints[k].name) == 0)
            int_opt = &ints[k];
    int known = int_opt != NULL;
    for (size_t k = 0; k < sizeof(others) / sizeof(others[0]); k++)
        known |= strcmp(opt, others[k]) == 0;
    if (!known)
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "hd-gpu bench: %s needs a value\n", opt);
        return -1;
    }
    const char *value = argv[++*i];
    long v;
    if (int_opt) {
        if (parse_int(opt, value, int_opt->lo, int_opt->hi, &v) != 0)
            return -1;
        *int_opt->field = (int)v;
    } else if (strcmp(opt, "--batches") == 0) {
        return parse_batches(value, c) == 0 ? 1 : -1;
    } else if (strcmp(opt, "--min-time") == 0) {
        char *end;
        double seconds = strtod(value, &end);
        if (end == value || *end || !(seconds >= 0.0 && seconds <= 600.0)) {
            fprintf(stderr, "hd-gpu bench: --min-time '%s': expected seconds in 0..600\n", value);
            return -1;
        }
        c->min_repeat_s = seconds;
    } else if (strcmp(opt, "--seed") == 0) {
        if (parse_int(opt, value, 0, 0x7fffffffL, &v) != 0)
            return -1;
        c->seed = (uint64_t)v;
    } else if (strcmp(opt, "--spec") == 0) {
        c->spec = value;
    } else if (strcmp(opt, "--data") == 0) {
        c->data_dir = value;
        c->real_data = 1;
    } else if (strcmp(opt, "--json") == 0) {
        paths->json_path = value;
    } else {
        paths->markdown_path = value;
    }
    return 1;
}

static int parse_args(hd_bench_config *config, report_paths *paths, int argc, char **argv) {
    for (int i = 0; i < argc; i++) /* --quick first, so that explicit options override it */
        if (strcmp(argv[i], "--quick") == 0)
            hd_bench_config_quick(config);
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 1;
        }
        if (strcmp(argv[i], "--quick") == 0)
            continue;
        if (strcmp(argv[i], "--mnist") == 0) {
            config->real_data = 1;
            continue;
        }
        int rc = hd_device_options_parse(&config->dev, argc, argv, &i);
        if (rc == 0)
            rc = parse_valued(config, paths, argc, argv, &i);
        if (rc < 0)
            return -1;
        if (rc == 0) {
            fprintf(stderr, "hd-gpu bench: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return -1;
        }
    }
    if (!paths->json_path && !paths->markdown_path)
        paths->markdown_path = "-";
    return 0;
}

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
    hd_bench_config config;
    hd_bench_config_defaults(&config);
    report_paths paths = {NULL, NULL};
    int parsed = parse_args(&config, &paths, argc, argv);
    if (parsed != 0)
        return parsed > 0 ? HD_EXIT_OK : HD_EXIT_USAGE;

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
