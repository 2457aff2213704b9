/* gpu_test_layers.c: convolution (strides and padding too), max pooling, average and global average
 * pooling and dense layers, GPU against the CPU path.
 *
 * Each op gets the same fresh random inputs on both backends (outputs poisoned with NaN
 * first, so an element the GPU never writes fails), and its outputs and every gradient are
 * compared; on a batch smaller than the plan's, the elements past it must stay NaN on both
 * backends (an op that used the max_batch descriptors would write them). Backward passes
 * get identical `out` tensors on both sides (the CPU's), so the ReLU mask is the same and
 * the comparison measures the arithmetic alone. Shapes: the default network's layers at
 * full batch, a smaller last batch and a batch of 1; padding; no activation; din skipped; a
 * batch whose bias gradient is summed over several image ranges, and that sum bit for bit the
 * same when run again;
 * pooling that leaves rows uncovered; pooling with ties.
 *
 * Tolerances (tests/test_util/tolerances.h): outputs and gradients GPU_TOL_RTOL with
 * GPU_TOL_ATOL_SCALE of each tensor's largest magnitude; pooling and the masked dout exact
 * (no arithmetic), average pooling exact too (the same shared function on both sides); TF32 (allow_tf32) by
 * the norm-wise GPU_TOL_TF32_NORM_RTOL.
 */
#include "check.h"
#include "gpu_compare.h"
#include "tolerances.h"
#include "hd/backend.h"
#include "hd/common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef gpu_backend_pair backend_pair;

/* Compares the GPU's tensor with the CPU's. exact: zero tolerance. */
static void compare(const backend_pair *p, const char *name, const float *gpu_dev, const float *cpu_dev,
                    size_t n, int exact) {
    if (exact)
        gpu_compare_tensors(name, p, gpu_dev, cpu_dev, n, GPU_TOL_EXACT, GPU_TOL_EXACT);
    else
        gpu_compare_tensors(name, p, gpu_dev, cpu_dev, n, GPU_TOL_RTOL, GPU_TOL_ATOL_SCALE);
}

static void fill(float *x, size_t n, float lo, float hi, uint64_t *rng) {
    test_fill_uniform(x, n, lo, hi, rng);
}

/* ---- convolution ---- */

