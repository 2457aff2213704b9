/* cpu_conv.c: 2-D convolution on the CPU, forward and backward side by side, by im2col and
 * SGEMM (OpenBLAS).
 *
 * Shapes (one image): in (C, H, W), weight (OC, C, K, K), out (OC, OH, OW), with stride S and zero
 * padding P on every side: OH = (H + 2P - K) / S + 1 (floor), likewise OW.
 * im2col turns an image into col (C*K*K, OH*OW), so that out = weight (OC, C*K*K) x col; a strided or
 * padded convolution unfolds from phase planes instead (the source, plan->channel_size floats a channel), so
 * that every row piece of col is one contiguous copy.
 *
 * A convolution over 8 or more input channels, with a kernel small beside the width ((W - OW) * 4 <= OW
 * for stride 1 unpadded; for the others, the phase planes' width in place of W), skips the columns: one
 * GEMM per tap on the image itself, or on its phase planes (the implicit path, at implicit_forward).
 *
 * Each thread owns a slice of the batch and takes it `group` images at a time: their columns side by
 * side, (C*K*K, group*OH*OW), so that each of the three GEMMs is one call `group` times wider (or deeper)
 * than an image's, which OpenBLAS runs much closer to its peak than many narrow ones (the default
 * model's conv2 has 121 output pixels an image). group is chosen per shape so that a group's columns
 * stay in a core's cache (GROUP_COLUMNS). Per group:
 *   forward:  yg (OC, group*OH*OW) = weight x colg, then out = act(yg + bias) image by image;
 *   backward: dyg = dout * act'(out) gathered the same way (summing dbias as it goes),
 *             dweight += dyg x colg^T,  dcolg = weight^T x dyg, scattered back by col2im into din.
 * Every thread has its own scratch and its own dweight/dbias partial sums, added in thread order at
 * the end, so results depend only on the thread count. Gradients are written with `=`.
 *
 * The backward unfolds each image again rather than keep the forward's columns: measured on the default
 * model (bench --layers, 2 threads), keeping them cost as much memory traffic as it saved (and
 * max_batch images of columns: 21 MB at batch 128, 90 MB for the `best` preset at 64). */
#include "cpu_backend.h"
#include "hd/common.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

/* A group is as many images as make GROUP_WIDTH output pixels (one image when it has more: wider GEMMs
 * gain little, and a deeper dweight GEMM over a layer with few input channels, conv1's 9 x 676 columns,
 * was measured 3x slower), within GROUP_COLUMNS floats of columns (512 KiB: half a Zen 4 or Skylake-X
 * core's L2). */
#define GROUP_WIDTH   512
#define GROUP_COLUMNS (128 * 1024)
/* The implicit path's GEMMs have C as their depth: below this many input channels the columns win. It also
 * needs the kernel small beside the width (below: its extra columns cost GEMM work, and a 4x4 kernel over a
 * 4x4 input, `best`'s conv7, would be 16 GEMMs a single column wide; `best`'s conv6, 5x5 stride 2 over 8x8,
 * would compute 6 columns a row for 4). */
#define IMPLICIT_MIN_CHANNELS 8

typedef struct {
    hd_conv_shape shape;
    int threads;
    int group;           /* images per GEMM */
    size_t weight_count; /* OC*C*K*K */
    /* Per-thread parts, each on cache lines of its own (cpu_part_stride): */
    size_t col_size; /* >= C*K*K * group*OH*OW floats: one group's columns (or dcol); none on the implicit
                        path */
    size_t y_size;   /* >= OC * group*OH*OW floats: one group's output (or output gradient); the implicit
                      * path's, OC * OH*src_w */
    size_t dw_size;  /* >= weight_count */
    size_t db_size;  /* >= OC */
    float *col;      /* threads * col_size */
    float *y;        /* threads * y_size */
    float *dweight_parts; /* threads * dw_size */
    float *dbias_parts;   /* threads * db_size */
    /* A strided or padded convolution's source (plan->channel_size floats a channel), for the columns or the
     * implicit path: the image zero-padded and split by stride phase, C * S * S planes of phase_h x phase_w,
     * one image's per thread. */
    int phased, phase_h, phase_w;
    size_t phase_size;  /* >= C * S * S * phase_h * phase_w floats */
    float *phase_parts; /* threads * phase_size */
    /* The fused op's (cpu_conv2d_maxpool_*), and the implicit path's output gradient before it is spread
     * to the pitch: one output plane, OH*OW floats, per thread. */
    size_t plane_size;
    float *plane_parts; /* threads * plane_size */
    /* The implicit path (implicit_forward): a convolution over enough input channels runs one GEMM per tap
     * on the image itself (or on its phase planes), no columns. tap_weight holds the weights tap by tap,
     * (K*K, OC, C), rewritten from the layer's at each call; the per-thread dweight partials are then
     * in that order too. */
    int implicit;
    float *tap_weight;
    /* The plane the implicit path's GEMMs read: the image (in_h, in_w), or for a strided or padded
     * convolution its phase planes (phase_h, phase_w); outputs lie on rows of src_w. */
    int src_h, src_w;
    /* The source's floats a channel, and where each tap t (ky * K + kx) of output (0, 0) reads in a
     * channel's source: computed once here, since unfold and fold would otherwise divide per (c, t). */
    size_t channel_size;
    size_t *tap_offset; /* K*K */
} cpu_conv_plan;

