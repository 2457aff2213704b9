/* optimizer.c: Adam and SGD with momentum over the model's one parameter array. The
 * per-element update is in shared_math.h; here only the per-step scalars are worked out, on the
 * host, and handed to the update through the model's step block (backend.h's hd_step_scalars). */
#include "hd/optimizer.h"
#include "hd/common.h"

#include <math.h>
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
    opt->t = 0;
    opt->m = be->ops->alloc(be, opt->count);
    opt->v = opt->kind == HD_OPT_ADAM ? be->ops->alloc(be, opt->count) : NULL;
    if (!opt->m || (opt->kind == HD_OPT_ADAM && !opt->v)) {
        hd_optimizer_free(opt, model);
        return -1;
    }
    return 0;
}

void hd_optimizer_free(hd_optimizer *opt, hd_model *model) {
    hd_backend *be = model->be;
    if (opt->m)
        be->ops->free(be, opt->m);
    if (opt->v)
        be->ops->free(be, opt->v);
    opt->m = opt->v = NULL;
}

float hd_optimizer_next_step_size(hd_optimizer *opt) {
    opt->t++;
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
}