static void test_conv(const backend_pair *p, hd_conv_shape s, const int *batches, int n_batches, int skip_din,
                      uint64_t *rng) {
    size_t in_n = (size_t)s.max_batch * s.in_c * s.in_h * s.in_w;
    size_t out_n = (size_t)s.max_batch * s.out_c * s.out_h * s.out_w;
    size_t w_n = (size_t)s.out_c * s.in_c * s.kernel * s.kernel;
    float *h_in = malloc(in_n * 4), *h_w = malloc(w_n * 4), *h_b = malloc((size_t)s.out_c * 4);
    float *h_dout = malloc(out_n * 4);
    hd_backend *be[2] = {p->cpu, p->gpu};
    float *in[2], *w[2], *b[2], *out[2], *dout[2], *din[2], *dw[2], *db[2];
    void *plan[2];
    for (int k = 0; k < 2; k++) {
        in[k] = gpu_device_copy(be[k], NULL, in_n);
        w[k] = gpu_device_copy(be[k], NULL, w_n);
        b[k] = gpu_device_copy(be[k], NULL, (size_t)s.out_c);
        out[k] = gpu_device_copy(be[k], NULL, out_n);
        dout[k] = gpu_device_copy(be[k], NULL, out_n);
        din[k] = gpu_device_copy(be[k], NULL, in_n);
        dw[k] = gpu_device_copy(be[k], NULL, w_n);
        db[k] = gpu_device_copy(be[k], NULL, (size_t)s.out_c);
        plan[k] = be[k]->ops->conv2d_plan(be[k], &s);
        CHECK(plan[k] && in[k] && w[k] && b[k] && out[k] && dout[k] && din[k] && dw[k] && db[k],
              "conv setup on %s: %s", be[k]->name, hd_last_error());
    }
    if (!plan[0] || !plan[1] || !h_in || !h_w || !h_b || !h_dout)
        goto done;
    for (int t = 0; t < n_batches; t++) {
        int n = batches[t];
        size_t in_cnt = (size_t)n * s.in_c * s.in_h * s.in_w,
               out_cnt = (size_t)n * s.out_c * s.out_h * s.out_w;
        char name[128];
        fill(h_in, in_cnt, -1.0f, 1.0f, rng);
        fill(h_w, w_n, -0.5f, 0.5f, rng);
        fill(h_b, (size_t)s.out_c, -0.2f, 0.2f, rng);
        fill(h_dout, out_cnt, -1.0f, 1.0f, rng);
        for (int k = 0; k < 2; k++) {
            be[k]->ops->upload(be[k], in[k], h_in, in_cnt * 4);
            be[k]->ops->upload(be[k], w[k], h_w, w_n * 4);
            be[k]->ops->upload(be[k], b[k], h_b, (size_t)s.out_c * 4);
            gpu_poison(be[k], out[k], out_n); /* the whole buffer: past the batch must stay NaN */
            be[k]->ops->conv2d_forward(be[k], plan[k], n, in[k], w[k], b[k], out[k]);
        }
        snprintf(name, sizeof name, "conv %d->%d %dx%d k%d s%d p%d%s n=%d out", s.in_c, s.out_c, s.in_h,
                 s.in_w, s.kernel, s.stride, s.pad, s.act == HD_ACT_RELU ? " relu" : "", n);
        compare(p, name, out[1], out[0], out_cnt, 0);
        for (int k = 0; k < 2; k++)
            gpu_expect_untouched(name, be[k], out[k], out_cnt, out_n);

        /* Backward from identical out (the CPU's) and dout. */
        float *cpu_out = gpu_host_copy(p->cpu, out[0], out_cnt);
        if (cpu_out)
            p->gpu->ops->upload(p->gpu, out[1], cpu_out, out_cnt * 4);
        free(cpu_out);
        for (int k = 0; k < 2; k++) {
            be[k]->ops->upload(be[k], dout[k], h_dout, out_cnt * 4);
            gpu_poison(be[k], din[k], in_n);
            gpu_poison(be[k], dw[k], w_n);
            gpu_poison(be[k], db[k], (size_t)s.out_c);
            be[k]->ops->conv2d_backward(be[k], plan[k], n, in[k], w[k], out[k], dout[k],
                                        skip_din ? NULL : din[k], dw[k], db[k]);
        }
        snprintf(name, sizeof name, "conv n=%d dout (masked)", n);
        compare(p, name, dout[1], dout[0], out_cnt, 1);
        if (!skip_din) {
            snprintf(name, sizeof name, "conv n=%d din", n);
            compare(p, name, din[1], din[0], in_cnt, 0);
            for (int k = 0; k < 2; k++)
                gpu_expect_untouched(name, be[k], din[k], in_cnt, in_n);
        }
        snprintf(name, sizeof name, "conv n=%d dweight", n);
        compare(p, name, dw[1], dw[0], w_n, 0);
        snprintf(name, sizeof name, "conv n=%d dbias", n);
        compare(p, name, db[1], db[0], (size_t)s.out_c, 0);

        /* The bias gradient is summed in a fixed order (per image range, then the ranges in
         * order): the same inputs again give the same bits. (dout is masked already: masking
         * again changes nothing.) */
        float *first = gpu_host_copy(p->gpu, db[1], (size_t)s.out_c);
        p->gpu->ops->conv2d_backward(p->gpu, plan[1], n, in[1], w[1], out[1], dout[1], NULL, dw[1], db[1]);
        float *again = gpu_host_copy(p->gpu, db[1], (size_t)s.out_c);
        CHECK(first && again && memcmp(first, again, (size_t)s.out_c * sizeof(float)) == 0,
              "conv n=%d dbias: a second run with the same inputs gave other bits", n);
        free(first);
        free(again);
    }
done:
    for (int k = 0; k < 2; k++) {
        if (plan[k])
            be[k]->ops->conv2d_plan_free(be[k], plan[k]);
        float *bufs[8] = {in[k], w[k], b[k], out[k], dout[k], din[k], dw[k], db[k]};
        for (int j = 0; j < 8; j++)
            be[k]->ops->free(be[k], bufs[j]);
    }
    free(h_in);
    free(h_w);
    free(h_b);
    free(h_dout);
}

