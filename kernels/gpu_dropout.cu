/* gpu_dropout.cu: inverted dropout, forward and backward.
 *
 * Layout: `count` contiguous floats (any shape); element i of the batch's activations draws
 * hd_dropout_multiplier(seed, layer_index, step, i, rate) from shared_math.h (word i % 4 of one
 * Philox evaluation a quad, through the same shared functions as the CPU path), so both backends
 * keep the same units for the same seed, layer and step.
 * Forward: out = in * multiplier. Backward: din = dout * multiplier, written with `=`; the mask
 * is recomputed (Philox is counter based), not stored. in == out and dout == din are allowed
 * (each element is read, then written, by one thread). The step is read from backend memory
 * (hd_step_scalars), so a recorded step replays with its own mask. */
#include "gpu_internal.h"
#include "hd/shared_math.h"

/* One thread a quad (elements 4q to 4q + 3, the last one maybe partial): one Philox evaluation gives the
 * quad's four words, as on the CPU (cpu_dropout.c). */
__global__ void hdgpu_dropout_apply_kernel(size_t count, float rate, uint64_t seed, uint32_t layer_index,
                                           const hd_step_scalars *step_scalars, const float *src,
                                           float *dst) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    uint64_t step = step_scalars->step;
    const float scale = hd_dropout_scale(rate);
    const uint32_t stream = HD_RNG_STREAM_DROPOUT + layer_index;
    const size_t quads = (count + 3) / 4;
    for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < quads; q += stride) {
        hd_philox_out r = hd_random_words(seed, stream, step, (uint64_t)q);
#pragma unroll /* unrolled, r.v[k] stays in registers */
        for (int k = 0; k < 4; k++)
            if (4 * q + k < count)
                dst[4 * q + k] = src[4 * q + k] * hd_dropout_word_multiplier(r.v[k], rate, scale);
    }
}

static void dropout_apply(hd_gpu_backend *gpu, size_t count, float rate, uint64_t seed, uint32_t layer_index,
                          const hd_step_scalars *step, const float *src, float *dst, const char *op) {
    if (count == 0)
        return;
    gpu_enter(gpu);
    gpu_use_floats(gpu, src, count);
    gpu_use_floats(gpu, dst, count);
    if (rate <= 0.0f) {
        if (src != dst)
            CUDA_OP(gpu,
                    cudaMemcpyAsync(dst, src, count * sizeof(float), cudaMemcpyDeviceToDevice, gpu->compute));
    } else {
        gpu_use(gpu, step, sizeof *step);
        hdgpu_dropout_apply_kernel<<<gpu_grid_blocks(gpu, (count + 3) / 4), HD_GPU_THREADS, 0,
                                     gpu->compute>>>(count, rate, seed, layer_index, step, src, dst);
        CUDA_OP_LAUNCH(gpu);
    }
    gpu_op_done(gpu, op);
}

void gpu_dropout_forward(hd_backend *be, size_t count, float rate, uint64_t seed, uint32_t layer_index,
                         const hd_step_scalars *step, const float *in, float *out) {
    dropout_apply(hd_gpu_from(be), count, rate, seed, layer_index, step, in, out, "dropout_forward");
}

void gpu_dropout_backward(hd_backend *be, size_t count, float rate, uint64_t seed, uint32_t layer_index,
                          const hd_step_scalars *step, const float *dout, float *din) {
    dropout_apply(hd_gpu_from(be), count, rate, seed, layer_index, step, dout, din, "dropout_backward");
}
