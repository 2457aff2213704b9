/* cpu_pool.c: max pooling on the CPU, forward and backward side by side.
 * Window and stride `size`, no padding, floor (rows/columns that do not fill a window are
 * dropped, as Keras' "valid" pooling). The forward pass records the arg-max of each
 * window (first maximum in row-major order on ties) in the plan; backward routes each
 * output gradient to that element and writes zeros elsewhere (`=`, not `+=`). */
#include "cpu_backend.h"
#include "hd/common.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    hd_pool_shape shape;
    int threads;
    int32_t *argmax; /* max_batch * C * OH * OW indices into the input plane */
    size_t stride;   /* floats between two threads' scratch (cpu_part_stride of OH * 2 OW) */
    float *vals;     /* 2x2 windows: threads * stride candidates (pool_plane_2x2); NULL for other sizes */
    int32_t *idx;    /* ... and their indices */
} cpu_pool_plan;

void cpu_maxpool_plan_free(hd_backend *be, void *plan_ptr) {
    (void)be;
    cpu_pool_plan *plan = plan_ptr;
    if (plan) {
        free(plan->argmax);
        free(plan->vals);
        free(plan->idx);
        free(plan);
    }
}

void *cpu_maxpool_plan(hd_backend *be, const hd_pool_shape *shape) {
    cpu_pool_plan *plan = hd_calloc(1, sizeof *plan);
    if (!plan)
        return NULL;
    plan->shape = *shape;
    plan->threads = cpu_threads(be);
    plan->argmax =
        hd_malloc(sizeof(int32_t) * (size_t)shape->max_batch * shape->channels * shape->out_h * shape->out_w);
    /* Each thread's scratch on cache lines of its own: two threads writing one line (a pool2 plane's
     * candidates are 200 bytes) made the 2x2 forward 3x slower at 2 threads. */
    int two = shape->size == 2; /* only pool_plane_2x2 takes scratch */
    if (two) {
        plan->stride = cpu_part_stride((size_t)shape->out_h * 2 * shape->out_w);
        plan->vals = cpu_parts_alloc(plan->stride, plan->threads);
        plan->idx = cpu_parts_alloc(plan->stride, plan->threads); /* int32 and float: the same size */
    }
    if (!plan->argmax || (two && (!plan->vals || !plan->idx))) {
        cpu_maxpool_plan_free(be, plan);
        return NULL;
    }
    return plan;
}

/* One plane, any window: the first maximum in row-major order. A NaN wins only as a window's first
 * element (no comparison with it is true); the GPU's cuDNN pooling skips NaNs. NaN activations end
 * training anyway (the loss turns NaN), so the two need not agree there. */
static void pool_plane(const hd_pool_shape *s, const float *x, float *y, int32_t *arg) {
    int size = s->size;
    for (int oy = 0; oy < s->out_h; oy++) {
        for (int ox = 0; ox < s->out_w; ox++) {
            int best = oy * size * s->in_w + ox * size;
            float best_value = x[best];
            for (int dy = 0; dy < size; dy++) {
                for (int dx = 0; dx < size; dx++) {
                    int idx = (oy * size + dy) * s->in_w + ox * size + dx;
                    int better = x[idx] > best_value; /* a select, not a branch */
                    best_value = better ? x[idx] : best_value;
                    best = better ? idx : best;
                }
            }
            y[oy * s->out_w + ox] = best_value;
            arg[oy * s->out_w + ox] = best;
        }
    }
}

/* Pass 1 of pool_plane_2x2 for one row pair: r0 and the row r1 below it (in_w later); `top` is r0's
 * index in the plane. */
static void pool_row_pair(const float *restrict r0, const float *restrict r1, int in_w, int width,
                          int32_t top, float *restrict v, int32_t *restrict k) {
#pragma omp simd
    for (int c = 0; c < width; c++) {
        float upper = r0[c], below = r1[c];
        /* A NaN in the upper row wins only in the window's first column (it is the window's first
         * element); in the second it gives way to the lower row, as the general loop skips it.
         * `|` and `&`, not `||` and `&&`: no branch, so the loop vectorises. */
        int second = c & 1; /* a separate int: GCC 12 does not vectorise the loop with `(c & 1) & ...` */
        int lower = (below > upper) | (second & (upper != upper));
        v[c] = lower ? below : upper;
        k[c] = lower ? top + c + in_w : top + c;
    }
}

/* The usual 2x2 window, in two passes that the compiler vectorises (a loop over one window row of 13
 * or 5 outputs leaves most of a vector idle, and its scalar remainder branches):
 *   1. down each column of a row pair: the larger of the two (the upper one on a tie), its value and its
 *      index in the plane, written for the out_w window columns only (a trailing odd column is dropped),
 *      so that the plane's candidates lie in one run of out_h x 2 out_w;
 *   2. across that run, each window's left and right candidates: the right one wins when it is larger,
 *      or equal and earlier in row-major order (a smaller index: it is in the upper row, the left one in
 *      the lower).
 * The result is the window's first maximum in row-major order, value and index, exactly as the general
 * loop above (a NaN wins only as the window's first element). `vals`/`idx` hold out_h x 2 out_w. */
