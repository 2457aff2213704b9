/* backend_select.c: turning a --device string into a backend, with the CPU fallback. */
#include "hd/backend.h"
#include "hd/common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static hd_backend *fall_back(const char *why, int no_fallback, const hd_cpu_options *cpu, int quiet) {
    if (no_fallback) {
        hd_fail("%s (and --no-fallback was given)", why);
        return NULL;
    }
    if (!quiet)
        fprintf(stderr, "hd-gpu: %s; using the CPU backend\n", why);
    return hd_cpu_backend_create(cpu);
}

hd_backend *hd_backend_open(const char *device, int no_fallback, const hd_cpu_options *cpu,
                            const hd_gpu_options *gpu) {
    if (!device || !*device)
        device = "auto";
    if (strcmp(device, "cpu") == 0)
        return hd_cpu_backend_create(cpu);

    hd_gpu_options options = {0};
    if (gpu)
        options = *gpu;
    if (strcmp(device, "auto") == 0) {
        options.device = 0;
    } else {
        char *end;
        errno = 0;
        long index = strtol(device, &end, 10);
        if (errno || *end || end == device || index < 0 || index > 1024) {
            hd_fail("--device '%s': expected cpu, auto or a GPU index such as 0", device);
            return NULL;
        }
        options.device = (int)index;
    }

    int count = hd_gpu_device_count();
    if (count == 0) {
        char reason[512], why[600];
        hd_gpu_list_devices(reason, sizeof reason); /* the CUDA runtime's reason, or no CUDA in this build */
        snprintf(why, sizeof why, "no usable GPU %s", reason);
        return fall_back(why, no_fallback, cpu, options.quiet_fallback);
    }
    if (options.device >= count) {
        char list[2048];
        hd_gpu_list_devices(list, sizeof list);
        hd_fail("--device %d: no such GPU; devices present: %s", options.device, list);
        return NULL;
    }
    hd_backend *be = hd_gpu_backend_create(&options);
    if (be)
        return be;
    char why[1200];
    snprintf(why, sizeof why, "GPU %d unusable: %s", options.device, hd_last_error());
    return fall_back(why, no_fallback, cpu, options.quiet_fallback);
}
