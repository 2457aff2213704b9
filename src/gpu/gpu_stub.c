/* gpu_stub.c: the GPU entry points of backend.h for builds without CUDA. */
#include "hd/backend.h"
#include "hd/common.h"

#include <stdio.h>

hd_backend *hd_gpu_backend_create(const hd_gpu_options *options) {
    (void)options;
    hd_fail("this hd-gpu was built without CUDA (configure with the CUDA toolkit and cuDNN installed)");
    return NULL;
}

int hd_gpu_device_count(void) {
    return 0;
}

void hd_gpu_list_devices(char *buf, size_t buf_len) {
    snprintf(buf, buf_len, "(built without CUDA: no GPU devices)");
}