void cpu_conv2d_plan_free(hd_backend *be, void *plan_ptr) {
    (void)be;
    cpu_conv_plan *plan = plan_ptr;
    if (!plan)
        return;
    free(plan->col);
    free(plan->y);
    free(plan->dweight_parts);
    free(plan->dbias_parts);
    free(plan->phase_parts);
    free(plan->plane_parts);
    free(plan->tap_weight);
    free(plan->tap_offset);
    free(plan);
}

/* plan->channel_size and plan->tap_offset (the source is described below, above fill_phases).
 * Tap t = (ky, kx) reads phase (ky % S, kx % S) at row ky / S, column kx / S. */
static void fill_tap_offsets(cpu_conv_plan *plan) {
    int k = plan->shape.kernel, stride = plan->shape.stride;
    size_t plane = (size_t)plan->src_h * plan->src_w;
    plan->channel_size = (size_t)stride * stride * plane;
    for (int t = 0; t < k * k; t++) {
        int ky = t / k, kx = t % k;
        plan->tap_offset[t] = (size_t)((ky % stride) * stride + kx % stride) * plane +
                              (size_t)(ky / stride) * plan->src_w + (size_t)(kx / stride);
    }
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
    size_t image_cols = (size_t)shape->in_c * shape->kernel * shape->kernel * shape->out_h * shape->out_w;
    size_t group = GROUP_WIDTH / ((size_t)shape->out_h * shape->out_w);
    if (group * image_cols > GROUP_COLUMNS)
        group = GROUP_COLUMNS / image_cols;
    plan->group = group < 1 ? 1 : (int)group;
    plan->phased = shape->stride > 1 || shape->pad > 0;
    plan->src_h = shape->in_h;
    plan->src_w = shape->in_w;
    if (plan->phased) {
        int stride = shape->stride;
        plan->phase_h = plan->src_h = (shape->in_h + 2 * shape->pad + stride - 1) / stride;
        plan->phase_w = plan->src_w = (shape->in_w + 2 * shape->pad + stride - 1) / stride;
    }
    plan->implicit = shape->in_c >= IMPLICIT_MIN_CHANNELS &&
                     (plan->src_w - shape->out_w) * 4 <= shape->out_w; /* at most 1/4 more columns */
    if (plan->implicit)
        plan->group = 1;
    plan->weight_count = (size_t)shape->out_c * shape->in_c * shape->kernel * shape->kernel;
    plan->col_size = cpu_part_stride(plan->implicit ? 0 : image_cols * plan->group);
    plan->y_size = cpu_part_stride((size_t)shape->out_c * shape->out_h *
                                   (plan->implicit ? plan->src_w : shape->out_w * plan->group));
    plan->dw_size = cpu_part_stride(plan->weight_count);
    plan->db_size = cpu_part_stride((size_t)shape->out_c);
    plan->col = cpu_parts_alloc(plan->col_size, plan->threads);
    plan->y = cpu_parts_alloc(plan->y_size, plan->threads);
    plan->dweight_parts = cpu_parts_alloc(plan->dw_size, plan->threads);
    plan->dbias_parts = cpu_parts_alloc(plan->db_size, plan->threads);
    plan->plane_size = cpu_part_stride((size_t)shape->out_h * shape->out_w);
    plan->plane_parts = cpu_parts_alloc(plan->plane_size, plan->threads);
    if (plan->phased) {
        int stride = shape->stride;
        plan->phase_size =
            cpu_part_stride((size_t)shape->in_c * stride * stride * plan->phase_h * plan->phase_w);
        plan->phase_parts = cpu_parts_alloc(plan->phase_size, plan->threads);
    }
    if (plan->implicit)
        plan->tap_weight = hd_malloc(sizeof(float) * plan->weight_count);
    plan->tap_offset = hd_malloc(sizeof(size_t) * (size_t)shape->kernel * shape->kernel);
    if (plan->tap_offset)
        fill_tap_offsets(plan);
    if (!plan->tap_offset || !plan->col || !plan->y || !plan->dweight_parts || !plan->dbias_parts ||
        !plan->plane_parts || (plan->implicit && !plan->tap_weight) || (plan->phased && !plan->phase_parts)) {
        cpu_conv2d_plan_free(be, plan);
        return NULL;
    }
    return plan;
}

