/* cpu_dropout.c: inverted dropout on the CPU, forward and backward (kernels/gpu_dropout.cu is its GPU
 * twin). Element i of `count` contiguous floats is multiplied by hd_dropout_multiplier(seed, layer_index,
 * step, i, rate) from shared_math.h, through the same shared draw and multiplier as the GPU kernel, so
 * both backends keep the same units for the same seed, layer and step. Backward recomputes the mask
 * (Philox is counter based) and writes din with `=`. */
#include "cpu_backend.h"
#include "hd/shared_math.h"

/* x[i] * hd_dropout_multiplier(...) for the elements of quads [begin, end) (elements 4q to 4q + 3): the
 * rate > 0 case of that function over whole quads (the same shared draw and multiplier, one Philox
 * evaluation a quad, as the GPU kernel's threads), with the branch on the rate outside the loop so that
 * the compiler vectorises the Philox rounds across quads (GCC, 16 wide with AVX-512: CPU_SIMD). No
 * `omp simd`: Clang cannot vectorise the quad's four stores and fails a -Werror build on a request it
 * cannot honour. A test holds it to the shared function bit for bit. */
CPU_SIMD static void dropout_quads(size_t begin, size_t end, float rate, uint64_t seed, uint32_t layer_index,
                                   uint64_t step, const float *x, float *y) {
    const float scale = hd_dropout_scale(rate);
    const uint32_t stream = HD_RNG_STREAM_DROPOUT + layer_index;
    for (size_t q = begin; q < end; q++) {
        hd_philox_out r = hd_random_words(seed, stream, step, q);
        for (int k = 0; k < 4; k++)
            y[4 * q + k] = x[4 * q + k] * hd_dropout_word_multiplier(r.v[k], rate, scale);
    }
}

static void dropout_apply(hd_backend *be, size_t count, float rate, uint64_t seed, uint32_t layer_index,
                          uint64_t step, const float *x, float *y) {
    if (rate <= 0.0f) {
        long long total = (long long)count;
#pragma omp parallel for simd schedule(static) num_threads(cpu_threads(be))
        for (long long i = 0; i < total; i++)
            y[i] = x[i] * 1.0f;
        return;
    }
    size_t quads = count / 4;
    FOR_EACH_THREAD_RANGE(be, quads, dropout_quads(begin, end, rate, seed, layer_index, step, x, y));
    for (size_t i = 4 * quads; i < count; i++) /* the last, partial quad */
        y[i] = x[i] * hd_dropout_multiplier(seed, layer_index, step, i, rate);
}

void cpu_dropout_forward(hd_backend *be, size_t count, float rate, uint64_t seed, uint32_t layer_index,
                         const hd_step_scalars *step_scalars, const float *in, float *out) {
    dropout_apply(be, count, rate, seed, layer_index, rate > 0.0f ? step_scalars->step : 0, in, out);
}

void cpu_dropout_backward(hd_backend *be, size_t count, float rate, uint64_t seed, uint32_t layer_index,
                          const hd_step_scalars *step_scalars, const float *dout, float *din) {
    dropout_apply(be, count, rate, seed, layer_index, rate > 0.0f ? step_scalars->step : 0, dout, din);
}
