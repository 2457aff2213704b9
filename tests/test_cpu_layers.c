/* test_cpu_layers.c: every CPU layer against a direct (loop-by-loop) reference for the
 * forward pass, and against central finite differences for the backward pass.
 *
 * Gradient checks: L = sum(out * r) for a random r, so dL/dout = r. Each input and
 * parameter element x is nudged by +-eps and (L+ - L-)/(2 eps) is compared with the
 * backward pass. Tolerance: float32 forward sums of ~100 terms carry ~1e-6 relative error,
 * which the 2*eps division (eps = 1e-2) turns into ~1e-4 of the gradient's scale, so we
 * allow atol 2e-3 + rtol 1e-2. ReLU is tested on inputs kept away from its kink and
 * pooling on distinct values separated by more than eps, so no nudge crosses a kink. */
#include "check.h"
#include "tolerances.h"
#include "hd/backend.h"
#include "hd/common.h"
#include "hd/shared_math.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng;

static float *random_tensor(size_t n, float lo, float hi) {
    float *x = malloc(n * sizeof(float));
    test_fill_uniform(x, n, lo, hi, &rng);
    return x;
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * (double)b[i];
    return s;
}

/* ---------- convolution ---------- */

static void conv_reference(const hd_conv_shape *s, int n, const float *in, const float *w, const float *b,
                           float *out) {
    for (int img = 0; img < n; img++)
        for (int oc = 0; oc < s->out_c; oc++)
            for (int oy = 0; oy < s->out_h; oy++)
                for (int ox = 0; ox < s->out_w; ox++) {
                    double acc = b[oc];
                    for (int c = 0; c < s->in_c; c++)
                        for (int ky = 0; ky < s->kernel; ky++)
                            for (int kx = 0; kx < s->kernel; kx++) {
                                int iy = oy * s->stride + ky - s->pad, ix = ox * s->stride + kx - s->pad;
                                if (iy < 0 || iy >= s->in_h || ix < 0 || ix >= s->in_w)
                                    continue;
                                acc += (double)in[((img * s->in_c + c) * s->in_h + iy) * s->in_w + ix] *
                                       w[((oc * s->in_c + c) * s->kernel + ky) * s->kernel + kx];
                            }
                    if (s->act == HD_ACT_RELU && acc < 0)
                        acc = 0;
                    out[((img * s->out_c + oc) * s->out_h + oy) * s->out_w + ox] = (float)acc;
                }
}

static double conv_loss(hd_backend *be, void *plan, int n, const float *in, const float *w, const float *b,
                        float *out, const float *r, size_t out_n) {
    be->ops->conv2d_forward(be, plan, n, in, w, b, out);
    return dot(out, r, out_n);
}

static void numeric_grad(float *x, size_t count, float *grad, double (*loss)(void *), void *ctx) {
    for (size_t i = 0; i < count; i++) {
        float saved = x[i];
        x[i] = saved + GRAD_EPS;
        double plus = loss(ctx);
        x[i] = saved - GRAD_EPS;
        double minus = loss(ctx);
        x[i] = saved;
        grad[i] = (float)((plus - minus) / (2.0 * GRAD_EPS));
    }
}

typedef struct {
    hd_backend *be;
    void *plan;
    int n;
    float *in, *w, *b, *out, *r;
    size_t out_n;
} conv_ctx;

static double conv_ctx_loss(void *p) {
    conv_ctx *c = p;
    return conv_loss(c->be, c->plan, c->n, c->in, c->w, c->b, c->out, c->r, c->out_n);
}

