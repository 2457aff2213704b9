/* cpu_avgpool.c: average pooling and global average pooling on the CPU, forward and backward side by
 * side (kernels/gpu_avgpool.cu is the GPU twin). The per-element math is shared_math.h's
 * hd_avgpool_window / hd_avgpool_grad / hd_plane_mean, which the GPU kernels call too.
 * Average pooling: window and stride `size`, no padding, floor (rows and columns no window covers get
 * a zero gradient). Gradients are written with `=`. One plane a task: no plan, nothing kept. */
#include "cpu_backend.h"
#include "hd/shared_math.h"

void cpu_avgpool_forward(hd_backend *be, const hd_pool_shape *shape, int n, const float *in, float *out) {
    const hd_pool_shape s = *shape;
    int planes = n * s.channels;
#pragma omp parallel for schedule(static) num_threads(cpu_threads(be))
    for (int p = 0; p < planes; p++) {
        const float *x = in + (size_t)p * s.in_h * s.in_w;
        float *y = out + (size_t)p * s.out_h * s.out_w;
        for (int oy = 0; oy < s.out_h; oy++)
            for (int ox = 0; ox < s.out_w; ox++)
                y[oy * s.out_w + ox] = hd_avgpool_window(x, s.in_w, s.size, oy, ox);
    }
}

void cpu_avgpool_backward(hd_backend *be, const hd_pool_shape *shape, int n, const float *dout, float *din) {
    const hd_pool_shape s = *shape;
    int planes = n * s.channels;
#pragma omp parallel for schedule(static) num_threads(cpu_threads(be))
    for (int p = 0; p < planes; p++) {
        const float *dy = dout + (size_t)p * s.out_h * s.out_w;
        float *dx = din + (size_t)p * s.in_h * s.in_w;
        for (int iy = 0; iy < s.in_h; iy++)
            for (int ix = 0; ix < s.in_w; ix++)
                dx[iy * s.in_w + ix] = hd_avgpool_grad(dy, s.out_h, s.out_w, s.size, iy, ix);
    }
}

void cpu_gap_forward(hd_backend *be, int n, int channels, int plane, const float *in, float *out) {
    int planes = n * channels;
#pragma omp parallel for schedule(static) num_threads(cpu_threads(be))
    for (int p = 0; p < planes; p++)
        out[p] = hd_plane_mean(in + (size_t)p * plane, plane);
}

void cpu_gap_backward(hd_backend *be, int n, int channels, int plane, const float *dout, float *din) {
    int planes = n * channels;
#pragma omp parallel for schedule(static) num_threads(cpu_threads(be))
    for (int p = 0; p < planes; p++) {
        float g = dout[p] / (float)plane;
        float *dx = din + (size_t)p * plane;
        for (int i = 0; i < plane; i++)
            dx[i] = g;
    }
}
