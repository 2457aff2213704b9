/* gpu_test_batchnorm.c: batch normalisation and the standalone ReLU, GPU against the CPU path.
 *
 * 1. The ops on the same fresh random inputs on both backends (outputs poisoned with NaN first, so an
 *    element the GPU never writes fails): the training forward (out, the updated running statistics,
 *    the saved mean and 1/std), the evaluation forward (running statistics), and the backward (din,
 *    dgamma, dbeta) after each, with din skipped once. Shapes: after the default network's first conv
 *    (128 x 32 x 26x26: 86,528 values a channel), a smaller last batch, after a dense layer (128 x 128,
 *    spatial 1) and a batch of 2. ReLU forward and backward, exactly.
 * 2. A small network with bn after a conv and after a dense layer, trained STEPS Adam steps on both
 *    backends as the trainer runs them (hd_train_step: on the GPU, replays of a recorded CUDA graph, so
 *    the running statistics must be updated by the replayed kernels themselves): the loss of every step,
 *    the running statistics after the first step and after the last, and the evaluation logits.
 *
 * Tolerances (tests/test_util/tolerances.h): the ops GPU_TOL_RTOL with GPU_TOL_ATOL_SCALE of each
 * tensor's largest magnitude (both sides sum each channel in double; only the order differs, and the
 * element-wise math is shared_math.h's on both); din's terms cancel, which the absolute floor covers.
 * ReLU exact (no arithmetic). After one training step the running statistics as the ops; after STEPS,
 * and the losses on the way, GPU_TOL_CURVE_* (the Adam trajectories part by rounding, as in
 * gpu_test_network.c). */
#include "check.h"
#include "gpu_compare.h"
#include "tolerances.h"
#include "hd/backend.h"
#include "hd/common.h"
#include "hd/model.h"
#include "hd/optimizer.h"
#include "hd/shared_math.h"
#include "hd/train_step.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPEC  "conv:8:3,bn,relu,maxpool:2,flatten,dense:16,bn,relu,dense:10"
#define BATCH 32
#define STEPS 20

static void compare(const gpu_backend_pair *p, const char *name, const float *gpu_dev, const float *cpu_dev,
                    size_t n) {
    gpu_compare_tensors(name, p, gpu_dev, cpu_dev, n, GPU_TOL_RTOL, GPU_TOL_ATOL_SCALE);
}

/* ---- 1. the ops ---- */

static void test_ops(const gpu_backend_pair *p, int n, int channels, int spatial, uint64_t *rng) {
    const size_t total = (size_t)n * channels * spatial, c2 = 2 * (size_t)channels;
    hd_batchnorm_shape shape = {channels, spatial, HD_BN_EPS, HD_BN_MOMENTUM};
    float *h_in = malloc(total * 4), *h_dout = malloc(total * 4), *h_gamma = malloc(channels * 4),
          *h_beta = malloc(channels * 4), *h_running = malloc(c2 * 4);
    hd_backend *be[2] = {p->cpu, p->gpu};
    float *in[2], *gamma[2], *beta[2], *running[2], *saved[2], *out[2], *dout[2], *din[2], *dgamma[2],
        *dbeta[2];
    char name[160], what[64];
    snprintf(what, sizeof what, "bn n=%d c=%d s=%d", n, channels, spatial);
    test_fill_uniform(h_in, total, -2.0f, 3.0f, rng);
    test_fill_uniform(h_dout, total, -1.0f, 1.0f, rng);
    test_fill_uniform(h_gamma, (size_t)channels, 0.5f, 1.5f, rng);
    test_fill_uniform(h_beta, (size_t)channels, -0.5f, 0.5f, rng);
    test_fill_uniform(h_running, c2, 0.1f, 1.1f, rng);
    for (int k = 0; k < 2; k++) {
        in[k] = gpu_device_copy(be[k], h_in, total);
        dout[k] = gpu_device_copy(be[k], h_dout, total);
        gamma[k] = gpu_device_copy(be[k], h_gamma, (size_t)channels);
        beta[k] = gpu_device_copy(be[k], h_beta, (size_t)channels);
        running[k] = gpu_device_copy(be[k], h_running, c2);
        saved[k] = gpu_device_copy(be[k], NULL, c2);
        out[k] = gpu_device_copy(be[k], NULL, total);
        din[k] = gpu_device_copy(be[k], NULL, total);
        dgamma[k] = gpu_device_copy(be[k], NULL, (size_t)channels);
        dbeta[k] = gpu_device_copy(be[k], NULL, (size_t)channels);
    }
    for (int batch_stats = 1; batch_stats >= 0; batch_stats--) {
        const char *mode = batch_stats ? "train" : "eval";
        for (int k = 0; k < 2; k++) {
            gpu_poison(be[k], out[k], total);
            gpu_poison(be[k], saved[k], c2);
            gpu_poison(be[k], din[k], total);
            gpu_poison(be[k], dgamma[k], (size_t)channels);
            gpu_poison(be[k], dbeta[k], (size_t)channels);
            be[k]->ops->batchnorm_forward(be[k], &shape, n, batch_stats, in[k], gamma[k], beta[k], running[k],
                                          saved[k], out[k]);
            be[k]->ops->batchnorm_backward(be[k], &shape, n, batch_stats, in[k], gamma[k], saved[k], dout[k],
                                           din[k], dgamma[k], dbeta[k]);
        }
        snprintf(name, sizeof name, "%s %s out", what, mode);
        compare(p, name, out[1], out[0], total);
        snprintf(name, sizeof name, "%s %s running stats", what, mode);
        compare(p, name, running[1], running[0], c2);
        snprintf(name, sizeof name, "%s %s saved mean, 1/std", what, mode);
        compare(p, name, saved[1], saved[0], c2);
        snprintf(name, sizeof name, "%s %s din", what, mode);
        compare(p, name, din[1], din[0], total);
        snprintf(name, sizeof name, "%s %s dgamma", what, mode);
        compare(p, name, dgamma[1], dgamma[0], (size_t)channels);
        snprintf(name, sizeof name, "%s %s dbeta", what, mode);
        compare(p, name, dbeta[1], dbeta[0], (size_t)channels);
    }
    /* din skipped (bn as the first layer): dgamma as before. Then a second evaluation pass on the GPU leaves
     * the running statistics exactly as they were. */
    float *after_eval = gpu_host_copy(p->gpu, running[1], c2);
    for (int k = 0; k < 2; k++) {
        gpu_poison(be[k], dgamma[k], (size_t)channels);
        be[k]->ops->batchnorm_backward(be[k], &shape, n, 1, in[k], gamma[k], saved[k], dout[k], NULL,
                                       dgamma[k], dbeta[k]);
    }
    snprintf(name, sizeof name, "%s dgamma without din", what);
    compare(p, name, dgamma[1], dgamma[0], (size_t)channels);
    be[1]->ops->batchnorm_forward(be[1], &shape, n, 0, in[1], gamma[1], beta[1], running[1], saved[1],
                                  out[1]);
    float *again = gpu_host_copy(p->gpu, running[1], c2);
    CHECK(after_eval && again && memcmp(after_eval, again, c2 * 4) == 0, "%s: eval leaves running stats",
          what);
    free(after_eval), free(again);
    for (int k = 0; k < 2; k++) {
        float *bufs[10] = {in[k],  gamma[k], beta[k], running[k], saved[k],
                           out[k], dout[k],  din[k],  dgamma[k],  dbeta[k]};
        for (int j = 0; j < 10; j++)
            be[k]->ops->free(be[k], bufs[j]);
    }
    free(h_in), free(h_dout), free(h_gamma), free(h_beta), free(h_running);
}

