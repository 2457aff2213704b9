/* model.c: building a network from its spec on a backend, and its forward and backward
 * passes. Everything here is backend-agnostic: it only calls hd_backend_ops. */
#include "hd/model.h"
#include "hd/common.h"
#include "hd/shared_math.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every tensor's element count, for a whole batch, must fit the int that BLAS, cuDNN and the kernels
 * index with; a spec or a checkpoint's hd.input from elsewhere could otherwise overflow the shape
 * arithmetic (undefined) or ask for terabytes. */
static int tensor_fits(size_t elements_per_image, int max_batch) {
    return elements_per_image <= (size_t)INT_MAX / (size_t)max_batch;
}

/* Works out one layer's output shape and parameter shapes from its input shape (whose size for
 * max_batch images is already known to fit). */
static int layer_shape(hd_layer *layer, int index, int max_batch, size_t *param_cursor,
                       size_t *state_cursor) {
    const hd_layer_spec *s = &layer->spec;
    layer->out_c = layer->in_c;
    layer->out_h = layer->in_h;
    layer->out_w = layer->in_w;
    switch (s->kind) {
    case HD_LAYER_CONV:
        layer->out_c = s->units;
        if (layer->in_h + 2 * s->pad < s->kernel || layer->in_w + 2 * s->pad < s->kernel)
            return hd_fail("model spec: layer %d: %dx%d kernel does not fit a %dx%d input padded by %d",
                           index + 1, s->kernel, s->kernel, layer->in_h, layer->in_w, s->pad);
        /* As PyTorch's Conv2d: floor((in + 2 pad - k) / stride) + 1. */
        layer->out_h = (layer->in_h + 2 * s->pad - s->kernel) / s->stride + 1;
        layer->out_w = (layer->in_w + 2 * s->pad - s->kernel) / s->stride + 1;
        layer->weight_rank = 4;
        layer->weight_dims[0] = s->units;
        layer->weight_dims[1] = layer->in_c;
        layer->weight_dims[2] = s->kernel;
        layer->weight_dims[3] = s->kernel;
        layer->weight_count = (size_t)s->units * layer->in_c * s->kernel * s->kernel;
        layer->bias_count = (size_t)s->units;
        break;
    case HD_LAYER_MAXPOOL:
        layer->out_h = layer->in_h / s->pool;
        layer->out_w = layer->in_w / s->pool;
        if (layer->out_h < 1 || layer->out_w < 1)
            return hd_fail("model spec: layer %d: pool %d larger than its %dx%d input", index + 1, s->pool,
                           layer->in_h, layer->in_w);
        break;
    case HD_LAYER_AVGPOOL:
        layer->out_h = layer->in_h / s->pool;
        layer->out_w = layer->in_w / s->pool;
        if (layer->out_h < 1 || layer->out_w < 1)
            return hd_fail("model spec: layer %d: avgpool %d larger than its %dx%d input", index + 1, s->pool,
                           layer->in_h, layer->in_w);
        break;
    case HD_LAYER_GAP:
        layer->out_h = layer->out_w = 1;
        break;
    case HD_LAYER_FLATTEN:
        layer->out_c = layer->in_c * layer->in_h * layer->in_w;
        layer->out_h = layer->out_w = 1;
        break;
    case HD_LAYER_DENSE:
        if (layer->in_h != 1 || layer->in_w != 1)
            return hd_fail("model spec: layer %d: dense needs a flat input (add flatten or gap before it)",
                           index + 1);
        layer->out_c = s->units;
        layer->weight_rank = 2;
        layer->weight_dims[0] = s->units;
        layer->weight_dims[1] = layer->in_c;
        layer->weight_count = (size_t)s->units * layer->in_c;
        layer->bias_count = (size_t)s->units;
        break;
    case HD_LAYER_BATCHNORM: /* over in_c channels: BatchNorm2d, or BatchNorm1d after a flat input */
        layer->weight_rank = 1;
        layer->weight_dims[0] = layer->in_c;
        layer->weight_count = (size_t)layer->in_c; /* gamma */
        layer->bias_count = (size_t)layer->in_c;   /* beta */
        layer->state_count = 2 * (size_t)layer->in_c;
        break;
    case HD_LAYER_DROPOUT:
    case HD_LAYER_RELU:
        break;
    }
    if (layer->weight_count > INT_MAX)
        return hd_fail("model spec: layer %d: %zu weights is too many (at most %d)", index + 1,
                       layer->weight_count, INT_MAX);
    if (layer->weight_count > 0 && (s->kind == HD_LAYER_CONV || s->kind == HD_LAYER_DENSE)) {
        /* Glorot's fans: weights per output unit (in_c*k*k, or in_c) and per input channel (units*k*k,
         * or units). */
        layer->fan_in = (int)(layer->weight_count / (size_t)s->units);
        layer->fan_out = (int)(layer->weight_count / (size_t)layer->in_c);
    }
    layer->in_size = (size_t)layer->in_c * layer->in_h * layer->in_w;
    layer->out_size = (size_t)layer->out_c * layer->out_h * layer->out_w;
    if (!tensor_fits(layer->out_size, max_batch))
        return hd_fail(
            "model spec: layer %d: its output, %zu values an image, is too large for batches of %d",
            index + 1, layer->out_size, max_batch);
    if (*param_cursor + layer->weight_count + layer->bias_count > INT_MAX)
        return hd_fail("model spec: more than %d parameters", INT_MAX);
    layer->weight_offset = *param_cursor;
    layer->bias_offset = layer->weight_offset + layer->weight_count;
    *param_cursor = layer->bias_offset + layer->bias_count;
    layer->state_offset = *state_cursor;
    *state_cursor += layer->state_count;
    return 0;
}