/* An h x w input; din is poisoned with NaN first: every op writes it in full, with `=`. */
static void test_conv_hw(hd_backend *be, int n, int in_c, int h, int w_, int out_c, int k, int stride,
                         int pad, hd_activation act) {
    int out_h = (h + 2 * pad - k) / stride + 1, out_w = (w_ + 2 * pad - k) / stride + 1;
    hd_conv_shape s = {n + 1, in_c, h, w_, out_c, k, pad, out_h, out_w, act, stride};
    size_t in_n = (size_t)n * in_c * h * w_, w_n = (size_t)out_c * in_c * k * k;
    size_t out_n = (size_t)n * out_c * s.out_h * s.out_w;
    float *in = random_tensor(in_n, -1, 1), *w = random_tensor(w_n, -0.5f, 0.5f),
          *b = random_tensor(out_c, -0.1f, 0.1f);
    float *out = calloc(out_n, 4), *ref = calloc(out_n, 4), *r = random_tensor(out_n, -1, 1);
    void *plan = be->ops->conv2d_plan(be, &s);
    CHECK(plan != NULL, "conv plan");
    be->ops->conv2d_forward(be, plan, n, in, w, b, out);
    conv_reference(&s, n, in, w, b, ref);
    char name[96];
    snprintf(name, sizeof name, "conv fwd %dx%d c%d->%d k%d s%d p%d %s", h, w_, in_c, out_c, k, stride, pad,
             act == HD_ACT_RELU ? "relu" : "");
    check_tensor(name, out, ref, out_n, 1e-5, 1e-5);

    float *dout = malloc(out_n * 4), *din = malloc(in_n * 4), *dw = calloc(w_n, 4), *db = calloc(out_c, 4);
    for (size_t i = 0; i < in_n; i++)
        din[i] = NAN;
    memcpy(dout, r, out_n * 4);
    be->ops->conv2d_backward(be, plan, n, in, w, out, dout, din, dw, db);

    /* Without an input gradient (a first layer) the weight and bias gradients are the same. */
    float *dw_first = calloc(w_n, 4), *db_first = calloc(out_c, 4);
    memcpy(dout, r, out_n * 4);
    be->ops->conv2d_backward(be, plan, n, in, w, out, dout, NULL, dw_first, db_first);
    snprintf(name, sizeof name, "conv dweight without din %dx%d c%d->%d k%d s%d p%d", h, w_, in_c, out_c, k,
             stride, pad);
    check_tensor(name, dw_first, dw, w_n, 0, 0);
    snprintf(name, sizeof name, "conv dbias without din %dx%d c%d->%d k%d s%d p%d", h, w_, in_c, out_c, k,
             stride, pad);
    check_tensor(name, db_first, db, out_c, 0, 0);
    free(dw_first), free(db_first);

    if (act == HD_ACT_RELU) {
        /* ReLU's derivative is a mask, not a smooth function: check that the ReLU layer's
         * gradients equal the linear layer's gradients for dout masked by (out > 0), exactly
         * (same code path after the mask). The linear layer is finite-difference checked. */
        hd_conv_shape linear = s;
        linear.act = HD_ACT_NONE;
        void *lplan = be->ops->conv2d_plan(be, &linear);
        float *masked = malloc(out_n * 4), *din2 = calloc(in_n, 4), *dw2 = calloc(w_n, 4),
              *db2 = calloc(out_c, 4);
        size_t active = 0;
        for (size_t i = 0; i < out_n; i++) {
            masked[i] = out[i] > 0 ? r[i] : 0.0f;
            active += out[i] > 0;
        }
        CHECK(active > 0 && active < out_n, "relu test has both active and inactive units (%zu of %zu)",
              active, out_n);
        be->ops->conv2d_backward(be, lplan, n, in, w, out, masked, din2, dw2, db2);
        check_tensor("conv relu din", din, din2, in_n, 0, 0);
        check_tensor("conv relu dweight", dw, dw2, w_n, 0, 0);
        check_tensor("conv relu dbias", db, db2, out_c, 0, 0);
        be->ops->conv2d_plan_free(be, lplan);
        be->ops->conv2d_plan_free(be, plan);
        free(masked), free(din2), free(dw2), free(db2);
        free(in), free(w), free(b), free(out), free(ref), free(r), free(dout), free(din), free(dw), free(db);
        return;
    }
    conv_ctx ctx = {be, plan, n, in, w, b, out, r, out_n};
    float *num = malloc((in_n > w_n ? in_n : w_n) * 4);
    numeric_grad(in, in_n, num, conv_ctx_loss, &ctx);
    snprintf(name, sizeof name, "conv din k%d s%d p%d", k, stride, pad);
    check_tensor(name, din, num, in_n, GRAD_ATOL, GRAD_RTOL);
    numeric_grad(w, w_n, num, conv_ctx_loss, &ctx);
    snprintf(name, sizeof name, "conv dweight k%d s%d p%d", k, stride, pad);
    check_tensor(name, dw, num, w_n, GRAD_ATOL, GRAD_RTOL);
    numeric_grad(b, out_c, num, conv_ctx_loss, &ctx);
    snprintf(name, sizeof name, "conv dbias k%d s%d p%d", k, stride, pad);
    check_tensor(name, db, num, out_c, GRAD_ATOL, GRAD_RTOL);

    be->ops->conv2d_plan_free(be, plan);
    free(in), free(w), free(b), free(out), free(ref), free(r), free(dout), free(din), free(dw), free(db),
        free(num);
}

static void test_conv(hd_backend *be, int n, int in_c, int hw, int out_c, int k, int stride, int pad,
                      hd_activation act) {
    test_conv_hw(be, n, in_c, hw, hw, out_c, k, stride, pad, act);
}

/* ---------- average pooling and global average pooling ---------- */

typedef struct {
    hd_backend *be;
    hd_pool_shape shape;
    int gap, n;
    float *in, *out, *r;
    size_t out_n;
} avgpool_ctx;

static double avgpool_ctx_loss(void *p) {
    avgpool_ctx *c = p;
    if (c->gap)
        c->be->ops->gap_forward(c->be, c->n, c->shape.channels, c->shape.in_h * c->shape.in_w, c->in, c->out);
    else
        c->be->ops->avgpool_forward(c->be, &c->shape, c->n, c->in, c->out);
    return dot(c->out, c->r, c->out_n);
}

/* Forward against the means worked out here; backward against finite differences (linear: exact up to
 * rounding), and din written in full (poisoned first). */
static void check_avgpool(hd_backend *be, hd_pool_shape s, int gap, int n) {
    int window_h = gap ? s.in_h : s.size, window_w = gap ? s.in_w : s.size;
    size_t in_n = (size_t)n * s.channels * s.in_h * s.in_w,
           out_n = (size_t)n * s.channels * s.out_h * s.out_w;
    float *in = random_tensor(in_n, -1, 1), *out = calloc(out_n, 4), *ref = calloc(out_n, 4),
          *r = random_tensor(out_n, -1, 1), *din = malloc(in_n * 4), *num = malloc(in_n * 4);
    avgpool_ctx ctx = {be, s, gap, n, in, out, r, out_n};
    avgpool_ctx_loss(&ctx);
    for (int p = 0; p < n * s.channels; p++)
        for (int oy = 0; oy < s.out_h; oy++)
            for (int ox = 0; ox < s.out_w; ox++) {
                double sum = 0.0;
                for (int dy = 0; dy < window_h; dy++)
                    for (int dx = 0; dx < window_w; dx++)
                        sum += in[((size_t)p * s.in_h + oy * window_h + dy) * s.in_w + ox * window_w + dx];
                ref[((size_t)p * s.out_h + oy) * s.out_w + ox] = (float)(sum / (window_h * window_w));
            }
    char name[96];
    snprintf(name, sizeof name, "%s fwd %dx%dx%d /%d", gap ? "gap" : "avgpool", s.channels, s.in_h, s.in_w,
             s.size);
    check_tensor(name, out, ref, out_n, 1e-6, 1e-5);
    for (size_t i = 0; i < in_n; i++)
        din[i] = NAN;
    if (gap)
        be->ops->gap_backward(be, n, s.channels, s.in_h * s.in_w, r, din);
    else
        be->ops->avgpool_backward(be, &s, n, r, din);
    numeric_grad(in, in_n, num, avgpool_ctx_loss, &ctx);
    snprintf(name, sizeof name, "%s din %dx%dx%d /%d", gap ? "gap" : "avgpool", s.channels, s.in_h, s.in_w,
             s.size);
    check_tensor(name, din, num, in_n, GRAD_ATOL, GRAD_RTOL);
    free(in), free(out), free(ref), free(r), free(din), free(num);
}

static void test_avgpool(hd_backend *be, int n, int ch, int hw, int size) {
    hd_pool_shape s = {n, ch, hw, hw, size, hw / size, hw / size};
    check_avgpool(be, s, 0, n);
}