/* ---- max pooling ---- */

static void test_pool(const backend_pair *p, hd_pool_shape s, const int *batches, int n_batches, int ties,
                      uint64_t *rng) {
    size_t in_n = (size_t)s.max_batch * s.channels * s.in_h * s.in_w;
    size_t out_n = (size_t)s.max_batch * s.channels * s.out_h * s.out_w;
    float *h_in = malloc(in_n * 4), *h_dout = malloc(out_n * 4);
    hd_backend *be[2] = {p->cpu, p->gpu};
    float *in[2], *out[2], *dout[2], *din[2];
    void *plan[2];
    for (int k = 0; k < 2; k++) {
        in[k] = gpu_device_copy(be[k], NULL, in_n);
        out[k] = gpu_device_copy(be[k], NULL, out_n);
        dout[k] = gpu_device_copy(be[k], NULL, out_n);
        din[k] = gpu_device_copy(be[k], NULL, in_n);
        plan[k] = be[k]->ops->maxpool_plan(be[k], &s);
        CHECK(plan[k] && in[k] && out[k] && dout[k] && din[k], "pool setup on %s: %s", be[k]->name,
              hd_last_error());
    }
    if (!plan[0] || !plan[1] || !h_in || !h_dout)
        goto done;
    for (int t = 0; t < n_batches; t++) {
        int n = batches[t];
        size_t in_cnt = (size_t)n * s.channels * s.in_h * s.in_w;
        size_t out_cnt = (size_t)n * s.channels * s.out_h * s.out_w;
        char name[128];
        fill(h_in, in_cnt, -1.0f, 1.0f, rng);
        if (ties) /* three levels, and ReLU-like zeros: most windows hold equal maxima */
            for (size_t i = 0; i < in_cnt; i++)
                h_in[i] = h_in[i] < 0.0f ? 0.0f : floorf(h_in[i] * 3.0f) / 3.0f;
        fill(h_dout, out_cnt, -1.0f, 1.0f, rng);
        for (int k = 0; k < 2; k++) {
            be[k]->ops->upload(be[k], in[k], h_in, in_cnt * 4);
            gpu_poison(be[k], out[k], out_n); /* the whole buffers: past the batch must stay NaN */
            be[k]->ops->maxpool_forward(be[k], plan[k], n, in[k], out[k]);
            be[k]->ops->upload(be[k], dout[k], h_dout, out_cnt * 4);
            gpu_poison(be[k], din[k], in_n);
            be[k]->ops->maxpool_backward(be[k], plan[k], n, in[k], out[k], dout[k], din[k]);
        }
        snprintf(name, sizeof name, "pool %dx%dx%d /%d%s n=%d out", s.channels, s.in_h, s.in_w, s.size,
                 ties ? " ties" : "", n);
        compare(p, name, out[1], out[0], out_cnt, 1);
        for (int k = 0; k < 2; k++)
            gpu_expect_untouched(name, be[k], out[k], out_cnt, out_n);
        snprintf(name, sizeof name, "pool%s n=%d din", ties ? " ties" : "", n);
        compare(p, name, din[1], din[0], in_cnt, 1);
        for (int k = 0; k < 2; k++)
            gpu_expect_untouched(name, be[k], din[k], in_cnt, in_n);
    }
done:
    for (int k = 0; k < 2; k++) {
        if (plan[k])
            be[k]->ops->maxpool_plan_free(be[k], plan[k]);
        be[k]->ops->free(be[k], in[k]);
        be[k]->ops->free(be[k], out[k]);
        be[k]->ops->free(be[k], dout[k]);
        be[k]->ops->free(be[k], din[k]);
    }
    free(h_in);
    free(h_dout);
}

