/* test_resume_settings.c: --resume reads the run's settings back from last.safetensors as strictly as
 * the command line reads them. Each case writes a last.safetensors whose training metadata is valid but
 * for one value, and hd_train must refuse it with a one-line error naming the file and the key, before
 * it touches any data (the datasets passed are empty). And what the trainer writes does read back. And
 * RUN_DIR/settings.txt, which the same table writes: its exact lines, and the values read back from it. */
#include "check.h"
#include "hd/backend.h"
#include "hd/common.h"
#include "hd/idx.h"
#include "hd/metrics.h"
#include "hd/run_settings.h"
#include "hd/safetensors.h"
#include "hd/trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *key, *value, *want; /* the value replaced, and a phrase the error must hold */
} bad_value;

static void expect_refused(hd_backend *be, const char *dir, const bad_value *bad) {
    const char *keys[4] = {"hd.train.seed", "hd.train.batch", "hd.train.augment", "hd.train.val_split"};
    const char *values[4] = {"1234", "128", "1", "0.1"};
    hd_st_meta meta[4];
    int n_meta = 0;
    for (int i = 0; i < 4; i++)
        if (strcmp(keys[i], bad->key) != 0 || bad->value)
            meta[n_meta++] = (hd_st_meta){keys[i], strcmp(keys[i], bad->key) == 0 ? bad->value : values[i]};
    char path[4200];
    snprintf(path, sizeof path, "%s/last.safetensors", dir);
    float x = 0.0f;
    hd_st_tensor tensor = {.name = "dense1.bias", .data = &x, .rank = 1, .dims = {1}};
    CHECK(hd_safetensors_write(path, &tensor, 1, meta, n_meta) == 0, "write %s: %s", path, hd_last_error());

    hd_train_config cfg;
    hd_train_config_defaults(&cfg);
    cfg.run_dir = dir;
    cfg.resume = 1;
    cfg.quiet = 1;
    hd_dataset none = {0};
    hd_train_result result;
    hd_clear_error();
    int rc = hd_train(be, &cfg, &none, &none, &result);
    const char *msg = hd_last_error();
    CHECK(rc != 0 && strstr(msg, path) && strstr(msg, bad->key) && strstr(msg, bad->want) &&
              !strchr(msg, '\n'),
          "%s = %s%s%s: want a one-line error naming the file, the key and '%s'; got rc %d '%s'", bad->key,
          bad->value ? "'" : "(absent)", bad->value ? bad->value : "", bad->value ? "'" : "", bad->want, rc,
          msg);
    if (rc != 0)
        printf("  refused as expected: %s\n", msg);
}

/* What the trainer itself writes must read back: one epoch on random images, then --resume to two. */
static void test_round_trip(hd_backend *be, const char *dir) {
    enum { n_train = 240, n_test = 40, side = 28 };
    static uint8_t pixels[(n_train + n_test) * side * side], labels[n_train + n_test];
    uint64_t rng = test_fresh_seed();
    for (size_t i = 0; i < sizeof pixels; i++)
        pixels[i] = (uint8_t)test_rand_u64(&rng);
    for (size_t i = 0; i < sizeof labels; i++)
        labels[i] = (uint8_t)(test_rand_u64(&rng) % 10);
    hd_dataset train = {n_train, side, side, pixels, labels, NULL};
    hd_dataset test = {n_test, side, side, pixels + n_train * side * side, labels + n_train, NULL};
    char run[4200];
    snprintf(run, sizeof run, "%s/runs/first", dir); /* not there yet: hd_train makes it, parents too */
    hd_train_config cfg;
    hd_train_config_defaults(&cfg);
    cfg.run_dir = run;
    cfg.spec = "flatten,dense:10";
    cfg.epochs = 1;
    cfg.batch = 32;
    cfg.quiet = 1;
    cfg.report = 0;
    hd_train_result result;
    CHECK(hd_train(be, &cfg, &train, &test, &result) == 0, "one epoch: %s", hd_last_error());
    cfg.epochs = 2; /* as `--resume RUN --epochs 2`: extends the run */
    cfg.given = hd_run_settings_bit("epochs");
    cfg.resume = 1;
    int rc = hd_train(be, &cfg, &train, &test, &result);
    CHECK(rc == 0, "resume of the trainer's own checkpoint refused: %s", hd_last_error());
    char csv[4300];
    snprintf(csv, sizeof csv, "%s/metrics.csv", run);
    hd_epoch_metrics *rows = NULL;
    int n = 0;
    CHECK(hd_metrics_csv_read(csv, &rows, &n) == 0 && n == 2, "resumed run has %d rows (want 2): %s", n,
          hd_last_error());
    free(rows);
}

