/* test_train_recipe.c: the recipe settings of issue 24 through a whole (tiny, synthetic) run:
 *  - --val-split 0: no validation, the last weights kept (best.safetensors = last.safetensors's weights);
 *  - a one-cycle schedule: metrics.csv's lr is the closed-form rate of each epoch's last step;
 *  - Adam's betas and the schedule are recorded, restored by --resume, and a contradicting flag refused;
 *  - --normalize: the training images' mean and std recorded in the checkpoint, and the run's test loss
 *    is what the checkpoint gives on the test images in that convention;
 *  - --epochs 1.5: a whole epoch, then half of one (rows, optimizer steps, the schedule's end);
 *  - --lr-schedule exp: each epoch's rate lr * decay^epoch, --lr-decay recorded and restored by --resume;
 *  - --augment-rotation/-shift/-zoom reach the augmentation: all three 0 trains exactly as --no-augment
 *    (the identity transform samples each pixel where it is), the default ranges do not; recorded,
 *    restored by --resume, and a contradicting one refused;
 *  - --ema: best.safetensors holds the average, which the run's test loss is of, last.safetensors the live
 *    weights with the average beside them; a run stopped after an epoch and resumed ends with the same
 *    bits as one that was not; a contradicting --ema refused. */
#include "check.h"
#include "hd/backend.h"
#include "hd/checkpoint.h"
#include "hd/common.h"
#include "hd/dataset_split.h"
#include "hd/evaluate.h"
#include "hd/idx.h"
#include "hd/metrics.h"
#include "hd/run_settings.h"
#include "hd/safetensors.h"
#include "hd/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { n_train = 256, n_test = 40, side = 28, batch = 32, steps = (n_train + batch - 1) / batch };
static uint8_t pixels[(n_train + n_test) * side * side], labels[n_train + n_test];

static hd_train_config recipe(const char *run) {
    hd_train_config cfg;
    hd_train_config_defaults(&cfg);
    cfg.run_dir = run;
    cfg.spec = "flatten,dense:10";
    cfg.epochs = 1;
    cfg.batch = batch;
    cfg.quiet = 1;
    cfg.report = 0;
    cfg.val_fraction = 0.0;
    cfg.lr = 0.01f;
    cfg.lr_schedule = HD_LR_ONECYCLE;
    cfg.adam_beta1 = 0.7f;
    cfg.adam_beta2 = 0.9f;
    cfg.normalize = 1;
    return cfg;
}

/* Whether settings.txt (its text; NULL: not read) has the line "label: want". */
static int settings_say(const char *settings, const char *label, const char *want) {
    char value[64];
    return settings && hd_run_settings_file_value(settings, label, value, sizeof value) == 1 &&
           strcmp(value, want) == 0;
}

/* --resume RUN --epochs N, nothing else given: every other setting from the run. */
static hd_train_config resume_config(const char *run, double epochs) {
    hd_train_config cfg;
    hd_train_config_defaults(&cfg);
    cfg.run_dir = run;
    cfg.resume = 1;
    cfg.epochs = epochs;
    cfg.quiet = 1;
    cfg.report = 0;
    cfg.given = hd_run_settings_bit("epochs");
    return cfg;
}

static float onecycle_rate(uint64_t step, uint64_t total) {
    hd_lr_schedule s = {
        HD_LR_ONECYCLE, 0.01f, 0, 0.3, total, HD_ONECYCLE_DIV_FACTOR, HD_ONECYCLE_FINAL_DIV_FACTOR, 0, 0};
    return (float)hd_lr_schedule_rate(&s, step);
}

/* The weights a checkpoint holds, into params (count floats); with test_loss, also the loss it gives on the
 * test images, converted and normalised as the checkpoint says. */
