/* lr_schedule.c: the learning-rate schedules of lr_schedule.h (per batch; exp per epoch), and their names. */
#include "hd/lr_schedule.h"
#include "hd/common.h"

#include <math.h>
#include <string.h>

#define SCHEDULES(X)                                                                                         \
    X("constant", HD_LR_CONSTANT)                                                                            \
    X("onecycle", HD_LR_ONECYCLE)                                                                            \
    X("cosine", HD_LR_COSINE)                                                                                \
    X("exp", HD_LR_EXP)
#define AS_ENTRY(name, kind) {name, kind},
#define AS_WORD(name, kind)  " " name
static const struct {
    const char *name;
    hd_lr_schedule_kind kind;
} schedules[] = {SCHEDULES(AS_ENTRY)};
#define N_SCHEDULES (sizeof schedules / sizeof schedules[0])

/* PyTorch's _annealing_cos: from start (pct 0) to end (pct 1) along half a cosine. */
static double anneal_cos(double start, double end, double pct) {
    return end + (start - end) / 2.0 * (cos(M_PI * pct) + 1.0);
}

/* OneCycleLR (torch/optim/lr_scheduler.py): two phases, rising from peak/div to peak over steps
 * 0..pct_start*total-1, then falling to peak/div/final_div at step total-1. */
static double onecycle(const hd_lr_schedule *s, double step) {
    double initial = s->peak / s->div_factor, final = initial / s->final_div_factor;
    double rise_end = s->pct_start * (double)s->total - 1.0, fall_end = (double)s->total - 1.0;
    if (step <= rise_end)
        return anneal_cos(initial, s->peak, rise_end > 0 ? step / rise_end : 1.0);
    double span = fall_end - rise_end;
    return anneal_cos(s->peak, final, span > 0 ? (step - rise_end) / span : 1.0);
}

double hd_lr_schedule_rate(const hd_lr_schedule *s, uint64_t step) {
    if (s->total == 0 || s->kind == HD_LR_CONSTANT)
        return s->peak;
    double t = (double)(step < s->total ? step : s->total - 1);
    if (s->kind == HD_LR_ONECYCLE)
        return onecycle(s, t);
    if (s->kind == HD_LR_EXP) { /* the epoch's rate, the same for each of its steps */
        uint64_t epoch = s->steps_per_epoch ? (uint64_t)t / s->steps_per_epoch : 0;
        return s->peak * pow(s->decay, (double)epoch);
    }
    /* CosineAnnealingLR with T_max = total: min + (peak - min) (1 + cos(pi t / T)) / 2. */
    return s->min_lr + (s->peak - s->min_lr) * (1.0 + cos(M_PI * t / (double)s->total)) / 2.0;
}

const char *hd_lr_schedule_name(hd_lr_schedule_kind kind) {
    for (size_t i = 0; i < N_SCHEDULES; i++)
        if (schedules[i].kind == kind)
            return schedules[i].name;
    return schedules[0].name;
}

const char *hd_lr_schedule_names(void) {
    return &(SCHEDULES(AS_WORD))[1]; /* past the first space */
}

int hd_lr_schedule_parse(const char *name, hd_lr_schedule_kind *kind) {
    for (size_t i = 0; i < N_SCHEDULES; i++) {
        if (strcmp(name, schedules[i].name) == 0) {
            *kind = schedules[i].kind;
            return 0;
        }
    }
    return hd_fail("unknown learning-rate schedule '%s' (expected one of: %s)", name, hd_lr_schedule_names());
}
