/* cpu_dropout.c: inverted dropout on the CPU, forward and backward (kernels/gpu_dropout.cu is its GPU
 * twin). Element i of `count` contiguous floats is multiplied by hd_dropout_multiplier(seed, layer_index,
 * step, i, rate) from shared_math.h, the very function the GPU kernel calls, so both backends keep the
 * same units for the same seed, layer and step. Backward recomputes the mask (Philox is counter based)
 * and writes din with `=`. */
#include "cpu_backend.h"
#include "hd/shared_math.h"

void cpu_dropout_forward(hd_backend *be, size_t count, float rate, uint64_t seed, uint32_t layer_index,
                         const hd_step_scalars *step_scalars, const float *in, float *out) {
    long long total = (long long)count;
    uint64_t step = rate > 0.0f ? step_scalars->step : 0;
#pragma omp parallel for schedule(static) num_threads(cpu_threads(be))
    for (long long i = 0; i < total; i++)
        out[i] = in[i] * hd_dropout_multiplier(seed, layer_index, step, (uint64_t)i, rate);
}

void cpu_dropout_backward(hd_backend *be, size_t count, float rate, uint64_t seed, uint32_t layer_index,
                          const hd_step_scalars *step_scalars, const float *dout, float *din) {
    long long total = (long long)count;
    uint64_t step = rate > 0.0f ? step_scalars->step : 0;
#pragma omp parallel for schedule(static) num_threads(cpu_threads(be))
    for (long long i = 0; i < total; i++)
        din[i] = dout[i] * hd_dropout_multiplier(seed, layer_index, step, (uint64_t)i, rate);
}
