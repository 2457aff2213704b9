/* bench_floor.c: what the hardware could do, to set the training figures against: the
 * measured FP32 rate of a large SGEMM on the CPU (OpenBLAS), and a rough estimate of the
 * bytes one training step moves. */
#include "hd/bench.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#include "hd/common.h"

double hd_bench_cpu_peak_gflops(int n, int threads, int repeats, hd_bench_stat *stat) {
    hd_bench_stat_from(stat, NULL, 0);
    if (n <= 0 || repeats <= 0 || repeats > 64)
        return NAN;
    size_t count = (size_t)n * (size_t)n;
    float *a = hd_malloc(count * sizeof(float));
    float *b = hd_malloc(count * sizeof(float));
    float *c = hd_malloc(count * sizeof(float));
    double best = NAN;
    if (a && b && c) {
        for (size_t i = 0; i < count; i++) {
            a[i] = (float)(i % 17) * 0.01f;
            b[i] = (float)(i % 13) * 0.02f;
        }
        int previous_threads = openblas_get_num_threads();
        if (threads > 0)
            openblas_set_num_threads(threads);
        double samples[64];
        double flops = 2.0 * (double)n * (double)n * (double)n;
        for (int r = -1; r < repeats; r++) { /* r = -1: warm-up */
            double start = hd_now_seconds();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
            double elapsed = hd_now_seconds() - start;
            if (r >= 0)
                samples[r] = flops / elapsed * 1e-9;
        }
        openblas_set_num_threads(previous_threads);
        hd_bench_stat_from(stat, samples, repeats);
        best = stat->max;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

double hd_bench_bytes_per_step(const hd_model *model, int n) {
    double activation_floats = 0.0;
    int after_first = 0; /* the first layer that moves data writes no input gradient */
    for (int i = 0; i < model->n_layers; i++) {
        const hd_layer *layer = &model->layers[i];
        if (layer->spec.kind == HD_LAYER_FLATTEN)
            continue; /* a view: no data moves */
        double in = (double)layer->in_size, out = (double)layer->out_size;
        double forward = in + out;
        double backward = in + 2.0 * out + (after_first ? in : 0.0);
        if (layer->spec.kind == HD_LAYER_BATCHNORM) { /* one block a channel: x re-read for its statistics */
            forward += 2.0 * in;                      /* the mean, then the variance */
            backward += in + out;                     /* the sums of dout and dout * xhat, before dx */
        }
        if (layer->fused_pool) { /* with the pooling after it, one op: the conv's output never in memory */
            forward = in;
            backward = in + (after_first ? in : 0.0);
        } else if (hd_layer_pooled_by_conv(model,
                                           i)) { /* that op writes the pooled output, reads it and dout */
            forward = out;
            backward = 2.0 * out;
        }
        activation_floats += forward + backward;
        after_first = 1;
    }
    double input_bytes = (double)model->in_c * model->in_h * model->in_w * 4.0 + 4.0; /* image + label */
    double parameter_passes = 10.0;
    return 4.0 * (double)n * activation_floats + 4.0 * (double)model->param_count * parameter_passes +
           (double)n * input_bytes;
}