/* One row piece of columns, n floats. The C library's memcpy costs more than the copy itself on short
 * pieces (`best`'s conv6 unfolds 6400 pieces of 4 floats an image), so up to 16 floats are copied inline
 * by two fixed-size copies that overlap in the middle, as memcpy does itself (a fixed-size memcpy compiles
 * to one move; a loop would be turned back into a call to memmove by the compiler). */
static inline void copy_piece(float *restrict to, const float *restrict from, int n) {
    size_t at = (size_t)n;
    if (n > 16)
        memcpy(to, from, sizeof(float) * at);
    else if (n >= 8) {
        memcpy(to, from, 8 * sizeof(float));
        memcpy(to + at - 8, from + at - 8, 8 * sizeof(float));
    } else if (n >= 4) {
        memcpy(to, from, 4 * sizeof(float));
        memcpy(to + at - 4, from + at - 4, 4 * sizeof(float));
    } else if (n >= 2) {
        memcpy(to, from, 2 * sizeof(float));
        memcpy(to + at - 2, from + at - 2, 2 * sizeof(float));
    } else if (n == 1)
        to[0] = from[0];
}

/* ---- The source: what one image's columns, or the implicit path's GEMMs, read ----
 * A stride-1 unpadded convolution reads the image itself, (C, H, W). A strided or padded one reads its
 * phase planes, without a gather or a bounds test per row piece: the zero-padded image split by stride
 * phase, (C, S, S, phase_h, phase_w),
 *     phase[c][py][px][i][j] = padded[c][i*S + py][j*S + px],
 *     padded[c][y][x] = in[c][y - pad][x - pad] (0 outside the image).
 * Tap t = (ky, kx) of output (oy, ox) reads padded[c][oy*S + ky][ox*S + kx], which is
 *     phase[c][ky % S][kx % S][oy + ky / S][ox + kx / S].
 * Either way, the tap reads the source's channel c at plan->tap_offset[t] + oy * src_w + ox: out_w contiguous
 * floats a row. A gradient goes back into the phase planes first, then is drained into din. */

/* The phase columns j whose padded x = j*S + px lies in the image (pad <= x < pad + W): [*first, *last). */
static void phase_columns(const cpu_conv_plan *plan, int px, int *first, int *last) {
    const hd_conv_shape *s = &plan->shape;
    int stride = s->stride, below = s->pad - px, past = s->pad + s->in_w - px;
    *first = below <= 0 ? 0 : (below + stride - 1) / stride;
    *last = past <= 0 ? 0 : (past + stride - 1) / stride;
    if (*last > plan->phase_w)
        *last = plan->phase_w;
    if (*first > *last)
        *first = *last;
}

/* to[j] = from[j * stride], and its adjoint; stride 1 and 2 (`best`'s) spelled out so that the compiler
 * vectorises them. */
static inline void gather_strided(float *restrict to, const float *restrict from, int n, int stride) {
    if (stride == 1)
        memcpy(to, from, sizeof(float) * (size_t)n);
    else if (stride == 2)
        for (int j = 0; j < n; j++)
            to[j] = from[2 * j];
    else
        for (int j = 0; j < n; j++)
            to[j] = from[(size_t)j * stride];
}

static inline void scatter_strided(float *restrict to, const float *restrict from, int n, int stride) {
    if (stride == 1)
        memcpy(to, from, sizeof(float) * (size_t)n);
    else if (stride == 2)
        for (int j = 0; j < n; j++)
            to[2 * j] = from[j];
    else
        for (int j = 0; j < n; j++)
            to[(size_t)j * stride] = from[j];
}