static void test_gap(hd_backend *be, int n, int ch, int hw) {
    hd_pool_shape s = {n, ch, hw, hw + 2, 0, 1, 1}; /* a plane that is not square */
    check_avgpool(be, s, 1, n);
}

/* ---------- max pooling ---------- */

typedef struct {
    hd_backend *be;
    void *plan;
    int n;
    float *in, *out, *r;
    size_t out_n;
} pool_ctx;

static double pool_ctx_loss(void *p) {
    pool_ctx *c = p;
    c->be->ops->maxpool_forward(c->be, c->plan, c->n, c->in, c->out);
    return dot(c->out, c->r, c->out_n);
}

static void test_pool(hd_backend *be, int n, int ch, int hw, int size) {
    hd_pool_shape s = {n, ch, hw, hw, size, hw / size, hw / size};
    size_t in_n = (size_t)n * ch * hw * hw, out_n = (size_t)n * ch * s.out_h * s.out_w;
    float *in = malloc(in_n * 4), *out = calloc(out_n, 4), *ref = calloc(out_n, 4),
          *r = random_tensor(out_n, -1, 1);
    /* Distinct values 0.05 apart in random order: no ties, no nudge changes an arg-max. */
    for (size_t i = 0; i < in_n; i++)
        in[i] = 0.05f * (float)i;
    for (size_t i = in_n - 1; i > 0; i--) {
        size_t j = test_rand_u64(&rng) % (i + 1);
        float t = in[i];
        in[i] = in[j];
        in[j] = t;
    }
    void *plan = be->ops->maxpool_plan(be, &s);
    be->ops->maxpool_forward(be, plan, n, in, out);
    for (int p = 0; p < n * ch; p++)
        for (int oy = 0; oy < s.out_h; oy++)
            for (int ox = 0; ox < s.out_w; ox++) {
                float m = -INFINITY;
                for (int dy = 0; dy < size; dy++)
                    for (int dx = 0; dx < size; dx++)
                        m = fmaxf(m, in[((size_t)p * hw + oy * size + dy) * hw + ox * size + dx]);
                ref[((size_t)p * s.out_h + oy) * s.out_w + ox] = m;
            }
    check_tensor("maxpool fwd", out, ref, out_n, 0, 0);
    float *din = calloc(in_n, 4), *num = malloc(in_n * 4);
    be->ops->maxpool_backward(be, plan, n, in, out, r, din);
    pool_ctx ctx = {be, plan, n, in, out, r, out_n};
    numeric_grad(in, in_n, num, pool_ctx_loss, &ctx);
    check_tensor("maxpool din", din, num, in_n, GRAD_ATOL, GRAD_RTOL);
    be->ops->maxpool_plan_free(be, plan);
    free(in), free(out), free(ref), free(r), free(din), free(num);
}

/* One window (size x size, one plane) must route its gradient to element `want` and output that
 * element (NaN or not): ties go to the first maximum in row-major order, and a NaN wins only as the
 * window's first element (cpu_pool.c), for the unrolled 2x2 loop and the general one alike. */
static void test_pool_window(hd_backend *be, int size, const float *in, int want) {
    hd_pool_shape ts = {1, 1, size, size, size, 1, 1};
    float out[1], dout[1] = {3}, din[9];
    void *plan = be->ops->maxpool_plan(be, &ts);
    be->ops->maxpool_forward(be, plan, 1, in, out);
    be->ops->maxpool_backward(be, plan, 1, in, out, dout, din);
    int routed = 1;
    for (int i = 0; i < size * size; i++)
        routed = routed && din[i] == (i == want ? 3.0f : 0.0f);
    int same = isnan(in[want]) ? isnan(out[0]) : out[0] == in[want];
    CHECK(routed && same, "maxpool %dx%d window: want element %d (%g), got output %g", size, size, want,
          (double)in[want], (double)out[0]);
    be->ops->maxpool_plan_free(be, plan);
}

/* Whole planes of ties: values drawn from {-0, +0, 1, 2, NaN}, planes of even and odd sides (the 2x2
 * path drops a trailing row and column), several threads' worth of planes. Every output must be the
 * window's first maximum in row-major order (a NaN only as the first element), bit for bit, and the
 * backward must route to it: the rule test_pool_window checks one window at a time. */
static void test_pool_ties(hd_backend *be, int n, int ch, int h, int w) {
    hd_pool_shape s = {n, ch, h, w, 2, h / 2, w / 2};
    size_t plane = (size_t)h * w, out_plane = (size_t)s.out_h * s.out_w;
    size_t in_n = (size_t)n * ch * plane, out_n = (size_t)n * ch * out_plane;
    static const float pick[5] = {-0.0f, 0.0f, 1.0f, 2.0f, NAN};
    float *in = malloc(in_n * 4), *out = malloc(out_n * 4), *dout = malloc(out_n * 4),
          *din = malloc(in_n * 4);
    for (size_t i = 0; i < in_n; i++)
        in[i] = pick[test_rand_u64(&rng) % 5];
    for (size_t i = 0; i < out_n; i++)
        dout[i] = (float)(i + 1);
    void *plan = be->ops->maxpool_plan(be, &s);
    be->ops->maxpool_forward(be, plan, n, in, out);
    be->ops->maxpool_backward(be, plan, n, in, out, dout, din);
    int bad = 0;
    for (size_t p = 0; p < (size_t)n * ch; p++)
        for (int oy = 0; oy < s.out_h; oy++)
            for (int ox = 0; ox < s.out_w; ox++) {
                const float *x = in + p * plane;
                size_t best = (size_t)2 * oy * w + 2 * ox;
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++) {
                        size_t i = (size_t)(2 * oy + dy) * w + 2 * ox + dx;
                        best = x[i] > x[best] ? i : best;
                    }
                size_t o = p * out_plane + (size_t)oy * s.out_w + ox;
                bad += memcmp(&out[o], &x[best], sizeof(float)) != 0;
                bad += din[p * plane + best] != dout[o];
            }
    CHECK(bad == 0, "maxpool 2x2 ties %dx%dx%dx%d: %d outputs or routes differ from the first maximum", n, ch,
          h, w, bad);
    be->ops->maxpool_plan_free(be, plan);
    free(in), free(out), free(dout), free(din);
}