static void test_relu(const gpu_backend_pair *p, size_t count, uint64_t *rng) {
    float *h_in = malloc(count * 4), *h_dout = malloc(count * 4);
    test_fill_uniform(h_in, count, -1.0f, 1.0f, rng);
    test_fill_uniform(h_dout, count, -1.0f, 1.0f, rng);
    hd_backend *be[2] = {p->cpu, p->gpu};
    float *in[2], *out[2], *dout[2], *din[2];
    for (int k = 0; k < 2; k++) {
        in[k] = gpu_device_copy(be[k], h_in, count);
        dout[k] = gpu_device_copy(be[k], h_dout, count);
        out[k] = gpu_device_copy(be[k], NULL, count);
        din[k] = gpu_device_copy(be[k], NULL, count);
        gpu_poison(be[k], out[k], count);
        gpu_poison(be[k], din[k], count);
        be[k]->ops->relu_forward(be[k], count, in[k], out[k]);
        be[k]->ops->relu_backward(be[k], count, out[k], dout[k], din[k]);
    }
    gpu_compare_tensors("relu forward", p, out[1], out[0], count, GPU_TOL_EXACT, GPU_TOL_EXACT);
    gpu_compare_tensors("relu backward", p, din[1], din[0], count, GPU_TOL_EXACT, GPU_TOL_EXACT);
    for (int k = 0; k < 2; k++) {
        be[k]->ops->free(be[k], in[k]), be[k]->ops->free(be[k], out[k]);
        be[k]->ops->free(be[k], dout[k]), be[k]->ops->free(be[k], din[k]);
    }
    free(h_in), free(h_dout);
}

/* ---- 2. a bn network trained on both backends ---- */

typedef struct {
    hd_backend *be;
    hd_model model;
    hd_optimizer opt;
    hd_train_step runner;
} net;

static int net_open(net *t, hd_backend *be) {
    memset(t, 0, sizeof *t);
    t->be = be;
    if (hd_model_create(&t->model, be, SPEC, 1, 28, 28, BATCH) != 0)
        return 0;
    hd_model_init_weights(&t->model, 99);
    hd_optimizer_defaults(&t->opt, HD_OPT_ADAM);
    t->opt.ema_decay = 0.9; /* the weights' average and the running statistics' (--ema), replayed each step */
    if (hd_optimizer_init(&t->opt, &t->model) != 0)
        return 0;
    hd_train_step_init(&t->runner, &t->model, &t->opt, 5);
    return 1;
}