/* One image's phase planes, (C, S, S, phase_h, phase_w): the image's rows copied in by stride phase, zeros
 * where the planes reach into the padding. */
static void fill_phases(const cpu_conv_plan *plan, const float *in, float *phases) {
    const hd_conv_shape *s = &plan->shape;
    int stride = s->stride, ph = plan->phase_h, pw = plan->phase_w;
    float *to = phases;
    for (int c = 0; c < s->in_c; c++)
        for (int py = 0; py < stride; py++)
            for (int px = 0; px < stride; px++) {
                int first, last;
                phase_columns(plan, px, &first, &last);
                for (int i = 0; i < ph; i++, to += pw) {
                    int y = i * stride + py - s->pad;
                    if (y < 0 || y >= s->in_h) {
                        memset(to, 0, sizeof(float) * pw);
                        continue;
                    }
                    const float *from = in + ((size_t)c * s->in_h + y) * s->in_w;
                    for (int j = 0; j < first; j++)
                        to[j] = 0.0f;
                    if (last > first)
                        gather_strided(to + first, from + first * stride + px - s->pad, last - first, stride);
                    for (int j = last; j < pw; j++)
                        to[j] = 0.0f;
                }
            }
}

/* The adjoint of fill_phases: din (C, H, W) from the gradient of the phase planes (the padding's dropped). */
static void drain_phases(const cpu_conv_plan *plan, const float *phases, float *din) {
    const hd_conv_shape *s = &plan->shape;
    int stride = s->stride, ph = plan->phase_h, pw = plan->phase_w;
    for (int c = 0; c < s->in_c; c++)
        for (int y = 0; y < s->in_h; y++) {
            int py = (y + s->pad) % stride, i = (y + s->pad) / stride;
            float *to = din + ((size_t)c * s->in_h + y) * s->in_w;
            for (int px = 0; px < stride; px++) {
                int first, last;
                phase_columns(plan, px, &first, &last);
                const float *from = phases + ((((size_t)(c * stride + py) * stride + px) * ph + i) * pw);
                if (last > first)
                    scatter_strided(to + first * stride + px - s->pad, from + first, last - first, stride);
            }
        }
}

/* Thread t's phase planes (NULL without them). */
static float *thread_phases(const cpu_conv_plan *plan, int t) {
    return plan->phased ? plan->phase_parts + (size_t)t * plan->phase_size : NULL;
}

/* One image's source: the image, or its phase planes filled into `phases` (the thread's). */
static const float *image_source(const cpu_conv_plan *plan, const float *image, float *phases) {
    if (!plan->phased)
        return image;
    fill_phases(plan, image, phases);
    return phases;
}

/* One image's columns: col[c*K*K + t][oy*OW + ox] = what tap t of output (oy, ox) reads in channel c, col's
 * rows `ld` floats apart (a group's images side by side). */
static void unfold(const cpu_conv_plan *plan, const float *image, float *col, size_t ld, float *phases) {
    const hd_conv_shape *s = &plan->shape;
    int kk = s->kernel * s->kernel;
    const float *src = image_source(plan, image, phases);
    int out_h = s->out_h, out_w = s->out_w, src_w = plan->src_w;
    for (int c = 0; c < s->in_c; c++) {
        const float *channel = src + (size_t)c * plan->channel_size;
        for (int t = 0; t < kk; t++) {
            const float *from = channel + plan->tap_offset[t];
            float *row = col + ((size_t)c * kk + t) * ld;
            for (int oy = 0; oy < out_h; oy++)
                copy_piece(row + (size_t)oy * out_w, from + (size_t)oy * src_w, out_w);
        }
    }
}

/* The adjoint of unfold: din = the sum of the col entries that read each input (through the phase planes
 * when the convolution has them). */
static void fold(const cpu_conv_plan *plan, const float *col, size_t ld, float *din, float *phases) {
    const hd_conv_shape *s = &plan->shape;
    int kk = s->kernel * s->kernel;
    float *dsrc = plan->phased ? phases : din;
    memset(dsrc, 0, sizeof(float) * (size_t)s->in_c * plan->channel_size);
    for (int c = 0; c < s->in_c; c++)
        for (int t = 0; t < kk; t++) {
            float *to = dsrc + (size_t)c * plan->channel_size + plan->tap_offset[t];
            const float *row = col + ((size_t)c * kk + t) * ld;
            for (int oy = 0; oy < s->out_h; oy++) {
                float *restrict d = to + (size_t)oy * plan->src_w;
                const float *restrict from = row + (size_t)oy * s->out_w;
                for (int i = 0; i < s->out_w; i++) /* contiguous: the compiler vectorises it */
                    d[i] += from[i];
            }
        }
    if (plan->phased)
        drain_phases(plan, phases, din);
}