/* ---------- dense ---------- */

typedef struct {
    hd_backend *be;
    int n, in_f, out_f;
    float *in, *w, *b, *out, *r;
    hd_activation act;
} dense_ctx;

static double dense_ctx_loss(void *p) {
    dense_ctx *c = p;
    c->be->ops->dense_forward(c->be, c->n, c->in_f, c->out_f, c->in, c->w, c->b, c->out, c->act);
    return dot(c->out, c->r, (size_t)c->n * c->out_f);
}

static void test_dense(hd_backend *be, int n, int in_f, int out_f, hd_activation act) {
    size_t in_n = (size_t)n * in_f, w_n = (size_t)out_f * in_f, out_n = (size_t)n * out_f;
    float *in = random_tensor(in_n, -1, 1), *w = random_tensor(w_n, -0.5f, 0.5f),
          *b = random_tensor(out_f, -1, 1);
    float *out = calloc(out_n, 4), *ref = calloc(out_n, 4), *r = random_tensor(out_n, -1, 1);
    be->ops->dense_forward(be, n, in_f, out_f, in, w, b, out, act);
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out_f; o++) {
            double acc = b[o];
            for (int k = 0; k < in_f; k++)
                acc += (double)in[(size_t)i * in_f + k] * w[(size_t)o * in_f + k];
            ref[(size_t)i * out_f + o] = (float)(act == HD_ACT_RELU && acc < 0 ? 0 : acc);
        }
    check_tensor(act == HD_ACT_RELU ? "dense fwd relu" : "dense fwd", out, ref, out_n, 1e-5, 1e-5);
    float *dout = malloc(out_n * 4), *din = calloc(in_n, 4), *dw = calloc(w_n, 4), *db = calloc(out_f, 4);
    memcpy(dout, r, out_n * 4);
    be->ops->dense_backward(be, n, in_f, out_f, in, w, out, dout, din, dw, db, act);
    if (act == HD_ACT_RELU) {
        /* As for conv: the ReLU layer equals the linear one with dout masked by (out > 0). */
        float *masked = malloc(out_n * 4), *din2 = calloc(in_n, 4), *dw2 = calloc(w_n, 4),
              *db2 = calloc(out_f, 4);
        for (size_t i = 0; i < out_n; i++)
            masked[i] = out[i] > 0 ? r[i] : 0.0f;
        be->ops->dense_backward(be, n, in_f, out_f, in, w, out, masked, din2, dw2, db2, HD_ACT_NONE);
        check_tensor("dense relu din", din, din2, in_n, 0, 0);
        check_tensor("dense relu dweight", dw, dw2, w_n, 0, 0);
        check_tensor("dense relu dbias", db, db2, out_f, 0, 0);
        free(masked), free(din2), free(dw2), free(db2);
        free(in), free(w), free(b), free(out), free(ref), free(r), free(dout), free(din), free(dw), free(db);
        return;
    }
    dense_ctx ctx = {be, n, in_f, out_f, in, w, b, out, r, act};
    float *num = malloc((in_n > w_n ? in_n : w_n) * 4);
    numeric_grad(in, in_n, num, dense_ctx_loss, &ctx);
    check_tensor("dense din", din, num, in_n, GRAD_ATOL, GRAD_RTOL);
    numeric_grad(w, w_n, num, dense_ctx_loss, &ctx);
    check_tensor("dense dweight", dw, num, w_n, GRAD_ATOL, GRAD_RTOL);
    numeric_grad(b, out_f, num, dense_ctx_loss, &ctx);
    check_tensor("dense dbias", db, num, out_f, GRAD_ATOL, GRAD_RTOL);
    free(in), free(w), free(b), free(out), free(ref), free(r), free(dout), free(din), free(dw), free(db),
        free(num);
}

/* ---------- dropout and softmax cross-entropy ---------- */

static void test_dropout(hd_backend *be) {
    const size_t n = 4096;
    float *in = random_tensor(n, -1, 1), *out = calloc(n, 4), *dout = random_tensor(n, -1, 1),
          *din = calloc(n, 4);
    const hd_step_scalars step5 = {5, 0.0f, 0.0f};
    hd_step_scalars step; /* backend memory: the CPU's is the host's */
    be->ops->set_step_scalars(be, &step, &step5);
    CHECK(step.step == 5, "set_step_scalars wrote step %llu", (unsigned long long)step.step);
    be->ops->dropout_forward(be, n, 0.25f, 7, 2, &step, in, out);
    be->ops->dropout_backward(be, n, 0.25f, 7, 2, &step, dout, din);
    size_t dropped = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        int kept = out[i] != 0.0f;
        dropped += !kept;
        if (kept && fabsf(out[i] - in[i] / 0.75f) > 1e-6f)
            bad++;
        /* The backward mask is the forward mask: d(out)/d(in) is 0 or 1/(1-rate). */
        float expected = kept ? dout[i] / 0.75f : 0.0f;
        if (fabsf(din[i] - expected) > 1e-6f)
            bad++;
    }
    CHECK(bad == 0, "dropout scaling and mask consistency (%zu bad)", bad);
    /* cpu_dropout.c writes hd_dropout_multiplier out for speed: it must stay that function, bit for bit
     * (the GPU kernel calls it), at rate 0.25 and at rate 0 (a copy). */
    size_t unequal = 0;
    for (size_t i = 0; i < n; i++) {
        float want = in[i] * hd_dropout_multiplier(7, 2, 5, i, 0.25f);
        unequal += memcmp(&out[i], &want, sizeof want) != 0;
    }
    be->ops->dropout_forward(be, n, 0.0f, 7, 2, &step, in, out);
    for (size_t i = 0; i < n; i++)
        unequal += memcmp(&out[i], &in[i], sizeof(float)) != 0;
    be->ops->dropout_forward(be, n, 0.25f, 7, 2, &step, in, out);
    CHECK(unequal == 0, "dropout equals in * hd_dropout_multiplier bit for bit (%zu differ)", unequal);
    CHECK(dropped > n * 0.20 && dropped < n * 0.30, "dropout rate 0.25 dropped %zu of %zu", dropped, n);
    /* The mask follows the step: step 6 drops other units than step 5. */
    const hd_step_scalars step6 = {6, 0.0f, 0.0f};
    be->ops->set_step_scalars(be, &step, &step6);
    float *out6 = calloc(n, 4);
    be->ops->dropout_forward(be, n, 0.25f, 7, 2, &step, in, out6);
    size_t differ = 0;
    for (size_t i = 0; i < n; i++)
        differ += (out[i] != 0.0f) != (out6[i] != 0.0f);
    CHECK(differ > n / 4, "dropout masks of steps 5 and 6 differ in %zu of %zu units", differ, n);
    be->ops->dropout_forward(be, n, 0.0f, 7, 2, NULL, in, out);
    check_tensor("dropout rate 0 is identity", out, in, n, 0, 0);
    free(out6);
    free(in), free(out), free(dout), free(din);
}

