/* gpu_compare.h: what the GPU-vs-CPU tests (tests/gpu_test_*.c) share: opening the pair of
 * backends (or skipping with 77 when no GPU answers), moving tensors to and from a backend,
 * poisoning outputs with NaN, and comparing a GPU tensor with the CPU's within the tolerances
 * of tolerances.h. */
#ifndef HD_TEST_GPU_COMPARE_H
#define HD_TEST_GPU_COMPARE_H

#include "hd/backend.h"

#include <stddef.h>

typedef struct {
    hd_backend *cpu, *gpu;
} gpu_backend_pair;

/* 1 when no CUDA device answers, after test_skip() with the CUDA runtime's reason, or, with
 * HD_TEST_REQUIRE_GPU=1 in the environment (bench/gpu-check sets it), after a recorded
 * failure: on a GPU machine a broken driver must not read as a skip. 0 when one answers. */
int gpu_no_device(void);

/* Opens the CPU backend (2 threads) and GPU `gpu_options` (NULL: device 0, defaults; under
 * compute-sanitizer with deterministic set).
 * Returns 1 when both are open. Returns 0 after gpu_no_device() found no CUDA device, or
 * after a recorded CHECK failure when one answers but a backend cannot be opened (so a GPU
 * machine never skips silently). */
int gpu_pair_open(gpu_backend_pair *pair, const hd_gpu_options *gpu_options);
void gpu_pair_close(gpu_backend_pair *pair);

/* 1 under compute-sanitizer: HD_TEST_SANITIZER=1 (=0 says no, whatever else), else the
 * variables compute-sanitizer exports to its target (NV_SANITIZER_INJECTION_PORT_BASE,
 * CUDA_INJECTION64_PATH naming libsanitizer-collection) or its libraries mapped into the
 * process (/proc/self/maps, once CUDA has started). Tests leave out there what the sanitizer
 * would report although it is intended (a failing cudaMalloc) or make take minutes (a large
 * SGEMM, timing every cuDNN algorithm: gpu_pair_open then asks for deterministic plans). */
int gpu_under_sanitizer(void);

/* Backend memory for `count` floats (or int32s), filled from `host` when not NULL. */
float *gpu_device_copy(hd_backend *be, const void *host, size_t count);
/* malloc'ed host copy of `count` floats of backend memory (waits for queued work). */
float *gpu_host_copy(hd_backend *be, const void *dev, size_t count);
/* Fills backend memory with NaN, so an element an op never writes fails the comparison. */
void gpu_poison(hd_backend *be, float *dev, size_t count);
/* Records a failure when an element of dev[from, to), poisoned before an op on fewer rows than
 * the buffer holds, is no longer NaN: the op wrote past its rows (a max_batch descriptor used
 * for a smaller batch, say). */
void gpu_expect_untouched(const char *name, hd_backend *be, const float *dev, size_t from, size_t to);

double gpu_max_abs(const float *x, size_t count);
/* ||got - ref|| / ||ref|| (or ||got - ref|| when ref is zero). */
double gpu_norm_rel_error(const float *got, const float *ref, size_t count);

/* Downloads `count` floats from each backend and compares the GPU's with the CPU's through
 * check_tensor: atol = atol_scale * max |cpu|, rtol. (0, 0) demands bit-equal values; NaN
 * anywhere fails. Returns 1 when within tolerance. Records a failure when a download fails. */
#define gpu_compare_tensors(name, pair, gpu_dev, cpu_dev, count, rtol, atol_scale)                           \
    gpu_compare_tensors_at((name), (pair), (gpu_dev), (cpu_dev), (count), (rtol), (atol_scale), __FILE__,    \
                           __LINE__)
int gpu_compare_tensors_at(const char *name, const gpu_backend_pair *pair, const void *gpu_dev,
                           const void *cpu_dev, size_t count, double rtol, double atol_scale,
                           const char *file, int line);

#endif