static void test_settings_file(const char *dir) {
    char run[4200];
    snprintf(run, sizeof run, "%s/settings-file", dir);
    CHECK(hd_mkdir_p(run) == 0, "mkdir %s: %s", run, hd_last_error());
    hd_train_config cfg;
    hd_train_config_defaults(&cfg);
    cfg.run_dir = run;
    cfg.spec = "flatten,dense:10";
    cfg.optimizer = HD_OPT_SGD;
    cfg.lr = 0.05f;
    cfg.momentum = 0.7f; /* sgd's: a line of settings.txt (not in an adam run's) */
    cfg.epochs = 3;
    cfg.seed = 18446744073709551615ull;
    cfg.augment = 0;
    cfg.train_limit = 700;
    cfg.test_limit = 50; /* not a line of settings.txt */
    cfg.data_dir = "/data/mnist";
    CHECK(hd_run_settings_file_write(&cfg, "cpu (1 thread)") == 0, "write settings.txt: %s", hd_last_error());
    char *text = hd_run_settings_file_read(run);
    const char *want =
        "device: cpu (1 thread)\nmodel: flatten,dense:10\noptimizer: sgd\nlearning_rate: 0.05\n"
        "momentum: 0.7\nnesterov: off\nlr_schedule: constant\nbatch_size: 128\nepochs: 3\nseed: "
        "18446744073709551615\nvalidation_split: 0.1\n"
        "early_stopping_patience: 6\nreduce_lr_patience: 2\nreduce_lr_factor: 0.5\nmin_lr: "
        "1e-05\nlabel_smoothing: 0\n"
        "augmentation: off\nnormalize: off\ntrain_limit: 700\ndata: /data/mnist\n";
    CHECK(text && strcmp(text, want) == 0, "settings.txt is\n%s\nwant\n%s", text ? text : hd_last_error(),
          want);
    char value[64];
    CHECK(hd_run_settings_file_value(text, HD_SETTINGS_FILE_DATA, value, sizeof value) == 1 &&
              strcmp(value, "/data/mnist") == 0,
          "data read back as '%s'", value);
    CHECK(hd_run_settings_file_value(text, "epochs", value, sizeof value) == 1 && strcmp(value, "3") == 0,
          "epochs read back as '%s'", value);
    CHECK(hd_run_settings_file_value(text, "epoch", value, sizeof value) == 0, "'epoch' matched 'epochs: 3'");
    CHECK(hd_run_settings_file_value(text, "data", value, 5) == 0, "a value longer than the buffer was cut");
    CHECK(hd_run_settings_file_value(NULL, "data", value, sizeof value) == 0, "a value from no text");
    free(text);
    cfg.data_dir = NULL;
    CHECK(hd_run_settings_file_write(&cfg, "cpu") == 0, "rewrite settings.txt: %s", hd_last_error());
    text = hd_run_settings_file_read(run);
    CHECK(text && !strstr(text, "data:") && strstr(text, "train_limit: 700\n"),
          "settings.txt without --data:\n%s", text ? text : hd_last_error());
    free(text);
    snprintf(run, sizeof run, "%s/no-such-run", dir);
    CHECK(hd_run_settings_file_read(run) == NULL, "read settings.txt of a directory without one");
}

/* A checkpoint from before a setting existed (here: no hd.train.ema, no hd.train.augment_zoom) resumes with
 * the setting's default, what that run trained with, not with a value a preset put in (best's --ema 0.9998,
 * not given); a value given on the command line stands. */
static void test_setting_older_than_checkpoint(const char *dir) {
    const hd_st_meta meta[] = {{"hd.train.seed", "7"},
                               {"hd.train.batch", "64"},
                               {"hd.train.augment", "1"},
                               {"hd.train.val_split", "0"}};
    char path[4200];
    snprintf(path, sizeof path, "%s/older.safetensors", dir);
    float x = 0.0f;
    hd_st_tensor tensor = {.name = "dense1.bias", .data = &x, .rank = 1, .dims = {1}};
    hd_safetensors *file = NULL;
    CHECK(hd_safetensors_write(path, &tensor, 1, meta, 4) == 0 && hd_safetensors_read(path, &file) == 0,
          "write and read %s: %s", path, hd_last_error());
    if (!file)
        return;
    hd_train_config cfg;
    hd_train_config_defaults(&cfg);
    cfg.ema = 0.9998;        /* a preset's, not given */
    cfg.augment_zoom = 0.3f; /* given */
    cfg.given = hd_run_settings_bit("augment_zoom");
    hd_run_settings_text store;
    CHECK(hd_run_settings_restore(&cfg, file, path, &store) == 0, "restore: %s", hd_last_error());
    CHECK(cfg.ema == 0.0 && cfg.augment_zoom == 0.3f && cfg.batch == 64 && cfg.seed == 7,
          "restored: ema %g (want the default 0), zoom %g (given 0.3), batch %d, seed %llu", cfg.ema,
          (double)cfg.augment_zoom, cfg.batch, (unsigned long long)cfg.seed);
    hd_safetensors_free(file);
}

int main(void) {
    hd_cpu_options cpu = {.threads = 1};
    hd_backend *be = hd_cpu_backend_create(&cpu);
    char *dir = test_make_temp_dir("resume");
    CHECK(be && dir, "backend and temporary directory: %s", hd_last_error());
    static const bad_value cases[] = {
        {"hd.train.batch", "1e300", "expected a whole number in 1..65536"},
        {"hd.train.batch", "0", "expected a whole number in 1..65536"},
        {"hd.train.batch", "128abc", "'128abc'"},
        {"hd.train.batch", "99999999999999999999", "expected a whole number"},
        {"hd.train.augment", "2", "in 0..1"},
        {"hd.train.val_split", "nan", "expected a number in [0, 0.9]"},
        {"hd.train.val_split", "0.95", "expected a number in [0, 0.9]"},
        {"hd.train.seed", "-1", "at most 64 bits"},
        {"hd.train.seed", "18446744073709551616", "at most 64 bits"},
        {"hd.train.seed", NULL, "not a training checkpoint"},
        {"hd.train.batch", "12\n8", "'12\\n8'"},
    };
    for (size_t i = 0; be && dir && i < sizeof cases / sizeof cases[0]; i++)
        expect_refused(be, dir, &cases[i]);
    if (be && dir)
        test_round_trip(be, dir);
    if (dir)
        test_settings_file(dir);
    if (dir)
        test_setting_older_than_checkpoint(dir);
    if (dir)
        test_remove_tree(dir);
    free(dir);
    hd_backend_destroy(be);
    return test_finish();
}