/* ---- average pooling and global average pooling ---- */

/* Both backends call the same shared_math.h function per element, adding in the same order with IEEE
 * float adds and one division (nothing nvcc could contract into an FMA): the results must be equal, bit
 * for bit. gap: s.size is ignored and the window is the whole plane (out_h = out_w = 1). */
static void test_avgpool(const backend_pair *p, hd_pool_shape s, int gap, const int *batches, int n_batches,
                         uint64_t *rng) {
    size_t in_n = (size_t)s.max_batch * s.channels * s.in_h * s.in_w;
    size_t out_n = (size_t)s.max_batch * s.channels * s.out_h * s.out_w;
    float *h_in = malloc(in_n * 4), *h_dout = malloc(out_n * 4);
    hd_backend *be[2] = {p->cpu, p->gpu};
    float *in[2], *out[2], *dout[2], *din[2];
    for (int k = 0; k < 2; k++) {
        in[k] = gpu_device_copy(be[k], NULL, in_n);
        out[k] = gpu_device_copy(be[k], NULL, out_n);
        dout[k] = gpu_device_copy(be[k], NULL, out_n);
        din[k] = gpu_device_copy(be[k], NULL, in_n);
        CHECK(in[k] && out[k] && dout[k] && din[k], "avgpool setup on %s: %s", be[k]->name, hd_last_error());
    }
    for (int t = 0; t < n_batches && h_in && h_dout; t++) {
        int n = batches[t];
        size_t in_cnt = (size_t)n * s.channels * s.in_h * s.in_w;
        size_t out_cnt = (size_t)n * s.channels * s.out_h * s.out_w;
        char name[128];
        fill(h_in, in_cnt, -1.0f, 1.0f, rng);
        fill(h_dout, out_cnt, -1.0f, 1.0f, rng);
        for (int k = 0; k < 2; k++) {
            be[k]->ops->upload(be[k], in[k], h_in, in_cnt * 4);
            be[k]->ops->upload(be[k], dout[k], h_dout, out_cnt * 4);
            gpu_poison(be[k], out[k], out_n); /* the whole buffers: past the batch must stay NaN */
            gpu_poison(be[k], din[k], in_n);
            if (gap) {
                be[k]->ops->gap_forward(be[k], n, s.channels, s.in_h * s.in_w, in[k], out[k]);
                be[k]->ops->gap_backward(be[k], n, s.channels, s.in_h * s.in_w, dout[k], din[k]);
            } else {
                be[k]->ops->avgpool_forward(be[k], &s, n, in[k], out[k]);
                be[k]->ops->avgpool_backward(be[k], &s, n, dout[k], din[k]);
            }
        }
        snprintf(name, sizeof name, "%s %dx%dx%d /%d n=%d out", gap ? "gap" : "avgpool", s.channels, s.in_h,
                 s.in_w, gap ? 0 : s.size, n);
        compare(p, name, out[1], out[0], out_cnt, 1);
        for (int k = 0; k < 2; k++)
            gpu_expect_untouched(name, be[k], out[k], out_cnt, out_n);
        snprintf(name, sizeof name, "%s %dx%dx%d n=%d din", gap ? "gap" : "avgpool", s.channels, s.in_h,
                 s.in_w, n);
        compare(p, name, din[1], din[0], in_cnt, 1);
        for (int k = 0; k < 2; k++)
            gpu_expect_untouched(name, be[k], din[k], in_cnt, in_n);
    }
    for (int k = 0; k < 2; k++) {
        be[k]->ops->free(be[k], in[k]);
        be[k]->ops->free(be[k], out[k]);
        be[k]->ops->free(be[k], dout[k]);
        be[k]->ops->free(be[k], din[k]);
    }
    free(h_in);
    free(h_dout);
}

/* ---- dense ---- */

