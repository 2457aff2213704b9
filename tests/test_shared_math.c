/* test_shared_math.c: the per-element math both backends share (shared_math.h). */
#include "check.h"
#include "hd/shared_math.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Known-answer vectors for Philox4x32-10 from the Random123 distribution (kat_vectors). */
static void test_philox_known_answers(void) {
    hd_philox_out a = hd_philox4x32(0, 0, 0, 0, 0, 0);
    CHECK(a.v[0] == 0x6627e8d5u && a.v[1] == 0xe169c58du && a.v[2] == 0xbc57ac4cu && a.v[3] == 0x9b00dbd8u,
          "philox(0;0) = %08x %08x %08x %08x", a.v[0], a.v[1], a.v[2], a.v[3]);
    hd_philox_out b =
        hd_philox4x32(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu);
    CHECK(b.v[0] == 0x408f276du && b.v[1] == 0x41c83b0eu && b.v[2] == 0xa20bc7c6u && b.v[3] == 0x6d5451fdu,
          "philox(ones;ones) = %08x %08x %08x %08x", b.v[0], b.v[1], b.v[2], b.v[3]);
    hd_philox_out c =
        hd_philox4x32(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u);
    CHECK(c.v[0] == 0xd16cfe09u && c.v[1] == 0x94fdccebu && c.v[2] == 0x5001e420u && c.v[3] == 0x24126ea1u,
          "philox(pi;pi) = %08x %08x %08x %08x", c.v[0], c.v[1], c.v[2], c.v[3]);
}

static void test_uniform_and_dropout_statistics(void) {
    const int n = 200000;
    double sum = 0.0;
    int kept = 0, bad_range = 0;
    for (int i = 0; i < n; i++) {
        float u = hd_random_unit(1234, HD_RNG_STREAM_AUGMENT, 7, (uint64_t)i);
        bad_range += !(u >= 0.0f && u < 1.0f);
        sum += u;
        float m = hd_dropout_multiplier(99, 3, 11, (uint64_t)i, 0.5f);
        bad_range += !(m == 0.0f || m == 2.0f);
        kept += m != 0.0f;
    }
    CHECK(bad_range == 0, "%d draws out of range", bad_range);
    /* mean of n uniforms: sd = sqrt(1/12/n) ~ 6.5e-4; 5 sd */
    CHECK(fabs(sum / n - 0.5) < 3.3e-3, "uniform mean %.5f", sum / n);
    /* kept fraction: sd = sqrt(0.25/n) ~ 1.1e-3; 5 sd */
    CHECK(fabs((double)kept / n - 0.5) < 5.6e-3, "kept fraction %.5f", (double)kept / n);
    CHECK(hd_dropout_multiplier(99, 3, 11, 5, 0.0f) == 1.0f, "rate 0 keeps everything unscaled");
    /* Different steps, layers and seeds give different masks. */
    int same_step = 0, same_layer = 0, same_seed = 0;
    for (int i = 0; i < 1000; i++) {
        float base = hd_dropout_multiplier(99, 3, 11, (uint64_t)i, 0.5f);
        same_step += base == hd_dropout_multiplier(99, 3, 12, (uint64_t)i, 0.5f);
        same_layer += base == hd_dropout_multiplier(99, 4, 11, (uint64_t)i, 0.5f);
        same_seed += base == hd_dropout_multiplier(100, 3, 11, (uint64_t)i, 0.5f);
    }
    CHECK(same_step > 400 && same_step < 600, "step changes the mask (%d/1000 equal)", same_step);
    CHECK(same_layer > 400 && same_layer < 600, "layer changes the mask (%d/1000 equal)", same_layer);
    CHECK(same_seed > 400 && same_seed < 600, "seed changes the mask (%d/1000 equal)", same_seed);
    /* Four neighbouring elements share a Philox counter (one word each): their units are as independent as
     * any two. Element i against i + 1, i + 2 and i + 3 (same quad or the next), at rate 0.5: about half
     * equal; and all four of a quad kept or all dropped in about 1/8 of the quads. */
    int same_next[3] = {0, 0, 0}, uniform_quads = 0;
    for (int i = 0; i < 4000; i++)
        for (int d = 1; d <= 3; d++)
            same_next[d - 1] += hd_dropout_multiplier(99, 3, 11, (uint64_t)i, 0.5f) ==
                                hd_dropout_multiplier(99, 3, 11, (uint64_t)i + (uint64_t)d, 0.5f);
    for (int q = 0; q < 4000; q++) {
        int kept_in_quad = 0;
        for (int k = 0; k < 4; k++)
            kept_in_quad += hd_dropout_multiplier(99, 3, 11, 4 * (uint64_t)q + (uint64_t)k, 0.5f) != 0.0f;
        uniform_quads += kept_in_quad == 0 || kept_in_quad == 4;
    }
    for (int d = 0; d < 3; d++) /* sd = sqrt(4000 / 4) ~ 32: 5 sd */
        CHECK(same_next[d] > 1840 && same_next[d] < 2160, "element i and i + %d equal in %d of 4000", d + 1,
              same_next[d]);
    /* 4000 quads, p = 1/8: sd ~ 21; 5 sd */
    CHECK(uniform_quads > 395 && uniform_quads < 605, "quads all kept or all dropped: %d of 4000",
          uniform_quads);
}

