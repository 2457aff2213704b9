/* test_cpu_fallback_memory.c: a CPU run does not load cuBLAS. The CUDA build opens libcublas only when the
 * GPU backend starts (kernels/gpu_cublas_load.c): linked, its start-up made every process 210 MiB larger,
 * CPU runs included. Here `--device auto` on a machine without a usable GPU falls back to the CPU backend,
 * which trains a step, and no libcublas may be mapped into the process afterwards; `--device cpu` the same.
 * Where a GPU answers, the auto case is the GPU backend, which loads cuBLAS: the test then checks start-up
 * only. In a build without CUDA the check holds trivially and still runs. */
#include "check.h"
#include "hd/backend.h"
#include "hd/common.h"
#include "hd/model.h"
#include "hd/optimizer.h"

#include <stdio.h>
#include <string.h>
#ifdef HD_WITH_CUDA
#include <cublas_v2.h>
#endif

/* Lines of /proc/self/maps that name a cuBLAS library; -1 when the file cannot be read. */
static int cublas_mappings(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    char line[4096];
    int count = 0;
    while (fgets(line, sizeof line, f))
        count += strstr(line, "libcublas") != NULL;
    fclose(f);
    return count;
}

/* One training step of a small network on the backend: the CPU path's kernels all run. */
static void train_one_step(hd_backend *be) {
    hd_model model;
    memset(&model, 0, sizeof model);
    CHECK(hd_model_create(&model, be, "conv:4:3:relu,maxpool:2,flatten,dense:10", 1, 8, 8, 4) == 0,
          "model: %s", hd_last_error());
    CHECK(hd_model_init_weights(&model, 1) == 0, "weights: %s", hd_last_error());
    hd_optimizer opt;
    hd_optimizer_defaults(&opt, HD_OPT_ADAM);
    CHECK(hd_optimizer_init(&opt, &model) == 0, "optimizer: %s", hd_last_error());
    float images[4 * 64];
    int32_t labels[4] = {1, 2, 3, 4};
    for (int i = 0; i < 4 * 64; i++)
        images[i] = (float)(i % 7) / 7.0f;
    be->ops->upload(be, model.input, images, sizeof images);
    be->ops->upload(be, model.labels, labels, sizeof labels);
    hd_model_set_step(&model, 0, hd_optimizer_next_step_size(&opt), 0.0f);
    hd_model_forward(&model, 4, 1, 1);
    hd_model_loss(&model, 4, 1);
    hd_model_backward(&model, 4, 1);
    hd_optimizer_update(&opt, &model);
    float metrics[2];
    be->ops->download(be, metrics, model.metrics, sizeof metrics);
    CHECK(metrics[0] > 0.0f && metrics[0] < 100.0f, "the step's summed loss %g", (double)metrics[0]);
    hd_optimizer_free(&opt, &model);
    hd_model_destroy(&model);
}

int main(void) {
    CHECK(cublas_mappings() == 0, "libcublas mapped at start-up (%d mappings)", cublas_mappings());

    hd_cpu_options cpu = {2};
    hd_gpu_options gpu = {0};
    gpu.quiet_fallback = 1;
    hd_backend *be = hd_backend_open("auto", 0, &cpu, &gpu);
    CHECK(be != NULL, "auto backend: %s", hd_last_error());
    int gpu_answered = be && be->is_gpu;
    if (be && !gpu_answered) {
        train_one_step(be);
        CHECK(cublas_mappings() == 0, "libcublas mapped after a CPU fallback step (%d mappings)",
              cublas_mappings());
    } else if (be) {
        printf("a GPU answered: the auto backend is %s; checking --device cpu only\n", be->name);
    }
    if (be)
        hd_backend_destroy(be);
    if (gpu_answered)
        return test_finish(); /* cuBLAS is in the process now, by design */

    hd_backend *cpu_be = hd_backend_open("cpu", 0, &cpu, &gpu);
    CHECK(cpu_be != NULL, "cpu backend: %s", hd_last_error());
    if (cpu_be) {
        train_one_step(cpu_be);
        hd_backend_destroy(cpu_be);
    }
    CHECK(cublas_mappings() == 0, "libcublas mapped after a CPU step (%d mappings)", cublas_mappings());
#ifdef HD_WITH_CUDA
    /* The loader itself, which needs no GPU: the first cuBLAS call opens the library and finds all ten entry
     * points (a missing one makes cublasGetStatusString return the loader's reason instead of cuBLAS's). */
    const char *status = cublasGetStatusString(CUBLAS_STATUS_SUCCESS);
    if (!status)
        status = "(null)";
    printf("cublasGetStatusString(CUBLAS_STATUS_SUCCESS) through the loader: %s\n", status);
    CHECK(strcmp(status, "(null)") != 0 && strstr(status, "could not") == NULL, "cuBLAS loader: %s", status);
    CHECK(cublas_mappings() > 0, "libcublas not mapped after the first cuBLAS call");
#endif
    return test_finish();
}
