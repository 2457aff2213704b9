/* cpu_conv.c: 2-D convolution on the CPU, forward and backward side by side, by im2col and
 * SGEMM (OpenBLAS).
 *
 * Shapes (one image): in (C, H, W), weight (OC, C, K, K), out (OC, OH, OW), with stride S and zero
 * padding P on every side: OH = (H + 2P - K) / S + 1 (floor), likewise OW.
 * im2col turns an image into col (C*K*K, OH*OW), so that out = weight (OC, C*K*K) x col.
 * Backward, per image:  dweight += dout (OC, OH*OW) x col^T;  dcol = weight^T x dout,
 * scattered back by col2im into din. Each thread owns a slice of the batch, its own col
 * buffer and its own dweight/dbias partial sums, which are added in thread order at the
 * end, so results depend only on the thread count. Gradients are written with `=`. */
#include "cpu_backend.h"
#include "hd/common.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    hd_conv_shape shape;
    int threads;
    size_t col_size;      /* C*K*K * OH*OW floats per thread */
    size_t weight_count;  /* OC*C*K*K */
    float *col;           /* threads * col_size */
    float *dweight_parts; /* threads * weight_count */
    float *dbias_parts;   /* threads * OC */
} cpu_conv_plan;

void cpu_conv2d_plan_free(hd_backend *be, void *plan_ptr) {
    (void)be;
    cpu_conv_plan *plan = plan_ptr;
    if (!plan)
        return;
    free(plan->col);
    free(plan->dweight_parts);
    free(plan->dbias_parts);
    free(plan);
}

void *cpu_conv2d_plan(hd_backend *be, const hd_conv_shape *shape) {
    const hd_conv_shape *s = shape;
    if (s->stride < 1 || s->kernel < 1 || s->pad < 0 || s->in_h + 2 * s->pad < s->kernel ||
        s->in_w + 2 * s->pad < s->kernel || s->out_h < 1 || s->out_w < 1 ||
        s->out_h != (s->in_h + 2 * s->pad - s->kernel) / s->stride + 1 ||
        s->out_w != (s->in_w + 2 * s->pad - s->kernel) / s->stride + 1) {
        hd_fail("conv plan: inconsistent shape %dx%dx%d -> %dx%dx%d, kernel %d, stride %d, pad %d", s->in_c,
                s->in_h, s->in_w, s->out_c, s->out_h, s->out_w, s->kernel, s->stride, s->pad);
        return NULL;
    }
    cpu_conv_plan *plan = hd_calloc(1, sizeof *plan);
    if (!plan)
        return NULL;
    plan->shape = *shape;
    plan->threads = cpu_threads(be);
    plan->col_size = (size_t)shape->in_c * shape->kernel * shape->kernel * shape->out_h * shape->out_w;
    plan->weight_count = (size_t)shape->out_c * shape->in_c * shape->kernel * shape->kernel;
    plan->col = hd_malloc(sizeof(float) * plan->col_size * plan->threads);
    plan->dweight_parts = hd_malloc(sizeof(float) * plan->weight_count * plan->threads);
    plan->dbias_parts = hd_malloc(sizeof(float) * shape->out_c * plan->threads);
    if (!plan->col || !plan->dweight_parts || !plan->dbias_parts) {
        cpu_conv2d_plan_free(be, plan);
        return NULL;
    }
    return plan;
}

/* The output columns ox whose input column ox*stride + kx - pad lies inside the image: [*lo, *hi). */
static void valid_columns(const hd_conv_shape *s, int kx, int *lo, int *hi) {
    int stride = s->stride, first = s->pad - kx, last = s->in_w - 1 + s->pad - kx;
    *lo = first > 0 ? (first + stride - 1) / stride : 0;
    if (*lo > s->out_w) /* padding wider than the output: no column reads the image */
        *lo = s->out_w;
    *hi = last >= 0 ? last / stride + 1 : 0;
    if (*hi > s->out_w)
        *hi = s->out_w;
    if (*hi < *lo)
        *hi = *lo;
}

/* col[(c*K + ky)*K + kx][oy*OW + ox] = in[c][oy*S + ky - pad][ox*S + kx - pad] (0 outside), S the
 * stride. Each row of col is a run of input copied whole (every S-th element), zeros on either side
 * when padded. */
static void im2col(const hd_conv_shape *s, const float *in, float *col) {
    int k = s->kernel, out_hw = s->out_h * s->out_w, stride = s->stride;
    for (int c = 0; c < s->in_c; c++) {
        const float *plane = in + (size_t)c * s->in_h * s->in_w;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                float *row = col + ((size_t)(c * k + ky) * k + kx) * out_hw;
                int lo, hi;
                valid_columns(s, kx, &lo, &hi);
                for (int oy = 0; oy < s->out_h; oy++) {
                    int iy = oy * stride + ky - s->pad;
                    float *dst = row + (size_t)oy * s->out_w;
                    if (iy < 0 || iy >= s->in_h || lo == hi) {
                        memset(dst, 0, sizeof(float) * s->out_w);
                        continue;
                    }
                    const float *src = plane + (size_t)iy * s->in_w + (lo * stride + kx - s->pad);
                    if (lo > 0)
                        memset(dst, 0, sizeof(float) * lo);
                    if (stride == 1)
                        memcpy(dst + lo, src, sizeof(float) * (hi - lo));
                    else
                        for (int i = 0; i < hi - lo; i++)
                            dst[lo + i] = src[(size_t)i * stride];
                    if (hi < s->out_w)
                        memset(dst + hi, 0, sizeof(float) * (s->out_w - hi));
                }
            }
        }
    }
}