/* ---- The implicit path: at least IMPLICIT_MIN_CHANNELS input channels, a kernel small beside the width ----
 * Stride 1, no padding: output (oy, ox) of tap (ky, kx) reads in[c][(oy + ky) * W + ox + kx]. With the
 * outputs laid out on the input's row length, j = oy * W + ox, that is in[c][ky * W + kx + j]: the tap's
 * whole contribution is one GEMM, y (OC, OH*W) += weight_tap (OC, C) x in[:, ky * W + kx + j] (C rows H*W
 * apart), on the image as it lies, with no columns to write and read back. A strided or padded
 * convolution does the same on its phase planes (the source's comment): tap (ky, kx) reads plane
 * (ky % S, kx % S) at (oy + ky / S, ox + kx / S), so with the outputs on the planes' row length pw,
 * j = oy * pw + ox, it reads that plane at (ky / S) * pw + kx / S + j (C rows S*S*ph*pw apart). In both,
 * the src_w - OW extra columns of each row are dropped (forward) or given a zero gradient (backward: they
 * add zeros to din and nothing to dweight); the last (K - 1) / S, past the plane, are never computed
 * (N = OH*src_w - (K - 1) / S). Standalone (one thread, 32 images): `best`'s conv2 forward 150 us an image
 * against 215 for unfold + one GEMM, the default model's conv2 56-64 against 80, in spite of the
 * (W - OW) / OW more columns. */
static int implicit_span(const cpu_conv_plan *plan) {
    return plan->shape.out_h * plan->src_w - (plan->shape.kernel - 1) / plan->shape.stride;
}

/* plan->tap_weight (K*K, OC, C) from the layer's (OC, C, K, K). */
static void implicit_tap_weights(cpu_conv_plan *plan, const float *weight) {
    const hd_conv_shape *s = &plan->shape;
    int kk = s->kernel * s->kernel;
    for (int t = 0; t < kk; t++)
        for (int oc = 0; oc < s->out_c; oc++)
            for (int c = 0; c < s->in_c; c++)
                plan->tap_weight[((size_t)t * s->out_c + oc) * s->in_c + c] =
                    weight[((size_t)oc * s->in_c + c) * kk + t];
}

/* y (OC rows of OH*src_w) = one image's convolution, before bias, from src (the image, or its phase
 * planes); columns ox >= OW of each row unused. */
static void implicit_forward(const cpu_conv_plan *plan, const float *src, float *y) {
    const hd_conv_shape *s = &plan->shape;
    int k = s->kernel, ldy = s->out_h * plan->src_w;
    int lds = (int)plan->channel_size;
    for (int t = 0; t < k * k; t++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->out_c, implicit_span(plan), s->in_c, 1.0f,
                    plan->tap_weight + (size_t)t * s->out_c * s->in_c, s->in_c, src + plan->tap_offset[t],
                    lds, t ? 1.0f : 0.0f, y, ldy);
}

/* From dy (OC rows of OH*src_w, zeros in the columns ox >= OW) and the image's source src: adds each tap's
 * dweight (OC, C) into dw (K*K, OC, C); then, when dsrc is not NULL, writes the source's gradient into dsrc
 * (which may be src itself: it is read no more). */
static void implicit_backward(const cpu_conv_plan *plan, const float *src, const float *dy, float *dw,
                              float *dsrc) {
    const hd_conv_shape *s = &plan->shape;
    int k = s->kernel, ldy = s->out_h * plan->src_w, span = implicit_span(plan);
    int lds = (int)plan->channel_size;
    size_t tap_size = (size_t)s->out_c * s->in_c;
    for (int t = 0; t < k * k; t++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->out_c, s->in_c, span, 1.0f, dy, ldy,
                    src + plan->tap_offset[t], lds, 1.0f, dw + (size_t)t * tap_size, s->in_c);
    if (!dsrc)
        return;
    memset(dsrc, 0, sizeof(float) * (size_t)s->in_c * lds);
    for (int t = 0; t < k * k; t++)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, s->in_c, span, s->out_c, 1.0f,
                    plan->tap_weight + (size_t)t * tap_size, s->in_c, dy, ldy, 1.0f,
                    dsrc + plan->tap_offset[t], lds);
}

