/* test_train_step.c: the optimizer's step size, its path to the update through the model's
 * step scalars, and hd_train_step on the CPU backend (which records nothing, so every step runs
 * op by op) against the same step written out by hand, on a model that runs every layer's own op
 * (hd_model_fuse off: the conv + max pooling fused op against the two ops, bit for bit, at the model's
 * level). Fresh random weights and batches. */
#include "check.h"
#include "hd/backend.h"
#include "hd/common.h"
#include "hd/model.h"
#include "hd/optimizer.h"
#include "hd/shared_math.h"
#include "hd/train_step.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Two conv + pooling pairs: on the CPU both run as the fused op, the second with its input gradient. */
#define SPEC  "conv:4:3:relu,maxpool:2,conv:6:3:relu,maxpool:2,flatten,dense:16:relu,dropout:0.5,dense:10"
#define BATCH 6
#define HW    10

static void test_step_sizes(void) {
    hd_optimizer adam, sgd;
    hd_optimizer_defaults(&adam, HD_OPT_ADAM);
    hd_optimizer_defaults(&sgd, HD_OPT_SGD);
    adam.lr = 2e-3f;
    for (int t = 1; t <= 5; t++) {
        float want = (float)(2e-3f * sqrt(1.0 - pow(0.999f, t)) / (1.0 - pow(0.9f, t)));
        float got = hd_optimizer_next_step_size(&adam);
        CHECK(got == want && adam.t == (uint64_t)t, "adam step size at t=%d: %.9g, expected %.9g", t,
              (double)got, (double)want);
        CHECK(hd_optimizer_next_step_size(&sgd) == sgd.lr, "sgd step size is not its learning rate");
    }
    /* Keras' warm start: the first step's size is lr * sqrt(0.001) / 0.1, about 3.16 lr. */
    hd_optimizer_defaults(&adam, HD_OPT_ADAM);
    float first = hd_optimizer_next_step_size(&adam);
    double keras = 1e-3 * sqrt(0.001) / 0.1; /* beta2 = 0.999f is 0.999 within 1.3e-8 */
    CHECK(fabs(first - keras) < 1e-5 * keras, "adam's first step size %.9g, not about %.9g", (double)first,
          keras);
}

static void fill_batch(hd_model *model, uint64_t *rng) {
    test_fill_uniform(model->input, (size_t)BATCH * HW * HW, 0.0f, 1.0f, rng);
    for (int i = 0; i < BATCH; i++)
        model->labels[i] = (int32_t)(test_rand_u64(rng) % 10);
}

