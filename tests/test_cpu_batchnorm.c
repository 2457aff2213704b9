/* test_cpu_batchnorm.c: the CPU reference of batch normalisation and the standalone ReLU.
 *
 * - Forward in training against hand-computed values (mean, biased variance, the running statistics
 *   after one step with momentum 0.1 and the unbiased variance, as PyTorch) and against a loop-by-loop
 *   double-precision reference on random inputs, after a conv (spatial > 1) and after a dense layer
 *   (spatial 1).
 * - Evaluation (batch_stats 0) normalises with the running statistics and leaves them unchanged.
 * - Backward against central finite differences of L = sum(out * r) (GRAD_* in tolerances.h: inputs of
 *   order 1, eps 1e-2; batch norm is smooth, its finite-difference error is O(eps^2)), for dx, dgamma
 *   and dbeta, with batch statistics and with running ones (a frozen layer).
 * - ReLU: forward exact, backward the mask, on inputs kept away from 0 (no nudge crosses the kink).
 * - The model: init gives scale 1, shift 0, running mean 0, variance 1; a training forward updates
 *   the running statistics of a bn layer to the hand-computed values; eval uses them; a frozen layer
 *   neither uses nor updates batch statistics; hd_model_get_state / set_state round-trip. */
#include "check.h"
#include "tolerances.h"
#include "hd/backend.h"
#include "hd/common.h"
#include "hd/model.h"
#include "hd/shared_math.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng;

/* Float rounding of a handful of operations on values of order 1. */
#define EXACTISH 1e-6

static float *random_tensor(size_t n, float lo, float hi) {
    float *x = malloc(n * sizeof(float));
    test_fill_uniform(x, n, lo, hi, &rng);
    return x;
}

/* ---------- hand-computed: one channel, values 1, 2, 3, 4 (two images of two values) ---------- */

static void test_hand_computed(hd_backend *be) {
    const float in[4] = {1, 2, 3, 4}, gamma[1] = {2.0f}, beta[1] = {0.5f};
    float running[2] = {0.0f, 1.0f}, saved[2], out[4];
    hd_batchnorm_shape shape = {1, 2, HD_BN_EPS, HD_BN_MOMENTUM};
    be->ops->batchnorm_forward(be, &shape, 2, 1, in, gamma, beta, running, saved, out);
    /* mean 2.5, biased variance 1.25, unbiased 5/3 */
    const float invstd = 1.0f / sqrtf(1.25f + 1e-5f);
    const float want_out[4] = {2 * -1.5f * invstd + 0.5f, 2 * -0.5f * invstd + 0.5f, 2 * 0.5f * invstd + 0.5f,
                               2 * 1.5f * invstd + 0.5f};
    const float want_running[2] = {0.9f * 0.0f + 0.1f * 2.5f, 0.9f * 1.0f + 0.1f * (5.0f / 3.0f)};
    const float want_saved[2] = {2.5f, invstd};
    check_tensor("hand: out", out, want_out, 4, EXACTISH, EXACTISH);
    check_tensor("hand: running mean, var (unbiased)", running, want_running, 2, EXACTISH, EXACTISH);
    check_tensor("hand: saved mean, invstd", saved, want_saved, 2, EXACTISH, EXACTISH);

    /* A second step on the same batch: the running values move 10% further. */
    be->ops->batchnorm_forward(be, &shape, 2, 1, in, gamma, beta, running, saved, out);
    const float want_running2[2] = {0.9f * want_running[0] + 0.25f,
                                    0.9f * want_running[1] + 0.1f * (5.0f / 3.0f)};
    check_tensor("hand: running after two steps", running, want_running2, 2, EXACTISH, EXACTISH);

    /* Evaluation: the running statistics, unchanged. */
    float frozen_running[2] = {1.0f, 4.0f};
    be->ops->batchnorm_forward(be, &shape, 2, 0, in, gamma, beta, frozen_running, saved, out);
    const float inv2 = 1.0f / sqrtf(4.0f + 1e-5f);
    const float want_eval[4] = {0.5f, 2 * 1 * inv2 + 0.5f, 2 * 2 * inv2 + 0.5f, 2 * 3 * inv2 + 0.5f};
    check_tensor("hand: eval out (running stats)", out, want_eval, 4, EXACTISH, EXACTISH);
    CHECK(frozen_running[0] == 1.0f && frozen_running[1] == 4.0f, "eval leaves the running stats (%g %g)",
          (double)frozen_running[0], (double)frozen_running[1]);
}