/* cpu_dropout.c draws one Philox counter per quad of elements, the quads split among the threads and a
 * partial last quad on its own: every count and thread count gives in * hd_dropout_multiplier bit for bit. */
static void test_dropout_counts(void) {
    const int thread_counts[] = {1, 2, 3};
    const size_t counts[] = {1, 2, 3, 5, 7, 8, 17, 1001};
    size_t unequal = 0;
    for (int t = 0; t < 3; t++) {
        hd_cpu_options options = {thread_counts[t]};
        hd_backend *be = hd_cpu_backend_create(&options);
        CHECK(be != NULL, "cpu backend, %d threads", thread_counts[t]);
        if (!be)
            return;
        hd_step_scalars step;
        be->ops->set_step_scalars(be, &step, &(hd_step_scalars){9, 0.0f, 0.0f});
        for (int c = 0; c < 8; c++) {
            size_t n = counts[c];
            float *in = random_tensor(n, 0.5f, 1.0f), *out = calloc(n, 4);
            be->ops->dropout_forward(be, n, 0.5f, 3, 1, &step, in, out);
            for (size_t i = 0; i < n; i++) {
                float want = in[i] * hd_dropout_multiplier(3, 1, 9, i, 0.5f);
                unequal += memcmp(&out[i], &want, sizeof want) != 0;
            }
            free(in), free(out);
        }
        hd_backend_destroy(be);
    }
    CHECK(unequal == 0, "dropout at 1-1001 elements, 1-3 threads, equals hd_dropout_multiplier (%zu differ)",
          unequal);
}

typedef struct {
    hd_backend *be;
    int n, classes;
    float smoothing;
    float *logits;
    int32_t *labels;
    float metrics[2];
} xent_ctx;

static double xent_ctx_loss(void *p) {
    xent_ctx *c = p;
    c->metrics[0] = c->metrics[1] = 0;
    c->be->ops->softmax_xent(c->be, c->n, c->classes, c->logits, c->labels, c->smoothing, NULL, (float)c->n,
                             c->metrics);
    return c->metrics[0] / c->n;
}

/* The loss against (1 - smoothing) one_hot + smoothing / classes, as PyTorch's CrossEntropyLoss
 * (label_smoothing) defines it, worked out here in double; its gradient by finite differences. */
static void test_softmax_xent(hd_backend *be, float smoothing) {
    const int n = 6, classes = 10;
    float *logits = random_tensor((size_t)n * classes, -3, 3), grad[60], num[60];
    int32_t labels[6];
    for (int i = 0; i < n; i++)
        labels[i] = (int32_t)(test_rand_u64(&rng) % classes);
    xent_ctx ctx = {be, n, classes, smoothing, logits, labels, {0, 0}};
    float metrics[2] = {0, 0};
    be->ops->softmax_xent(be, n, classes, logits, labels, smoothing, grad, (float)n, metrics);
    double loss = 0;
    int correct = 0;
    for (int i = 0; i < n; i++) {
        const float *row = logits + i * classes;
        double z = 0, mx = row[0];
        int arg = 0;
        for (int c = 1; c < classes; c++)
            if (row[c] > mx)
                mx = row[c], arg = c;
        for (int c = 0; c < classes; c++)
            z += exp(row[c] - mx);
        for (int c = 0; c < classes; c++) {
            double target = (c == labels[i] ? 1.0 - smoothing : 0.0) + (double)smoothing / classes;
            loss -= target * (row[c] - mx - log(z));
        }
        correct += arg == labels[i];
    }
    CHECK(fabs(metrics[0] - loss) < 1e-4, "xent loss sum %.6f vs %.6f", metrics[0], loss);
    CHECK(metrics[1] == (float)correct, "xent correct %g vs %d", metrics[1], correct);
    numeric_grad(logits, (size_t)n * classes, num, xent_ctx_loss, &ctx);
    char name[64];
    snprintf(name, sizeof name, "softmax_xent smoothing %g dlogits", (double)smoothing);
    check_tensor(name, grad, num, (size_t)n * classes, GRAD_ATOL, GRAD_RTOL);
    free(logits);
}

/* ---------- optimizers: every thread count, the shared per-element math bit for bit ---------- */

/* The CPU ops split the elements into one range per thread and run each range in a multiversioned loop
 * (CPU_SIMD, cpu_backend.h): for any thread count and any count, including ranges left empty, the result
 * must be hd_adam_update / hd_sgd_update / hd_ema_update applied element by element, exactly. */
static int same_bits(float a, float b) {
    return memcmp(&a, &b, sizeof a) == 0;
}

