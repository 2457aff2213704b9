/* gpu_test_elementwise.c: our own kernels (dropout, fused softmax + cross-entropy, Adam, SGD), GPU
 * against the CPU path, on fresh random inputs, edge cases included: dropout at rates 0, 0.5 and 0.99,
 * and over 1 to 9 elements (partial quads); batches of 1, 37 and 3000 rows; logits of magnitude 1e4 (no
 * NaN or inf); a gradient divisor other than n (the last, smaller batch); metrics that already hold
 * values (the op adds to them).
 *
 * Tolerances (tests/test_util/tolerances.h): dropout exact; dlogits GPU_TOL_RTOL with
 * GPU_TOL_ATOL_SCALE; loss sums GPU_TOL_LOSS_RTOL; correct counts exact; Adam and SGD
 * GPU_TOL_OPT_RTOL with GPU_TOL_OPT_ATOL_SCALE.
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

static void free_pair(const backend_pair *p, float **bufs) {
    p->cpu->ops->free(p->cpu, bufs[0]);
    p->gpu->ops->free(p->gpu, bufs[1]);
}

/* ---- dropout ---- */

static void test_dropout(const backend_pair *p, size_t count, float rate, uint64_t *rng) {
    float *h_in = malloc(count * 4), *h_dout = malloc(count * 4);
    CHECK(h_in && h_dout, "malloc");
    if (!h_in || !h_dout) {
        free(h_in);
        free(h_dout);
        return;
    }
    test_fill_uniform(h_in, count, 0.5f, 1.5f, rng); /* never zero: a zero output means dropped */
    test_fill_uniform(h_dout, count, -1.0f, 1.0f, rng);
    uint64_t seed = test_rand_u64(rng), step = test_rand_u64(rng) % 100000;
    uint32_t layer = (uint32_t)(test_rand_u64(rng) % 16);
    float *in[2], *out[2], *dout[2], *din[2];
    hd_step_scalars *scalars[2];
    hd_backend *be[2] = {p->cpu, p->gpu};
    const hd_step_scalars value = {step, 0.0f, 0.0f};
    for (int k = 0; k < 2; k++) {
        in[k] = gpu_device_copy(be[k], h_in, count);
        out[k] = gpu_device_copy(be[k], NULL, count);
        dout[k] = gpu_device_copy(be[k], h_dout, count);
        din[k] = gpu_device_copy(be[k], NULL, count);
        scalars[k] = hd_backend_alloc_step_scalars(be[k]);
        be[k]->ops->set_step_scalars(be[k], scalars[k], &value);
        be[k]->ops->dropout_forward(be[k], count, rate, seed, layer, scalars[k], in[k], out[k]);
        be[k]->ops->dropout_backward(be[k], count, rate, seed, layer, scalars[k], dout[k], din[k]);
    }
    char name[96];
    snprintf(name, sizeof name, "dropout %.2f forward", (double)rate);
    gpu_compare_tensors(name, p, out[1], out[0], count, GPU_TOL_EXACT, GPU_TOL_EXACT);
    snprintf(name, sizeof name, "dropout %.2f backward", (double)rate);
    gpu_compare_tensors(name, p, din[1], din[0], count, GPU_TOL_EXACT, GPU_TOL_EXACT);

    float *got = gpu_host_copy(p->gpu, out[1], count);
    if (got) {
        size_t kept = 0;
        for (size_t i = 0; i < count; i++)
            kept += got[i] != 0.0f;
        double expect = (double)count * (1.0 - rate), sigma = sqrt((double)count * rate * (1.0 - rate));
        printf("dropout %.2f: kept %zu of %zu (expected %.0f +- %.0f)\n", (double)rate, kept, count, expect,
               sigma);
        CHECK(fabs((double)kept - expect) <= 6.0 * sigma + 0.5, "dropout %.2f kept %zu of %zu", (double)rate,
              kept, count);
        if (rate == 0.0f)
            CHECK(memcmp(got, h_in, count * 4) == 0, "dropout at rate 0 changed its input");
        free(got);
    }
    float *bufs[4][2] = {{in[0], in[1]}, {out[0], out[1]}, {dout[0], dout[1]}, {din[0], din[1]}};
    for (int j = 0; j < 4; j++)
        free_pair(p, bufs[j]);
    for (int k = 0; k < 2; k++)
        be[k]->ops->free(be[k], scalars[k]);
    free(h_in);
    free(h_dout);
}

