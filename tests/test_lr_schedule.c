/* test_lr_schedule.c: the per-batch learning-rate schedules (lr_schedule.h) against closed-form values
 * and PyTorch's own test vector for OneCycleLR with anneal_strategy='cos'. */
#include "check.h"
#include "hd/common.h"
#include "hd/lr_schedule.h"

#include <math.h>
#include <string.h>

static int near(double got, double want) {
    return fabs(got - want) <= 1e-12 + 1e-9 * fabs(want);
}

/* half a cosine from start (pct 0) to end (pct 1), as PyTorch's test writes it */
static double cos_between(double start, double end, double pct) {
    return end + (start - end) / 2.0 * (cos(M_PI * pct) + 1.0);
}

/* test/optim/test_lrscheduler.py, test_onecycle_lr_cosine_annealing: max_lr 25, final_div_factor 2,
 * total_steps 10 (div_factor 25, pct_start 0.3). */
static void test_onecycle_pytorch_vector(void) {
    hd_lr_schedule s = {HD_LR_ONECYCLE, 25.0, 0.0, 0.3, 10, 25.0, 2.0, 0, 0};
    double want[10] = {1, 13, 25};
    for (int i = 3; i < 10; i++)
        want[i] = cos_between(25, 0.5, (i - 2) / 7.0);
    for (int i = 0; i < 10; i++)
        CHECK(near(hd_lr_schedule_rate(&s, (uint64_t)i), want[i]), "onecycle step %d: %.12g, want %.12g", i,
              hd_lr_schedule_rate(&s, (uint64_t)i), want[i]);
    CHECK(near(hd_lr_schedule_rate(&s, 10), 0.5) && near(hd_lr_schedule_rate(&s, 1000), 0.5),
          "past the end the last rate stays: %g", hd_lr_schedule_rate(&s, 1000));
}

/* The fast recipe's shape: peak 1e-2, 100 steps. Rise ends at step 29 (0.3 * 100 - 1). */
static void test_onecycle_closed_form(void) {
    hd_lr_schedule s = {
        HD_LR_ONECYCLE, 1e-2, 0.0, 0.3, 100, HD_ONECYCLE_DIV_FACTOR, HD_ONECYCLE_FINAL_DIV_FACTOR, 0, 0};
    CHECK(near(hd_lr_schedule_rate(&s, 0), 4e-4), "first step at peak/25: %g", hd_lr_schedule_rate(&s, 0));
    CHECK(near(hd_lr_schedule_rate(&s, 29), 1e-2), "peak at step 29: %g", hd_lr_schedule_rate(&s, 29));
    CHECK(near(hd_lr_schedule_rate(&s, 64), (1e-2 + 4e-8) / 2), "halfway down at step 64: %.12g",
          hd_lr_schedule_rate(&s, 64));
    CHECK(near(hd_lr_schedule_rate(&s, 99), 4e-8), "last step at peak/25/1e4: %g",
          hd_lr_schedule_rate(&s, 99));
    double rise = 0.0;
    for (uint64_t t = 1; t <= 29; t++)
        rise += hd_lr_schedule_rate(&s, t) > hd_lr_schedule_rate(&s, t - 1) ? 1 : 0;
    double fall = 0.0;
    for (uint64_t t = 30; t < 100; t++)
        fall += hd_lr_schedule_rate(&s, t) < hd_lr_schedule_rate(&s, t - 1) ? 1 : 0;
    CHECK(rise == 29 && fall == 70, "rises every step to 29 (%g of 29), falls every step after (%g of 70)",
          rise, fall);
    s.pct_start = 0.5;
    s.total = 21; /* rise ends at 9.5: step 9 is just below the peak, step 10 just past it */
    CHECK(near(hd_lr_schedule_rate(&s, 9), cos_between(4e-4, 1e-2, 9 / 9.5)) &&
              near(hd_lr_schedule_rate(&s, 10), cos_between(1e-2, 4e-8, 0.5 / 10.5)),
          "a fractional phase end: %.12g, %.12g", hd_lr_schedule_rate(&s, 9), hd_lr_schedule_rate(&s, 10));
}