static int load_params(hd_backend *be, const char *path, float *params, size_t count, double *test_loss) {
    /* Batches as large as the trainer's model evaluates in (the larger of the training and the evaluation
     * batch), so that the loss is summed in the same order, hence to the same bits. */
    hd_train_config defaults;
    hd_train_config_defaults(&defaults);
    int max_batch = batch > defaults.eval_batch ? batch : defaults.eval_batch;
    hd_model model;
    if (hd_model_create(&model, be, "flatten,dense:10", 1, side, side, max_batch) != 0)
        return -1;
    int rc = model.param_count == count ? hd_checkpoint_load(path, &model, NULL, NULL) : -1;
    if (rc == 0)
        rc = hd_model_get_params(&model, params);
    if (rc == 0 && test_loss) {
        hd_float_set set = {0};
        hd_eval_result eval = {0};
        rc = hd_float_set_from_bytes(&set, pixels + n_train * side * side, labels + n_train, side, side, NULL,
                                     n_test);
        if (rc == 0)
            hd_normalize_pixels(set.images, (size_t)n_test * side * side, model.input_mean, model.input_std);
        if (rc == 0)
            rc = hd_evaluate(&model, &set, &eval, NULL, NULL, NULL);
        *test_loss = eval.loss;
        hd_float_set_free(&set);
    }
    hd_model_destroy(&model);
    return rc;
}

/* A run of `epochs` epochs whose first `first` were trained when it was asked for `first` epochs. */
static void check_files(hd_backend *be, const char *run, int epochs, int first, double run_test_loss) {
    char path[4300];
    snprintf(path, sizeof path, "%s/metrics.csv", run);
    hd_epoch_metrics *rows = NULL;
    int n = 0;
    CHECK(hd_metrics_csv_read(path, &rows, &n) == 0 && n == epochs, "%d rows (want %d): %s", n, epochs,
          hd_last_error());
    for (int i = 0; i < n; i++) {
        /* each epoch's last step, of the schedule over the run as long as it was asked to be then (a
         * resumed run extended by --epochs spreads the schedule over its new length) */
        int asked = i < first ? first : epochs;
        float want = onecycle_rate((uint64_t)(i + 1) * steps - 1, (uint64_t)asked * steps);
        CHECK(isnan(rows[i].val_loss) && isnan(rows[i].val_acc) && rows[i].lr == want,
              "epoch %d: val_loss %g val_acc %g (no validation: NaN, not a measured 0), lr %.9g (want %.9g)",
              i + 1, rows[i].val_loss, rows[i].val_acc, rows[i].lr, (double)want);
    }
    free(rows);
    enum { count = side * side * 10 + 10 };
    static float last[count], best[count];
    char best_path[4300];
    snprintf(path, sizeof path, "%s/last.safetensors", run);
    snprintf(best_path, sizeof best_path, "%s/best.safetensors", run);
    double test_loss = -1.0;
    CHECK(load_params(be, path, last, count, NULL) == 0 &&
              load_params(be, best_path, best, count, &test_loss) == 0,
          "both checkpoints load: %s", hd_last_error());
    CHECK(test_loss == run_test_loss, "best.safetensors's test loss %.9g, the run's %.9g", test_loss,
          run_test_loss);
    CHECK(memcmp(last, best, sizeof last) == 0, "best.safetensors holds the last weights");
    hd_safetensors *file = NULL;
    CHECK(hd_safetensors_read(path, &file) == 0, "read %s: %s", path, hd_last_error());
    const char *schedule = file ? hd_safetensors_meta(file, "hd.train.lr_schedule") : NULL;
    const char *beta1 = file ? hd_safetensors_meta(file, "hd.train.adam_beta1") : NULL;
    const char *opt_beta2 = file ? hd_safetensors_meta(file, "hd.optimizer.beta2") : NULL;
    CHECK(schedule && strcmp(schedule, "onecycle") == 0, "recorded schedule %s",
          schedule ? schedule : "none");
    CHECK(beta1 && strcmp(beta1, "0.7") == 0, "recorded beta1 %s", beta1 ? beta1 : "none");
    CHECK(opt_beta2 && strcmp(opt_beta2, "0.9") == 0, "optimizer's beta2 %s", opt_beta2 ? opt_beta2 : "none");
    double sum = 0, sum_sq = 0,
           pixel_count = (double)n_train * side * side; /* all the training images: no validation */
    for (size_t i = 0; i < (size_t)pixel_count; i++) {
        double x = (double)((float)pixels[i] * (1.0f / 255.0f));
        sum += x;
        sum_sq += x * x;
    }
    double want_mean = sum / pixel_count, want_std = sqrt(sum_sq / pixel_count - want_mean * want_mean);
    const char *mean = file ? hd_safetensors_meta(file, "hd.input_mean") : NULL;
    const char *std = file ? hd_safetensors_meta(file, "hd.input_std") : NULL;
    CHECK(mean && std && fabs(atof(mean) - want_mean) < 1e-6 && fabs(atof(std) - want_std) < 1e-6,
          "recorded input mean %s std %s, want %.7f %.7f", mean ? mean : "none", std ? std : "none",
          want_mean, want_std);
    hd_safetensors_free(file);
}

