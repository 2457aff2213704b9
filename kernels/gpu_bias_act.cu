/* gpu_bias_act.cu: bias + activation after a convolution or a dense GEMM, and its backward.
 *
 * Layout: out and dout are (n, channels, spatial) contiguous: NCHW with spatial = H*W for a
 * convolution, (n, features) with spatial = 1 for a dense layer. bias and dbias have
 * `channels` elements.
 * Forward:  out = act(out + bias[c]) in place; a flat grid-stride loop with 32-bit indices (a
 *           batch whose tensor passes 2^31 elements is launched in pieces of whole images).
 * Backward: with ReLU, dout is zeroed in place where out <= 0 (the mask of the forward
 *           output); dbias[c] = sum of dout over n and spatial, written with `=`. The images are
 *           cut into `chunks` ranges fixed by the shape alone (bias_chunks); a (channel x chunk)
 *           grid sums each range in a fixed order into a partial in gpu->bias_partials, and a
 *           second kernel adds a channel's partials in chunk order. The result is therefore the
 *           same on every run and every device (the old one-block-per-channel grid gave 32 or 64
 *           blocks to a 132-SM GPU). One chunk: the first kernel writes dbias itself.
 * The standalone relu layer (spec item `relu`) has its two element-wise ops at the end. */
#include "gpu_internal.h"
#include "gpu_reduce.cuh"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

/* Elements one chunk of the backward reduction aims at, per channel. */
#define BIAS_CHUNK_ELEMS 4096u

__global__ void hdgpu_bias_act_forward_kernel(float *out, const float *bias, unsigned total,
                                              unsigned channels, unsigned spatial, int relu) {
    unsigned stride = gridDim.x * blockDim.x;
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        unsigned c = spatial == 1u ? i % channels : (i / spatial) % channels;
        float v = out[i] + bias[c];
        out[i] = relu ? (v > 0.0f ? v : 0.0f) : v;
    }
}

/* The ReLU mask alone (no dbias wanted). */
__global__ void hdgpu_relu_mask_kernel(const float *out, float *dout, unsigned total) {
    unsigned stride = gridDim.x * blockDim.x;
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride)
        if (!(out[i] > 0.0f))
            dout[i] = 0.0f;
}

/* grid (channels, chunks): block (c, k) masks and sums channel c over images
 * [k * per_chunk, min(n, (k + 1) * per_chunk)) into sums[c * chunks + k] (dbias itself when
 * chunks == 1). Indices within a chunk are 32-bit (bias_chunks keeps a chunk under 2^31). */
__global__ void hdgpu_bias_act_backward_kernel(const float *out, float *dout, float *sums, int n,
                                               int channels, int spatial, int per_chunk, int relu) {
    __shared__ float warp_sums[32];
    int c = blockIdx.x, k = blockIdx.y, chunks = gridDim.y;
    int first = k * per_chunk;
    int images = min(n - first, per_chunk);
    size_t base = (size_t)first * (size_t)channels * (size_t)spatial; /* once per block */
    const float *o = out + base;
    float *d = dout + base;
    unsigned count = (unsigned)images * (unsigned)spatial, plane = (unsigned)channels * (unsigned)spatial;
    float sum = 0.0f;
    for (unsigned j = threadIdx.x; j < count; j += blockDim.x) {
        unsigned image = j / (unsigned)spatial, s = j - image * (unsigned)spatial;
        unsigned idx = image * plane + (unsigned)c * (unsigned)spatial + s;
        float g = d[idx];
        if (relu && !(o[idx] > 0.0f)) {
            g = 0.0f;
            d[idx] = 0.0f;
        }
        sum += g;
    }
    sum = hd_block_sum(sum, warp_sums);
    if (threadIdx.x == 0 && sums)
        sums[c * chunks + k] = sum;
}