/* ---- softmax + cross-entropy ---- */

/* Logits uniform in [-scale, scale]; with tie_every > 0, every tie_every-th row has all its
 * logits equal (the prediction is then the first class on both sides). */
static void test_softmax(const backend_pair *p, int n, int classes, float scale, float divisor, int want_grad,
                         int tie_every, float smoothing, uint64_t *rng) {
    size_t cnt = (size_t)n * classes;
    float *h_logits = malloc(cnt * 4);
    int32_t *h_labels = malloc((size_t)n * 4);
    CHECK(h_logits && h_labels, "malloc");
    if (!h_logits || !h_labels) {
        free(h_logits);
        free(h_labels);
        return;
    }
    test_fill_uniform(h_logits, cnt, -scale, scale, rng);
    for (int r = 0; tie_every > 0 && r < n; r += tie_every)
        for (int c = 1; c < classes; c++)
            h_logits[(size_t)r * classes + c] = h_logits[(size_t)r * classes];
    for (int i = 0; i < n; i++)
        h_labels[i] = (int32_t)(test_rand_u64(rng) % (uint64_t)classes);
    const float start[2] = {0.5f, 2.0f}; /* the op adds to what is there */
    float *logits[2], *dlogits[2], *metrics[2];
    int32_t *labels[2];
    hd_backend *be[2] = {p->cpu, p->gpu};
    for (int k = 0; k < 2; k++) {
        logits[k] = gpu_device_copy(be[k], h_logits, cnt);
        labels[k] = (int32_t *)(void *)gpu_device_copy(be[k], h_labels, (size_t)n);
        dlogits[k] = gpu_device_copy(be[k], NULL, cnt);
        metrics[k] = gpu_device_copy(be[k], start, 2);
        be[k]->ops->softmax_xent(be[k], n, classes, logits[k], labels[k], smoothing,
                                 want_grad ? dlogits[k] : NULL, divisor, metrics[k]);
    }
    float m_gpu[2], m_cpu[2];
    p->gpu->ops->download(p->gpu, m_gpu, metrics[1], sizeof m_gpu);
    p->cpu->ops->download(p->cpu, m_cpu, metrics[0], sizeof m_cpu);
    printf("softmax n=%d scale %g smoothing %g: loss sum gpu %.9g cpu %.9g; correct gpu %.0f cpu %.0f\n", n,
           (double)scale, (double)smoothing, (double)m_gpu[0], (double)m_cpu[0], (double)m_gpu[1],
           (double)m_cpu[1]);
    CHECK(isfinite(m_gpu[0]) && isfinite(m_gpu[1]), "softmax n=%d scale %g: metrics not finite", n,
          (double)scale);
    CHECK(fabs((double)m_gpu[0] - m_cpu[0]) <= GPU_TOL_LOSS_RTOL * fabs((double)m_cpu[0]) + 1e-6,
          "softmax n=%d: loss sum %.9g vs %.9g", n, (double)m_gpu[0], (double)m_cpu[0]);
    CHECK(m_gpu[1] == m_cpu[1], "softmax n=%d: correct %.0f vs %.0f", n, (double)m_gpu[1], (double)m_cpu[1]);
    CHECK(m_cpu[1] >= start[1] && m_cpu[1] <= start[1] + (float)n, "CPU correct count %.0f out of range",
          (double)m_cpu[1]);
    if (want_grad) {
        char name[96];
        snprintf(name, sizeof name, "softmax n=%d scale %g dlogits", n, (double)scale);
        gpu_compare_tensors(name, p, dlogits[1], dlogits[0], cnt, GPU_TOL_RTOL, GPU_TOL_ATOL_SCALE);
        float *g = gpu_host_copy(p->gpu, dlogits[1], cnt);
        if (g) {
            size_t bad = 0;
            for (size_t i = 0; i < cnt; i++)
                bad += !isfinite(g[i]);
            CHECK(bad == 0, "softmax n=%d scale %g: %zu gradients not finite", n, (double)scale, bad);
            free(g);
        }
    }
    float *bufs[4][2] = {{logits[0], logits[1]},
                         {(float *)(void *)labels[0], (float *)(void *)labels[1]},
                         {dlogits[0], dlogits[1]},
                         {metrics[0], metrics[1]}};
    for (int j = 0; j < 4; j++)
        free_pair(p, bufs[j]);
    free(h_logits);
    free(h_labels);
}

