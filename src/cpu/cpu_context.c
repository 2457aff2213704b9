/* cpu_context.c: the reference backend's lifetime, the ops table, its memory limit and
 * hd_cpu_backend_create (kernels/gpu_context.cu is its GPU twin). Memory and fences are in
 * cpu_transfer.c; the ops in one file each, named as their kernels/gpu_X.cu twins (cpu_conv.c,
 * cpu_pool.c, cpu_dense.c, cpu_bias_act.c, cpu_dropout.c, cpu_loss.c, cpu_optim.c, cpu_record.c).
 * Threads: OpenMP splits every op over the batch (or over output rows); OpenBLAS runs
 * single-threaded inside each thread, so the two never oversubscribe the cores and the
 * split, hence the floating-point summation order, depends only on the thread count. */
#include "cpu_backend.h"
#include "hd/common.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Declared by OpenBLAS' cblas.h; repeated here so the intent is visible. */
void openblas_set_num_threads(int num_threads);
char *openblas_get_config(void);

static void cpu_destroy(hd_backend *be) {
    free(be);
}

static const char *cpu_describe(hd_backend *be) {
    return ((hd_cpu_backend *)be)->description;
}

/* A byte count from a cgroup file ("max" or unreadable: 0, no limit). */
static size_t read_limit_file(const char *dir, const char *cgroup_path, const char *file) {
    char path[4096];
    snprintf(path, sizeof path, "%s%s/%s", dir, cgroup_path, file);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    unsigned long long value = 0;
    int ok = fscanf(f, "%llu", &value) == 1;
    fclose(f);
    return ok ? (size_t)value : 0;
}

static size_t smaller_limit(size_t a, size_t b) {
    return a == 0 ? b : (b == 0 || a < b) ? a : b;
}

/* The memory limit of this process's cgroup (v2 memory.max, v1 memory.limit_in_bytes), 0 if none. */
static size_t cgroup_memory_limit(void) {
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f)
        return 0;
    size_t limit = 0;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *controllers = strchr(line, ':');
        char *path = controllers ? strchr(controllers + 1, ':') : NULL;
        if (!path)
            continue;
        *path++ = '\0';
        controllers++;
        if (strcmp(line, "0") == 0 && controllers[0] == '\0') {
            limit = smaller_limit(limit, read_limit_file("/sys/fs/cgroup", path, "memory.max"));
        } else if (strstr(controllers, "memory")) {
            limit =
                smaller_limit(limit, read_limit_file("/sys/fs/cgroup/memory", path, "memory.limit_in_bytes"));
        }
    }
    fclose(f);
    return limit;
}

/* What the CPU backend can allocate: the machine's RAM, or less when a cgroup or RLIMIT_AS says so. */
static size_t cpu_memory_bytes(hd_backend *be) {
    (void)be;
    long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);
    size_t limit = pages > 0 && page_size > 0 ? (size_t)pages * (size_t)page_size : 0;
    limit = smaller_limit(limit, cgroup_memory_limit());
    struct rlimit as;
    if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY)
        limit = smaller_limit(limit, (size_t)as.rlim_cur);
    return limit;
}

static const hd_backend_ops cpu_ops = {
    .destroy = cpu_destroy,
    .describe = cpu_describe,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .host_alloc = cpu_host_alloc,
    .host_free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .zero = cpu_zero,
    .fence_record = cpu_fence_record,
    .fence_wait = cpu_fence_wait,
    .memory_bytes = cpu_memory_bytes,
    .conv2d_plan = cpu_conv2d_plan,
    .conv2d_plan_free = cpu_conv2d_plan_free,
    .conv2d_forward = cpu_conv2d_forward,
    .conv2d_backward = cpu_conv2d_backward,
    .maxpool_plan = cpu_maxpool_plan,
    .maxpool_plan_free = cpu_maxpool_plan_free,
    .maxpool_forward = cpu_maxpool_forward,
    .maxpool_backward = cpu_maxpool_backward,
    .conv2d_maxpool_forward = cpu_conv2d_maxpool_forward,
    .conv2d_maxpool_backward = cpu_conv2d_maxpool_backward,
    .avgpool_forward = cpu_avgpool_forward,
    .avgpool_backward = cpu_avgpool_backward,
    .gap_forward = cpu_gap_forward,
    .gap_backward = cpu_gap_backward,
    .dense_forward = cpu_dense_forward,
    .dense_backward = cpu_dense_backward,
    .batchnorm_forward = cpu_batchnorm_forward,
    .batchnorm_backward = cpu_batchnorm_backward,
    .relu_forward = cpu_relu_forward,
    .relu_backward = cpu_relu_backward,
    .set_step_scalars = cpu_set_step_scalars,
    .dropout_forward = cpu_dropout_forward,
    .dropout_backward = cpu_dropout_backward,
    .softmax_xent = cpu_softmax_xent,
    .adam_step = cpu_adam_step,
    .sgd_step = cpu_sgd_step,
    .ema_update = cpu_ema_update,
};

hd_backend *hd_cpu_backend_create(const hd_cpu_options *options) {
    hd_cpu_backend *cpu = hd_calloc(1, sizeof *cpu);
    if (!cpu)
        return NULL;
    int threads = options ? options->threads : 0;
    if (threads <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cores > 0 ? (int)cores : 1;
    }
    if (threads > 256)
        threads = 256;
    cpu->threads = threads;
    cpu->base.ops = &cpu_ops;
    cpu->base.name = "cpu";
    cpu->base.is_gpu = 0;
    openblas_set_num_threads(1);
    const char *config = openblas_get_config();
    snprintf(cpu->description, sizeof cpu->description, "cpu (%d thread%s, %s)", threads,
             threads == 1 ? "" : "s", config ? config : "BLAS");
    return &cpu->base;
}