static void name_layers(hd_model *model) {
    /* Indexed by hd_layer_kind. */
    static const char *const prefixes[] = {"conv",    "pool", "flatten", "dense", "dropout",
                                           "avgpool", "gap",  "bn",      "relu"};
    int counts[sizeof prefixes / sizeof prefixes[0]] = {0};
    for (int i = 0; i < model->n_layers; i++) {
        hd_layer *layer = &model->layers[i];
        int kind = (int)layer->spec.kind;
        snprintf(layer->name, sizeof layer->name, "%s%d", prefixes[kind], ++counts[kind]);
    }
}

/* A pooling layer's shape for the backend. */
static hd_pool_shape pool_shape(const hd_model *model, const hd_layer *layer) {
    hd_pool_shape pool = {model->max_batch, layer->in_c,  layer->in_h, layer->in_w,
                          layer->spec.pool, layer->out_h, layer->out_w};
    return pool;
}

static int make_plan(hd_model *model, hd_layer *layer) {
    hd_backend *be = model->be;
    hd_conv_shape conv = {model->max_batch, layer->in_c,        layer->in_h,       layer->in_w,
                          layer->out_c,     layer->spec.kernel, layer->spec.pad,   layer->out_h,
                          layer->out_w,     layer->spec.act,    layer->spec.stride};
    hd_pool_shape pool = pool_shape(model, layer);
    if (layer->spec.kind == HD_LAYER_CONV)
        layer->plan = be->ops->conv2d_plan(be, &conv);
    else if (layer->spec.kind == HD_LAYER_MAXPOOL)
        layer->plan = be->ops->maxpool_plan(be, &pool);
    else
        return 0;
    return layer->plan ? 0 : -1;
}

/* The bytes hd_model_create asks the backend for (plans' scratch and workspaces aside), call by call.
 * tests/test_spec.c counts the backend's allocations to hold the two in step. */
static double model_buffer_bytes(const hd_model *model) {
    double mb = (double)model->max_batch;
    double floats = 2.0 * (double)model->param_count               /* params, grads */
                    + mb * model->in_c * model->in_h * model->in_w /* input */
                    + mb                                           /* labels, int32 */
                    + 2                                            /* metrics */
                    + sizeof(hd_step_scalars) / sizeof(float)      /* step */
                    + (double)model->state_count;                  /* state */
    for (int i = 0; i < model->n_layers; i++) {
        if (model->layers[i].spec.kind != HD_LAYER_FLATTEN && !model->layers[i].fused_pool)
            floats += 2.0 * mb * (double)model->layers[i].out_size; /* out, dout */
        floats += (double)model->layers[i].state_count;             /* saved: bn's mean and 1/std */
    }
    return floats * sizeof(float);
}

