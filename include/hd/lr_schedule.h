/* lr_schedule.h: learning-rate schedules stepped per batch (--lr-schedule). The rate of each step is
 * worked out once on the host (hd_lr_schedule_rate) and reaches the update as the optimizer's lr, through
 * hd_optimizer_next_step_size and model->step, so that a recorded step replays it. */
#ifndef HD_LR_SCHEDULE_H
#define HD_LR_SCHEDULE_H

#include <stdint.h>

typedef enum {
    HD_LR_CONSTANT = 0, /* the given rate, reduced on a validation-loss plateau (the default) */
    HD_LR_ONECYCLE = 1, /* PyTorch's OneCycleLR, anneal_strategy 'cos', no momentum cycling */
    HD_LR_COSINE = 2,   /* PyTorch's CosineAnnealingLR over the whole run, down to min_lr */
    HD_LR_EXP = 3       /* lr * decay^epoch, constant within an epoch (ExponentialLR stepped per epoch) */
} hd_lr_schedule_kind;

/* OneCycleLR's defaults, which --lr-schedule onecycle uses: start at peak / 25, end at start / 1e4. */
#define HD_ONECYCLE_DIV_FACTOR       25.0
#define HD_ONECYCLE_FINAL_DIV_FACTOR 1e4
/* --lr-decay's default: exp's factor per epoch. */
#define HD_LR_DECAY_DEFAULT 0.95

typedef struct {
    hd_lr_schedule_kind kind;
    double peak;                         /* --lr */
    double min_lr;                       /* cosine's floor (--min-lr) */
    double pct_start;                    /* onecycle: fraction of the steps spent rising (--pct-start) */
    uint64_t total;                      /* steps in the whole run */
    double div_factor, final_div_factor; /* onecycle: start = peak / div, end = start / final_div */
    double decay;                        /* exp: the factor per epoch (--lr-decay) */
    uint64_t steps_per_epoch;            /* exp: steps of a whole epoch (its epoch is step / this) */
} hd_lr_schedule;

/* The rate of step `step` (0-based; the optimizer's t before the step), as PyTorch's scheduler gives it
 * after `step` calls of scheduler.step() (exp: after step / steps_per_epoch calls, one an epoch).
 * Constant: peak. Steps past the end keep the last rate. */
double hd_lr_schedule_rate(const hd_lr_schedule *s, uint64_t step);

const char *hd_lr_schedule_name(hd_lr_schedule_kind kind);
/* The names, space separated ("constant onecycle cosine exp"). */
const char *hd_lr_schedule_names(void);
/* By name; -1 with "unknown learning-rate schedule 'x' (expected one of: ...)" otherwise. */
int hd_lr_schedule_parse(const char *name, hd_lr_schedule_kind *kind);

#endif