static void test_fractional_epochs(hd_backend *be, const char *dir, const hd_dataset *train,
                                   const hd_dataset *test) {
    char run[4200], path[4300];
    snprintf(run, sizeof run, "%s/fraction", dir);
    hd_train_config cfg = recipe(run);
    cfg.epochs = 1.5; /* 8 batches, then 4 */
    hd_train_result result;
    CHECK(hd_train(be, &cfg, train, test, &result) == 0, "1.5 epochs: %s", hd_last_error());
    CHECK(result.epochs_run == 2 && result.best_epoch == 2, "epochs run %d, best %d", result.epochs_run,
          result.best_epoch);
    snprintf(path, sizeof path, "%s/metrics.csv", run);
    hd_epoch_metrics *rows = NULL;
    int n = 0;
    CHECK(hd_metrics_csv_read(path, &rows, &n) == 0 && n == 2, "%d rows (want 2): %s", n, hd_last_error());
    if (n == 2)
        CHECK(rows[0].lr == onecycle_rate(steps - 1, steps + steps / 2) &&
                  rows[1].lr == onecycle_rate(steps + steps / 2 - 1, steps + steps / 2),
              "the schedule spans 12 steps: lr %.9g after 8, %.9g after 12 (want %.9g, %.9g)", rows[0].lr,
              rows[1].lr, (double)onecycle_rate(steps - 1, steps + steps / 2),
              (double)onecycle_rate(steps + steps / 2 - 1, steps + steps / 2));
    free(rows);
    snprintf(path, sizeof path, "%s/last.safetensors", run);
    hd_safetensors *file = NULL;
    CHECK(hd_safetensors_read(path, &file) == 0, "read %s: %s", path, hd_last_error());
    const char *t = file ? hd_safetensors_meta(file, "hd.optimizer.t") : NULL;
    const char *epochs = file ? hd_safetensors_meta(file, "hd.train.epochs") : NULL;
    CHECK(t && strcmp(t, "12") == 0, "optimizer steps %s (want 12: 8 + 4)", t ? t : "none");
    CHECK(epochs && strcmp(epochs, "1.5") == 0, "recorded epochs %s", epochs ? epochs : "none");
    hd_safetensors_free(file);
    /* the half epoch counts as one done: --resume --epochs 2 has nothing to add */
    hd_train_config more = recipe(run);
    more.resume = 1;
    more.epochs = 2;
    more.given = hd_run_settings_bit("epochs");
    CHECK(hd_train(be, &more, train, test, &result) != 0 &&
              strstr(hd_last_error(), "--epochs 2: the run in") &&
              strstr(hd_last_error(), "has done 2 epochs"),
          "resume to 2 epochs: %s", hd_last_error());
    more.epochs = 3;
    CHECK(hd_train(be, &more, train, test, &result) == 0 && result.epochs_run == 3, "resume to 3 epochs: %s",
          hd_last_error());
}

/* --lr-schedule exp --lr-decay 0.5: metrics.csv's lr is 0.01 * 0.5^epoch (the rate of every step of that
 * epoch), the decay is recorded (checkpoint, settings.txt), restored by --resume, and a contradicting
 * --lr-decay refused; --label-smoothing 0.1 likewise recorded, restored and guarded. */