static void test_runner_matches_hand_written_step(hd_backend *be, hd_optimizer_kind kind, uint64_t *rng) {
    hd_model by_runner, by_hand;
    int ok = hd_model_create(&by_runner, be, SPEC, 1, HW, HW, BATCH) == 0;
    ok = ok && hd_model_create(&by_hand, be, SPEC, 1, HW, HW, BATCH) == 0;
    CHECK(ok, "model: %s", hd_last_error());
    if (!ok)
        return;
    CHECK(by_runner.layers[0].fused_pool && by_runner.layers[2].fused_pool,
          "the CPU backend does not fuse each conv with its pooling");
    CHECK(hd_model_fuse(&by_hand, 0) == 0 && by_hand.layers[0].out && !by_hand.layers[0].fused_pool,
          "unfused: %s", hd_last_error());
    uint64_t init_seed = test_rand_u64(rng), seed = test_rand_u64(rng);
    hd_model_init_weights(&by_runner, init_seed);
    hd_model_init_weights(&by_hand, init_seed);
    hd_optimizer opt_runner, opt_hand;
    hd_optimizer_defaults(&opt_runner, kind);
    hd_optimizer_defaults(&opt_hand, kind);
    ok = hd_optimizer_init(&opt_runner, &by_runner) == 0 && hd_optimizer_init(&opt_hand, &by_hand) == 0;
    CHECK(ok, "optimizer: %s", hd_last_error());
    hd_train_step runner;
    hd_train_step_init(&runner, &by_runner, &opt_runner, seed);
    CHECK(!runner.recording_on, "the CPU backend claims to record steps");

    size_t count = by_runner.param_count;
    float *before = malloc(count * sizeof(float));
    memcpy(before, by_hand.params, count * sizeof(float));
    for (int step = 0; ok && step < 12; step++) {
        int n = step % 4 == 3 ? BATCH - 2 : BATCH;
        fill_batch(&by_hand, rng);
        memcpy(by_runner.input, by_hand.input, (size_t)BATCH * HW * HW * sizeof(float));
        memcpy(by_runner.labels, by_hand.labels, BATCH * sizeof(int32_t));
        uint64_t global_step = 1000 + (uint64_t)step;
        hd_train_step_run(&runner, n, global_step);

        hd_model_set_step(&by_hand, global_step, hd_optimizer_next_step_size(&opt_hand), 0.0f);
        CHECK(by_hand.step->step == global_step, "the step scalars hold step %llu, not %llu",
              (unsigned long long)by_hand.step->step, (unsigned long long)global_step);
        hd_model_forward(&by_hand, n, 1, seed);
        hd_model_loss(&by_hand, n, 1);
        hd_model_backward(&by_hand, n, seed);
        hd_optimizer_update(&opt_hand, &by_hand);
    }
    const char *name = kind == HD_OPT_ADAM ? "adam" : "sgd";
    CHECK(memcmp(by_runner.params, by_hand.params, count * sizeof(float)) == 0,
          "%s: hd_train_step and the hand-written step end with different weights", name);
    CHECK(memcmp(by_runner.metrics, by_hand.metrics, 2 * sizeof(float)) == 0, "%s: loss sums %.9g vs %.9g",
          name, (double)by_runner.metrics[0], (double)by_hand.metrics[0]);
    CHECK(runner.steps_run == 12 && runner.replays == 0, "%s: %llu steps run, %llu replayed", name,
          (unsigned long long)runner.steps_run, (unsigned long long)runner.replays);
    double moved = 0.0;
    for (size_t i = 0; i < count; i++)
        moved = fmax(moved, fabs((double)by_hand.params[i] - before[i]));
    CHECK(moved > 1e-4, "%s: the weights barely moved (%.3g)", name, moved);

    /* Adam's update reads its step size from the step scalars: zero there, no change (SGD's
     * momentum would still move the weights). */
    if (kind == HD_OPT_ADAM) {
        memcpy(before, by_hand.params, count * sizeof(float));
        hd_model_set_step(&by_hand, 0, 0.0f, 0.0f);
        hd_optimizer_update(&opt_hand, &by_hand);
        CHECK(memcmp(before, by_hand.params, count * sizeof(float)) == 0,
              "%s: an update with step size 0 changed the weights", name);
    }

    free(before);
    hd_train_step_free(&runner);
    hd_optimizer_free(&opt_runner, &by_runner);
    hd_optimizer_free(&opt_hand, &by_hand);
    hd_model_destroy(&by_runner);
    hd_model_destroy(&by_hand);
}

/* The weight average (--ema) of a network with batch norm and a frozen layer, trained by the runner, against
 * the average worked out here on the host from each step's weights, with optimizer.h's formula written
 * out again: bit for bit (both are the same three float operations). Then apply and restore. */
#define BN_SPEC "conv:4:3:relu,bn,maxpool:2,flatten,dense:16:relu,bn,dropout:0.5,dense:10"