/* Refuses, before anything is allocated, a model whose buffers exceed the backend's memory: the CPU
 * backend's zeroed allocations would otherwise be OOM-killed on a system that overcommits. */
static int check_memory(const hd_model *model) {
    hd_backend *be = model->be;
    size_t have = be->ops->memory_bytes ? be->ops->memory_bytes(be) : 0;
    double need = model_buffer_bytes(model);
    if (have == 0 || need <= (double)have)
        return 0;
    const double gib = 1024.0 * 1024.0 * 1024.0;
    return hd_fail("model %s on %dx%dx%d inputs, batches of %d: its buffers need %.1f GiB, more than the "
                   "%.1f GiB of %s (try a smaller batch or model)",
                   model->spec_text, model->in_c, model->in_h, model->in_w, model->max_batch, need / gib,
                   (double)have / gib, be->is_gpu ? "GPU memory" : "memory this process may use");
}

int hd_model_check_input(const hd_model *model, const char *source, int channels, int rows, int cols) {
    if (channels == model->in_c && rows == model->in_h && cols == model->in_w)
        return 0;
    return hd_fail("%s: images are %dx%dx%d, but the model takes %dx%dx%d", source, channels, rows, cols,
                   model->in_c, model->in_h, model->in_w);
}

int hd_model_layout(hd_model *model, const char *spec, int in_c, int in_h, int in_w, int max_batch) {
    memset(model, 0, sizeof *model);
    model->in_c = in_c;
    model->in_h = in_h;
    model->in_w = in_w;
    model->max_batch = max_batch;
    if (max_batch < 1)
        return hd_fail("batch size must be at least 1");
    if (in_c < 1 || in_h < 1 || in_w < 1 || in_c > HD_MODEL_MAX_INPUT_SIDE ||
        in_h > HD_MODEL_MAX_INPUT_SIDE || in_w > HD_MODEL_MAX_INPUT_SIDE ||
        !tensor_fits((size_t)in_c * (size_t)in_h * (size_t)in_w, max_batch))
        return hd_fail(
            "model input %dx%dx%d: each side must be 1..%d, and a batch of %d of them fit in %d values", in_c,
            in_h, in_w, HD_MODEL_MAX_INPUT_SIDE, max_batch, INT_MAX);
    if (hd_spec_parse(spec, model->specs, HD_MAX_LAYERS, &model->n_layers) != 0)
        return -1;
    hd_spec_format(model->specs, model->n_layers, model->spec_text, sizeof model->spec_text);
    model->input_mean = 0.0f;
    model->input_std = 1.0f;

    size_t cursor = 0, state_cursor = 0;
    int c = in_c, h = in_h, w = in_w;
    for (int i = 0; i < model->n_layers; i++) {
        hd_layer *layer = &model->layers[i];
        layer->spec = model->specs[i];
        layer->in_c = c;
        layer->in_h = h;
        layer->in_w = w;
        if (layer_shape(layer, i, max_batch, &cursor, &state_cursor) != 0)
            return -1;
        c = layer->out_c;
        h = layer->out_h;
        w = layer->out_w;
    }
    name_layers(model);
    model->classes = model->layers[model->n_layers - 1].out_c;
    model->param_count = cursor;
    model->state_count = state_cursor;
    return 0;
}

/* fused_pool for every layer: each conv followed by a max pooling, where `on` and the backend has the fused
 * op (hd_model_fuse). */
static void set_fusion(hd_model *model, int on) {
    const hd_backend_ops *ops = model->be->ops;
    int can = on && ops->conv2d_maxpool_forward && ops->conv2d_maxpool_backward;
    for (int i = 0; i < model->n_layers; i++)
        model->layers[i].fused_pool = can && i + 1 < model->n_layers &&
                                      model->layers[i].spec.kind == HD_LAYER_CONV &&
                                      model->layers[i + 1].spec.kind == HD_LAYER_MAXPOOL;
}