/* One output plane of a GEMM's output, y (OH rows `pitch` floats apart), with bias and activation, into
 * `to` (OH * OW). */
static void take_plane(const cpu_conv_plan *plan, const float *y, int pitch, float bias, float *to) {
    const hd_conv_shape *s = &plan->shape;
    if (pitch == s->out_w) {
        cpu_bias_act_rows(y, 0, to, &bias, 1, s->out_h * s->out_w, s->act);
        return;
    }
    for (int oy = 0; oy < s->out_h; oy++)
        cpu_bias_act_rows(y + (size_t)oy * pitch, 0, to + (size_t)oy * s->out_w, &bias, 1, s->out_w, s->act);
}

/* An output gradient plane (OH * OW) into the implicit path's rows of OH*src_w, zeros in the extra
 * columns. */
static void spread_plane(const cpu_conv_plan *plan, const float *from, float *y) {
    const hd_conv_shape *s = &plan->shape;
    for (int oy = 0; oy < s->out_h; oy++) {
        float *restrict d = y + (size_t)oy * plan->src_w;
        const float *restrict f = from + (size_t)oy * s->out_w;
        for (int i = 0; i < s->out_w; i++)
            d[i] = f[i];
        for (int i = s->out_w; i < plan->src_w; i++)
            d[i] = 0.0f;
    }
}

/* Output plane p of the batch (y: its GEMM output, OH rows `pitch` apart) with bias and activation: into out
 * (the conv's output); with a pool plan, into thread t's plane scratch (in L1) and pooled from there into out
 * (the pooling's output), instead of being written to the conv's output and read back from memory by
 * maxpool_forward. The same values in the same order either way. */
static void emit_plane(const cpu_conv_plan *plan, void *pool_plan, int t, int p, const float *y, int pitch,
                       float bias, float *out) {
    const hd_conv_shape *s = &plan->shape;
    if (!pool_plan) {
        take_plane(plan, y, pitch, bias, out + (size_t)p * s->out_h * s->out_w);
        return;
    }
    float *plane = plan->plane_parts + (size_t)t * plan->plane_size;
    take_plane(plan, y, pitch, bias, plane);
    cpu_maxpool_plane_forward(pool_plan, t, p, plane, out + (size_t)p * cpu_maxpool_plane_outputs(pool_plan));
}

/* Plane p's output gradient, dout * act'(out), into dst (OH * OW); returns its sum, dbias's share. With a
 * pool plan (out, dout: the pooling's), built from the pooled values and the arg-max
 * (cpu_maxpool_plane_backward), not gathered from full-size planes in memory; summed in the same order. */
static float plane_grad(const cpu_conv_plan *plan, const void *pool_plan, int p, const float *out,
                        const float *dout, float *dst) {
    const hd_conv_shape *s = &plan->shape;
    size_t out_hw = (size_t)s->out_h * s->out_w;
    if (!pool_plan)
        return cpu_act_grad_gather(out + (size_t)p * out_hw, dout + (size_t)p * out_hw, dst, out_hw, s->act);
    size_t pooled = (size_t)p * cpu_maxpool_plane_outputs(pool_plan);
    cpu_maxpool_plane_backward(pool_plan, p, out + pooled, dout + pooled, dst, s->act);
    return cpu_lane_sum(dst, out_hw);
}

/* Thread t's images [begin, end), forward. The implicit path: one image at a time (its phase planes
 * first, when it has them), its GEMM output on the source's row length. */
static void forward_implicit(const cpu_conv_plan *plan, void *pool_plan, int t, int begin, int end,
                             const float *in, const float *bias, float *out) {
    const hd_conv_shape *s = &plan->shape;
    size_t in_size = (size_t)s->in_c * s->in_h * s->in_w, ldy = (size_t)s->out_h * plan->src_w;
    float *y = plan->y + (size_t)t * plan->y_size;
    float *phases = thread_phases(plan, t);
    for (int img = begin; img < end; img++) {
        implicit_forward(plan, image_source(plan, in + (size_t)img * in_size, phases), y);
        for (int oc = 0; oc < s->out_c; oc++)
            emit_plane(plan, pool_plan, t, img * s->out_c + oc, y + (size_t)oc * ldy, plan->src_w, bias[oc],
                       out);
    }
}

