/* optimizer.h: Adam and SGD with momentum over a model's single parameter array.
 * Keras defaults: Adam lr 1e-3, beta1 0.9, beta2 0.999, eps 1e-7; SGD momentum 0.9.
 *
 * Weight averaging (--ema DECAY, as Keras' optimizers' use_ema / ema_momentum and timm's ModelEma): after
 * every update the optimizer folds the new weights, and the model's state that is not trained (batch
 * norm's running statistics, which go with them), into an exponential moving average:
 *   avg = avg + w_t (x - avg),  w_t = 1 - min(DECAY, (1 + t) / (10 + t))  (t = 1, 2, ...: the step),
 * the first step's average being its weights (w_1 = 1). The warm-up (TensorFlow's ExponentialMovingAverage
 * with num_updates) keeps the first steps' random weights from lingering in it. The average is what
 * evaluation and the kept checkpoint use (hd_optimizer_average_apply); training goes on from the live
 * weights. It is part of the optimizer's state: saved and restored with it. */
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
    float *m, *v;     /* backend memory; SGD uses m as the velocity */
    double ema_decay; /* --ema: the average's decay in [0, 1); 0: no average */
    float
        average_weight; /* w_t of the step hd_optimizer_next_step_size last counted (0 without an average) */
    /* The average (backend memory; NULL without one): of the parameters (count floats) and of the model's
     * state (state_count floats). */
    float *average, *average_state;
    size_t state_count;
    float *live; /* host: the live parameters and state while the average is applied (apply/restore) */
    int applied; /* the model holds the average (hd_optimizer_average_apply) */
} hd_optimizer;

void hd_optimizer_defaults(hd_optimizer *opt, hd_optimizer_kind kind);
/* Allocates state for the model's parameters (zeroed), and the average's when opt->ema_decay > 0. */
int hd_optimizer_init(hd_optimizer *opt, hd_model *model);
void hd_optimizer_free(hd_optimizer *opt, hd_model *model);
/* Counts one more step (t) and returns its step size, worked out on the host (in double, as
 * Keras): Adam's lr * sqrt(1 - beta2^t) / (1 - beta1^t), or SGD's lr. It reaches the update
 * through model->step (hd_model_set_step), so that a recorded step replays with this value. */
float hd_optimizer_next_step_size(hd_optimizer *opt);
/* w_t above: the share of step t's weights in an average of decay `decay` (0 when decay is 0). */
float hd_optimizer_average_weight(double decay, uint64_t t);
/* Queues the update of the trainable parameters from model->grads, with model->step's step size: every
 * layer but the frozen ones (hd_layer.frozen), whose parameters and optimizer state stay as they are. Then,
 * with an average, folds the parameters and the model's state into it with model->step's average_weight
 * (frozen layers' average stays their weights). */
void hd_optimizer_update(const hd_optimizer *opt, hd_model *model);
/* With an average: puts it into the model (parameters and state), keeping the live ones on the host, for
 * evaluation and for the checkpoint a run keeps; restore puts the live ones back before training goes on.
 * Both do nothing without an average, or when already done. */
int hd_optimizer_average_apply(hd_optimizer *opt, hd_model *model);
int hd_optimizer_average_restore(hd_optimizer *opt, hd_model *model);

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