/* out and dout for every layer that has its own and lacks them (not a flatten, not a fused conv); -1 +
 * hd_fail() when the backend is out of memory (the buffers made so far stay, for the caller to free). */
static int alloc_activations(hd_model *model) {
    hd_backend *be = model->be;
    size_t mb = (size_t)model->max_batch;
    for (int i = 0; i < model->n_layers; i++) {
        hd_layer *layer = &model->layers[i];
        if (layer->spec.kind == HD_LAYER_FLATTEN || layer->fused_pool)
            continue;
        if (!layer->out && !(layer->out = be->ops->alloc(be, mb * layer->out_size)))
            return -1;
        if (!layer->dout && !(layer->dout = be->ops->alloc(be, mb * layer->out_size)))
            return -1;
    }
    return 0;
}

/* A fused conv's out and dout, where an unfused pass allocated them (hd_model_fuse), freed. */
static void free_fused_activations(hd_model *model) {
    hd_backend *be = model->be;
    for (int i = 0; i < model->n_layers; i++) {
        hd_layer *layer = &model->layers[i];
        if (!layer->fused_pool)
            continue;
        if (layer->out)
            be->ops->free(be, layer->out);
        if (layer->dout)
            be->ops->free(be, layer->dout);
        layer->out = layer->dout = NULL;
    }
}

int hd_model_create(hd_model *model, hd_backend *be, const char *spec, int in_c, int in_h, int in_w,
                    int max_batch) {
    if (hd_model_layout(model, spec, in_c, in_h, in_w, max_batch) != 0)
        return -1;
    model->be = be;
    set_fusion(model, 1);
    size_t cursor = model->param_count;
    size_t mb = (size_t)max_batch;
    if (check_memory(model) != 0)
        return -1;
    model->params = be->ops->alloc(be, cursor);
    model->grads = be->ops->alloc(be, cursor);
    model->input = be->ops->alloc(be, mb * in_c * in_h * in_w);
    model->labels = hd_backend_alloc_int32(be, mb);
    model->metrics = be->ops->alloc(be, 2);
    model->step = hd_backend_alloc_step_scalars(be);
    if (!model->params || !model->grads || !model->input || !model->labels || !model->metrics || !model->step)
        goto fail;
    if (model->state_count && !(model->state = be->ops->alloc(be, model->state_count)))
        goto fail;
    if (alloc_activations(model) != 0) /* a fused conv's output is never written: none (hd_model_fuse) */
        goto fail;
    for (int i = 0; i < model->n_layers; i++) {
        hd_layer *layer = &model->layers[i];
        if (layer->spec.kind == HD_LAYER_FLATTEN) {
            /* NCHW is already flat per image: alias the previous activations. */
            layer->out = i ? model->layers[i - 1].out : model->input;
            layer->dout = i ? model->layers[i - 1].dout : NULL;
            continue;
        }
        if (make_plan(model, layer) != 0)
            goto fail;
        if (layer->state_count && !(layer->saved = be->ops->alloc(be, layer->state_count)))
            goto fail;
    }
    return 0;
fail:
    hd_model_destroy(model);
    return -1;
}

int hd_model_fuse(hd_model *model, int on) {
    set_fusion(model, on);
    free_fused_activations(model); /* fused again: no stale activations */
    if (alloc_activations(model) == 0)
        return 0;
    set_fusion(model, 1); /* stay fused: what was just allocated goes */
    free_fused_activations(model);
    return -1;
}

const char *hd_class_name(const char *names, int c, char *buf, size_t len) {
    const char *line = names;
    for (int i = 0; line && i < c; i++)
        line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL;
    if (line && *line && *line != '\n')
        snprintf(buf, len, "%.*s", (int)strcspn(line, "\n"), line);
    else
        snprintf(buf, len, "%d", c);
    return buf;
}

