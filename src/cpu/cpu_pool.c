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
} cpu_pool_plan;

void cpu_maxpool_plan_free(hd_backend *be, void *plan_ptr) {
    (void)be;
    cpu_pool_plan *plan = plan_ptr;
    if (plan) {
        free(plan->argmax);
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
    if (!plan->argmax) {
        free(plan);
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

/* The same for the usual 2x2 window, unrolled: the four candidates in row-major order. Written so
 * that GCC vectorises the loop over ox (the selects become blends; a branch per window would
 * mispredict on ReLU outputs and cost 3x). */
static void pool_plane_2x2(const hd_pool_shape *s, const float *x, float *y, int32_t *arg) {
    const int in_w = s->in_w, out_h = s->out_h, out_w = s->out_w;
    for (int oy = 0; oy < out_h; oy++) {
        const int top = 2 * oy * in_w;
        const float *r0 = x + top, *r1 = r0 + in_w;
        float *yr = y + (size_t)oy * out_w;
        int32_t *ar = arg + (size_t)oy * out_w;
        for (int ox = 0; ox < out_w; ox++) {
            float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
            int best = top + 2 * ox;
            float m = a;
            best = b > m ? top + 2 * ox + 1 : best;
            m = b > m ? b : m;
            best = c > m ? top + in_w + 2 * ox : best;
            m = c > m ? c : m;
            best = d > m ? top + in_w + 2 * ox + 1 : best;
            m = d > m ? d : m;
            yr[ox] = m;
            ar[ox] = best;
        }
    }
}

void cpu_maxpool_forward(hd_backend *be, void *plan_ptr, int n, const float *in, float *out) {
    cpu_pool_plan *plan = plan_ptr;
    const hd_pool_shape *s = &plan->shape;
    int planes = n * s->channels;
    (void)be;
#pragma omp parallel for schedule(static) num_threads(plan->threads)
    for (int p = 0; p < planes; p++) {
        const float *x = in + (size_t)p * s->in_h * s->in_w;
        float *y = out + (size_t)p * s->out_h * s->out_w;
        int32_t *arg = plan->argmax + (size_t)p * s->out_h * s->out_w;
        if (s->size == 2)
            pool_plane_2x2(s, x, y, arg);
        else
            pool_plane(s, x, y, arg);
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
