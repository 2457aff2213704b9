/* cpu_batchnorm.c: batch normalisation on the CPU, forward and backward side by side (the reference;
 * kernels/gpu_batchnorm.cu is its GPU twin, with one thread block where this has one channel).
 *
 * Layout: in, out, dout, din are (n, channels, spatial) float32, contiguous; channel c of image i is
 * the `spatial` floats from (i * channels + c) * spatial. gamma, beta, dgamma, dbeta: `channels`
 * floats. running: the running mean then the running variance (2 * channels); saved: the mean and
 * 1 / sqrt(var + eps) the forward used (2 * channels), which the backward reads. Sums run in double,
 * one channel per thread, in a fixed order (BN_LANES below): the same result for every thread count.
 * Gradients are written with `=`. The per-element math is shared_math.h's hd_bn_*. */
#include "cpu_backend.h"
#include "hd/shared_math.h"

/* Sums of one channel's rows keep BN_LANES running partial sums (element s of a row goes to lane
 * s % BN_LANES), added lane by lane at the end: a fixed order that depends only on the shape, so results
 * stay the same for every thread count, and one that the compiler keeps in vector registers (a single
 * running sum is a chain of dependent adds, a fifth of the speed). */
#define BN_LANES 8

/* Sum over the channel's n * spatial values of f(x) = (x - shift)^power, power 1 or 2. */
static double channel_sum(const float *x, int n, int channels, int spatial, int c, double shift, int power) {
    double lanes[BN_LANES] = {0};
    for (int i = 0; i < n; i++) {
        const float *row = x + ((size_t)i * channels + c) * spatial;
        int s = 0;
        for (; s + BN_LANES <= spatial; s += BN_LANES)
#pragma omp simd
            for (int l = 0; l < BN_LANES; l++) {
                double d = (double)row[s + l] - shift;
                lanes[l] += power == 1 ? d : d * d;
            }
        for (int l = 0; s < spatial; s++, l++) {
            double d = (double)row[s] - shift;
            lanes[l] += power == 1 ? d : d * d;
        }
    }
    double sum = 0.0;
    for (int l = 0; l < BN_LANES; l++)
        sum += lanes[l];
    return sum;
}

/* The backward's two sums over the channel: of dy and of dy * xhat (xhat = (x - mean) * invstd). */
static void channel_grad_sums(const float *in, const float *dout, int n, int channels, int spatial, int c,
                              float mean, float invstd, double *sum_dy, double *sum_dy_xhat) {
    double dy_lanes[BN_LANES] = {0}, dyx_lanes[BN_LANES] = {0};
    for (int i = 0; i < n; i++) {
        size_t at = ((size_t)i * channels + c) * spatial;
        const float *x = in + at, *dy = dout + at;
        int s = 0;
        for (; s + BN_LANES <= spatial; s += BN_LANES)
#pragma omp simd
            for (int l = 0; l < BN_LANES; l++) {
                float xhat = (x[s + l] - mean) * invstd;
                dy_lanes[l] += dy[s + l];
                dyx_lanes[l] += (double)dy[s + l] * xhat;
            }
        for (int l = 0; s < spatial; s++, l++) {
            float xhat = (x[s] - mean) * invstd;
            dy_lanes[l] += dy[s];
            dyx_lanes[l] += (double)dy[s] * xhat;
        }
    }
    *sum_dy = 0.0;
    *sum_dy_xhat = 0.0;
    for (int l = 0; l < BN_LANES; l++) {
        *sum_dy += dy_lanes[l];
        *sum_dy_xhat += dyx_lanes[l];
    }
}

void cpu_batchnorm_forward(hd_backend *be, const hd_batchnorm_shape *shape, int n, int batch_stats,
                           const float *in, const float *gamma, const float *beta, float *running,
                           float *saved, float *out) {
    const int channels = shape->channels, spatial = shape->spatial;
    const double count = (double)n * spatial;
    const long long planes = (long long)n * channels;
#pragma omp parallel num_threads(cpu_threads(be))
    {
#pragma omp for schedule(static)
        for (int c = 0; c < channels; c++) {
            float mean, var;
            if (batch_stats) {
                double m = channel_sum(in, n, channels, spatial, c, 0.0, 1) / count;
                mean = (float)m;
                var = (float)(channel_sum(in, n, channels, spatial, c, m, 2) / count);
                running[c] = hd_bn_running_update(running[c], mean, shape->momentum);
                running[channels + c] = hd_bn_running_update(running[channels + c],
                                                             hd_bn_unbiased_var(var, count), shape->momentum);
            } else {
                mean = running[c];
                var = running[channels + c];
            }
            saved[c] = mean;
            saved[channels + c] = hd_bn_invstd(var, shape->eps);
        }
        /* Normalised plane by plane in memory order, each thread a contiguous run of planes: streams that the
         * prefetcher follows, where a channel's planes lie a whole image apart. */
#pragma omp for schedule(static)
        for (long long p = 0; p < planes; p++) {
            int c = (int)(p % channels);
            float mean = saved[c], invstd = saved[channels + c];
            size_t at = (size_t)p * spatial;
            for (int s = 0; s < spatial; s++)
                out[at + s] = hd_bn_normalize(in[at + s], mean, invstd, gamma[c], beta[c]);
        }
    }
}

/* The backward's per-channel scalars wait on the stack for the din pass, BN_BLOCK channels at a time. */
#define BN_BLOCK 256

void cpu_batchnorm_backward(hd_backend *be, const hd_batchnorm_shape *shape, int n, int batch_stats,
                            const float *in, const float *gamma, const float *saved, const float *dout,
                            float *din, float *dgamma, float *dbeta) {
    const int channels = shape->channels, spatial = shape->spatial;
    const double count = (double)n * spatial;
    float mean_dy[BN_BLOCK], mean_dy_xhat[BN_BLOCK];
    for (int first = 0; first < channels; first += BN_BLOCK) {
        const int block = channels - first < BN_BLOCK ? channels - first : BN_BLOCK;
        const long long planes = (long long)n * block;
#pragma omp parallel num_threads(cpu_threads(be))
        {
#pragma omp for schedule(static)
            for (int b = 0; b < block; b++) {
                int c = first + b;
                double sum_dy, sum_dy_xhat;
                channel_grad_sums(in, dout, n, channels, spatial, c, saved[c], saved[channels + c], &sum_dy,
                                  &sum_dy_xhat);
                dgamma[c] = (float)sum_dy_xhat;
                dbeta[c] = (float)sum_dy;
                mean_dy[b] = batch_stats ? (float)(sum_dy / count) : 0.0f;
                mean_dy_xhat[b] = batch_stats ? (float)(sum_dy_xhat / count) : 0.0f;
            }
            /* din plane by plane in memory order (the forward's normalisation says why). */
            if (din) {
#pragma omp for schedule(static)
                for (long long q = 0; q < planes; q++) {
                    int b = (int)(q % block), c = first + b;
                    const float mean = saved[c], invstd = saved[channels + c],
                                gamma_invstd = gamma[c] * invstd;
                    size_t at = ((size_t)(q / block) * channels + c) * spatial;
                    for (int s = 0; s < spatial; s++)
                        din[at + s] = hd_bn_backward_dx(dout[at + s], (in[at + s] - mean) * invstd,
                                                        gamma_invstd, mean_dy[b], mean_dy_xhat[b]);
                }
            }
        }
    }
}