void hd_model_destroy(hd_model *model) {
    hd_backend *be = model->be;
    free(model->class_names);
    model->class_names = NULL;
    if (!be)
        return;
    for (int i = 0; i < model->n_layers; i++) {
        hd_layer *layer = &model->layers[i];
        if (layer->spec.kind == HD_LAYER_FLATTEN)
            continue;
        if (layer->out) /* NULL: a fused conv's (hd_model_fuse) */
            be->ops->free(be, layer->out);
        if (layer->dout)
            be->ops->free(be, layer->dout);
        if (layer->saved)
            be->ops->free(be, layer->saved);
        if (layer->plan && layer->spec.kind == HD_LAYER_CONV)
            be->ops->conv2d_plan_free(be, layer->plan);
        if (layer->plan && layer->spec.kind == HD_LAYER_MAXPOOL)
            be->ops->maxpool_plan_free(be, layer->plan);
    }
    be->ops->free(be, model->params);
    be->ops->free(be, model->grads);
    be->ops->free(be, model->input);
    be->ops->free(be, model->labels);
    be->ops->free(be, model->metrics);
    be->ops->free(be, model->step);
    if (model->state)
        be->ops->free(be, model->state);
    memset(model, 0, sizeof *model);
}

int hd_model_init_weights(hd_model *model, uint64_t seed) {
    float *host = hd_calloc(model->param_count, sizeof(float));
    if (!host)
        return -1;
    float *state = hd_calloc(model->state_count ? model->state_count : 1, sizeof(float));
    if (!state) {
        free(host);
        return -1;
    }
    for (int i = 0; i < model->n_layers; i++) {
        const hd_layer *layer = &model->layers[i];
        if (layer->spec.kind == HD_LAYER_BATCHNORM) { /* scale 1, shift 0; running mean 0, variance 1 */
            for (size_t j = 0; j < layer->weight_count; j++)
                host[layer->weight_offset + j] = 1.0f;
            for (size_t j = 0; j < layer->state_count / 2; j++)
                state[layer->state_offset + layer->state_count / 2 + j] = 1.0f;
            continue;
        }
        if (!layer->weight_count)
            continue;
        /* Glorot uniform: U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)). */
        float limit = sqrtf(6.0f / ((float)layer->fan_in + (float)layer->fan_out));
        for (size_t j = 0; j < layer->weight_count; j++) {
            float u = hd_random_unit(seed, HD_RNG_STREAM_INIT, (uint64_t)i, j);
            host[layer->weight_offset + j] = (2.0f * u - 1.0f) * limit;
        }
    }
    int rc = hd_model_set_params(model, host);
    if (rc == 0)
        rc = hd_model_set_state(model, state);
    model->batches_tracked = 0;
    free(host);
    free(state);
    return rc;
}

void hd_model_set_step(hd_model *model, uint64_t step, float step_size, float average_weight) {
    const hd_step_scalars value = {step, step_size, average_weight};
    model->be->ops->set_step_scalars(model->be, model->step, &value);
}

/* The activations layer i reads: the output of the nearest layer before it that is not a flatten (which
 * only renames its input), else the model's input. Looked up on every pass, since the data pipeline points
 * model->input at a new batch each step: a flatten's alias taken when the model was built would still
 * name the model's own (idle) input buffer. */
static const float *layer_input(const hd_model *model, int i) {
    while (--i >= 0)
        if (model->layers[i].spec.kind != HD_LAYER_FLATTEN)
            return model->layers[i].out;
    return model->input;
}

/* A bn layer's channels: the input's (c, h, w) as c channels of h * w; a flat input is (features, 1, 1). */
static hd_batchnorm_shape batchnorm_shape(const hd_layer *layer) {
    hd_batchnorm_shape shape = {layer->in_c, layer->in_h * layer->in_w, HD_BN_EPS, HD_BN_MOMENTUM};
    return shape;
}