static void test_exp_schedule(hd_backend *be, const char *dir, const hd_dataset *train,
                              const hd_dataset *test) {
    char run[4200], path[4300];
    snprintf(run, sizeof run, "%s/exp", dir);
    hd_train_config cfg = recipe(run);
    cfg.lr_schedule = HD_LR_EXP;
    cfg.lr_decay = 0.5;
    cfg.label_smoothing = 0.1f;
    cfg.epochs = 2;
    hd_train_result result;
    CHECK(hd_train(be, &cfg, train, test, &result) == 0, "exp, 2 epochs: %s", hd_last_error());
    hd_train_config more = recipe(run);
    more.resume = 1;
    more.epochs = 3;
    more.lr_decay = HD_LR_DECAY_DEFAULT; /* not given: the run's 0.5 is taken */
    more.given = hd_run_settings_bit("epochs");
    CHECK(hd_train(be, &more, train, test, &result) == 0 && result.epochs_run == 3, "exp resumed: %s",
          hd_last_error());
    snprintf(path, sizeof path, "%s/metrics.csv", run);
    hd_epoch_metrics *rows = NULL;
    int n = 0;
    CHECK(hd_metrics_csv_read(path, &rows, &n) == 0 && n == 3, "%d rows (want 3): %s", n, hd_last_error());
    for (int i = 0; i < n; i++)
        CHECK(rows[i].lr == (float)(0.01f * pow(0.5, i)), "exp epoch %d: lr %.9g, want %.9g", i + 1,
              rows[i].lr, 0.01f * pow(0.5, i));
    free(rows);
    snprintf(path, sizeof path, "%s/last.safetensors", run);
    hd_safetensors *file = NULL;
    CHECK(hd_safetensors_read(path, &file) == 0, "read %s: %s", path, hd_last_error());
    const char *schedule = file ? hd_safetensors_meta(file, "hd.train.lr_schedule") : NULL;
    const char *decay = file ? hd_safetensors_meta(file, "hd.train.lr_decay") : NULL;
    const char *smoothing = file ? hd_safetensors_meta(file, "hd.train.label_smoothing") : NULL;
    CHECK(schedule && strcmp(schedule, "exp") == 0 && decay && atof(decay) == 0.5 && smoothing &&
              strcmp(smoothing, "0.1") == 0,
          "recorded schedule %s, decay %s, label smoothing %s", schedule ? schedule : "none",
          decay ? decay : "none", smoothing ? smoothing : "none");
    hd_safetensors_free(file);
    char *settings = hd_run_settings_file_read(run);
    CHECK(settings_say(settings, "lr_schedule", "exp") && settings_say(settings, "exp_lr_decay", "0.5") &&
              settings_say(settings, "label_smoothing", "0.1"),
          "settings.txt: %s", settings ? settings : hd_last_error());
    free(settings);
    more.epochs = 4;
    more.lr_decay = 0.9;
    more.given |= hd_run_settings_bit("lr_decay");
    CHECK(hd_train(be, &more, train, test, &result) != 0 && strstr(hd_last_error(), "--lr-decay 0.9") != NULL,
          "a contradicting --lr-decay refused: %s", hd_last_error());
    more.lr_decay = 0.5;
    more.label_smoothing = 0.2f;
    more.given = hd_run_settings_bit("epochs") | hd_run_settings_bit("label_smoothing");
    CHECK(hd_train(be, &more, train, test, &result) != 0 &&
              strstr(hd_last_error(), "--label-smoothing 0.2") != NULL,
          "a contradicting --label-smoothing refused: %s", hd_last_error());
}

/* Two-epoch runs of the same seed, with augmentation as given; the test loss they end at. */
static double augmented_run(hd_backend *be, const char *run, int augment, float rotation, float shift,
                            float zoom, const hd_dataset *train, const hd_dataset *test) {
    hd_train_config cfg = recipe(run);
    cfg.epochs = 2;
    cfg.overwrite = 1;
    cfg.augment = augment;
    cfg.augment_rotation = rotation;
    cfg.augment_shift = shift;
    cfg.augment_zoom = zoom;
    hd_train_result result;
    CHECK(hd_train(be, &cfg, train, test, &result) == 0, "augment %d (%g, %g, %g): %s", augment,
          (double)rotation, (double)shift, (double)zoom, hd_last_error());
    return result.test_loss;
}