static void test_optimizer_threads(int threads, size_t count) {
    hd_cpu_options options = {threads};
    hd_backend *be = hd_cpu_backend_create(&options);
    CHECK(be != NULL, "cpu backend, %d threads", threads);
    if (!be)
        return;
    size_t n = count ? count : 1;
    float *p = random_tensor(n, -1, 1), *g = random_tensor(n, -1, 1), *m = random_tensor(n, -0.1f, 0.1f),
          *v = random_tensor(n, 0, 0.01f), *vel = random_tensor(n, -0.1f, 0.1f),
          *avg = random_tensor(n, -1, 1);
    float *p2 = malloc(n * 4), *m2 = malloc(n * 4), *v2 = malloc(n * 4), *vel2 = malloc(n * 4),
          *p3 = malloc(n * 4), *avg2 = malloc(n * 4);
    memcpy(p2, p, n * 4), memcpy(m2, m, n * 4), memcpy(v2, v, n * 4), memcpy(vel2, vel, n * 4);
    memcpy(p3, p, n * 4), memcpy(avg2, avg, n * 4);
    hd_step_scalars step = {7, 1e-3f, 0.25f};
    be->ops->adam_step(be, count, p, g, m, v, 0.9f, 0.999f, 1e-7f, &step);
    be->ops->sgd_step(be, count, p3, g, vel, 0.9f, 1, &step);
    be->ops->ema_update(be, count, avg, p2, &step);
    size_t wrong = 0;
    for (size_t i = 0; i < count; i++) {
        float want_avg = hd_ema_update(avg2[i], p2[i], step.average_weight); /* p2: the params before */
        float sgd_p = p2[i];
        hd_sgd_update(&sgd_p, &vel2[i], g[i], step.step_size, 0.9f, 1);
        hd_adam_update(&p2[i], &m2[i], &v2[i], g[i], 0.9f, 0.999f, 1e-7f, step.step_size);
        wrong += !same_bits(p[i], p2[i]) || !same_bits(m[i], m2[i]) || !same_bits(v[i], v2[i]) ||
                 !same_bits(p3[i], sgd_p) || !same_bits(vel[i], vel2[i]) || !same_bits(avg[i], want_avg);
    }
    CHECK(wrong == 0, "adam, sgd and ema ops at %d threads over %zu floats: %zu differ from the shared math",
          threads, count, wrong);
    free(p), free(g), free(m), free(v), free(vel), free(avg), free(p2), free(m2), free(v2), free(vel2),
        free(p3), free(avg2);
    hd_backend_destroy(be);
}

/* ---------- the fused conv + max pooling op: the two ops' results, bit for bit ---------- */

/* conv2d_maxpool_forward / _backward (what the model runs for conv then maxpool on the CPU) against
 * conv2d_forward, maxpool_forward, maxpool_backward, conv2d_backward: pooled output, din, dweight and
 * dbias must be equal bit for bit, for any thread count. `quantised` draws inputs and weights from a few
 * exact values, so that windows hold ties (the first maximum must win in both) and ReLU zeros; dpool holds
 * some -0 and 0. */
/* x rounded towards zero to multiples of step: a few exact values. */
static void quantise(float *x, size_t count, float step) {
    for (size_t i = 0; i < count; i++)
        x[i] = (float)(int)(x[i] / step) * step;
}

/* Windows of `planes` conv output planes (conv_hw square) whose maximum (pooled) is held twice or more. */
static size_t count_tied_windows(const float *conv_out, const float *pooled, int planes, int conv_hw,
                                 int pool_hw, int size) {
    size_t tied = 0;
    for (int p = 0; p < planes; p++)
        for (int o = 0; o < pool_hw * pool_hw; o++) {
            int held = 0;
            for (int d = 0; d < size * size; d++)
                held +=
                    conv_out[((size_t)p * conv_hw + (o / pool_hw) * size + d / size) * conv_hw +
                             (o % pool_hw) * size + d % size] == pooled[(size_t)p * pool_hw * pool_hw + o];
            tied += held > 1;
        }
    return tied;
}