static void test_weight_average(hd_backend *be, uint64_t *rng) {
    hd_model model;
    CHECK(hd_model_create(&model, be, BN_SPEC, 1, HW, HW, BATCH) == 0, "model: %s", hd_last_error());
    hd_model_init_weights(&model, test_rand_u64(rng));
    model.layers[0].frozen = 1; /* conv1: its average must stay its weights */
    hd_optimizer opt;
    hd_optimizer_defaults(&opt, HD_OPT_ADAM);
    const double decay = 0.3; /* the warm-up's (1 + t) / (10 + t) passes 0.3 at t = 3 */
    opt.ema_decay = decay;
    CHECK(hd_optimizer_init(&opt, &model) == 0 && opt.average && opt.average_state, "optimizer: %s",
          hd_last_error());
    hd_train_step ts;
    hd_train_step_init(&ts, &model, &opt, test_rand_u64(rng));
    size_t np = model.param_count, ns = model.state_count;
    float *want = calloc(np + ns, sizeof(float)),
          *conv1 = malloc(model.layers[0].weight_count * sizeof(float));
    memcpy(conv1, model.params + model.layers[0].weight_offset, model.layers[0].weight_count * sizeof(float));
    int differs = 0;
    for (uint64_t t = 1; t <= 8; t++) {
        fill_batch(&model, rng);
        hd_train_step_run(&ts, BATCH, t - 1);
        double warm = (1.0 + (double)t) / (10.0 + (double)t);
        float w = t == 1 ? 1.0f : (float)(1.0 - fmin(decay, warm));
        CHECK(opt.average_weight == w, "step %llu: average weight %.9g, expected %.9g", (unsigned long long)t,
              (double)opt.average_weight, (double)w);
        for (size_t i = 0; i < np; i++)
            want[i] = want[i] + w * (model.params[i] - want[i]);
        for (size_t i = 0; i < ns; i++)
            want[np + i] = want[np + i] + w * (model.state[i] - want[np + i]);
        CHECK(memcmp(want, opt.average, np * sizeof(float)) == 0 &&
                  memcmp(want + np, opt.average_state, ns * sizeof(float)) == 0,
              "step %llu: the average is not the host's", (unsigned long long)t);
        differs |= memcmp(opt.average, model.params, np * sizeof(float)) != 0;
    }
    CHECK(differs, "the average never differed from the live weights");
    CHECK(memcmp(opt.average + model.layers[0].weight_offset, conv1,
                 model.layers[0].weight_count * sizeof(float)) == 0,
          "a frozen layer's average moved off its weights");

    /* apply: the model holds the average; restore: the live weights again, bit for bit. */
    float *live = malloc((np + ns) * sizeof(float));
    memcpy(live, model.params, np * sizeof(float));
    memcpy(live + np, model.state, ns * sizeof(float));
    CHECK(hd_optimizer_average_apply(&opt, &model) == 0 && opt.applied, "apply: %s", hd_last_error());
    CHECK(hd_optimizer_average_apply(&opt, &model) == 0, "apply twice: %s", hd_last_error());
    CHECK(memcmp(model.params, want, np * sizeof(float)) == 0 &&
              memcmp(model.state, want + np, ns * sizeof(float)) == 0,
          "apply: the model does not hold the average");
    CHECK(hd_optimizer_average_restore(&opt, &model) == 0 && !opt.applied, "restore: %s", hd_last_error());
    CHECK(memcmp(model.params, live, np * sizeof(float)) == 0 &&
              memcmp(model.state, live + np, ns * sizeof(float)) == 0,
          "restore: the live weights did not come back");

    /* Without --ema: no average, weight 0, apply does nothing. */
    hd_optimizer plain;
    hd_optimizer_defaults(&plain, HD_OPT_SGD);
    CHECK(hd_optimizer_init(&plain, &model) == 0 && !plain.average, "plain optimizer");
    CHECK(hd_optimizer_next_step_size(&plain) > 0.0f && plain.average_weight == 0.0f,
          "an optimizer without an average has weight %g", (double)plain.average_weight);
    CHECK(hd_optimizer_average_apply(&plain, &model) == 0 && !plain.applied &&
              memcmp(model.params, live, np * sizeof(float)) == 0,
          "apply without an average changed the model");
    CHECK(hd_optimizer_average_weight(0.999, 1) == 1.0f && hd_optimizer_average_weight(0.0, 5) == 0.0f &&
              hd_optimizer_average_weight(0.999, 100000) == (float)(1.0 - 0.999),
          "hd_optimizer_average_weight's ends");
    opt.ema_decay = 1.0; /* a decay of 1 would never move: refused */
    hd_optimizer bad = opt;
    bad.m = bad.v = bad.average = bad.average_state = bad.live = NULL;
    CHECK(hd_optimizer_init(&bad, &model) != 0 && strstr(hd_last_error(), "[0, 1)"), "decay 1 accepted: %s",
          hd_last_error());

    free(live);
    free(want);
    free(conv1);
    hd_train_step_free(&ts);
    hd_optimizer_free(&plain, &model);
    hd_optimizer_free(&opt, &model);
    hd_model_destroy(&model);
}