static void test_augment_ranges(hd_backend *be, const char *dir, const hd_dataset *train,
                                const hd_dataset *test) {
    char run[4200];
    snprintf(run, sizeof run, "%s/augment", dir);
    double plain = augmented_run(be, run, 0, 0, 0, 0, train, test);
    double identity = augmented_run(be, run, 1, 0, 0, 0, train, test);
    double shifted = augmented_run(be, run, 1, 0, 3, 0, train, test);
    double defaults = augmented_run(be, run, 1, 10, 2, 0.1f, train, test);
    CHECK(identity == plain, "zero ranges: test loss %.17g, --no-augment %.17g (want the same bits)",
          identity, plain);
    CHECK(shifted != plain && defaults != plain && shifted != defaults,
          "the ranges change the run: shift 3 %.17g, defaults %.17g, none %.17g", shifted, defaults, plain);
    /* The last run (the default ranges) resumed with a larger shift: refused; with nothing given: its own. */
    hd_train_config more = recipe(run);
    more.resume = 1;
    more.epochs = 3;
    more.augment_shift = 3;
    more.given = hd_run_settings_bit("epochs") | hd_run_settings_bit("augment_shift");
    hd_train_result result;
    CHECK(hd_train(be, &more, train, test, &result) != 0 &&
              strstr(hd_last_error(), "--augment-shift 3 contradicts") != NULL,
          "a contradicting --augment-shift refused: %s", hd_last_error());
    more.augment_shift = 0; /* not given: the run's 2 is restored */
    more.given = hd_run_settings_bit("epochs");
    CHECK(hd_train(be, &more, train, test, &result) == 0 && result.epochs_run == 3, "resumed: %s",
          hd_last_error());
    char *settings = hd_run_settings_file_read(run);
    CHECK(settings_say(settings, "augment_rotation_deg", "10") &&
              settings_say(settings, "augment_shift_px", "2") &&
              settings_say(settings, "augment_zoom", "0.1"),
          "settings.txt: %s", settings ? settings : hd_last_error());
    free(settings);
}

/* The weights of `name` (optimizer.average.dense1.weight, ...) in a checkpoint, into out. */
static int tensor_of(const char *path, const char *name, float *out, size_t count) {
    hd_safetensors *file = NULL;
    if (hd_safetensors_read(path, &file) != 0)
        return -1;
    int rank = 0;
    int64_t dims[4] = {0};
    const float *data = hd_safetensors_find(file, name, &rank, dims);
    size_t have = rank == 2 ? (size_t)dims[0] * (size_t)dims[1] : rank == 1 ? (size_t)dims[0] : 0;
    int rc = data && have == count ? 0 : hd_fail("%s: no %zu-float tensor %s", path, count, name);
    if (rc == 0)
        memcpy(out, data, count * sizeof *out);
    hd_safetensors_free(file);
    return rc;
}

static void test_weight_average(hd_backend *be, const char *dir, const hd_dataset *train,
                                const hd_dataset *test) {
    char whole[4200], split[4200], path[4300];
    snprintf(whole, sizeof whole, "%s/ema-whole", dir);
    snprintf(split, sizeof split, "%s/ema-split", dir);
    /* A constant rate: a schedule spread over the run's length would differ between 1 + 1 and 2 epochs. */
    hd_train_config cfg = recipe(whole);
    cfg.lr_schedule = HD_LR_CONSTANT;
    cfg.ema = 0.9;
    cfg.epochs = 2;
    hd_train_result result;
    CHECK(hd_train(be, &cfg, train, test, &result) == 0, "--ema 0.9, 2 epochs: %s", hd_last_error());
    enum { count = side * side * 10 };
    static float last[count + 10], best[count + 10], average[count], resumed[count + 10];
    double best_loss = -1.0;
    snprintf(path, sizeof path, "%s/last.safetensors", whole);
    CHECK(load_params(be, path, last, count + 10, NULL) == 0 &&
              tensor_of(path, "optimizer.average.dense1.weight", average, count) == 0,
          "last.safetensors: %s", hd_last_error());
    snprintf(path, sizeof path, "%s/best.safetensors", whole);
    CHECK(load_params(be, path, best, count + 10, &best_loss) == 0, "best.safetensors: %s", hd_last_error());
    CHECK(memcmp(best, average, sizeof average) == 0, "best.safetensors does not hold the average");
    CHECK(memcmp(best, last, sizeof last) != 0, "the average is the last weights");
    CHECK(best_loss == result.test_loss, "the run's test loss %.17g is not its average's %.17g",
          result.test_loss, best_loss);
    char *settings = hd_run_settings_file_read(whole);
    CHECK(settings_say(settings, "ema_decay", "0.9"), "settings.txt: %s",
          settings ? settings : hd_last_error());
    free(settings);

    /* One epoch, then --resume to two: the same bits as the run straight through. */
    cfg = recipe(split);
    cfg.lr_schedule = HD_LR_CONSTANT;
    cfg.ema = 0.9;
    CHECK(hd_train(be, &cfg, train, test, &result) == 0, "--ema 0.9, 1 epoch: %s", hd_last_error());
    hd_train_config more = resume_config(split, 2);
    CHECK(hd_train(be, &more, train, test, &result) == 0, "resumed: %s", hd_last_error());
    snprintf(path, sizeof path, "%s/best.safetensors", split);
    CHECK(load_params(be, path, resumed, count + 10, NULL) == 0 && memcmp(resumed, best, sizeof best) == 0,
          "resumed: the average differs from the run's straight through (%s)", hd_last_error());
    snprintf(path, sizeof path, "%s/last.safetensors", split);
    CHECK(load_params(be, path, resumed, count + 10, NULL) == 0 && memcmp(resumed, last, sizeof last) == 0,
          "resumed: the live weights differ from the run's straight through (%s)", hd_last_error());
    CHECK(result.test_loss == best_loss, "resumed: test loss %.17g, straight through %.17g", result.test_loss,
          best_loss);
    more.epochs = 3;
    more.ema = 0.5;
    more.given |= hd_run_settings_bit("ema");
    CHECK(hd_train(be, &more, train, test, &result) != 0 &&
              strstr(hd_last_error(), "--ema 0.5 contradicts") != NULL,
          "a contradicting --ema refused: %s", hd_last_error());
}