/* ---------- random shapes: forward against a double reference, backward against differences ---------- */

typedef struct {
    hd_backend *be;
    hd_batchnorm_shape shape;
    int n, batch_stats;
    float *in, *gamma, *beta, *running, *saved, *out, *r;
    size_t total;
    float *running_copy; /* bn_loss's scratch */
} bn_ctx;

static double bn_loss(void *p) {
    bn_ctx *c = p;
    memcpy(c->running_copy, c->running, 2 * (size_t)c->shape.channels * sizeof(float)); /* keep them fixed */
    c->be->ops->batchnorm_forward(c->be, &c->shape, c->n, c->batch_stats, c->in, c->gamma, c->beta,
                                  c->running_copy, c->saved, c->out);
    double s = 0.0;
    for (size_t i = 0; i < c->total; i++)
        s += (double)c->out[i] * c->r[i];
    return s;
}

static void numeric_grad(float *x, size_t count, float *grad, double (*loss)(void *), void *ctx) {
    for (size_t i = 0; i < count; i++) {
        float keep = x[i];
        x[i] = keep + GRAD_EPS;
        double plus = loss(ctx);
        x[i] = keep - GRAD_EPS;
        double minus = loss(ctx);
        x[i] = keep;
        grad[i] = (float)((plus - minus) / (2.0 * GRAD_EPS));
    }
}

static void bn_reference(const bn_ctx *c, float *out, float *running) {
    const int C = c->shape.channels, S = c->shape.spatial;
    const double count = (double)c->n * S;
    for (int ch = 0; ch < C; ch++) {
        double mean, var;
        if (c->batch_stats) {
            double sum = 0, sq = 0;
            for (int i = 0; i < c->n; i++)
                for (int s = 0; s < S; s++)
                    sum += c->in[((size_t)i * C + ch) * S + s];
            mean = sum / count;
            for (int i = 0; i < c->n; i++)
                for (int s = 0; s < S; s++) {
                    double d = c->in[((size_t)i * C + ch) * S + s] - mean;
                    sq += d * d;
                }
            var = sq / count;
            running[ch] = (float)(0.9 * running[ch] + 0.1 * mean);
            running[C + ch] = (float)(0.9 * running[C + ch] + 0.1 * var * count / (count - 1));
        } else {
            mean = running[ch];
            var = running[C + ch];
        }
        for (int i = 0; i < c->n; i++)
            for (int s = 0; s < S; s++) {
                size_t at = ((size_t)i * C + ch) * S + s;
                out[at] = (float)(c->gamma[ch] * (c->in[at] - mean) / sqrt(var + 1e-5) + c->beta[ch]);
            }
    }
}

