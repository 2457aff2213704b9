/* optimizer.c: Adam and SGD with momentum over the model's one parameter array. The
 * per-element update is in shared_math.h; here only the per-step scalars are worked out, on the
 * host, and handed to the update through the model's step block (backend.h's hd_step_scalars). */
#include "hd/optimizer.h"
#include "hd/common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* name, kind, default learning rate (Keras's) */
#define OPTIMIZERS(X)                                                                                        \
    X("adam", HD_OPT_ADAM, 1e-3f)                                                                            \
    X("sgd", HD_OPT_SGD, 1e-2f)
#define AS_ENTRY(name, kind, lr) {name, kind, lr},
#define AS_WORD(name, kind, lr)  " " name
static const hd_optimizer_info optimizers[] = {OPTIMIZERS(AS_ENTRY)};
#define N_OPTIMIZERS (sizeof optimizers / sizeof optimizers[0])

const hd_optimizer_info *hd_optimizer_info_of(hd_optimizer_kind kind) {
    for (size_t i = 0; i < N_OPTIMIZERS; i++)
        if (optimizers[i].kind == kind)
            return &optimizers[i];
    return &optimizers[0];
}

const char *hd_optimizer_name(hd_optimizer_kind kind) {
    return hd_optimizer_info_of(kind)->name;
}

const char *hd_optimizer_names(void) {
    return &(OPTIMIZERS(AS_WORD))[1]; /* past the first space */
}

int hd_optimizer_parse(const char *name, hd_optimizer_kind *kind) {
    for (size_t i = 0; i < N_OPTIMIZERS; i++) {
        if (strcmp(name, optimizers[i].name) == 0) {
            *kind = optimizers[i].kind;
            return 0;
        }
    }
    return hd_fail("unknown optimizer '%s' (expected one of: %s)", name, hd_optimizer_names());
}

void hd_optimizer_defaults(hd_optimizer *opt, hd_optimizer_kind kind) {
    memset(opt, 0, sizeof *opt);
    opt->kind = kind;
    opt->lr = hd_optimizer_info_of(kind)->lr;
    opt->beta1 = 0.9f;
    opt->beta2 = 0.999f;
    opt->eps = 1e-7f;
    opt->momentum = 0.9f;
}

int hd_optimizer_init(hd_optimizer *opt, hd_model *model) {
    hd_backend *be = model->be;
    opt->count = model->param_count;
    opt->state_count = model->state_count;
    opt->t = 0;
    opt->applied = 0;
    opt->m = be->ops->alloc(be, opt->count);
    opt->v = opt->kind == HD_OPT_ADAM ? be->ops->alloc(be, opt->count) : NULL;
    if (!opt->m || (opt->kind == HD_OPT_ADAM && !opt->v)) {
        hd_optimizer_free(opt, model);
        return -1;
    }
    if (!(opt->ema_decay > 0.0))
        return 0;
    if (!(opt->ema_decay < 1.0)) {
        hd_optimizer_free(opt, model);
        return hd_fail("--ema %g: the decay must be in [0, 1)", opt->ema_decay);
    }
    /* Zero-filled: the first step's w = 1 makes the average that step's weights exactly. */
    opt->average = be->ops->alloc(be, opt->count);
    opt->average_state = opt->state_count ? be->ops->alloc(be, opt->state_count) : NULL;
    opt->live = hd_malloc((opt->count + opt->state_count) * sizeof(float));
    if (!opt->average || (opt->state_count && !opt->average_state) || !opt->live) {
        hd_optimizer_free(opt, model);
        return -1;
    }
    return 0;
}

void hd_optimizer_free(hd_optimizer *opt, hd_model *model) {
    hd_backend *be = model->be;
    float *buffers[4] = {opt->m, opt->v, opt->average, opt->average_state};
    for (int i = 0; i < 4; i++)
        if (buffers[i])
            be->ops->free(be, buffers[i]);
    free(opt->live);
    opt->m = opt->v = opt->average = opt->average_state = opt->live = NULL;
}