static void pool_plane_2x2(const hd_pool_shape *s, const float *restrict x, float *restrict y,
                           int32_t *restrict arg, float *restrict vals, int32_t *restrict idx) {
    const int in_w = s->in_w, out_h = s->out_h, width = 2 * s->out_w, count = s->out_h * s->out_w;
    for (int oy = 0; oy < out_h; oy++)
        pool_row_pair(x + (size_t)2 * oy * in_w, x + (size_t)(2 * oy + 1) * in_w, in_w, width, 2 * oy * in_w,
                      vals + (size_t)oy * width, idx + (size_t)oy * width);
#pragma omp simd
    for (int j = 0; j < count; j++) {
        float left = vals[2 * j], right = vals[2 * j + 1];
        int32_t left_i = idx[2 * j], right_i = idx[2 * j + 1];
        int take_right = (right > left) | ((right == left) & (right_i < left_i));
        y[j] = take_right ? right : left;
        arg[j] = take_right ? right_i : left_i;
    }
}

size_t cpu_maxpool_plane_outputs(const void *plan_ptr) {
    const cpu_pool_plan *plan = plan_ptr;
    return (size_t)plan->shape.out_h * plan->shape.out_w;
}

void cpu_maxpool_plane_forward(void *plan_ptr, int thread, int p, const float *x, float *y) {
    cpu_pool_plan *plan = plan_ptr;
    const hd_pool_shape *s = &plan->shape;
    int32_t *arg = plan->argmax + (size_t)p * s->out_h * s->out_w;
    if (plan->vals && plan->idx) { /* a 2x2 plan */
        size_t at = (size_t)thread * plan->stride;
        pool_plane_2x2(s, x, y, arg, plan->vals + at, plan->idx + at);
    } else {
        pool_plane(s, x, y, arg);
    }
}

void cpu_maxpool_forward(hd_backend *be, void *plan_ptr, int n, const float *in, float *out) {
    cpu_pool_plan *plan = plan_ptr;
    const hd_pool_shape *s = &plan->shape;
    int planes = n * s->channels;
    (void)be;
#pragma omp parallel num_threads(plan->threads)
    {
        int t = omp_get_thread_num();
#pragma omp for schedule(static)
        for (int p = 0; p < planes; p++)
            cpu_maxpool_plane_forward(plan, t, p, in + (size_t)p * s->in_h * s->in_w,
                                      out + (size_t)p * s->out_h * s->out_w);
    }
}

/* The fused op's backward for one plane: what maxpool_backward writes into the plane and the
 * convolution's act'(out) mask then makes of it, without either pass over the full-size plane in memory.
 * Only the window maxima get a gradient, and out there is the pooled value y, so the mask reads y. The
 * `0.0f +` is maxpool_backward's `+=` onto its zeroed plane, which turns a -0 into +0 (every sum after
 * this starts from +0 anyway, so no result could tell; the plane itself is then the same bits too). */
void cpu_maxpool_plane_backward(const void *plan_ptr, int p, const float *y, const float *dy, float *dx,
                                hd_activation act) {
    const cpu_pool_plan *plan = plan_ptr;
    const hd_pool_shape *s = &plan->shape;
    const int32_t *arg = plan->argmax + (size_t)p * s->out_h * s->out_w;
    const int relu = act == HD_ACT_RELU;
    memset(dx, 0, sizeof(float) * s->in_h * s->in_w);
    for (int i = 0; i < s->out_h * s->out_w; i++) {
        float g = 0.0f + dy[i];
        dx[arg[i]] = (relu & !(y[i] > 0.0f)) ? 0.0f : g;
    }
}

void cpu_maxpool_backward(hd_backend *be, void *plan_ptr, int n, const float *in, const float *out,
                          const float *dout, float *din) {
    cpu_pool_plan *plan = plan_ptr;
    const hd_pool_shape *s = &plan->shape;
    int planes = n * s->channels;
    (void)be;
    (void)in;
    (void)out;
#pragma omp parallel for schedule(static) num_threads(plan->threads)
    for (int p = 0; p < planes; p++) {
        float *dx = din + (size_t)p * s->in_h * s->in_w;
        const float *dy = dout + (size_t)p * s->out_h * s->out_w;
        const int32_t *arg = plan->argmax + (size_t)p * s->out_h * s->out_w;
        memset(dx, 0, sizeof(float) * s->in_h * s->in_w);
        for (int i = 0; i < s->out_h * s->out_w; i++)
            dx[arg[i]] += dy[i];
    }
}