void hd_model_forward_layer(hd_model *model, int i, int n, int training, uint64_t seed) {
    hd_backend *be = model->be;
    hd_layer *layer = &model->layers[i];
    const float *x = layer_input(model, i);
    const float *weight = model->params + layer->weight_offset;
    const float *bias = model->params + layer->bias_offset;
    switch (layer->spec.kind) {
    case HD_LAYER_CONV:
        if (layer->fused_pool)
            be->ops->conv2d_maxpool_forward(be, layer->plan, layer[1].plan, n, x, weight, bias, layer[1].out);
        else
            be->ops->conv2d_forward(be, layer->plan, n, x, weight, bias, layer->out);
        break;
    case HD_LAYER_MAXPOOL:
        if (!hd_layer_pooled_by_conv(model, i)) /* else the convolution's op pooled */
            be->ops->maxpool_forward(be, layer->plan, n, x, layer->out);
        break;
    case HD_LAYER_AVGPOOL: {
        hd_pool_shape pool = pool_shape(model, layer);
        be->ops->avgpool_forward(be, &pool, n, x, layer->out);
        break;
    }
    case HD_LAYER_GAP:
        be->ops->gap_forward(be, n, layer->in_c, layer->in_h * layer->in_w, x, layer->out);
        break;
    case HD_LAYER_FLATTEN:
        break;
    case HD_LAYER_DENSE:
        be->ops->dense_forward(be, n, layer->in_c, layer->out_c, x, weight, bias, layer->out,
                               layer->spec.act);
        break;
    case HD_LAYER_DROPOUT:
        be->ops->dropout_forward(be, (size_t)n * layer->out_size, training ? layer->spec.rate : 0.0f, seed,
                                 (uint32_t)i, model->step, x, layer->out);
        break;
    case HD_LAYER_BATCHNORM: {
        hd_batchnorm_shape shape = batchnorm_shape(layer);
        be->ops->batchnorm_forward(be, &shape, n, training && !layer->frozen, x, weight, bias,
                                   model->state + layer->state_offset, layer->saved, layer->out);
        break;
    }
    case HD_LAYER_RELU:
        be->ops->relu_forward(be, (size_t)n * layer->out_size, x, layer->out);
        break;
    }
}

const float *hd_model_forward(hd_model *model, int n, int training, uint64_t seed) {
    for (int i = 0; i < model->n_layers; i++)
        hd_model_forward_layer(model, i, n, training, seed);
    return layer_input(model, model->n_layers);
}

void hd_model_loss(hd_model *model, int n, int want_grad) {
    hd_layer *last = &model->layers[model->n_layers - 1];
    model->be->ops->softmax_xent(model->be, n, model->classes, last->out, model->labels,
                                 want_grad ? model->label_smoothing : 0.0f, want_grad ? last->dout : NULL,
                                 (float)n, model->metrics);
}

int hd_model_first_trainable(const hd_model *model) {
    for (int i = 0; i < model->n_layers; i++)
        if (!model->layers[i].frozen && model->layers[i].weight_count + model->layers[i].bias_count > 0)
            return i;
    return model->n_layers;
}

void hd_model_backward_layer(hd_model *model, int i, int lowest, int n, uint64_t seed) {
    hd_backend *be = model->be;
    hd_layer *layer = &model->layers[i];
    const float *x = layer_input(model, i);
    /* no gradient for the input images, nor below the lowest trainable layer */
    float *dx = i > lowest ? model->layers[i - 1].dout : NULL;
    const float *weight = model->params + layer->weight_offset;
    float *dweight = model->grads + layer->weight_offset;
    float *dbias = model->grads + layer->bias_offset;
    switch (layer->spec.kind) {
    case HD_LAYER_CONV:
        if (layer->fused_pool)
            be->ops->conv2d_maxpool_backward(be, layer->plan, layer[1].plan, n, x, weight, layer[1].out,
                                             layer[1].dout, dx, dweight, dbias);
        else
            be->ops->conv2d_backward(be, layer->plan, n, x, weight, layer->out, layer->dout, dx, dweight,
                                     dbias);
        break;
    case HD_LAYER_MAXPOOL:
        if (!hd_layer_pooled_by_conv(model, i)) /* else the convolution's op routes the gradient */
            be->ops->maxpool_backward(be, layer->plan, n, x, layer->out, layer->dout, dx);
        break;
    case HD_LAYER_AVGPOOL:
        if (dx) {
            hd_pool_shape pool = pool_shape(model, layer);
            be->ops->avgpool_backward(be, &pool, n, layer->dout, dx);
        }
        break;
    case HD_LAYER_GAP:
        if (dx)
            be->ops->gap_backward(be, n, layer->in_c, layer->in_h * layer->in_w, layer->dout, dx);
        break;
    case HD_LAYER_FLATTEN:
        break;
    case HD_LAYER_DENSE:
        be->ops->dense_backward(be, n, layer->in_c, layer->out_c, x, weight, layer->out, layer->dout, dx,
                                dweight, dbias, layer->spec.act);
        break;
    case HD_LAYER_DROPOUT:
        if (dx)
            be->ops->dropout_backward(be, (size_t)n * layer->out_size, layer->spec.rate, seed, (uint32_t)i,
                                      model->step, layer->dout, dx);
        break;
    case HD_LAYER_BATCHNORM: {
        /* Backward follows a training forward: batch statistics unless the layer is frozen. */
        hd_batchnorm_shape shape = batchnorm_shape(layer);
        be->ops->batchnorm_backward(be, &shape, n, !layer->frozen, x, weight, layer->saved, layer->dout, dx,
                                    dweight, dbias);
        break;
    }
    case HD_LAYER_RELU:
        if (dx)
            be->ops->relu_backward(be, (size_t)n * layer->out_size, layer->out, layer->dout, dx);
        break;
    }
}