int main(void) {
    hd_cpu_options cpu = {.threads = 1};
    hd_backend *be = hd_cpu_backend_create(&cpu);
    char *dir = test_make_temp_dir("recipe");
    CHECK(be && dir, "backend and temporary directory: %s", hd_last_error());
    if (!be || !dir)
        return test_finish();
    uint64_t rng = test_fresh_seed();
    for (size_t i = 0; i < sizeof pixels; i++)
        pixels[i] = (uint8_t)test_rand_u64(&rng);
    for (size_t i = 0; i < sizeof labels; i++)
        labels[i] = (uint8_t)(test_rand_u64(&rng) % 10);
    hd_dataset train = {n_train, side, side, pixels, labels, NULL};
    hd_dataset test = {n_test, side, side, pixels + n_train * side * side, labels + n_train, NULL};
    char run[4200];
    snprintf(run, sizeof run, "%s/run", dir);
    hd_train_config cfg = recipe(run);
    hd_train_result result;
    CHECK(hd_train(be, &cfg, &train, &test, &result) == 0, "one epoch: %s", hd_last_error());
    CHECK(result.no_validation == 1 && result.best_epoch == 1 && result.stopped_early == 0,
          "no validation %d, best epoch %d (the last), stopped early %d", result.no_validation,
          result.best_epoch, result.stopped_early);
    check_files(be, run, 1, 1, result.test_loss);

    /* --resume RUN --epochs 2: everything else from the run (the defaults here would be constant, 0.9) */
    hd_train_config more = resume_config(run, 2);
    CHECK(hd_train(be, &more, &train, &test, &result) == 0, "resumed: %s", hd_last_error());
    CHECK(result.epochs_run == 2 && result.best_epoch == 2, "epochs %d, best %d", result.epochs_run,
          result.best_epoch);
    check_files(be, run, 2, 1, result.test_loss);

    more.epochs = 3;
    more.lr_schedule = HD_LR_COSINE;
    more.given |= hd_run_settings_bit("lr_schedule");
    CHECK(hd_train(be, &more, &train, &test, &result) != 0 &&
              strstr(hd_last_error(), "--lr-schedule cosine contradicts the run being resumed") != NULL,
          "a contradicting schedule refused: %s", hd_last_error());
    test_fractional_epochs(be, dir, &train, &test);
    test_exp_schedule(be, dir, &train, &test);
    test_augment_ranges(be, dir, &train, &test);
    test_weight_average(be, dir, &train, &test);
    test_remove_tree(dir);
    free(dir);
    hd_backend_destroy(be);
    return test_finish();
}