/* The columns: `group` images at a time side by side, one GEMM. */
static void forward_columns(const cpu_conv_plan *plan, void *pool_plan, int t, int begin, int end,
                            const float *in, const float *weight, const float *bias, float *out) {
    const hd_conv_shape *s = &plan->shape;
    int ckk = s->in_c * s->kernel * s->kernel, out_hw = s->out_h * s->out_w;
    size_t in_size = (size_t)s->in_c * s->in_h * s->in_w;
    float *col = plan->col + (size_t)t * plan->col_size, *yg = plan->y + (size_t)t * plan->y_size;
    float *phases = thread_phases(plan, t);
    for (int first = begin; first < end; first += plan->group) {
        int g = end - first < plan->group ? end - first : plan->group;
        int width = g * out_hw; /* the group's columns, and yg's row length */
        for (int j = 0; j < g; j++)
            unfold(plan, in + (size_t)(first + j) * in_size, col + (size_t)j * out_hw, (size_t)width, phases);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->out_c, width, ckk, 1.0f, weight, ckk, col,
                    width, 0.0f, yg, width);
        for (int j = 0; j < g; j++)
            for (int oc = 0; oc < s->out_c; oc++)
                emit_plane(plan, pool_plan, t, (first + j) * s->out_c + oc,
                           yg + (size_t)oc * width + (size_t)j * out_hw, s->out_w, bias[oc], out);
    }
}

/* The forward, and with a pool plan the fused op's (out: the pooling's output). */
static void conv_forward(cpu_conv_plan *plan, void *pool_plan, int n, const float *in, const float *weight,
                         const float *bias, float *out) {
    if (plan->implicit)
        implicit_tap_weights(plan, weight);
#pragma omp parallel num_threads(plan->threads)
    {
        int t = omp_get_thread_num();
        int begin, end;
        cpu_split_range(n, plan->threads, t, &begin, &end);
        if (plan->implicit)
            forward_implicit(plan, pool_plan, t, begin, end, in, bias, out);
        else
            forward_columns(plan, pool_plan, t, begin, end, in, weight, bias, out);
    }
}

void cpu_conv2d_forward(hd_backend *be, void *plan, int n, const float *in, const float *weight,
                        const float *bias, float *out) {
    (void)be;
    conv_forward(plan, NULL, n, in, weight, bias, out);
}

void cpu_conv2d_maxpool_forward(hd_backend *be, void *conv_plan, void *pool_plan, int n, const float *in,
                                const float *weight, const float *bias, float *out) {
    (void)be;
    conv_forward(conv_plan, pool_plan, n, in, weight, bias, out);
}

/* Thread t's images [begin, end), backward, into its partials dw and db. The implicit path: each plane's
 * gradient in the plane scratch, spread to the source's row length (src_w). */
static void backward_implicit(const cpu_conv_plan *plan, const void *pool_plan, int t, int begin, int end,
                              const float *in, const float *out, const float *dout, float *din, float *dw,
                              float *db) {
    const hd_conv_shape *s = &plan->shape;
    size_t in_size = (size_t)s->in_c * s->in_h * s->in_w, ldy = (size_t)s->out_h * plan->src_w;
    float *dy = plan->y + (size_t)t * plan->y_size, *plane = plan->plane_parts + (size_t)t * plan->plane_size;
    float *phases = thread_phases(plan, t);
    for (int img = begin; img < end; img++) {
        for (int oc = 0; oc < s->out_c; oc++) {
            db[oc] += plane_grad(plan, pool_plan, img * s->out_c + oc, out, dout, plane);
            spread_plane(plan, plane, dy + (size_t)oc * ldy);
        }
        const float *src = image_source(plan, in + (size_t)img * in_size, phases);
        float *din_image = din ? din + (size_t)img * in_size : NULL;
        /* The phase planes serve as the source, then (overwritten) as its gradient. */
        implicit_backward(plan, src, dy, dw, din_image && phases ? phases : din_image);
        if (din_image && phases)
            drain_phases(plan, phases, din_image);
    }
}

/* The columns: each plane's gradient straight into the group's dyg; dweight += dyg x colg^T, dcolg = weight^T
 * x dyg, scattered back by col2im into din. */