void hd_model_backward(hd_model *model, int n, uint64_t seed) {
    /* Nothing below the lowest trainable layer needs a gradient (--freeze): that layer computes no dx, and
     * the layers under it do no work at all. */
    int lowest = hd_model_first_trainable(model);
    for (int i = model->n_layers - 1; i >= lowest; i--)
        hd_model_backward_layer(model, i, lowest, n, seed);
}

int hd_model_get_params(const hd_model *model, float *host) {
    model->be->ops->download(model->be, host, model->params, model->param_count * sizeof(float));
    return 0;
}

int hd_model_set_params(hd_model *model, const float *host) {
    model->be->ops->upload(model->be, model->params, host, model->param_count * sizeof(float));
    return 0;
}

int hd_model_get_state(const hd_model *model, float *host) {
    if (model->state_count)
        model->be->ops->download(model->be, host, model->state, model->state_count * sizeof(float));
    return 0;
}

int hd_model_set_state(hd_model *model, const float *host) {
    if (model->state_count)
        model->be->ops->upload(model->be, model->state, host, model->state_count * sizeof(float));
    return 0;
}

/* FLOPs counted: the multiply-adds of conv and dense (2 each), and batch norm's element-wise work
 * (forward: the two statistics passes and the normalisation, about 2 + 3 + 2 per value; backward:
 * two sums and dx, about 4 + 5). ReLU, pooling and dropout are comparisons and copies, not counted. */
#define BN_FLOPS_FORWARD  7.0
#define BN_FLOPS_BACKWARD 9.0

double hd_layer_flops_forward(const hd_model *model, int i) {
    const hd_layer *l = &model->layers[i];
    if (l->spec.kind == HD_LAYER_CONV || l->spec.kind == HD_LAYER_DENSE)
        return 2.0 * (double)l->weight_count * (double)(l->out_h * l->out_w);
    if (l->spec.kind == HD_LAYER_BATCHNORM)
        return BN_FLOPS_FORWARD * (double)l->out_size;
    return 0.0;
}

double hd_layer_flops_backward(const hd_model *model, int i) {
    const hd_layer *l = &model->layers[i];
    if (l->spec.kind == HD_LAYER_BATCHNORM)
        return BN_FLOPS_BACKWARD * (double)l->out_size;
    if (l->spec.kind != HD_LAYER_CONV && l->spec.kind != HD_LAYER_DENSE)
        return 0.0;
    double gemm = 2.0 * (double)l->weight_count * (double)(l->out_h * l->out_w);
    /* the weight gradient, and the input gradient (none for the first layer) */
    return i > 0 ? 2.0 * gemm : gemm;
}

double hd_model_flops_forward(const hd_model *model) {
    double flops = 0.0;
    for (int i = 0; i < model->n_layers; i++)
        flops += hd_layer_flops_forward(model, i);
    return flops;
}

double hd_model_flops_backward(const hd_model *model) {
    double flops = 0.0;
    for (int i = 0; i < model->n_layers; i++)
        flops += hd_layer_flops_backward(model, i);
    return flops;
}
