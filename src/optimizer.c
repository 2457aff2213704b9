/* optimizer.c: Adam and SGD with momentum over the model's one parameter array. The
 * per-element update is in shared_math.h; here only the per-step scalars are worked out, on the
 * host, and handed to the update through the model's step block (backend.h's hd_step_scalars). */
#include "hd/optimizer.h"
#include "hd/common.h"

#include <math.h>
#include <string.h>

void hd_optimizer_defaults(hd_optimizer *opt, hd_optimizer_kind kind) {
    memset(opt, 0, sizeof *opt);
    opt->kind = kind;
    opt->lr = kind == HD_OPT_ADAM ? 1e-3f : 1e-2f;
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

void hd_optimizer_update(const hd_optimizer *opt, hd_model *model) {
    hd_backend *be = model->be;
    if (opt->kind == HD_OPT_ADAM)
        be->ops->adam_step(be, opt->count, model->params, model->grads, opt->m, opt->v, opt->beta1,
                           opt->beta2, opt->eps, model->step);
    else
        be->ops->sgd_step(be, opt->count, model->params, model->grads, opt->m, opt->momentum, opt->nesterov,
                          model->step);
}

const char *hd_optimizer_name(hd_optimizer_kind kind) {
    return kind == HD_OPT_ADAM ? "adam" : "sgd";
}

int hd_optimizer_parse(const char *name, hd_optimizer_kind *kind) {
    if (strcmp(name, "adam") == 0)
        *kind = HD_OPT_ADAM;
    else if (strcmp(name, "sgd") == 0)
        *kind = HD_OPT_SGD;
    else
        return hd_fail("unknown optimizer '%s' (expected adam or sgd)", name);
    return 0;
}