static void test_cosine_and_constant(void) {
    hd_lr_schedule s = {HD_LR_COSINE, 1e-2, 1e-5, 0.3, 100, 25, 1e4, 0, 0};
    CHECK(near(hd_lr_schedule_rate(&s, 0), 1e-2), "cosine starts at the peak: %g",
          hd_lr_schedule_rate(&s, 0));
    CHECK(near(hd_lr_schedule_rate(&s, 50), (1e-2 + 1e-5) / 2), "halfway: %.12g",
          hd_lr_schedule_rate(&s, 50));
    double last = 1e-5 + (1e-2 - 1e-5) * (1 + cos(M_PI * 0.99)) / 2;
    CHECK(near(hd_lr_schedule_rate(&s, 99), last) && near(hd_lr_schedule_rate(&s, 500), last),
          "last step %.12g (want %.12g), kept past the end", hd_lr_schedule_rate(&s, 99), last);
    s.kind = HD_LR_CONSTANT;
    CHECK(hd_lr_schedule_rate(&s, 0) == 1e-2 && hd_lr_schedule_rate(&s, 77) == 1e-2, "constant is the peak");
}

/* exp: PyTorch's ExponentialLR(gamma) stepped once an epoch gives lr * gamma^epoch (its closed form,
 * _get_closed_form_lr), the same rate for every step of the epoch; Keras's LearningRateScheduler(lambda e:
 * lr * 0.95**e) likewise. 10 steps an epoch, 95 in all (a last epoch of 5). */
static void test_exp(void) {
    hd_lr_schedule s = {.kind = HD_LR_EXP, .peak = 1e-3, .total = 95, .decay = 0.95, .steps_per_epoch = 10};
    for (int step = 0; step < 10; step++)
        CHECK(hd_lr_schedule_rate(&s, (uint64_t)step) == 1e-3, "exp epoch 0, step %d: %.12g", step,
              hd_lr_schedule_rate(&s, (uint64_t)step));
    CHECK(near(hd_lr_schedule_rate(&s, 10), 9.5e-4) && near(hd_lr_schedule_rate(&s, 19), 9.5e-4),
          "epoch 1: %.12g, %.12g", hd_lr_schedule_rate(&s, 10), hd_lr_schedule_rate(&s, 19));
    CHECK(near(hd_lr_schedule_rate(&s, 25), 9.025e-4), "epoch 2: %.12g", hd_lr_schedule_rate(&s, 25));
    double last = 1e-3 * pow(0.95, 9);
    CHECK(near(hd_lr_schedule_rate(&s, 94), last) && near(hd_lr_schedule_rate(&s, 1000), last),
          "epoch 9 (the short last one) %.12g, kept past the end %.12g (want %.12g)",
          hd_lr_schedule_rate(&s, 94), hd_lr_schedule_rate(&s, 1000), last);
    s.decay = 1.0;
    CHECK(hd_lr_schedule_rate(&s, 0) == 1e-3 && hd_lr_schedule_rate(&s, 94) == 1e-3, "decay 1 is constant");
}

static void test_names(void) {
    hd_lr_schedule_kind kind = HD_LR_CONSTANT;
    CHECK(strcmp(hd_lr_schedule_names(), "constant onecycle cosine exp") == 0, "names: %s",
          hd_lr_schedule_names());
    CHECK(hd_lr_schedule_parse("onecycle", &kind) == 0 && kind == HD_LR_ONECYCLE, "parse onecycle");
    CHECK(strcmp(hd_lr_schedule_name(HD_LR_COSINE), "cosine") == 0, "name of cosine");
    CHECK(hd_lr_schedule_parse("exp", &kind) == 0 && kind == HD_LR_EXP, "parse exp");
    CHECK(hd_lr_schedule_parse("step", &kind) != 0 &&
              strstr(hd_last_error(), "unknown learning-rate schedule 'step'") != NULL,
          "an unknown name is refused: %s", hd_last_error());
}

int main(void) {
    test_onecycle_pytorch_vector();
    test_onecycle_closed_form();
    test_cosine_and_constant();
    test_exp();
    test_names();
    return test_finish();
}
