/* optimizer.h: Adam and SGD with momentum over a model's single parameter array.
 * Keras defaults: Adam lr 1e-3, beta1 0.9, beta2 0.999, eps 1e-7; SGD momentum 0.9. */
#ifndef HD_OPTIMIZER_H
#define HD_OPTIMIZER_H

#include "hd/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { HD_OPT_ADAM = 0, HD_OPT_SGD = 1 } hd_optimizer_kind;

typedef struct {
    hd_optimizer_kind kind;
    float lr;
    float beta1, beta2, eps; /* Adam */
    float momentum;          /* SGD */
    int nesterov;            /* SGD */
    uint64_t t;              /* steps taken */
    size_t count;
    float *m, *v; /* backend memory; SGD uses m as the velocity */
} hd_optimizer;

void hd_optimizer_defaults(hd_optimizer *opt, hd_optimizer_kind kind);
/* Allocates state for the model's parameters (zeroed). */
int hd_optimizer_init(hd_optimizer *opt, hd_model *model);
void hd_optimizer_free(hd_optimizer *opt, hd_model *model);
/* Counts one more step (t) and returns its step size, worked out on the host (in double, as
 * Keras): Adam's lr * sqrt(1 - beta2^t) / (1 - beta1^t), or SGD's lr. It reaches the update
 * through model->step (hd_model_set_step), so that a recorded step replays with this value. */
float hd_optimizer_next_step_size(hd_optimizer *opt);
/* Queues the update of the trainable parameters from model->grads, with model->step's step size: every
 * layer but the frozen ones (hd_layer.frozen), whose parameters and optimizer state stay as they are. */
void hd_optimizer_update(const hd_optimizer *opt, hd_model *model);

/* The optimizers by name: the one table that --optimizer, --help, checkpoints and settings.txt
 * read. Nesterov momentum is SGD's `nesterov` switch (as PyTorch's SGD(nesterov=True)), not a
 * name of its own. */
typedef struct {
    const char *name; /* as --optimizer, checkpoints and settings.txt spell it */
    hd_optimizer_kind kind;
    float lr; /* default learning rate */
} hd_optimizer_info;

const hd_optimizer_info *hd_optimizer_info_of(hd_optimizer_kind kind);
const char *hd_optimizer_name(hd_optimizer_kind kind);
/* The names, space separated ("adam sgd"). */
const char *hd_optimizer_names(void);
/* By name; -1 with "unknown optimizer 'x' (expected adam or sgd)" otherwise. */
int hd_optimizer_parse(const char *name, hd_optimizer_kind *kind);

#ifdef __cplusplus
}
#endif

#endif