/* dbias[c] = the chunks' partial sums of channel c, added in chunk order. */
__global__ void hdgpu_bias_sum_partials_kernel(const float *partials, float *dbias, int channels,
                                               int chunks) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= channels)
        return;
    float sum = 0.0f;
    for (int k = 0; k < chunks; k++)
        sum += partials[c * chunks + k];
    dbias[c] = sum;
}

int gpu_bias_act_init(hd_gpu_backend *gpu) {
    gpu->bias_partials_count = HD_GPU_BIAS_PARTIALS;
    cudaError_t err = cudaMalloc(&gpu->bias_partials, gpu->bias_partials_count * sizeof(float));
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        gpu->bias_partials = NULL;
        return gpu_fail_out_of_memory("the bias-gradient partial sums",
                                      gpu->bias_partials_count * sizeof(float));
    }
    return 0;
}

void gpu_bias_act_release(hd_gpu_backend *gpu) {
    if (gpu->bias_partials) {
        cudaError_t err = cudaFree(gpu->bias_partials);
        if (err != cudaSuccess)
            fprintf(stderr, "hd-gpu: warning: cudaFree failed: %s\n", cudaGetErrorString(err));
    }
    gpu->bias_partials = NULL;
}

int gpu_bias_chunks(int n, int channels, int spatial, size_t partials) {
    if (n <= 0 || channels <= 0 || spatial <= 0)
        return 1;
    size_t per_channel = (size_t)n * (size_t)spatial;
    size_t chunks = (per_channel + BIAS_CHUNK_ELEMS - 1) / BIAS_CHUNK_ELEMS;
    if (chunks > HD_GPU_BIAS_MAX_CHUNKS)
        chunks = HD_GPU_BIAS_MAX_CHUNKS;
    if (chunks * (size_t)channels > partials)
        chunks = partials / (size_t)channels;
    /* Within a chunk, indices are 32-bit: its images span under 2^31 elements. */
    size_t plane = (size_t)channels * (size_t)spatial;
    size_t max_images = plane > 0 ? (size_t)INT_MAX / plane : (size_t)n;
    if (max_images > 0 && ((size_t)n + max_images - 1) / max_images > chunks)
        chunks = ((size_t)n + max_images - 1) / max_images;
    if (chunks > (size_t)n)
        chunks = (size_t)n;
    return chunks < 1 ? 1 : (int)chunks;
}

void gpu_bias_act_forward(hd_gpu_backend *gpu, float *out, const float *bias, int n, int channels,
                          int spatial, hd_activation act) {
    size_t plane = (size_t)channels * (size_t)spatial;
    if (n <= 0 || plane == 0)
        return;
    if (plane > (size_t)INT_MAX) {
        fprintf(stderr,
                "hd-gpu: bias + activation: %d channels x %d positions pass 2^31 elements per image\n",
                channels, spatial);
        exit(1);
    }
    /* Pieces of whole images, each under 2^31 elements, so that 32-bit indices cannot wrap. */
    size_t per_piece = (size_t)INT_MAX / plane;
    for (size_t first = 0; first < (size_t)n; first += per_piece) {
        size_t images = (size_t)n - first < per_piece ? (size_t)n - first : per_piece;
        size_t total = images * plane;
        hdgpu_bias_act_forward_kernel<<<gpu_grid_blocks(gpu, total), HD_GPU_THREADS, 0, gpu->compute>>>(
            out + first * plane, bias, (unsigned)total, (unsigned)channels, (unsigned)spatial,
            act == HD_ACT_RELU);
        CUDA_OP_LAUNCH(gpu);
    }
}

