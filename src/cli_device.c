/* cli_device.c: the device options shared by every command that runs a model. */
#include "hd/cli.h"
#include "hd/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hd_device_options_defaults(hd_device_options *opt) {
    memset(opt, 0, sizeof *opt);
    opt->device = "auto";
}

int hd_device_options_parse(hd_device_options *opt, int argc, char **argv, int *i) {
    const char *arg = argv[*i];
    if (strcmp(arg, "--device") == 0 || strcmp(arg, "--threads") == 0) {
        if (*i + 1 >= argc) {
            fprintf(stderr, "hd-gpu: %s needs a value\n", arg);
            return -1;
        }
        const char *value = argv[++*i];
        if (arg[2] == 'd') {
            char *end;
            long index = strtol(value, &end, 10);
            int is_index = *value && *end == '\0' && index >= 0 && index <= 1024;
            if (!is_index && strcmp(value, "cpu") != 0 && strcmp(value, "auto") != 0) {
                fprintf(stderr, "hd-gpu: --device '%s': expected cpu, auto or a GPU index such as 0\n",
                        value);
                return -1;
            }
            opt->device = value;
        } else {
            char *end;
            long threads = strtol(value, &end, 10);
            if (*end || end == value || threads < 0 || threads > 256) {
                fprintf(stderr, "hd-gpu: --threads '%s': expected 0 (all cores) to 256\n", value);
                return -1;
            }
            opt->threads = (int)threads;
        }
        return 1;
    }
    if (strcmp(arg, "--no-fallback") == 0) {
        opt->no_fallback = 1;
        return 1;
    }
    if (strcmp(arg, "--deterministic") == 0) {
        opt->deterministic = 1;
        return 1;
    }
    if (strcmp(arg, "--tf32") == 0) {
        opt->allow_tf32 = 1;
        return 1;
    }
    if (strcmp(arg, "--no-graph") == 0) {
        opt->no_graphs = 1;
        return 1;
    }
    return 0;
}

const char *hd_device_options_usage(void) {
    return "  --device D         cpu, auto (default: GPU 0 if one answers, else the CPU) or a GPU index\n"
           "  --no-fallback      fail instead of falling back to the CPU when no GPU is usable\n"
           "  --threads N        CPU threads (default: all cores)\n"
           "  --deterministic    GPU: only deterministic cuDNN algorithms\n"
           "  --tf32             GPU: allow TF32 tensor-core math (faster, less precise)\n"
           "  --no-graph         GPU: run each training step op by op, not replayed as a CUDA graph\n";
}

hd_backend *hd_device_options_open(const hd_device_options *opt) {
    hd_cpu_options cpu = {opt->threads};
    hd_gpu_options gpu = {.device = 0,
                          .deterministic = opt->deterministic,
                          .allow_tf32 = opt->allow_tf32,
                          .no_graphs = opt->no_graphs};
    hd_backend *be = hd_backend_open(opt->device, opt->no_fallback, &cpu, &gpu);
    if (!be)
        fprintf(stderr, "hd-gpu: %s\n", hd_last_error());
    return be;
}