static void test_dense(const backend_pair *p, int n, int in_f, int out_f, hd_activation act, int skip_din,
                       uint64_t *rng) {
    size_t in_n = (size_t)n * in_f, out_n = (size_t)n * out_f, w_n = (size_t)out_f * in_f;
    float *h_in = malloc(in_n * 4), *h_w = malloc(w_n * 4), *h_b = malloc((size_t)out_f * 4);
    float *h_dout = malloc(out_n * 4);
    hd_backend *be[2] = {p->cpu, p->gpu};
    float *in[2], *w[2], *b[2], *out[2], *dout[2], *din[2], *dw[2], *db[2];
    char name[128];
    CHECK(h_in && h_w && h_b && h_dout, "malloc");
    if (!h_in || !h_w || !h_b || !h_dout)
        goto done_host;
    fill(h_in, in_n, -1.0f, 1.0f, rng);
    fill(h_w, w_n, -0.1f, 0.1f, rng);
    fill(h_b, (size_t)out_f, -0.2f, 0.2f, rng);
    fill(h_dout, out_n, -1.0f, 1.0f, rng);
    for (int k = 0; k < 2; k++) {
        in[k] = gpu_device_copy(be[k], h_in, in_n);
        w[k] = gpu_device_copy(be[k], h_w, w_n);
        b[k] = gpu_device_copy(be[k], h_b, (size_t)out_f);
        out[k] = gpu_device_copy(be[k], NULL, out_n);
        dout[k] = gpu_device_copy(be[k], h_dout, out_n);
        din[k] = gpu_device_copy(be[k], NULL, in_n);
        dw[k] = gpu_device_copy(be[k], NULL, w_n);
        db[k] = gpu_device_copy(be[k], NULL, (size_t)out_f);
        gpu_poison(be[k], out[k], out_n);
        gpu_poison(be[k], din[k], in_n);
        gpu_poison(be[k], dw[k], w_n);
        gpu_poison(be[k], db[k], (size_t)out_f);
        be[k]->ops->dense_forward(be[k], n, in_f, out_f, in[k], w[k], b[k], out[k], act);
    }
    snprintf(name, sizeof name, "dense %d->%d%s n=%d out", in_f, out_f, act == HD_ACT_RELU ? " relu" : "", n);
    compare(p, name, out[1], out[0], out_n, 0);
    float *cpu_out = gpu_host_copy(p->cpu, out[0], out_n);
    if (cpu_out)
        p->gpu->ops->upload(p->gpu, out[1], cpu_out, out_n * 4);
    free(cpu_out);
    for (int k = 0; k < 2; k++)
        be[k]->ops->dense_backward(be[k], n, in_f, out_f, in[k], w[k], out[k], dout[k],
                                   skip_din ? NULL : din[k], dw[k], db[k], act);
    snprintf(name, sizeof name, "dense n=%d dout (masked)", n);
    compare(p, name, dout[1], dout[0], out_n, 1);
    if (!skip_din) {
        snprintf(name, sizeof name, "dense n=%d din", n);
        compare(p, name, din[1], din[0], in_n, 0);
    }
    snprintf(name, sizeof name, "dense n=%d dweight", n);
    compare(p, name, dw[1], dw[0], w_n, 0);
    snprintf(name, sizeof name, "dense n=%d dbias", n);
    compare(p, name, db[1], db[0], (size_t)out_f, 0);
    for (int k = 0; k < 2; k++) {
        float *bufs[8] = {in[k], w[k], b[k], out[k], dout[k], din[k], dw[k], db[k]};
        for (int j = 0; j < 8; j++)
            be[k]->ops->free(be[k], bufs[j]);
    }
done_host:
    free(h_in);
    free(h_w);
    free(h_b);
    free(h_dout);
}

/* ---- TF32: its own, looser bound, on the largest dense and conv layers ---- */