/* ---- the runner's bookkeeping, on a CPU backend given mock record ops ----
 * The mock "records" by letting the ops run (the step computes at record time) and replays by
 * doing nothing, so only which steps are recorded and replayed is checked here; that replays
 * compute the right thing is gpu_test_graph's job. */

static struct { int recording, made, freed, replays, fail_end, stale_next; } mock;

static int mock_record_begin(hd_backend *be) {
    (void)be;
    mock.recording = 1;
    return 0;
}

static void *mock_record_end(hd_backend *be) {
    (void)be;
    mock.recording = 0;
    if (mock.fail_end) {
        hd_fail("mock: recording refused");
        return NULL;
    }
    mock.made++;
    return malloc(1);
}

static int mock_replay(hd_backend *be, void *recording) {
    (void)be;
    (void)recording;
    if (mock.stale_next) {
        mock.stale_next = 0;
        return hd_fail("mock: stale");
    }
    mock.replays++;
    return 0;
}

static void mock_recording_free(hd_backend *be, void *recording) {
    (void)be;
    free(recording);
    mock.freed++;
}

/* Steps cycling over `keys` input buffers (all of batch n). */
static void run_cycle(hd_train_step *ts, float **inputs, int keys, int steps, int n) {
    for (int s = 0; s < steps; s++) {
        ts->model->input = inputs[s % keys];
        hd_train_step_run(ts, n, (uint64_t)s);
    }
}