static void test_conv_maxpool_fused(int threads, int n, int in_c, int hw, int out_c, int k, int stride,
                                    int pad, hd_activation act, int size, int quantised) {
    hd_cpu_options options = {threads};
    hd_backend *be = hd_cpu_backend_create(&options);
    CHECK(be != NULL, "cpu backend, %d threads", threads);
    if (!be)
        return;
    int conv_hw = (hw + 2 * pad - k) / stride + 1, pool_hw = conv_hw / size;
    hd_conv_shape cs = {n, in_c, hw, hw, out_c, k, pad, conv_hw, conv_hw, act, stride};
    hd_pool_shape ps = {n, out_c, conv_hw, conv_hw, size, pool_hw, pool_hw};
    size_t in_n = (size_t)n * in_c * hw * hw, w_n = (size_t)out_c * in_c * k * k;
    size_t conv_n = (size_t)n * out_c * conv_hw * conv_hw, pool_n = (size_t)n * out_c * pool_hw * pool_hw;
    float *in = random_tensor(in_n, -1, 1), *w = random_tensor(w_n, -0.5f, 0.5f),
          *b = random_tensor(out_c, -0.2f, 0.1f), *dpool = random_tensor(pool_n, -1, 1);
    if (quantised) {
        quantise(in, in_n, 0.5f);         /* -0.5, 0, 0.5 */
        quantise(w, w_n, 0.25f);          /* -0.25, 0, 0.25 */
        quantise(b, (size_t)out_c, 1.0f); /* 0 */
    }
    for (size_t i = 0; i < pool_n; i += 7)
        dpool[i] = i % 14 ? -0.0f : 0.0f;
    float *conv_out = calloc(conv_n, 4), *dconv = calloc(conv_n, 4);
    float *pooled[2] = {calloc(pool_n, 4), calloc(pool_n, 4)},
          *dpool_copy[2] = {malloc(pool_n * 4), malloc(pool_n * 4)};
    float *din[2] = {calloc(in_n, 4), calloc(in_n, 4)}, *dw[2] = {calloc(w_n, 4), calloc(w_n, 4)},
          *db[2] = {calloc(out_c, 4), calloc(out_c, 4)};
    float *dw_nodin = calloc(w_n, 4), *db_nodin = calloc(out_c, 4);
    void *conv_plan[2] = {be->ops->conv2d_plan(be, &cs), be->ops->conv2d_plan(be, &cs)};
    void *pool_plan[2] = {be->ops->maxpool_plan(be, &ps), be->ops->maxpool_plan(be, &ps)};
    int ok = conv_plan[0] && conv_plan[1] && pool_plan[0] && pool_plan[1];
    CHECK(ok, "plans: %s", hd_last_error());
    if (!ok)
        n = 0; /* nothing to run: straight to the frees */
    memcpy(dpool_copy[0], dpool, pool_n * 4);
    memcpy(dpool_copy[1], dpool, pool_n * 4);

    be->ops->conv2d_forward(be, conv_plan[0], n, in, w, b, conv_out);
    be->ops->maxpool_forward(be, pool_plan[0], n, conv_out, pooled[0]);
    be->ops->maxpool_backward(be, pool_plan[0], n, conv_out, pooled[0], dpool_copy[0], dconv);
    be->ops->conv2d_backward(be, conv_plan[0], n, in, w, conv_out, dconv, din[0], dw[0], db[0]);

    be->ops->conv2d_maxpool_forward(be, conv_plan[1], pool_plan[1], n, in, w, b, pooled[1]);
    be->ops->conv2d_maxpool_backward(be, conv_plan[1], pool_plan[1], n, in, w, pooled[1], dpool_copy[1],
                                     din[1], dw[1], db[1]);
    be->ops->conv2d_maxpool_backward(be, conv_plan[1], pool_plan[1], n, in, w, pooled[1], dpool_copy[1], NULL,
                                     dw_nodin, db_nodin);

    char name[128];
    snprintf(name, sizeof name,
             "fused conv+maxpool, %d threads, n %d, %dx%d c%d->%d k%d s%d p%d%s, pool %d%s", threads, n, hw,
             hw, in_c, out_c, k, stride, pad, act == HD_ACT_RELU ? " relu" : "", size,
             quantised ? ", quantised" : "");
    CHECK(memcmp(pooled[0], pooled[1], pool_n * 4) == 0, "%s: pooled output differs", name);
    CHECK(memcmp(din[0], din[1], in_n * 4) == 0, "%s: din differs", name);
    CHECK(memcmp(dw[0], dw[1], w_n * 4) == 0, "%s: dweight differs", name);
    CHECK(memcmp(db[0], db[1], (size_t)out_c * 4) == 0, "%s: dbias differs", name);
    CHECK(memcmp(dw[0], dw_nodin, w_n * 4) == 0 && memcmp(db[0], db_nodin, (size_t)out_c * 4) == 0,
          "%s: dweight or dbias differs without din", name);
    CHECK(memcmp(dpool, dpool_copy[1], pool_n * 4) == 0, "%s: the fused backward changed dout", name);
    /* Not vacuous: the pass has gradients, and the quantised inputs have tied windows. */
    size_t nonzero = 0;
    for (size_t i = 0; i < w_n; i++)
        nonzero += dw[0][i] != 0.0f;
    CHECK(nonzero > 0, "%s: dweight all zero", name);
    if (quantised)
        CHECK(count_tied_windows(conv_out, pooled[0], n * out_c, conv_hw, pool_hw, size) > 0,
              "%s: no tied window", name);

    for (int i = 0; i < 2; i++) {
        be->ops->conv2d_plan_free(be, conv_plan[i]);
        be->ops->maxpool_plan_free(be, pool_plan[i]);
        free(pooled[i]), free(dpool_copy[i]), free(din[i]), free(dw[i]), free(db[i]);
    }
    free(in), free(w), free(b), free(dpool), free(conv_out), free(dconv), free(dw_nodin), free(db_nodin);
    hd_backend_destroy(be);
}