static void test_tf32(hd_backend *cpu, hd_backend *tf32, int conv, uint64_t *rng) {
    const int n = 64;
    hd_conv_shape s = {n, 32, 13, 13, 64, 3, 0, 11, 11, HD_ACT_NONE, 1}; /* conv2 */
    const int in_f = 1600, out_f = 128;                                  /* dense1 */
    size_t in_n = conv ? (size_t)n * 32 * 13 * 13 : (size_t)n * in_f;
    size_t w_n = conv ? (size_t)64 * 32 * 9 : (size_t)out_f * in_f;
    size_t b_n = conv ? 64 : (size_t)out_f, out_n = conv ? (size_t)n * 64 * 11 * 11 : (size_t)n * out_f;
    float *h_in = malloc(in_n * 4), *h_w = malloc(w_n * 4), *h_b = calloc(b_n, 4);
    float *got = malloc(out_n * 4), *ref = malloc(out_n * 4);
    CHECK(h_in && h_w && h_b && got && ref, "malloc");
    if (h_in && h_w && h_b && got && ref) {
        fill(h_in, in_n, 0.0f, 1.0f, rng);
        fill(h_w, w_n, -0.05f, 0.05f, rng);
        hd_backend *be[2] = {cpu, tf32};
        float *res[2] = {ref, got};
        for (int k = 0; k < 2; k++) {
            float *d_in = gpu_device_copy(be[k], h_in, in_n), *d_w = gpu_device_copy(be[k], h_w, w_n);
            float *d_b = gpu_device_copy(be[k], h_b, b_n), *d_out = gpu_device_copy(be[k], NULL, out_n);
            void *plan = conv ? be[k]->ops->conv2d_plan(be[k], &s) : NULL;
            CHECK(!conv || plan, "TF32 conv plan: %s", hd_last_error());
            if (conv && plan) {
                be[k]->ops->conv2d_forward(be[k], plan, n, d_in, d_w, d_b, d_out);
                be[k]->ops->conv2d_plan_free(be[k], plan);
            } else if (!conv) {
                be[k]->ops->dense_forward(be[k], n, in_f, out_f, d_in, d_w, d_b, d_out, HD_ACT_NONE);
            }
            be[k]->ops->download(be[k], res[k], d_out, out_n * 4);
            be[k]->ops->free(be[k], d_in);
            be[k]->ops->free(be[k], d_w);
            be[k]->ops->free(be[k], d_b);
            be[k]->ops->free(be[k], d_out);
        }
        double err = gpu_norm_rel_error(got, ref, out_n);
        printf("TF32 %s n=64: ||gpu - cpu|| / ||cpu|| = %.3g (bound %.0e)\n", conv ? "conv2" : "dense1", err,
               GPU_TOL_TF32_NORM_RTOL);
        CHECK(err <= GPU_TOL_TF32_NORM_RTOL, "TF32 %s error %.3g over %.0e", conv ? "conv" : "dense", err,
              GPU_TOL_TF32_NORM_RTOL);
    }
    free(h_in);
    free(h_w);
    free(h_b);
    free(got);
    free(ref);
}

#ifdef HD_WITH_CUDA
/* kernels/gpu_internal.h (which needs the CUDA headers): host code, so checked with or without a GPU. */
int gpu_bias_chunks(int n, int channels, int spatial, size_t partials);

/* The image ranges the bias gradient is cut into: from the shape alone, about 4096 elements of a
 * channel each, at most 64 and at most n, chunks x channels within the partial sums, and each range
 * under 2^31 elements (32-bit indices). */