float hd_optimizer_average_weight(double decay, uint64_t t) {
    if (!(decay > 0.0))
        return 0.0f;
    if (t <= 1)
        return 1.0f;
    double warm = (1.0 + (double)t) / (10.0 + (double)t);
    return (float)(1.0 - (decay < warm ? decay : warm));
}

float hd_optimizer_next_step_size(hd_optimizer *opt) {
    opt->t++;
    opt->average_weight = opt->average ? hd_optimizer_average_weight(opt->ema_decay, opt->t) : 0.0f;
    if (opt->kind != HD_OPT_ADAM)
        return opt->lr;
    double t = (double)opt->t;
    return (float)(opt->lr * sqrt(1.0 - pow((double)opt->beta2, t)) / (1.0 - pow((double)opt->beta1, t)));
}

/* The update over params[begin, end) (and the same ranges of grads and state). */
static void update_range(const hd_optimizer *opt, hd_model *model, size_t begin, size_t end) {
    hd_backend *be = model->be;
    if (end <= begin)
        return;
    if (opt->kind == HD_OPT_ADAM)
        be->ops->adam_step(be, end - begin, model->params + begin, model->grads + begin, opt->m + begin,
                           opt->v + begin, opt->beta1, opt->beta2, opt->eps, model->step);
    else
        be->ops->sgd_step(be, end - begin, model->params + begin, model->grads + begin, opt->m + begin,
                          opt->momentum, opt->nesterov, model->step);
}

void hd_optimizer_update(const hd_optimizer *opt, hd_model *model) {
    /* Frozen layers (--freeze) get no step at all, not even one from Adam's momentum: the update runs over
     * each stretch of consecutive trainable layers' parameters (one call over everything when none is
     * frozen). Parameters are in layer order, so a stretch is one contiguous range. */
    size_t begin = 0, end = 0;
    for (int i = 0; i < model->n_layers; i++) {
        const hd_layer *layer = &model->layers[i];
        size_t first = layer->weight_offset, count = layer->weight_count + layer->bias_count;
        if (count == 0)
            continue;
        if (layer->frozen) {
            update_range(opt, model, begin, end);
            begin = end = first + count;
        } else {
            end = first + count;
        }
    }
    update_range(opt, model, begin, end);
    if (!opt->average)
        return;
    /* Over every parameter, frozen ones too (an average of a constant is that constant, bit for bit). */
    hd_backend *be = model->be;
    be->ops->ema_update(be, opt->count, opt->average, model->params, model->step);
    if (opt->state_count)
        be->ops->ema_update(be, opt->state_count, opt->average_state, model->state, model->step);
}

/* model (params, state) <- the host copy `from` (count + state_count floats). */
static int set_model(const hd_optimizer *opt, hd_model *model, const float *from) {
    if (hd_model_set_params(model, from) != 0)
        return -1;
    return opt->state_count ? hd_model_set_state(model, from + opt->count) : 0;
}

int hd_optimizer_average_apply(hd_optimizer *opt, hd_model *model) {
    if (!opt->average || opt->applied)
        return 0;
    hd_backend *be = model->be;
    float *avg = hd_malloc((opt->count + opt->state_count) * sizeof(float));
    if (!avg || hd_model_get_params(model, opt->live) != 0 ||
        (opt->state_count && hd_model_get_state(model, opt->live + opt->count) != 0)) {
        free(avg);
        return -1;
    }
    be->ops->download(be, avg, opt->average, opt->count * sizeof(float));
    if (opt->state_count)
        be->ops->download(be, avg + opt->count, opt->average_state, opt->state_count * sizeof(float));
    int rc = set_model(opt, model, avg);
    free(avg);
    if (rc != 0) /* not half applied: the live weights back */
        set_model(opt, model, opt->live);
    opt->applied = rc == 0;
    return rc;
}

int hd_optimizer_average_restore(hd_optimizer *opt, hd_model *model) {
    if (!opt->average || !opt->applied)
        return 0;
    opt->applied = 0;
    return set_model(opt, model, opt->live);
}