static void backward_columns(const cpu_conv_plan *plan, const void *pool_plan, int t, int begin, int end,
                             const float *in, const float *weight, const float *out, const float *dout,
                             float *din, float *dw, float *db) {
    const hd_conv_shape *s = &plan->shape;
    int ckk = s->in_c * s->kernel * s->kernel, out_hw = s->out_h * s->out_w;
    size_t in_size = (size_t)s->in_c * s->in_h * s->in_w;
    float *col = plan->col + (size_t)t * plan->col_size, *dyg = plan->y + (size_t)t * plan->y_size;
    float *phases = thread_phases(plan, t);
    for (int first = begin; first < end; first += plan->group) {
        int g = end - first < plan->group ? end - first : plan->group;
        int width = g * out_hw;
        for (int j = 0; j < g; j++) {
            for (int oc = 0; oc < s->out_c; oc++)
                db[oc] += plane_grad(plan, pool_plan, (first + j) * s->out_c + oc, out, dout,
                                     dyg + (size_t)oc * width + (size_t)j * out_hw);
            unfold(plan, in + (size_t)(first + j) * in_size, col + (size_t)j * out_hw, (size_t)width, phases);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->out_c, ckk, width, 1.0f, dyg, width, col,
                    width, 1.0f, dw, ckk);
        if (din) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ckk, width, s->out_c, 1.0f, weight, ckk, dyg,
                        width, 0.0f, col, width);
            for (int j = 0; j < g; j++)
                fold(plan, col + (size_t)j * out_hw, (size_t)width, din + (size_t)(first + j) * in_size,
                     phases);
        }
    }
}

/* The backward, and with a pool plan the fused op's (out, dout: the pooling's output and gradient). */
static void conv_backward(cpu_conv_plan *plan, const void *pool_plan, int n, const float *in,
                          const float *weight, const float *out, const float *dout, float *din,
                          float *dweight, float *dbias) {
    const hd_conv_shape *s = &plan->shape;
    if (plan->implicit)
        implicit_tap_weights(plan, weight);
#pragma omp parallel num_threads(plan->threads)
    {
        int t = omp_get_thread_num();
        int begin, end;
        cpu_split_range(n, plan->threads, t, &begin, &end);
        float *dw = plan->dweight_parts + (size_t)t * plan->dw_size;
        float *db = plan->dbias_parts + (size_t)t * plan->db_size;
        memset(dw, 0, sizeof(float) * plan->weight_count);
        memset(db, 0, sizeof(float) * s->out_c);
        if (plan->implicit)
            backward_implicit(plan, pool_plan, t, begin, end, in, out, dout, din, dw, db);
        else
            backward_columns(plan, pool_plan, t, begin, end, in, weight, out, dout, din, dw, db);
    }
    /* Sum the per-thread partials in thread order (deterministic for a thread count). */
    memcpy(dbias, plan->dbias_parts, sizeof(float) * s->out_c);
    for (int t = 1; t < plan->threads; t++)
        for (int oc = 0; oc < s->out_c; oc++)
            dbias[oc] += plan->dbias_parts[(size_t)t * plan->db_size + oc];
    if (!plan->implicit) {
        memcpy(dweight, plan->dweight_parts, sizeof(float) * plan->weight_count);
        for (int t = 1; t < plan->threads; t++)
            for (size_t i = 0; i < plan->weight_count; i++)
                dweight[i] += plan->dweight_parts[(size_t)t * plan->dw_size + i];
        return;
    }
    /* The implicit path's partials are tap by tap, (K*K, OC, C): back to (OC, C, K*K). */
    size_t kk = (size_t)s->kernel * s->kernel, taps = (size_t)s->out_c * s->in_c;
    for (size_t t = 0; t < kk; t++)
        for (size_t i = 0; i < taps; i++) {
            float sum = plan->dweight_parts[t * taps + i];
            for (int th = 1; th < plan->threads; th++)
                sum += plan->dweight_parts[(size_t)th * plan->dw_size + t * taps + i];
            dweight[i * kk + t] = sum;
        }
}

void cpu_conv2d_backward(hd_backend *be, void *plan, int n, const float *in, const float *weight,
                         const float *out, float *dout, float *din, float *dweight, float *dbias) {
    (void)be;
    conv_backward(plan, NULL, n, in, weight, out, dout, din, dweight, dbias);
}

void cpu_conv2d_maxpool_backward(hd_backend *be, void *conv_plan, void *pool_plan, int n, const float *in,
                                 const float *weight, const float *out, const float *dout, float *din,
                                 float *dweight, float *dbias) {
    (void)be;
    conv_backward(conv_plan, pool_plan, n, in, weight, out, dout, din, dweight, dbias);
}