static void check_bias_chunks(void) {
    static const struct {
        int n, channels, spatial;
        size_t partials;
        int want;
    } cases[] = {
        {128, 32, 676, 65536, 22},    /* conv1: 86528 elements a channel */
        {96, 32, 676, 65536, 16},     /* a smaller last batch */
        {1, 32, 676, 65536, 1},       /* one image: one range */
        {64, 64, 121, 65536, 2},      /* conv2 */
        {128, 128, 1, 65536, 1},      /* dense: 128 elements a feature */
        {256, 8, 100, 65536, 7},      /* gpu_test_layers' "wide" shape */
        {4096, 32, 676, 65536, 64},   /* at most 64 ranges */
        {100000, 4000, 1, 65536, 16}, /* 25 wanted; the partial sums hold 16 per channel */
        {20000, 70000, 1, 65536, 1},  /* more channels than partial sums: one block each */
        {3, 1, 1 << 30, 65536, 3},    /* 2^30 elements an image: one image a range */
        {0, 32, 676, 65536, 1},       /* nothing to sum */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = gpu_bias_chunks(cases[i].n, cases[i].channels, cases[i].spatial, cases[i].partials);
        CHECK(got == cases[i].want,
              "gpu_bias_chunks(n %d, channels %d, spatial %d, partials %zu) = %d, expected %d", cases[i].n,
              cases[i].channels, cases[i].spatial, cases[i].partials, got, cases[i].want);
    }
}
#endif