static void test_batchnorm(hd_backend *be, int n, int channels, int spatial, int batch_stats,
                           const char *what) {
    bn_ctx c = {be,   {channels, spatial, HD_BN_EPS, HD_BN_MOMENTUM},
                n,    batch_stats,
                NULL, NULL,
                NULL, NULL,
                NULL, NULL,
                NULL, (size_t)n * channels * spatial,
                NULL};
    c.in = random_tensor(c.total, -1.5f, 2.5f);
    c.gamma = random_tensor((size_t)channels, 0.5f, 1.5f);
    c.beta = random_tensor((size_t)channels, -0.5f, 0.5f);
    c.running = random_tensor(2 * (size_t)channels, 0.2f, 1.2f); /* positive, for the variances */
    c.saved = malloc(2 * (size_t)channels * sizeof(float));
    c.running_copy = malloc(2 * (size_t)channels * sizeof(float));
    c.out = malloc(c.total * sizeof(float));
    c.r = random_tensor(c.total, -1.0f, 1.0f);
    float *ref = malloc(c.total * sizeof(float));
    float *ref_running = malloc(2 * (size_t)channels * sizeof(float));
    memcpy(ref_running, c.running, 2 * (size_t)channels * sizeof(float));
    char name[128];

    bn_reference(&c, ref, ref_running);
    be->ops->batchnorm_forward(be, &c.shape, n, batch_stats, c.in, c.gamma, c.beta, c.running, c.saved,
                               c.out);
    snprintf(name, sizeof name, "%s: forward", what);
    check_tensor(name, c.out, ref, c.total, 1e-5, 1e-5);
    snprintf(name, sizeof name, "%s: running stats", what);
    check_tensor(name, c.running, ref_running, 2 * (size_t)channels, 1e-6, 1e-5);

    float *dx = malloc(c.total * sizeof(float)), *dgamma = malloc(channels * sizeof(float)),
          *dbeta = malloc(channels * sizeof(float));
    float *num = malloc(c.total * sizeof(float));
    be->ops->batchnorm_backward(be, &c.shape, n, batch_stats, c.in, c.gamma, c.saved, c.r, dx, dgamma, dbeta);
    numeric_grad(c.in, c.total, num, bn_loss, &c);
    snprintf(name, sizeof name, "%s: dx", what);
    check_tensor(name, dx, num, c.total, GRAD_ATOL, GRAD_RTOL);
    numeric_grad(c.gamma, (size_t)channels, num, bn_loss, &c);
    snprintf(name, sizeof name, "%s: dgamma", what);
    check_tensor(name, dgamma, num, (size_t)channels, GRAD_ATOL, GRAD_RTOL);
    numeric_grad(c.beta, (size_t)channels, num, bn_loss, &c);
    snprintf(name, sizeof name, "%s: dbeta", what);
    check_tensor(name, dbeta, num, (size_t)channels, GRAD_ATOL, GRAD_RTOL);

    /* din NULL (bn as the first layer): dgamma and dbeta still written, the same. */
    float *dgamma2 = malloc(channels * sizeof(float)), *dbeta2 = malloc(channels * sizeof(float));
    bn_loss(&c); /* saved as the analytic backward had it */
    be->ops->batchnorm_backward(be, &c.shape, n, batch_stats, c.in, c.gamma, c.saved, c.r, NULL, dgamma2,
                                dbeta2);
    snprintf(name, sizeof name, "%s: dgamma without din", what);
    check_tensor(name, dgamma2, dgamma, (size_t)channels, 0.0, 0.0);
    free(dgamma2);
    free(dbeta2);
    free(c.in), free(c.gamma), free(c.beta), free(c.running), free(c.saved), free(c.out), free(c.r),
        free(c.running_copy);
    free(ref), free(ref_running), free(dx), free(dgamma), free(dbeta), free(num);
}

/* ---------- ReLU ---------- */

static void test_relu(hd_backend *be) {
    const size_t count = 257;
    float *in = random_tensor(count, 0.05f, 1.0f), *out = malloc(count * sizeof(float));
    float *dout = random_tensor(count, -1.0f, 1.0f), *din = malloc(count * sizeof(float));
    float *want = malloc(count * sizeof(float)), *want_din = malloc(count * sizeof(float));
    for (size_t i = 0; i < count; i++)
        if (i % 3 == 0)
            in[i] = -in[i]; /* a third negative, all at least 0.05 from the kink */
    for (size_t i = 0; i < count; i++) {
        want[i] = in[i] > 0 ? in[i] : 0.0f;
        want_din[i] = in[i] > 0 ? dout[i] : 0.0f; /* d max(x, 0) / dx, away from 0 */
    }
    be->ops->relu_forward(be, count, in, out);
    check_tensor("relu forward", out, want, count, 0.0, 0.0);
    be->ops->relu_backward(be, count, out, dout, din);
    check_tensor("relu backward", din, want_din, count, 0.0, 0.0);
    free(in), free(out), free(dout), free(din), free(want), free(want_din);
}

/* ---------- the model: init, running statistics, eval, frozen, state round trip ---------- */