/* ---- optimizers: three steps from the same random state ---- */

static void test_optimizer(const backend_pair *p, int adam, int nesterov, size_t count, uint64_t *rng) {
    float *h = malloc(count * 4);
    CHECK(h != NULL, "malloc");
    if (!h)
        return;
    float *params[2], *grads[2], *m[2], *v[2];
    hd_step_scalars *scalars[2];
    hd_backend *be[2] = {p->cpu, p->gpu};
    for (int k = 0; k < 2; k++) {
        scalars[k] = hd_backend_alloc_step_scalars(be[k]);
        params[k] = gpu_device_copy(be[k], NULL, count);
        grads[k] = gpu_device_copy(be[k], NULL, count);
        m[k] = gpu_device_copy(be[k], NULL, count);
        v[k] = gpu_device_copy(be[k], NULL, count);
    }
    float lo[3] = {-0.3f, -0.01f, 0.0f}, hi[3] = {0.3f, 0.01f, 1e-4f};
    float **state[3] = {params, m, v};
    for (int s = 0; s < 3; s++) {
        test_fill_uniform(h, count, lo[s], hi[s], rng);
        for (int k = 0; k < 2; k++)
            be[k]->ops->upload(be[k], state[s][k], h, count * 4);
    }
    for (int t = 1; t <= 3; t++) {
        test_fill_uniform(h, count, -0.05f, 0.05f, rng);
        float adam_step_size = (float)(1e-3 * sqrt(1.0 - pow(0.999, t + 4)) / (1.0 - pow(0.9, t + 4)));
        /* A step size that changes with t: each update must read this step's value. */
        const hd_step_scalars value = {(uint64_t)t, adam ? adam_step_size : 0.01f / (float)t, 0.0f};
        for (int k = 0; k < 2; k++) {
            be[k]->ops->upload(be[k], grads[k], h, count * 4);
            be[k]->ops->set_step_scalars(be[k], scalars[k], &value);
            if (adam)
                be[k]->ops->adam_step(be[k], count, params[k], grads[k], m[k], v[k], 0.9f, 0.999f, 1e-7f,
                                      scalars[k]);
            else
                be[k]->ops->sgd_step(be[k], count, params[k], grads[k], m[k], 0.9f, nesterov, scalars[k]);
        }
    }
    const char *what = adam ? "adam" : nesterov ? "sgd nesterov" : "sgd";
    char name[96];
    snprintf(name, sizeof name, "%s params", what);
    gpu_compare_tensors(name, p, params[1], params[0], count, GPU_TOL_OPT_RTOL, GPU_TOL_OPT_ATOL_SCALE);
    snprintf(name, sizeof name, "%s %s", what, adam ? "m" : "velocity");
    gpu_compare_tensors(name, p, m[1], m[0], count, GPU_TOL_OPT_RTOL, GPU_TOL_OPT_ATOL_SCALE);
    if (adam) {
        snprintf(name, sizeof name, "%s v", what);
        gpu_compare_tensors(name, p, v[1], v[0], count, GPU_TOL_OPT_RTOL, GPU_TOL_OPT_ATOL_SCALE);
    }
    float *bufs[4][2] = {{params[0], params[1]}, {grads[0], grads[1]}, {m[0], m[1]}, {v[0], v[1]}};
    for (int j = 0; j < 4; j++)
        free_pair(p, bufs[j]);
    for (int k = 0; k < 2; k++)
        be[k]->ops->free(be[k], scalars[k]);
    free(h);
}

/* The weights' moving average (--ema): avg += w (x - avg) with this step's w read from the step scalars,
 * over fresh random averages and weights, five steps with w from 1 (a copy) down to 1e-4. The kernel and
 * the CPU loop both call hd_ema_update, three rounded operations with no fused multiply-add on the device:
 * equal bit for bit (tolerance 0). */