int main(void) {
    uint64_t rng = test_fresh_seed();
#ifdef HD_WITH_CUDA
    check_bias_chunks();
#endif
    hd_gpu_options gpu_opts = {.device = 0,
                               .verbose = 1}; /* verbose: the chosen cuDNN algorithms are printed */
    backend_pair p;
    if (!gpu_pair_open(&p, &gpu_opts))
        return test_finish();

    /* The default network's layers: full batch, a smaller last batch, a batch of one. */
    hd_conv_shape conv1 = {128, 1, 28, 28, 32, 3, 0, 26, 26, HD_ACT_RELU, 1};
    const int conv1_batches[] = {128, 96, 1};
    test_conv(&p, conv1, conv1_batches, 3, 1, &rng); /* first layer: no din */
    hd_conv_shape conv2 = {64, 32, 13, 13, 64, 3, 0, 11, 11, HD_ACT_RELU, 1};
    const int conv2_batches[] = {64, 17, 1, 64};
    test_conv(&p, conv2, conv2_batches, 4, 0, &rng);
    /* Nine smaller batch sizes, more than the plan keeps sets for (7): sets are replaced. */
    hd_conv_shape padded = {10, 3, 9, 7, 5, 3, 1, 9, 7, HD_ACT_NONE, 1};
    const int padded_batches[] = {10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 10};
    test_conv(&p, padded, padded_batches, 12, 0, &rng);
    /* No activation, and batches whose bias gradient is cut into several image ranges, the last
     * one shorter (256 x 100 positions: 7 ranges of up to 37 images; 255: the last of 33). */
    hd_conv_shape wide = {256, 1, 12, 12, 8, 3, 0, 10, 10, HD_ACT_NONE, 1};
    const int wide_batches[] = {256, 255, 41};
    test_conv(&p, wide, wide_batches, 3, 0, &rng);

    /* Stride and padding: 5x5 stride 2 "same" on an even side (28 -> 14), stride 2 without padding on an
     * even side whose last row and column no window reaches (14 -> 6), a 4x4 kernel with padding 1 (14 ->
     * 13), and stride 3 with padding 2 of a 3x3 kernel (12 -> 5). */
    hd_conv_shape strided = {32, 1, 28, 28, 16, 5, 2, 14, 14, HD_ACT_RELU, 2};
    const int strided_batches[] = {32, 5, 1};
    test_conv(&p, strided, strided_batches, 3, 0, &rng);
    hd_conv_shape strided_valid = {16, 8, 14, 14, 12, 3, 0, 6, 6, HD_ACT_NONE, 2};
    const int small_batches[] = {16, 3};
    test_conv(&p, strided_valid, small_batches, 2, 0, &rng);
    hd_conv_shape even_kernel = {16, 4, 14, 14, 8, 4, 1, 13, 13, HD_ACT_NONE, 1};
    test_conv(&p, even_kernel, small_batches, 2, 0, &rng);
    hd_conv_shape stride3 = {16, 3, 12, 12, 6, 3, 2, 5, 5, HD_ACT_RELU, 3};
    test_conv(&p, stride3, small_batches, 2, 0, &rng);

    /* Average pooling: the even 2x2 case, a 3x3 window leaving a row and a column uncovered; global
     * average pooling over 7x7 and a non-square plane. */
    hd_pool_shape avg2 = {64, 32, 14, 14, 2, 7, 7};
    const int avg_batches[] = {64, 9, 1};
    test_avgpool(&p, avg2, 0, avg_batches, 3, &rng);
    hd_pool_shape avg3 = {8, 5, 10, 11, 3, 3, 3};
    const int avg3_batches[] = {8, 2};
    test_avgpool(&p, avg3, 0, avg3_batches, 2, &rng);
    hd_pool_shape gap7 = {64, 128, 7, 7, 0, 1, 1};
    test_avgpool(&p, gap7, 1, avg_batches, 3, &rng);
    hd_pool_shape gap_wide = {8, 3, 5, 9, 0, 1, 1};
    test_avgpool(&p, gap_wide, 1, avg3_batches, 2, &rng);

    hd_pool_shape pool1 = {128, 32, 26, 26, 2, 13, 13};
    const int pool1_batches[] = {128, 96, 1};
    test_pool(&p, pool1, pool1_batches, 3, 0, &rng);
    hd_pool_shape pool2 = {64, 64, 11, 11, 2, 5, 5}; /* row and column 10 in no window */
    const int pool2_batches[] = {64, 7};
    test_pool(&p, pool2, pool2_batches, 2, 0, &rng);
    test_pool(&p, pool2, pool2_batches, 2, 1, &rng);
    hd_pool_shape pool3 = {4, 3, 10, 9, 3, 3, 3};
    const int pool3_batches[] = {4, 1};
    test_pool(&p, pool3, pool3_batches, 2, 1, &rng);

    test_dense(&p, 128, 1600, 128, HD_ACT_RELU, 0, &rng);
    test_dense(&p, 1, 1600, 128, HD_ACT_RELU, 0, &rng);
    test_dense(&p, 37, 128, 10, HD_ACT_NONE, 0, &rng);
    test_dense(&p, 5, 3, 7, HD_ACT_RELU, 1, &rng);

    hd_gpu_options tf32_opts = {.device = 0, .deterministic = gpu_under_sanitizer(), .allow_tf32 = 1};
    hd_backend *tf32 = hd_gpu_backend_create(&tf32_opts);
    CHECK(tf32 != NULL, "TF32 backend: %s", hd_last_error());
    if (tf32) {
        test_tf32(p.cpu, tf32, 0, &rng);
        test_tf32(p.cpu, tf32, 1, &rng);
        hd_backend_destroy(tf32);
    }

    /* A set made for a smaller batch whose algorithms cuDNN refuses on their first call
     * (forced by HD_GPU_TEST_REFUSE_CONV, read when a backend is made): the plan must try
     * the others and still compute what the CPU does; without the retry the op would end
     * the process. Deterministic plans under compute-sanitizer, as gpu_pair_open makes them
     * (measuring every algorithm instrumented would take minutes). */
    hd_gpu_options refusing_opts = {.device = 0, .deterministic = gpu_under_sanitizer(), .verbose = 1};
    setenv("HD_GPU_TEST_REFUSE_CONV", "1", 1);
    hd_backend *refusing = hd_gpu_backend_create(&refusing_opts);
    unsetenv("HD_GPU_TEST_REFUSE_CONV");
    CHECK(refusing != NULL, "backend refusing new conv sets: %s", hd_last_error());
    /* The hook taken up and no process ended below: the retries ran. */
    CHECK(!refusing || strstr(refusing->ops->describe(refusing), "HD_GPU_TEST_REFUSE_CONV") != NULL,
          "HD_GPU_TEST_REFUSE_CONV was not taken up: %s", refusing ? refusing->ops->describe(refusing) : "");
    if (refusing) {
        const backend_pair refusing_pair = {p.cpu, refusing};
        const int refused_batches[] = {64, 17, 1, 17};
        test_conv(&refusing_pair, conv2, refused_batches, 4, 0, &rng);
        hd_backend_destroy(refusing);
    }

    gpu_pair_close(&p);
    return test_finish();
}