static void test_model(hd_backend *be) {
    hd_model model;
    /* 2 images of 1x2x2: bn over 1 channel of 4 values each, then a flat bn over 4 features. */
    CHECK(hd_model_create(&model, be, "bn,flatten,dense:4,bn,relu,dense:3", 1, 2, 2, 2) == 0, "create: %s",
          hd_last_error());
    CHECK(model.state_count == 2 * 1 + 2 * 4, "state: %zu values", model.state_count);
    CHECK(strcmp(model.layers[0].name, "bn1") == 0 && strcmp(model.layers[3].name, "bn2") == 0 &&
              strcmp(model.layers[4].name, "relu1") == 0,
          "names %s %s %s", model.layers[0].name, model.layers[3].name, model.layers[4].name);
    CHECK(model.layers[0].weight_count == 1 && model.layers[0].bias_count == 1 &&
              model.layers[3].weight_count == 4,
          "bn parameters: gamma and beta per channel");
    CHECK(hd_model_init_weights(&model, 7) == 0, "init");
    const hd_layer *bn1 = &model.layers[0];
    CHECK(model.params[bn1->weight_offset] == 1.0f && model.params[bn1->bias_offset] == 0.0f,
          "gamma 1, beta 0");
    float state[10];
    hd_model_get_state(&model, state);
    const float want_init[10] = {0, 1, 0, 0, 0, 0, 1, 1, 1, 1};
    check_tensor("init state: running mean 0, var 1", state, want_init, 10, 0.0, 0.0);

    const float images[8] = {1, 2, 3, 4, 5, 6, 7, 8}; /* bn1 sees mean 4.5, biased var 5.25, unbiased 6 */
    memcpy(model.input, images, sizeof images);
    hd_model_set_step(&model, 0, 0.0f, 0.0f);
    hd_model_forward(&model, 2, 1, 1);
    hd_model_get_state(&model, state);
    CHECK(fabsf(state[0] - 0.45f) < 1e-6f && fabsf(state[1] - (0.9f + 0.6f)) < 1e-6f,
          "bn1 running mean %g (want 0.45), var %g (want 1.5)", (double)state[0], (double)state[1]);
    /* bn1's output in training: (x - 4.5) / sqrt(5.25 + eps). */
    CHECK(fabsf(bn1->out[0] - (-3.5f / sqrtf(5.25f + 1e-5f))) < 1e-6f, "bn1 training out %g",
          (double)bn1->out[0]);

    /* Evaluation: running statistics (0.45, 1.5), no update. */
    hd_model_forward(&model, 2, 0, 1);
    float after_eval[10];
    hd_model_get_state(&model, after_eval);
    check_tensor("eval leaves the state", after_eval, state, 10, 0.0, 0.0);
    CHECK(fabsf(bn1->out[0] - (1.0f - 0.45f) / sqrtf(1.5f + 1e-5f)) < 1e-6f,
          "bn1 eval out %g (running stats)", (double)bn1->out[0]);

    /* A frozen layer in training: running statistics, left as they are. */
    model.layers[0].frozen = 1;
    hd_model_forward(&model, 2, 1, 1);
    hd_model_get_state(&model, after_eval);
    CHECK(after_eval[0] == state[0] && after_eval[1] == state[1], "frozen bn1 keeps its running stats");
    CHECK(after_eval[2] != state[2], "bn2 (not frozen) still updates");
    CHECK(fabsf(bn1->out[0] - (1.0f - 0.45f) / sqrtf(1.5f + 1e-5f)) < 1e-6f,
          "frozen bn1 out %g (running stats)", (double)bn1->out[0]);

    /* set_state round trip. */
    const float mine[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    hd_model_set_state(&model, mine);
    hd_model_get_state(&model, state);
    check_tensor("set_state / get_state", state, mine, 10, 0.0, 0.0);
    hd_model_destroy(&model);
}

int main(void) {
    rng = test_fresh_seed();
    hd_cpu_options options = {2};
    hd_backend *be = hd_cpu_backend_create(&options);
    CHECK(be != NULL, "cpu backend");
    if (!be)
        return test_finish();
    test_hand_computed(be);
    test_batchnorm(be, 4, 3, 16, 1, "after a conv (4 images, 3 channels of 4x4), batch stats");
    test_batchnorm(be, 6, 5, 1, 1, "after a dense layer (6 x 5 features), batch stats");
    test_batchnorm(be, 3, 2, 9, 0, "frozen / running stats (3 images, 2 channels of 3x3)");
    /* The backward takes channels 256 at a time (cpu_batchnorm.c's BN_BLOCK): a second, partial block. */
    test_batchnorm(be, 3, 300, 2, 1, "two channel blocks (3 images, 300 channels of 1x2), batch stats");
    test_batchnorm(be, 2, 257, 3, 0, "two channel blocks (2 images, 257 channels of 1x3), running stats");
    test_relu(be);
    test_model(be);
    hd_backend_destroy(be);
    return test_finish();
}