static void net_close(net *t) {
    hd_train_step_free(&t->runner);
    if (t->model.be) {
        hd_optimizer_free(&t->opt, &t->model);
        hd_model_destroy(&t->model);
    }
}

static float step_loss(net *t, const float *images, const int32_t *labels, uint64_t step) {
    hd_backend *be = t->be;
    const float zero[2] = {0, 0};
    be->ops->upload(be, t->model.input, images, (size_t)BATCH * 784 * 4);
    be->ops->upload(be, t->model.labels, labels, (size_t)BATCH * 4);
    be->ops->upload(be, t->model.metrics, zero, sizeof zero);
    hd_train_step_run(&t->runner, BATCH, step);
    float metrics[2];
    be->ops->download(be, metrics, t->model.metrics, sizeof metrics);
    return metrics[0] / BATCH;
}

static void test_network(const gpu_backend_pair *p, uint64_t *rng) {
    net c, g;
    int ok = net_open(&c, p->cpu) && net_open(&g, p->gpu);
    CHECK(ok, "bn networks: %s", hd_last_error());
    float *images = malloc((size_t)BATCH * 784 * 4);
    int32_t labels[BATCH];
    int curve_ok = 1;
    for (int step = 0; ok && step < STEPS; step++) {
        test_fill_uniform(images, (size_t)BATCH * 784, 0.0f, 1.0f, rng);
        for (int i = 0; i < BATCH; i++) {
            labels[i] = (int32_t)(test_rand_u64(rng) % 10);
            for (int y = 0; y < 6; y++) /* a learnable mark: a bright bar at the label's row */
                images[(size_t)i * 784 + (size_t)(2 + 2 * labels[i]) * 28 + 4 + y] = 1.0f;
        }
        float lc = step_loss(&c, images, labels, (uint64_t)step),
              lg = step_loss(&g, images, labels, (uint64_t)step);
        double err = fabs((double)lg - lc),
               allowed = GPU_TOL_CURVE_ATOL + GPU_TOL_CURVE_RTOL * fabs((double)lc);
        if (err > allowed || !isfinite(lg)) {
            curve_ok = 0;
            printf("  step %d: loss gpu %.6f cpu %.6f\n", step, (double)lg, (double)lc);
        }
        if (step == 0)
            compare(p, "bn network: running stats after step 1", g.model.state, c.model.state,
                    c.model.state_count);
        if (step == 0)
            printf("bn network: step 1 loss gpu %.6f cpu %.6f\n", (double)lg, (double)lc);
    }
    CHECK(curve_ok, "bn network: every step's loss within the curve tolerance");
    if (ok) {
        printf("bn network: %d steps, %d GPU replays of a recorded step\n", STEPS, (int)g.runner.replays);
        CHECK(g.runner.replays > 0, "the GPU steps were replayed from a recording");
        CHECK(g.model.batches_tracked == STEPS && c.model.batches_tracked == STEPS,
              "batches tracked %llu / %llu", (unsigned long long)g.model.batches_tracked,
              (unsigned long long)c.model.batches_tracked);
        gpu_compare_tensors("bn network: running stats after all steps", p, g.model.state, c.model.state,
                            c.model.state_count, GPU_TOL_CURVE_RTOL, GPU_TOL_CURVE_ATOL);
        gpu_compare_tensors("bn network: the weights' average (--ema)", p, g.opt.average, c.opt.average,
                            c.model.param_count, GPU_TOL_CURVE_RTOL, GPU_TOL_CURVE_ATOL);
        gpu_compare_tensors("bn network: the running stats' average (--ema)", p, g.opt.average_state,
                            c.opt.average_state, c.model.state_count, GPU_TOL_CURVE_RTOL, GPU_TOL_CURVE_ATOL);
        /* Evaluation (running statistics) on one batch, from each backend's own weights. */
        const float *lgits = hd_model_forward(&g.model, BATCH, 0, 0);
        const float *lcits = hd_model_forward(&c.model, BATCH, 0, 0);
        gpu_compare_tensors("bn network: eval logits", p, lgits, lcits, (size_t)BATCH * 10,
                            GPU_TOL_CURVE_RTOL, GPU_TOL_CURVE_ATOL);
    }
    free(images);
    net_close(&g);
    net_close(&c);
}

int main(void) {
    uint64_t rng = test_fresh_seed();
    hd_gpu_options gpu_opts = {.device = 0};
    gpu_backend_pair p;
    if (!gpu_pair_open(&p, &gpu_opts))
        return test_finish();
    test_ops(&p, 128, 32, 26 * 26, &rng); /* after the default network's first conv */
    test_ops(&p, 37, 32, 26 * 26, &rng);  /* a smaller last batch */
    test_ops(&p, 128, 128, 1, &rng);      /* after a dense layer */
    test_ops(&p, 2, 5, 1, &rng);          /* two images: unbiased variance factor 2 */
    test_relu(&p, 100003, &rng);
    test_network(&p, &rng);
    gpu_pair_close(&p);
    return test_finish();
}
