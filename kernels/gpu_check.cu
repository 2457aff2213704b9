/* gpu_check.cu: the error reporting behind gpu_check.h's macros. */
#include "gpu_internal.h"
#include "hd/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *short_path(const char *file) {
    const char *kernels = strstr(file, "kernels/");
    return kernels ? kernels : file;
}

void hd_gpu_die(const char *library, const char *call, const char *what, const char *file, int line) {
    fprintf(stderr, "hd-gpu: %s error at %s:%d: %s failed: %s\n", library, short_path(file), line, call,
            what);
    fflush(stderr);
    exit(1);
}

void hd_gpu_op_failed(struct hd_gpu_backend *gpu, const char *library, const char *call, const char *what,
                      const char *file, int line) {
    if (!gpu || !gpu->record.active)
        hd_gpu_die(library, call, what, file, line);
    if (!gpu->record.error[0])
        snprintf(gpu->record.error, sizeof gpu->record.error, "%s error at %s:%d: %s failed: %s", library,
                 short_path(file), line, call, what);
    (void)cudaGetLastError(); /* the error is kept here; later calls must not see it as theirs */
}

int hd_gpu_fail_call(const char *library, const char *call, const char *what, const char *file, int line) {
    return hd_fail("%s error at %s:%d: %s failed: %s", library, short_path(file), line, call, what);
}

const char *hd_gpu_cudnn_error(cudnnStatus_t status) {
    static thread_local char text[1024];
    char detail[768];
    detail[0] = '\0';
    cudnnGetLastErrorString(detail, sizeof detail);
    if (detail[0])
        snprintf(text, sizeof text, "%s (%s)", cudnnGetErrorString(status), detail);
    else
        snprintf(text, sizeof text, "%s", cudnnGetErrorString(status));
    return text;
}
