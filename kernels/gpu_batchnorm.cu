/* gpu_batchnorm.cu: batch normalisation on the GPU, forward and backward side by side (the twin of
 * src/cpu/cpu_batchnorm.c; our own kernels, since cuDNN 9 marks its batch-norm API deprecated).
 *
 * Layout: in, out, dout, din are (n, channels, spatial) float32, contiguous; channel c of image i is
 * the `spatial` floats from (i * channels + c) * spatial. gamma, beta, dgamma, dbeta: `channels`
 * floats; running: running mean then running variance (2 * channels); saved: the mean and
 * 1 / sqrt(var + eps) the forward used (2 * channels), read by the backward.
 * One block per channel: its threads sum the channel's n * spatial values in double (as the CPU
 * does), reduce over the block in a fixed order (the same result on every run), and thread 0 writes
 * the channel's statistics; then the block writes the channel's outputs with shared_math.h's hd_bn_*.
 * Gradients are written with `=`. Nothing is allocated and the host never waits, so the ops record
 * into a CUDA graph; the momentum and eps are the layer's constants, passed by value. */
#include "gpu_internal.h"
#include "gpu_reduce.cuh"
#include "hd/shared_math.h"

/* The index of the channel's j-th value (image-major, then spatial). */
__device__ static inline unsigned channel_index(unsigned j, unsigned c, unsigned channels, unsigned spatial) {
    unsigned image = j / spatial, s = j - image * spatial;
    return (image * channels + c) * spatial + s;
}

__global__ void hdgpu_batchnorm_forward_kernel(int n, int channels, int spatial, float eps, float momentum,
                                               int batch_stats, const float *in, const float *gamma,
                                               const float *beta, float *running, float *saved, float *out) {
    __shared__ double warp_sums[32];
    __shared__ double shared_mean;
    __shared__ float stats[2]; /* mean, invstd */
    const unsigned c = blockIdx.x, C = (unsigned)channels, S = (unsigned)spatial;
    const unsigned count = (unsigned)n * S;
    if (batch_stats) {
        double sum = 0.0;
        for (unsigned j = threadIdx.x; j < count; j += blockDim.x)
            sum += (double)in[channel_index(j, c, C, S)];
        sum = hd_block_sum(sum, warp_sums);
        if (threadIdx.x == 0)
            shared_mean = sum / (double)count;
        __syncthreads();
        const double m = shared_mean;
        double sq = 0.0;
        for (unsigned j = threadIdx.x; j < count; j += blockDim.x) {
            double d = (double)in[channel_index(j, c, C, S)] - m;
            sq += d * d;
        }
        sq = hd_block_sum(sq, warp_sums);
        if (threadIdx.x == 0) {
            float mean = (float)m, var = (float)(sq / (double)count);
            running[c] = hd_bn_running_update(running[c], mean, momentum);
            running[C + c] =
                hd_bn_running_update(running[C + c], hd_bn_unbiased_var(var, (double)count), momentum);
            stats[0] = mean;
            stats[1] = hd_bn_invstd(var, eps);
        }
    } else if (threadIdx.x == 0) {
        stats[0] = running[c];
        stats[1] = hd_bn_invstd(running[C + c], eps);
    }
    __syncthreads();
    const float mean = stats[0], invstd = stats[1], g = gamma[c], b = beta[c];
    if (threadIdx.x == 0) {
        saved[c] = mean;
        saved[C + c] = invstd;
    }
    for (unsigned j = threadIdx.x; j < count; j += blockDim.x) {
        unsigned idx = channel_index(j, c, C, S);
        out[idx] = hd_bn_normalize(in[idx], mean, invstd, g, b);
    }
}

