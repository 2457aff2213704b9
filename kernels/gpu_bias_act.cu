/* gpu_bias_act.cu: bias + activation after a convolution or a dense GEMM, and its backward.
 *
 * Layout: out and dout are (n, channels, spatial) contiguous: NCHW with spatial = H*W for a
 * convolution, (n, features) with spatial = 1 for a dense layer. bias and dbias have
 * `channels` elements.
 * Forward:  out = act(out + bias[c]) in place.
 * Backward: with ReLU, dout is zeroed in place where out <= 0 (the mask of the forward
 *           output); dbias[c] = sum of dout over n and spatial, written with `=`. One block
 *           per channel sums in a fixed order, so the result is the same on every run. */
#include "gpu_internal.h"

__global__ void hdgpu_bias_act_forward_kernel(float *out, const float *bias, size_t total, int channels,
                                              int spatial, int relu) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        int c = (int)((i / (size_t)spatial) % (size_t)channels);
        float v = out[i] + bias[c];
        out[i] = relu ? (v > 0.0f ? v : 0.0f) : v;
    }
}

/* Sum of `value` over the block, valid in thread 0. blockDim.x is a multiple of 32. */
__device__ static float block_sum(float value, float *warp_sums) {
    for (int offset = 16; offset > 0; offset >>= 1)
        value += __shfl_down_sync(0xffffffffu, value, offset);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0)
        warp_sums[warp] = value;
    __syncthreads();
    int warps = (int)(blockDim.x >> 5);
    value = 0.0f;
    if (warp == 0) {
        value = lane < warps ? warp_sums[lane] : 0.0f;
        for (int offset = 16; offset > 0; offset >>= 1)
            value += __shfl_down_sync(0xffffffffu, value, offset);
    }
    return value;
}

/* grid: one block per channel. */
__global__ void hdgpu_bias_act_backward_kernel(const float *out, float *dout, float *dbias, int n,
                                               int channels, int spatial, int relu) {
    __shared__ float warp_sums[32];
    int c = blockIdx.x;
    size_t per_channel = (size_t)n * (size_t)spatial;
    float sum = 0.0f;
    for (size_t j = threadIdx.x; j < per_channel; j += blockDim.x) {
        size_t image = j / (size_t)spatial;
        size_t s = j - image * (size_t)spatial;
        size_t idx = (image * (size_t)channels + (size_t)c) * (size_t)spatial + s;
        float g = dout[idx];
        if (relu && !(out[idx] > 0.0f)) {
            g = 0.0f;
            dout[idx] = 0.0f;
        }
        sum += g;
    }
    sum = block_sum(sum, warp_sums);
    if (threadIdx.x == 0 && dbias)
        dbias[c] = sum;
}

void gpu_bias_act_forward(hd_gpu_backend *gpu, float *out, const float *bias, int n, int channels,
                          int spatial, hd_activation act) {
    size_t total = (size_t)n * (size_t)channels * (size_t)spatial;
    if (total == 0)
        return;
    hdgpu_bias_act_forward_kernel<<<gpu_grid_blocks(gpu, total), HD_GPU_THREADS, 0, gpu->compute>>>(
        out, bias, total, channels, spatial, act == HD_ACT_RELU);
    CUDA_OP_LAUNCH(gpu);
}

void gpu_bias_act_backward(hd_gpu_backend *gpu, const float *out, float *dout, float *dbias, int n,
                           int channels, int spatial, hd_activation act) {
    if (channels <= 0)
        return;
    if (act != HD_ACT_RELU && !dbias)
        return;
    hdgpu_bias_act_backward_kernel<<<(unsigned)channels, HD_GPU_REDUCE_THREADS, 0, gpu->compute>>>(
        out, dout, dbias, n, channels, spatial, act == HD_ACT_RELU);
    CUDA_OP_LAUNCH(gpu);
}
