/* gpu_reduce.cuh: the block-wide sum the kernels share (bias gradients, batch-norm statistics), in float or
 * double. Every thread of the block calls it; the result is valid in thread 0. blockDim.x is a multiple of
 * 32 and warp_sums (shared memory) holds 32 values. The warps' partial sums are added in a fixed order, so
 * the same inputs give the same bits on every run. The barrier at entry lets a kernel call it again with
 * the same warp_sums. */
#ifndef HD_GPU_REDUCE_CUH
#define HD_GPU_REDUCE_CUH

template <typename T> __device__ static T hd_block_sum(T value, T *warp_sums) {
    __syncthreads();
    for (int offset = 16; offset > 0; offset >>= 1)
        value += __shfl_down_sync(0xffffffffu, value, offset);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0)
        warp_sums[warp] = value;
    __syncthreads();
    int warps = (int)(blockDim.x >> 5);
    value = T(0);
    if (warp == 0) {
        value = lane < warps ? warp_sums[lane] : T(0);
        for (int offset = 16; offset > 0; offset >>= 1)
            value += __shfl_down_sync(0xffffffffu, value, offset);
    }
    return value;
}

#endif