/* The adjoint of im2col: din[c][iy][ix] = sum of the col entries that read it. */
static void col2im(const hd_conv_shape *s, const float *col, float *din) {
    int k = s->kernel, out_hw = s->out_h * s->out_w, stride = s->stride;
    memset(din, 0, sizeof(float) * (size_t)s->in_c * s->in_h * s->in_w);
    for (int c = 0; c < s->in_c; c++) {
        float *plane = din + (size_t)c * s->in_h * s->in_w;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                const float *row = col + ((size_t)(c * k + ky) * k + kx) * out_hw;
                int lo, hi;
                valid_columns(s, kx, &lo, &hi);
                for (int oy = 0; oy < s->out_h; oy++) {
                    int iy = oy * stride + ky - s->pad;
                    if (iy < 0 || iy >= s->in_h)
                        continue;
                    const float *src = row + (size_t)oy * s->out_w + lo;
                    float *dst = plane + (size_t)iy * s->in_w + (lo * stride + kx - s->pad);
                    for (int i = 0; i < hi - lo; i++)
                        dst[(size_t)i * stride] += src[i];
                }
            }
        }
    }
}

void cpu_conv2d_forward(hd_backend *be, void *plan_ptr, int n, const float *in, const float *weight,
                        const float *bias, float *out) {
    cpu_conv_plan *plan = plan_ptr;
    const hd_conv_shape *s = &plan->shape;
    int ckk = s->in_c * s->kernel * s->kernel, out_hw = s->out_h * s->out_w;
    size_t in_size = (size_t)s->in_c * s->in_h * s->in_w, out_size = (size_t)s->out_c * out_hw;
    (void)be;
#pragma omp parallel num_threads(plan->threads)
    {
        int t = omp_get_thread_num();
        int begin, end;
        cpu_split_range(n, plan->threads, t, &begin, &end);
        float *col = plan->col + (size_t)t * plan->col_size;
        for (int img = begin; img < end; img++) {
            float *y = out + (size_t)img * out_size;
            im2col(s, in + (size_t)img * in_size, col);
            for (int oc = 0; oc < s->out_c; oc++) {
                float b = bias[oc];
                float *row = y + (size_t)oc * out_hw;
                for (int i = 0; i < out_hw; i++)
                    row[i] = b;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->out_c, out_hw, ckk, 1.0f, weight, ckk,
                        col, out_hw, 1.0f, y, out_hw);
            if (s->act == HD_ACT_RELU)
                cpu_relu_inplace(y, out_size);
        }
    }
}

void cpu_conv2d_backward(hd_backend *be, void *plan_ptr, int n, const float *in, const float *weight,
                         const float *out, float *dout, float *din, float *dweight, float *dbias) {
    cpu_conv_plan *plan = plan_ptr;
    const hd_conv_shape *s = &plan->shape;
    int ckk = s->in_c * s->kernel * s->kernel, out_hw = s->out_h * s->out_w;
    size_t in_size = (size_t)s->in_c * s->in_h * s->in_w, out_size = (size_t)s->out_c * out_hw;
    (void)be;
#pragma omp parallel num_threads(plan->threads)
    {
        int t = omp_get_thread_num();
        int begin, end;
        cpu_split_range(n, plan->threads, t, &begin, &end);
        float *col = plan->col + (size_t)t * plan->col_size;
        float *dw = plan->dweight_parts + (size_t)t * plan->weight_count;
        float *db = plan->dbias_parts + (size_t)t * s->out_c;
        memset(dw, 0, sizeof(float) * plan->weight_count);
        memset(db, 0, sizeof(float) * s->out_c);
        for (int img = begin; img < end; img++) {
            float *dy = dout + (size_t)img * out_size;
            if (s->act == HD_ACT_RELU)
                cpu_relu_mask_grad(out + (size_t)img * out_size, dy, out_size);
            for (int oc = 0; oc < s->out_c; oc++) {
                const float *row = dy + (size_t)oc * out_hw;
                float sum = 0.0f;
                for (int i = 0; i < out_hw; i++)
                    sum += row[i];
                db[oc] += sum;
            }
            im2col(s, in + (size_t)img * in_size, col);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->out_c, ckk, out_hw, 1.0f, dy, out_hw, col,
                        out_hw, 1.0f, dw, ckk);
            if (din) {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ckk, out_hw, s->out_c, 1.0f, weight, ckk,
                            dy, out_hw, 0.0f, col, out_hw);
                col2im(s, col, din + (size_t)img * in_size);
            }
        }
    }
    /* Sum the per-thread partials in thread order (deterministic for a thread count). */
    memcpy(dweight, plan->dweight_parts, sizeof(float) * plan->weight_count);
    memcpy(dbias, plan->dbias_parts, sizeof(float) * s->out_c);
    for (int t = 1; t < plan->threads; t++) {
        const float *dw = plan->dweight_parts + (size_t)t * plan->weight_count;
        const float *db = plan->dbias_parts + (size_t)t * s->out_c;
        for (size_t i = 0; i < plan->weight_count; i++)
            dweight[i] += dw[i];
        for (int oc = 0; oc < s->out_c; oc++)
            dbias[oc] += db[oc];
    }
}