int main(void) {
    rng = test_fresh_seed();
    hd_cpu_options options = {2};
    hd_backend *be = hd_cpu_backend_create(&options);
    CHECK(be != NULL, "cpu backend");
    if (!be)
        return test_finish();
    test_conv(be, 3, 1, 8, 4, 3, 1, 0, HD_ACT_NONE);
    test_conv(be, 2, 3, 7, 5, 3, 1, 1, HD_ACT_NONE);
    test_conv(be, 3, 2, 6, 4, 3, 1, 0, HD_ACT_RELU);
    test_conv(be, 1, 2, 5, 3, 5, 1, 0, HD_ACT_NONE); /* batch of 1, kernel as large as the input */
    test_conv(be, 2, 2, 8, 3, 5, 2, 2, HD_ACT_NONE); /* 5x5 stride 2 "same" on an even side: 8 -> 4 */
    test_conv(be, 2, 3, 9, 4, 5, 2, 2, HD_ACT_NONE); /* the same on an odd side: 9 -> 5 */
    test_conv(be, 2, 2, 8, 3, 3, 2, 0, HD_ACT_NONE); /* stride 2, no padding: the last row unread */
    test_conv(be, 2, 2, 6, 3, 4, 1, 1, HD_ACT_NONE); /* even kernel, padding 1: 6 -> 5 */
    test_conv(be, 2, 2, 7, 3, 3, 3, 2, HD_ACT_NONE); /* stride 3 over padding 2: 7 -> 3 */
    test_conv(be, 2, 2, 8, 4, 5, 2, 2, HD_ACT_RELU);
    /* cpu_conv.c takes a thread's images in groups of GROUP_WIDTH (512) output pixels: 32 images of these
     * 4x4 outputs (one short group per thread), and 4 of the 11x11 one (2 threads: 11 and 10 images, so
     * groups of 4, 4, 3 and 4, 4, 2: dweight summed over several GEMMs, the scratch reused, a short last
     * group). */
    test_conv(be, 37, 2, 6, 3, 3, 1, 0, HD_ACT_RELU);
    test_conv(be, 21, 2, 7, 3, 5, 2, 2, HD_ACT_NONE);
    test_conv(be, 21, 1, 13, 2, 3, 1, 0, HD_ACT_RELU);
    /* Stride 1, no padding, 8 or more input channels, the kernel small beside the width: the implicit path
     * (a GEMM per tap on the image, rows of the input's width; cpu_conv.c), with a 3x3 and a 5x5 kernel,
     * 3 and 5 images (split 2 / 1 and 3 / 2). The 7x7 one takes the columns (its 2 extra columns a row are
     * more than 5 / 4). */
    test_conv(be, 3, 8, 10, 4, 3, 1, 0, HD_ACT_NONE); /* finite differences (a ReLU case checks against it) */
    test_conv(be, 5, 8, 10, 4, 3, 1, 0, HD_ACT_RELU);
    test_conv(be, 1, 9, 22, 3, 5, 1, 0, HD_ACT_NONE);
    test_conv(be, 3, 8, 7, 4, 3, 1, 0, HD_ACT_RELU);
    test_conv(be, 2, 8, 5, 3, 1, 1, 0, HD_ACT_NONE); /* 1x1 kernel: no extra columns */
    test_conv(be, 2, 8, 1, 3, 1, 1, 0, HD_ACT_NONE); /* a 1x1 image */
    /* The implicit path over phase planes (strided or padded, 8 or more input channels, the planes' rows at
     * most 1/4 longer than the output's): `best`'s 5x5 stride-2 "same" shape on an even and an odd side,
     * a padded stride-1 one, stride 2 unpadded (the last row unread) and stride 3 over padding 2. */
    test_conv(be, 2, 8, 16, 4, 5, 2, 2, HD_ACT_NONE); /* 16 -> 8, planes 10 wide */
    test_conv(be, 3, 9, 17, 3, 5, 2, 2, HD_ACT_NONE); /* 17 -> 9, planes 11 wide; 3 images: 2 / 1 */
    test_conv(be, 3, 8, 16, 4, 5, 2, 2, HD_ACT_RELU);
    test_conv(be, 2, 8, 10, 3, 3, 1, 1, HD_ACT_NONE); /* "same", stride 1: 10 -> 10, planes 12 wide */
    test_conv(be, 2, 8, 18, 3, 3, 2, 0, HD_ACT_NONE); /* 18 -> 8, planes 9 wide */
    test_conv(be, 2, 8, 13, 3, 3, 3, 2, HD_ACT_NONE); /* 13 -> 5, planes 6 wide */
    test_conv(be, 2, 8, 10, 3, 1, 2, 0, HD_ACT_NONE); /* a kernel smaller than the stride: 10 -> 5 */
    test_conv(be, 2, 8, 20, 3, 5, 2, 3, HD_ACT_NONE); /* padding past the stride: 20 -> 11, planes 13 wide */
    test_conv_hw(be, 2, 8, 9, 16, 3, 5, 2, 2, HD_ACT_NONE); /* 9x16 -> 5x8: planes 7 tall, 10 wide */
    test_conv_hw(be, 2, 8, 7, 12, 3, 3, 1, 0, HD_ACT_NONE); /* stride 1: 7x12 -> 5x10 on the image */
    test_avgpool(be, 3, 2, 8, 2);
    test_avgpool(be, 2, 3, 7, 3); /* 7 / 3: the last row and column in no window */
    test_gap(be, 3, 4, 5);
    test_gap(be, 2, 3, 1);
    test_pool(be, 3, 2, 8, 2);
    test_pool(be, 2, 3, 7, 2);  /* odd size: the last row and column are dropped */
    test_pool(be, 2, 2, 10, 3); /* the general window (2x2 has its own unrolled loop) */
    test_pool_window(be, 2, (const float[]){1, 1, 1, 1}, 0);
    test_pool_window(be, 2, (const float[]){0, 2, 2, 2}, 1);
    test_pool_window(be, 2, (const float[]){0, 1, 2, 2}, 2);
    test_pool_window(be, 3, (const float[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, 0);
    test_pool_window(be, 3, (const float[]){0, 1, 0, 0, 5, 0, 5, 0, 5}, 4);
    /* NaN: it wins only as the window's first element (the rule cpu_pool.c states), in both loops. */
    test_pool_window(be, 2, (const float[]){NAN, 1, 5, 6}, 0);
    test_pool_window(be, 2, (const float[]){1, NAN, 5, 6}, 3);
    test_pool_window(be, 3, (const float[]){NAN, 1, 2, 3, 9, 4, 5, 6, 7}, 0);
    test_pool_window(be, 3, (const float[]){1, 2, 3, 4, 9, 4, 5, NAN, 7}, 4);
    test_pool_ties(be, 5, 3, 26, 26);
    test_pool_ties(be, 4, 2, 11, 11);
    test_pool_ties(be, 3, 2, 7, 10);
    test_dense(be, 5, 17, 9, HD_ACT_NONE);
    test_dense(be, 3, 12, 8, HD_ACT_RELU);
    test_dense(be, 1, 7, 3, HD_ACT_NONE);
    test_dropout(be);
    test_dropout_counts();
    test_softmax_xent(be, 0.0f);
    test_softmax_xent(be, 0.1f);
    test_softmax_xent(be, 0.6f);
    for (int threads = 1; threads <= 3; threads++) {
        test_conv_maxpool_fused(threads, 5, 1, 28, 8, 3, 1, 0, HD_ACT_RELU, 2,
                                0); /* conv1's shape: 26 -> 13 */
        test_conv_maxpool_fused(threads, 9, 4, 13, 6, 3, 1, 0, HD_ACT_RELU, 2,
                                1); /* 11 -> 5: a row dropped */
        test_conv_maxpool_fused(threads, 21, 2, 6, 3, 3, 1, 0, HD_ACT_RELU, 2, 1); /* groups of 32 images */
        test_conv_maxpool_fused(threads, 4, 3, 12, 5, 5, 1, 0, HD_ACT_NONE, 2, 0);
        test_conv_maxpool_fused(threads, 3, 2, 11, 4, 3, 1, 1, HD_ACT_RELU, 3, 1); /* padded; 3x3 windows */
        test_conv_maxpool_fused(threads, 3, 2, 16, 4, 5, 2, 2, HD_ACT_RELU, 2, 0); /* strided, phased */
        test_conv_maxpool_fused(threads, 5, 8, 12, 5, 3, 1, 0, HD_ACT_RELU, 2, 1); /* the implicit path */
        test_conv_maxpool_fused(threads, 3, 8, 16, 4, 5, 2, 2, HD_ACT_RELU, 2, 1); /* implicit, phased */
        test_conv_maxpool_fused(threads, 3, 9, 10, 4, 2, 1, 0, HD_ACT_NONE, 3, 0);
    }
    const int thread_counts[] = {1, 2, 3, 7};
    const size_t counts[] = {0, 1, 17, 1000};
    for (int t = 0; t < 4; t++)
        for (int c = 0; c < 4; c++)
            test_optimizer_threads(thread_counts[t], counts[c]);
    hd_backend_destroy(be);
    return test_finish();
}