static void test_softmax_xent_row(void) {
    const float logits[4] = {1.0f, 2.0f, 0.5f, -1.0f};
    float grad[4];
    int correct = -1;
    float loss = hd_softmax_xent_row(logits, 4, 1, 0.0f, grad, 0.5f, &correct);
    double z = exp(1.0) + exp(2.0) + exp(0.5) + exp(-1.0);
    CHECK(fabs(loss - (log(z) - 2.0)) < 1e-6, "loss %.8f vs %.8f", loss, log(z) - 2.0);
    CHECK(correct == 1, "arg-max 1 is the label");
    for (int c = 0; c < 4; c++) {
        double expected = 0.5 * (exp((double)logits[c]) / z - (c == 1));
        CHECK(fabs(grad[c] - expected) < 1e-7, "grad[%d] %.8f vs %.8f", c, grad[c], expected);
    }
    /* Very large logits: no NaN or inf anywhere. */
    const float huge[3] = {1e30f, -1e30f, 3e29f};
    float ghuge[3];
    float lhuge = hd_softmax_xent_row(huge, 3, 1, 0.0f, ghuge, 1.0f, &correct);
    CHECK(isfinite(lhuge) && lhuge > 1e29f, "huge-logit loss finite and large: %g", lhuge);
    CHECK(isfinite(ghuge[0]) && isfinite(ghuge[1]) && isfinite(ghuge[2]), "huge-logit gradient finite");
    CHECK(fabsf(ghuge[0] - 1.0f) < 1e-6 && fabsf(ghuge[1] + 1.0f) < 1e-6,
          "huge-logit gradient is p - onehot");
    CHECK(correct == 0, "huge-logit arg-max");
    /* Ties: the first maximum wins, as on the GPU. */
    const float tie[3] = {2.0f, 2.0f, 1.0f};
    hd_softmax_xent_row(tie, 3, 1, 0.0f, NULL, 1.0f, &correct);
    CHECK(correct == 0, "first maximum wins on ties");
}

/* hd_softmax_xent_row as it was before label smoothing, word for word: smoothing 0 must give its bits. */
static float xent_row_before_smoothing(const float *logits, int classes, int label, float *grad_row,
                                       float grad_scale, int *correct) {
    float max_logit = logits[0];
    int arg_max = 0;
    for (int c = 1; c < classes; c++) {
        if (logits[c] > max_logit) {
            max_logit = logits[c];
            arg_max = c;
        }
    }
    float sum = 0.0f;
    for (int c = 0; c < classes; c++)
        sum += expf(logits[c] - max_logit);
    float log_sum = logf(fmaxf(sum, 1.0f));
    if (grad_row) {
        float inv_sum = 1.0f / sum;
        for (int c = 0; c < classes; c++) {
            float p = expf(logits[c] - max_logit) * inv_sum;
            grad_row[c] = (p - (c == label ? 1.0f : 0.0f)) * grad_scale;
        }
    }
    *correct = (arg_max == label);
    return log_sum - (logits[label] - max_logit);
}

/* Label smoothing E: the target (1 - E) one_hot + E / classes (PyTorch's CrossEntropyLoss(label_smoothing)).
 * Hand-worked rows, then E = 0 bit for bit as before. */