static void test_runner_bookkeeping(hd_backend *be) {
    hd_backend_ops ops = *be->ops;
    ops.record_begin = mock_record_begin;
    ops.record_end = mock_record_end;
    ops.replay = mock_replay;
    ops.recording_free = mock_recording_free;
    const hd_backend_ops *cpu_ops = be->ops;
    be->ops = &ops; /* the CPU ops as they are, plus the mock's */
    hd_model model;
    hd_optimizer opt;
    CHECK(hd_model_create(&model, be, SPEC, 1, HW, HW, BATCH) == 0, "model: %s", hd_last_error());
    hd_optimizer_defaults(&opt, HD_OPT_ADAM);
    CHECK(hd_optimizer_init(&opt, &model) == 0, "optimizer: %s", hd_last_error());
    float *own_input = model.input;
    enum { KEYS = HD_TRAIN_STEP_RECORDINGS + 1 };
    float *inputs[KEYS];
    for (int k = 0; k < KEYS; k++)
        inputs[k] = be->ops->alloc(be, (size_t)BATCH * HW * HW);
    hd_train_step ts;

    /* Two buffers in turn (the pipeline): the first step on each runs op by op, then recorded once, replayed.
     */
    memset(&mock, 0, sizeof mock);
    hd_train_step_init(&ts, &model, &opt, 1);
    CHECK(ts.recording_on, "the runner does not record on a backend with record ops");
    run_cycle(&ts, inputs, 2, 10, BATCH);
    CHECK(ts.recordings_made == 2 && mock.made == 2 && ts.replays == 8 && mock.replays == 8,
          "two buffers, 10 steps: %d recordings, %llu replays (expected 2 and 8)", ts.recordings_made,
          (unsigned long long)ts.replays);
    /* A smaller batch on the same buffer is another step: warmed up, then recorded. */
    model.input = inputs[0];
    hd_train_step_run(&ts, BATCH - 1, 10);
    hd_train_step_run(&ts, BATCH - 1, 11);
    CHECK(ts.recordings_made == 3 && ts.replays == 9, "smaller batch: %d recordings, %llu replays",
          ts.recordings_made, (unsigned long long)ts.replays);
    /* A stale recording is recorded again and replayed. */
    mock.stale_next = 1;
    model.input = inputs[1];
    hd_train_step_run(&ts, BATCH, 12);
    CHECK(ts.recordings_made == 4 && ts.replays == 10 && mock.freed == 1 && ts.recording_on,
          "stale: %d recordings, %llu replays, %d freed", ts.recordings_made, (unsigned long long)ts.replays,
          mock.freed);
    hd_train_step_free(&ts);
    CHECK(mock.freed == mock.made, "freed %d of %d recordings", mock.freed, mock.made);

    /* As many buffers as slots: all recorded and kept. One more than that: the least recently
     * used is evicted before its turn comes again, so nothing is ever replayed. */
    memset(&mock, 0, sizeof mock);
    hd_train_step_init(&ts, &model, &opt, 1);
    run_cycle(&ts, inputs, KEYS - 1, 3 * (KEYS - 1), BATCH);
    CHECK(ts.recordings_made == KEYS - 1 && ts.replays == (uint64_t)(2 * (KEYS - 1)),
          "%d buffers: %d recordings, %llu replays", KEYS - 1, ts.recordings_made,
          (unsigned long long)ts.replays);
    hd_train_step_free(&ts);
    memset(&mock, 0, sizeof mock);
    hd_train_step_init(&ts, &model, &opt, 1);
    run_cycle(&ts, inputs, KEYS, 3 * KEYS, BATCH);
    CHECK(ts.recordings_made == 0 && ts.replays == 0, "%d buffers: %d recordings, %llu replays", KEYS,
          ts.recordings_made, (unsigned long long)ts.replays);
    hd_train_step_free(&ts);

    /* A recording the backend refuses: a notice, and every step from then on op by op. */
    memset(&mock, 0, sizeof mock);
    mock.fail_end = 1;
    hd_train_step_init(&ts, &model, &opt, 1);
    run_cycle(&ts, inputs, 1, 5, BATCH);
    CHECK(!ts.recording_on && ts.recordings_made == 0 && ts.replays == 0 && ts.steps_run == 5,
          "refused recording: on %d, %d recordings, %llu replays", ts.recording_on, ts.recordings_made,
          (unsigned long long)ts.replays);
    CHECK(mock.recording == 0, "the mock was left recording");
    hd_train_step_free(&ts);

    model.input = own_input;
    for (int k = 0; k < KEYS; k++)
        be->ops->free(be, inputs[k]);
    hd_optimizer_free(&opt, &model);
    hd_model_destroy(&model);
    be->ops = cpu_ops;
}

int main(void) {
    uint64_t rng = test_fresh_seed();
    test_step_sizes();
    hd_cpu_options options = {2};
    hd_backend *be = hd_cpu_backend_create(&options);
    CHECK(be != NULL, "cpu backend");
    if (!be)
        return test_finish();
    test_runner_matches_hand_written_step(be, HD_OPT_ADAM, &rng);
    test_runner_matches_hand_written_step(be, HD_OPT_SGD, &rng);
    test_runner_bookkeeping(be);
    test_weight_average(be, &rng);
    hd_backend_destroy(be);
    return test_finish();
}