static void test_ema(const backend_pair *p, size_t count, uint64_t *rng) {
    float *h = malloc(count * sizeof *h),
          *out[2] = {malloc(count * sizeof(float)), malloc(count * sizeof(float))};
    hd_backend *be[2] = {p->cpu, p->gpu};
    float *avg[2], *x[2];
    hd_step_scalars *scalars[2];
    test_fill_uniform(h, count, -1.0f, 1.0f, rng);
    for (int k = 0; k < 2; k++) {
        scalars[k] = hd_backend_alloc_step_scalars(be[k]);
        avg[k] = gpu_device_copy(be[k], h, count);
        x[k] = gpu_device_copy(be[k], NULL, count);
    }
    const float weights[5] = {1.0f, 0.5f, 0.0909090936f, 1e-3f, 1e-4f};
    for (int t = 0; t < 5; t++) {
        test_fill_uniform(h, count, -0.3f, 0.3f, rng);
        const hd_step_scalars value = {(uint64_t)t, 1e-3f, weights[t]};
        for (int k = 0; k < 2; k++) {
            be[k]->ops->upload(be[k], x[k], h, count * 4);
            be[k]->ops->set_step_scalars(be[k], scalars[k], &value);
            be[k]->ops->ema_update(be[k], count, avg[k], x[k], scalars[k]);
        }
    }
    for (int k = 0; k < 2; k++)
        be[k]->ops->download(be[k], out[k], avg[k], count * sizeof(float));
    size_t differ = 0;
    for (size_t i = 0; i < count; i++)
        differ += memcmp(&out[0][i], &out[1][i], sizeof(float)) != 0;
    CHECK(differ == 0, "ema_update over %zu floats: %zu differ from the CPU's", count, differ);
    float *bufs[2][2] = {{avg[0], avg[1]}, {x[0], x[1]}};
    for (int j = 0; j < 2; j++)
        free_pair(p, bufs[j]);
    for (int k = 0; k < 2; k++) {
        be[k]->ops->free(be[k], scalars[k]);
        free(out[k]);
    }
    free(h);
}

int main(void) {
    uint64_t rng = test_fresh_seed();
    backend_pair p;
    if (!gpu_pair_open(&p, NULL))
        return test_finish();

    const size_t act_count = 128 * 128 + 7;
    test_dropout(&p, act_count, 0.0f, &rng);
    test_dropout(&p, act_count, 0.5f, &rng);
    test_dropout(&p, act_count, 0.99f, &rng);
    for (size_t count = 1; count <= 9; count++) /* partial and whole quads: one Philox draw a quad */
        test_dropout(&p, count, 0.5f, &rng);

    test_softmax(&p, 128, 10, 5.0f, 128.0f, 1, 0, 0.0f, &rng);
    /* Label smoothing (the loss against the smoothed target and its gradient softmax - target). */
    test_softmax(&p, 128, 10, 5.0f, 128.0f, 1, 0, 0.1f, &rng);
    test_softmax(&p, 37, 10, 1e4f, 128.0f, 1, 5, 0.3f, &rng);
    test_softmax(&p, 1, 10, 5.0f, 1.0f, 1, 0, 0.0f, &rng);
    test_softmax(&p, 37, 10, 5.0f, 128.0f, 1, 0, 0.0f, &rng);    /* last batch, mean over the full batch */
    test_softmax(&p, 3000, 10, 5.0f, 3000.0f, 0, 0, 0.0f, &rng); /* evaluation: metrics only */
    test_softmax(&p, 128, 10, 1e4f, 128.0f, 1, 5, 0.0f, &rng);   /* huge logits, some rows all equal */
    test_softmax(&p, 64, 3, 1e4f, 64.0f, 1, 0, 0.0f, &rng);
    /* Logits near float's limit (differences of 2e30; a row's loss up to 2e30, the sum of
     * 128 still finite): no inf or NaN in loss, count or gradient. */
    test_softmax(&p, 128, 10, 1e30f, 128.0f, 1, 7, 0.0f, &rng);

    const size_t param_count = 225034; /* the default network's */
    test_optimizer(&p, 1, 0, param_count, &rng);
    test_optimizer(&p, 0, 0, param_count, &rng);
    test_optimizer(&p, 0, 1, param_count, &rng);
    test_optimizer(&p, 1, 0, 5, &rng);
    test_ema(&p, param_count, &rng);
    test_ema(&p, 3, &rng);

    gpu_pair_close(&p);
    return test_finish();
}