__global__ void hdgpu_batchnorm_backward_kernel(int n, int channels, int spatial, int batch_stats,
                                                const float *in, const float *gamma, const float *saved,
                                                const float *dout, float *din, float *dgamma, float *dbeta) {
    __shared__ double warp_sums[32];
    __shared__ float means[2]; /* mean_dy, mean_dy_xhat */
    const unsigned c = blockIdx.x, C = (unsigned)channels, S = (unsigned)spatial;
    const unsigned count = (unsigned)n * S;
    const float mean = saved[c], invstd = saved[C + c];
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    for (unsigned j = threadIdx.x; j < count; j += blockDim.x) {
        unsigned idx = channel_index(j, c, C, S);
        float xhat = (in[idx] - mean) * invstd;
        sum_dy += (double)dout[idx];
        sum_dy_xhat += (double)dout[idx] * (double)xhat;
    }
    sum_dy = hd_block_sum(sum_dy, warp_sums);
    if (threadIdx.x == 0) {
        dbeta[c] = (float)sum_dy;
        means[0] = batch_stats ? (float)(sum_dy / (double)count) : 0.0f;
    }
    sum_dy_xhat = hd_block_sum(sum_dy_xhat, warp_sums);
    if (threadIdx.x == 0) {
        dgamma[c] = (float)sum_dy_xhat;
        means[1] = batch_stats ? (float)(sum_dy_xhat / (double)count) : 0.0f;
    }
    __syncthreads();
    if (!din)
        return;
    const float mean_dy = means[0], mean_dy_xhat = means[1], gamma_invstd = gamma[c] * invstd;
    for (unsigned j = threadIdx.x; j < count; j += blockDim.x) {
        unsigned idx = channel_index(j, c, C, S);
        din[idx] =
            hd_bn_backward_dx(dout[idx], (in[idx] - mean) * invstd, gamma_invstd, mean_dy, mean_dy_xhat);
    }
}

void gpu_batchnorm_forward(hd_backend *be, const hd_batchnorm_shape *shape, int n, int batch_stats,
                           const float *in, const float *gamma, const float *beta, float *running,
                           float *saved, float *out) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    const int channels = shape->channels;
    const size_t total = (size_t)n * (size_t)channels * (size_t)shape->spatial;
    if (n < 1 || channels < 1)
        return;
    gpu_enter(gpu);
    gpu_use_floats(gpu, in, total);
    gpu_use_floats(gpu, out, total);
    gpu_use_floats(gpu, gamma, (size_t)channels);
    gpu_use_floats(gpu, beta, (size_t)channels);
    gpu_use_floats(gpu, running, 2 * (size_t)channels);
    gpu_use_floats(gpu, saved, 2 * (size_t)channels);
    hdgpu_batchnorm_forward_kernel<<<(unsigned)channels, HD_GPU_REDUCE_THREADS, 0, gpu->compute>>>(
        n, channels, shape->spatial, shape->eps, shape->momentum, batch_stats, in, gamma, beta, running,
        saved, out);
    CUDA_OP_LAUNCH(gpu);
    gpu_op_done(gpu, "batchnorm_forward");
}

void gpu_batchnorm_backward(hd_backend *be, const hd_batchnorm_shape *shape, int n, int batch_stats,
                            const float *in, const float *gamma, const float *saved, const float *dout,
                            float *din, float *dgamma, float *dbeta) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    const int channels = shape->channels;
    const size_t total = (size_t)n * (size_t)channels * (size_t)shape->spatial;
    if (n < 1 || channels < 1)
        return;
    gpu_enter(gpu);
    gpu_use_floats(gpu, in, total);
    gpu_use_floats(gpu, dout, total);
    gpu_use_floats(gpu, din, din ? total : 0);
    gpu_use_floats(gpu, gamma, (size_t)channels);
    gpu_use_floats(gpu, saved, 2 * (size_t)channels);
    gpu_use_floats(gpu, dgamma, (size_t)channels);
    gpu_use_floats(gpu, dbeta, (size_t)channels);
    hdgpu_batchnorm_backward_kernel<<<(unsigned)channels, HD_GPU_REDUCE_THREADS, 0, gpu->compute>>>(
        n, channels, shape->spatial, batch_stats, in, gamma, saved, dout, din, dgamma, dbeta);
    CUDA_OP_LAUNCH(gpu);
    gpu_op_done(gpu, "batchnorm_backward");
}