static void test_label_smoothing(void) {
    int correct = -1;
    float grad[2];
    /* Two equal logits: p = (0.5, 0.5), E 0.2: target (0.9, 0.1); loss = -log 0.5 = ln 2 whatever the
     * target; gradient p - target = (-0.4, 0.4). */
    const float even[2] = {0.0f, 0.0f};
    float loss = hd_softmax_xent_row(even, 2, 0, 0.2f, grad, 1.0f, &correct);
    CHECK(fabs(loss - 0.69314718) < 1e-6 && fabs(grad[0] + 0.4) < 1e-6 && fabs(grad[1] - 0.4) < 1e-6,
          "even row: loss %.8f (want ln 2), grad %.8f %.8f (want -0.4 0.4)", loss, grad[0], grad[1]);
    /* Logits (ln 3, 0): p = (0.75, 0.25); E 0.2, label 0: loss = -(0.9 ln 0.75 + 0.1 ln 0.25) = 0.39754330,
     * gradient (-0.15, 0.15), scaled by 0.5. */
    const float skew[2] = {1.09861229f, 0.0f};
    loss = hd_softmax_xent_row(skew, 2, 0, 0.2f, grad, 0.5f, &correct);
    CHECK(fabs(loss - 0.39754330) < 1e-6 && fabs(grad[0] + 0.075) < 1e-6 && fabs(grad[1] - 0.075) < 1e-6,
          "skewed row: loss %.8f (want 0.39754330), grad %.8f %.8f (want -0.075 0.075)", loss, grad[0],
          grad[1]);
    CHECK(correct == 1, "smoothing leaves the arg-max test alone");
    /* Label 1 of the same row, E 0.5: target (0.25, 0.75): loss = -(0.25 ln 0.75 + 0.75 ln 0.25)
     * = 1.11164129. */
    loss = hd_softmax_xent_row(skew, 2, 1, 0.5f, grad, 1.0f, &correct);
    CHECK(fabs(loss - 1.11164129) < 1e-6 && fabs(grad[0] - 0.5) < 1e-6 && fabs(grad[1] + 0.5) < 1e-6,
          "label 1, E 0.5: loss %.8f (want 1.11164129), grad %.8f %.8f (want 0.5 -0.5)", loss, grad[0],
          grad[1]);
    /* E = 0: the same bits as the function before smoothing, loss and gradient, over random rows. */
    uint64_t rng = 12345;
    size_t differ = 0;
    for (int row = 0; row < 2000; row++) {
        float logits[10], g_new[10], g_old[10];
        int c_new, c_old;
        test_fill_uniform(logits, 10, -8.0f, 8.0f, &rng);
        int label = (int)(test_rand_u64(&rng) % 10);
        float l_new = hd_softmax_xent_row(logits, 10, label, 0.0f, g_new, 1.0f / 128.0f, &c_new);
        float l_old = xent_row_before_smoothing(logits, 10, label, g_old, 1.0f / 128.0f, &c_old);
        differ += memcmp(&l_new, &l_old, sizeof l_new) != 0 || memcmp(g_new, g_old, sizeof g_new) != 0 ||
                  c_new != c_old;
    }
    CHECK(differ == 0, "smoothing 0: %zu of 2000 rows differ from the function before smoothing", differ);
}

static void test_adam_matches_formula(void) {
    float p = 0.3f, m = 0.0f, v = 0.0f;
    double pd = 0.3, md = 0.0, vd = 0.0;
    const double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-7;
    for (int t = 1; t <= 50; t++) {
        double g = sin(t * 0.7) * 0.1;
        double step = lr * sqrt(1 - pow(b2, t)) / (1 - pow(b1, t));
        hd_adam_update(&p, &m, &v, (float)g, (float)b1, (float)b2, (float)eps, (float)step);
        md = b1 * md + (1 - b1) * g;
        vd = b2 * vd + (1 - b2) * g * g;
        pd -= step * md / (sqrt(vd) + eps);
    }
    CHECK(fabs(p - pd) < 1e-6, "adam after 50 steps: %.9f vs %.9f", p, pd);
    float q = 1.0f, vel = 0.0f;
    hd_sgd_update(&q, &vel, 2.0f, 0.1f, 0.9f, 0);
    hd_sgd_update(&q, &vel, 2.0f, 0.1f, 0.9f, 0);
    /* v1 = -0.2, p1 = 0.8; v2 = -0.18 - 0.2 = -0.38, p2 = 0.42 */
    CHECK(fabsf(q - 0.42f) < 1e-6 && fabsf(vel + 0.38f) < 1e-6, "sgd momentum: p %.6f v %.6f", q, vel);
}

/* The weight average's step: against the closed form of a constant weight (an average of a constant input
 * converges to it as 1 - (1 - w)^t), the copy of w = 1 from zero exact, w = 0 a no-op. */
static void test_ema_update(void) {
    float avg = 0.0f, x = 0.7310586f;
    CHECK(hd_ema_update(0.0f, x, 1.0f) == x && hd_ema_update(-2.5f, x, 0.0f) == -2.5f,
          "ema: w = 1 from 0 copies, w = 0 keeps");
    for (int t = 1; t <= 200; t++)
        avg = hd_ema_update(avg, 2.0f, 0.01f);
    double want = 2.0 * (1.0 - pow(0.99, 200)); /* 1.7320... */
    CHECK(fabs(avg - want) < 1e-5, "ema of a constant 2 after 200 steps of w 0.01: %.7f, closed form %.7f",
          (double)avg, want);
}

int main(void) {
    test_philox_known_answers();
    test_uniform_and_dropout_statistics();
    test_softmax_xent_row();
    test_label_smoothing();
    test_adam_matches_formula();
    test_ema_update();
    return test_finish();
}
