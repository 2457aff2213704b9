/* cli_device.c: the device options shared by every command that runs a model, as an option
 * table (cli_options.h), and opening the backend they choose. */
#include "hd/cli.h"
#include "hd/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hd_device_options_defaults(hd_device_options *opt) {
    memset(opt, 0, sizeof *opt);
    opt->device = "auto";
}

static int set_device(void *s, const char *v) {
    long long index;
    if (strcmp(v, "cpu") != 0 && strcmp(v, "auto") != 0 && hd_parse_integer(v, 0, 1024, &index) != 0)
        return hd_fail("expected cpu, auto or a GPU index such as 0");
    ((hd_device_options *)s)->device = v;
    return 0;
}
static int set_no_fallback(void *s, const char *v) {
    return (void)v, ((hd_device_options *)s)->no_fallback = 1, 0;
}
static int set_threads(void *s, const char *v) {
    return hd_cli_int(v, 0, 256, &((hd_device_options *)s)->threads);
}
static int set_deterministic(void *s, const char *v) {
    return (void)v, ((hd_device_options *)s)->deterministic = 1, 0;
}
static int set_tf32(void *s, const char *v) {
    return (void)v, ((hd_device_options *)s)->allow_tf32 = 1, 0;
}
static int set_no_graph(void *s, const char *v) {
    return (void)v, ((hd_device_options *)s)->no_graphs = 1, 0;
}

const hd_cli_option hd_device_cli_options[5] = {
    HD_CLI_OPTION("device", "D", set_device,
                  "cpu, auto (default: GPU 0 if one answers, else the CPU) or a GPU index"),
    HD_CLI_OPTION("no-fallback", NULL, set_no_fallback,
                  "fail instead of falling back to the CPU when no GPU is usable"),
    HD_CLI_OPTION("threads", "N", set_threads, "CPU threads (default: all cores)"),
    HD_CLI_OPTION("deterministic", NULL, set_deterministic, "GPU: only deterministic cuDNN algorithms"),
    HD_CLI_OPTION("tf32", NULL, set_tf32, "GPU: allow TF32 tensor-core math (faster, less precise)"),
};
const hd_cli_option hd_graph_cli_options[1] = {
    HD_CLI_OPTION("no-graph", NULL, set_no_graph,
                  "GPU: run each training step op by op, not replayed as a CUDA graph"),
};

hd_backend *hd_device_options_open(const hd_device_options *opt) {
    hd_cpu_options cpu = {opt->threads};
    hd_gpu_options gpu = {.device = 0,
                          .deterministic = opt->deterministic,
                          .allow_tf32 = opt->allow_tf32,
                          .no_graphs = opt->no_graphs,
                          .quiet_fallback = opt->quiet};
    hd_backend *be = hd_backend_open(opt->device, opt->no_fallback, &cpu, &gpu);
    if (!be)
        fprintf(stderr, "hd-gpu: %s\n", hd_last_error());
    return be;
}