void gpu_bias_act_backward(hd_gpu_backend *gpu, const float *out, float *dout, float *dbias, int n,
                           int channels, int spatial, hd_activation act) {
    if (channels <= 0)
        return;
    int relu = act == HD_ACT_RELU;
    if (!relu && !dbias)
        return;
    size_t plane = (size_t)channels * (size_t)spatial;
    if (plane > (size_t)INT_MAX) {
        fprintf(stderr, "hd-gpu: bias gradient: %d channels x %d positions pass 2^31 elements per image\n",
                channels, spatial);
        exit(1);
    }
    if (n <= 0 || spatial <= 0) {
        if (dbias)
            CUDA_OP(gpu, cudaMemsetAsync(dbias, 0, (size_t)channels * sizeof(float), gpu->compute));
        return;
    }
    if (!dbias) { /* the mask alone: element-wise, in pieces of whole images as the forward */
        size_t per_piece = (size_t)INT_MAX / plane;
        for (size_t first = 0; first < (size_t)n; first += per_piece) {
            size_t images = (size_t)n - first < per_piece ? (size_t)n - first : per_piece;
            size_t total = images * plane;
            hdgpu_relu_mask_kernel<<<gpu_grid_blocks(gpu, total), HD_GPU_THREADS, 0, gpu->compute>>>(
                out + first * plane, dout + first * plane, (unsigned)total);
            CUDA_OP_LAUNCH(gpu);
        }
        return;
    }
    int chunks = gpu_bias_chunks(n, channels, spatial, gpu->bias_partials_count);
    int per_chunk = (n + chunks - 1) / chunks;
    chunks = (n + per_chunk - 1) / per_chunk; /* no empty chunk at the end */
    if (chunks > 1 && ((size_t)chunks * (size_t)channels > gpu->bias_partials_count || chunks > 65535)) {
        fprintf(
            stderr,
            "hd-gpu: bias gradient: %d images of %d x %d need %d chunks, more than the partial sums hold\n",
            n, channels, spatial, chunks);
        exit(1);
    }
    dim3 grid((unsigned)channels, (unsigned)chunks);
    float *sums = chunks == 1 ? dbias : gpu->bias_partials;
    hdgpu_bias_act_backward_kernel<<<grid, HD_GPU_REDUCE_THREADS, 0, gpu->compute>>>(
        out, dout, sums, n, channels, spatial, per_chunk, relu);
    CUDA_OP_LAUNCH(gpu);
    if (chunks > 1) {
        unsigned blocks = (unsigned)((channels + HD_GPU_THREADS - 1) / HD_GPU_THREADS);
        hdgpu_bias_sum_partials_kernel<<<blocks, HD_GPU_THREADS, 0, gpu->compute>>>(gpu->bias_partials, dbias,
                                                                                    channels, chunks);
        CUDA_OP_LAUNCH(gpu);
    }
}

/* ---- the standalone relu layer: out = max(in, 0); din = out > 0 ? dout : 0 (grid-stride, size_t) ---- */

__global__ void hdgpu_relu_forward_kernel(size_t count, const float *in, float *out) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += stride)
        out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

__global__ void hdgpu_relu_backward_kernel(size_t count, const float *out, const float *dout, float *din) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += stride)
        din[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}

void gpu_relu_forward(hd_backend *be, size_t count, const float *in, float *out) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    if (count == 0)
        return;
    gpu_enter(gpu);
    gpu_use_floats(gpu, in, count);
    gpu_use_floats(gpu, out, count);
    hdgpu_relu_forward_kernel<<<gpu_grid_blocks(gpu, count), HD_GPU_THREADS, 0, gpu->compute>>>(count, in,
                                                                                                out);
    CUDA_OP_LAUNCH(gpu);
    gpu_op_done(gpu, "relu_forward");
}

void gpu_relu_backward(hd_backend *be, size_t count, const float *out, const float *dout, float *din) {
    hd_gpu_backend *gpu = hd_gpu_from(be);
    if (count == 0)
        return;
    gpu_enter(gpu);
    gpu_use_floats(gpu, out, count);
    gpu_use_floats(gpu, dout, count);
    gpu_use_floats(gpu, din, count);
    hdgpu_relu_backward_kernel<<<gpu_grid_blocks(gpu, count), HD_GPU_THREADS, 0, gpu->compute>>>(count, out,
                                                                                                 dout, din);
    CUDA_OP_LAUNCH(gpu);
    gpu_op_done(gpu, "relu_backward");
}
