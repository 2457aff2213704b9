/* test_run_safety.c: what keeps a user's runs and data safe, on small random sets in memory:
 *  - images of another shape than the model's are refused, naming the file and both shapes (train, eval
 *    and hd_evaluate itself), never copied past the input buffer;
 *  - a run directory holding a run is refused unless resumed or overwritten; a second training into a
 *    locked one fails at once naming the holder's process; an unwritable one fails before any training;
 *  - --resume restores every setting that defines the run, refuses a contradicting one (but --epochs),
 *    and refuses other data;
 *  - a signal stops a training after its step with last.safetensors saved, and the resumed run is the
 *    uninterrupted one, bit for bit;
 *  - checkpoints with NaN or infinite weights are refused naming the file and the tensor (a bad spec in one:
 *    cli_test.sh). */
#include "check.h"
#include "hd/checkpoint.h"
#include "hd/common.h"
#include "hd/evaluate.h"
#include "hd/interrupt.h"
#include "hd/metrics.h"
#include "hd/run_dir.h"
#include "hd/run_settings.h"
#include "hd/safetensors.h"
#include "hd/trainer.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPEC "flatten,dense:24:relu,dropout:0.25,dense:10"

/* A random labelled set of count side x side images; `source` names it in messages. */
static hd_dataset random_set(int count, int side, uint64_t *rng, const char *source) {
    hd_dataset d = {count, side, side, NULL, NULL, NULL};
    d.images = malloc((size_t)count * side * side);
    d.labels = malloc((size_t)count);
    d.source = strdup(source);
    for (size_t i = 0; d.images && i < (size_t)count * side * side; i++)
        d.images[i] = (uint8_t)test_rand_u64(rng);
    for (int i = 0; d.labels && i < count; i++)
        d.labels[i] = (uint8_t)(test_rand_u64(rng) % 10);
    return d;
}

static hd_train_config small_config(const char *run_dir, int epochs) {
    hd_train_config cfg;
    hd_train_config_defaults(&cfg);
    cfg.run_dir = run_dir;
    cfg.spec = SPEC;
    cfg.epochs = epochs;
    cfg.batch = 32;
    cfg.quiet = 1;
    cfg.report = 0;
    cfg.seed = 77;
    return cfg;
}

static int has(const char *text, const char *part) {
    return text && part && strstr(text, part) != NULL;
}

static int exists(const char *dir, const char *name) {
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static char *meta_of(const char *dir, const char *name, const char *key) {
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    hd_safetensors *file = NULL;
    if (hd_safetensors_read(path, &file) != 0)
        return NULL;
    const char *value = hd_safetensors_meta(file, key);
    char *copy = value ? strdup(value) : NULL;
    hd_safetensors_free(file);
    return copy;
}

/* 0. The batch the data pipeline points the model at is the one it trains on, whatever the first layer:
 * a model starting with flatten read its own (idle) input buffer through an alias taken when it was built,
 * and trained on zeros. Forward and backward with the images in a separate buffer must equal the same
 * passes with the images in the model's own buffer. */
static void test_input_repointed(hd_backend *be, uint64_t *rng) {
    enum { n = 4, pixels = 28 * 28 };
    static const char *const specs[2] = {"flatten,dense:10", "flatten,flatten,dense:6:relu,dense:10"};
    for (int s = 0; s < 2; s++) {
        hd_model model;
        CHECK(hd_model_create(&model, be, specs[s], 1, 28, 28, n) == 0 &&
                  hd_model_init_weights(&model, 9) == 0,
              "model %s: %s", specs[s], hd_last_error());
        float images[n * pixels], logits[2][n * 10];
        int32_t labels[n] = {1, 7, 3, 0};
        test_fill_uniform(images, n * pixels, 0.0f, 1.0f, rng);
        float *grads[2] = {malloc(model.param_count * sizeof(float)),
                           malloc(model.param_count * sizeof(float))};
        float *own = model.input, *other = be->ops->alloc(be, n * pixels);
        be->ops->upload(be, model.labels, labels, sizeof labels);
        for (int pass = 0; pass < 2; pass++) {
            be->ops->zero(be, own, n * pixels * sizeof(float));
            be->ops->upload(be, pass ? other : own, images, sizeof images);
            model.input = pass ? other : own;
            be->ops->download(be, logits[pass], hd_model_forward(&model, n, 0, 0), sizeof logits[pass]);
            hd_model_loss(&model, n, 1);
            hd_model_backward(&model, n, 0);
            be->ops->download(be, grads[pass], model.grads, model.param_count * sizeof(float));
        }
        model.input = own;
        check_tensor("logits, images in another buffer", logits[1], logits[0], n * 10, 0.0, 0.0);
        check_tensor("gradients, images in another buffer", grads[1], grads[0], model.param_count, 0.0, 0.0);
        be->ops->free(be, other);
        free(grads[0]);
        free(grads[1]);
        hd_model_destroy(&model);
    }
}

/* 1. Shapes. */
static void test_shapes(hd_backend *be, const char *root, const hd_dataset *train, uint64_t *rng) {
    hd_dataset test32 = random_set(40, 32, rng, "t10k-images-32x32");
    char run[4300];
    snprintf(run, sizeof run, "%s/shape-run", root);
    hd_train_config cfg = small_config(run, 1);
    hd_train_result result;
    int rc = hd_train(be, &cfg, train, &test32, &result);
    const char *msg = hd_last_error();
    CHECK(rc == -1 && has(msg, "t10k-images-32x32") && has(msg, "1x32x32") && has(msg, "1x28x28"),
          "a 32x32 test set beside 28x28 training images: rc %d, '%s'", rc, msg);
    CHECK(!exists(run, "last.safetensors"), "refused before training");

    /* hd_evaluate on its own: a set of the wrong shape is refused, not copied past the buffer. */
    hd_model model;
    CHECK(hd_model_create(&model, be, SPEC, 1, 28, 28, 16) == 0, "model: %s", hd_last_error());
    hd_float_set set = {0};
    CHECK(hd_float_set_from_bytes(&set, test32.images, test32.labels, 32, 32, NULL, test32.count) == 0,
          "float set");
    hd_eval_result r;
    rc = hd_evaluate(&model, &set, &r, NULL, NULL, NULL);
    CHECK(rc == -1 && has(hd_last_error(), "1x32x32") && has(hd_last_error(), "1x28x28"),
          "hd_evaluate on 32x32 images with a 28x28 model: rc %d, '%s'", rc, hd_last_error());
    CHECK(hd_model_check_input(&model, "x", 1, 28, 28) == 0, "the model's own shape passes");
    CHECK(hd_model_check_input(&model, "x", 3, 28, 28) == -1, "three channels are refused");
    hd_float_set_free(&set);
    hd_model_destroy(&model);
    hd_dataset_free(&test32);
}

/* 2. The run directory: refusal, overwrite, lock, writability. */
static void test_run_dir(hd_backend *be, const char *root, const hd_dataset *train, const hd_dataset *test) {
    char run[4300];
    snprintf(run, sizeof run, "%s/claimed", root);
    hd_train_config cfg = small_config(run, 1);
    hd_train_result result;
    CHECK(hd_train(be, &cfg, train, test, &result) == 0, "first run: %s", hd_last_error());
    char *before = meta_of(run, "last.safetensors", "hd.train.global_step");
    CHECK(hd_train(be, &cfg, train, test, &result) == -1 && has(hd_last_error(), "holds a run already") &&
              has(hd_last_error(), "--resume") && has(hd_last_error(), "--overwrite"),
          "a second run into the same directory: '%s'", hd_last_error());
    char *after = meta_of(run, "last.safetensors", "hd.train.global_step");
    CHECK(before && after && strcmp(before, after) == 0, "the first run's checkpoint is untouched");
    free(before);
    free(after);

    /* --overwrite: the old run's files go, so none can be mistaken for the new run's. */
    char planted[4400];
    snprintf(planted, sizeof planted, "%s/report.html", run);
    CHECK(hd_write_file_atomic(planted, "old", 3) == 0, "plant an old report");
    cfg.overwrite = 1;
    CHECK(hd_train(be, &cfg, train, test, &result) == 0, "--overwrite: %s", hd_last_error());
    CHECK(!exists(run, "report.html") && exists(run, "last.safetensors"),
          "--overwrite removed the old report (report off in the new run) and wrote a new checkpoint");
    cfg.overwrite = 0;

    /* The lock: a holder makes a second claim fail at once, naming the holder's process. */
    hd_run_lock held, second;
    CHECK(hd_run_dir_claim(run, HD_RUN_RESUME, &held) == 0, "claim: %s", hd_last_error());
    char pid[32];
    snprintf(pid, sizeof pid, "process %ld", (long)getpid());
    CHECK(hd_run_dir_claim(run, HD_RUN_RESUME, &second) == -1 && has(hd_last_error(), pid) &&
              has(hd_last_error(), "in use"),
          "a second claim while held: '%s'", hd_last_error());
    cfg.resume = 1;
    CHECK(hd_train(be, &cfg, train, test, &result) == -1 && has(hd_last_error(), pid),
          "hd_train into a held directory: '%s'", hd_last_error());
    hd_run_dir_release(&held);
    CHECK(hd_run_dir_claim(run, HD_RUN_RESUME, &second) == 0, "claim after release: %s", hd_last_error());
    hd_run_dir_release(&second);

    /* A directory that cannot be written is refused before anything runs, whoever runs the test: /proc/self
     * takes no new files even from root. */
    hd_run_lock lock;
    CHECK(hd_run_dir_claim("/proc/self", HD_RUN_NEW, &lock) == -1 && has(hd_last_error(), "/proc/self") &&
              has(hd_last_error(), "cannot write"),
          "an unwritable directory: '%s'", hd_last_error());
    if (geteuid() != 0) { /* mode bits stop everyone but root */
        CHECK(chmod(run, 0555) == 0, "chmod");
        CHECK(hd_train(be, &cfg, train, test, &result) == -1 && has(hd_last_error(), "cannot write"),
              "resume into a read-only run directory: '%s'", hd_last_error());
        CHECK(chmod(run, 0755) == 0, "chmod back");
    }
}

/* 3. --resume restores the run's settings and data. */
static void test_resume_settings(hd_backend *be, const char *root, const hd_dataset *train,
                                 const hd_dataset *test) {
    char run[4300];
    snprintf(run, sizeof run, "%s/settings-run", root);
    hd_train_config cfg = small_config(run, 1);
    cfg.train_limit = 160;
    cfg.val_fraction = 0.25;
    cfg.lr_patience = 3;
    hd_train_result result;
    CHECK(hd_train(be, &cfg, train, test, &result) == 0, "one epoch: %s", hd_last_error());

    /* `--resume RUN` alone: the defaults on the command line do not replace the run's settings. */
    hd_train_config again;
    hd_train_config_defaults(&again);
    again.run_dir = run;
    again.resume = 1;
    again.quiet = 1;
    again.report = 0;
    CHECK(hd_train(be, &again, train, test, &result) == 0 && result.epochs_run == 1,
          "resume with nothing given keeps the run's 1 epoch (not the default 40): rc, epochs %d: %s",
          result.epochs_run, hd_last_error());
    char path[4400];
    snprintf(path, sizeof path, "%s/settings.txt", run);
    uint8_t *text = NULL;
    size_t size = 0;
    CHECK(hd_read_file(path, &text, &size) == 0, "settings.txt");
    const char *t = (const char *)text;
    CHECK(has(t, "batch_size: 32\n") && has(t, "train_limit: 160\n") && has(t, "validation_split: 0.25\n") &&
              has(t, "reduce_lr_patience: 3\n") &&
              has(t, "model: flatten,dense:24:relu,dropout:0.25,dense:10"),
          "settings.txt of the resumed run holds the run's own settings:\n%s", t ? t : "");
    free(text);

    /* A flag that contradicts the run is refused, naming it, both values and the file. */
    again.batch = 64;
    again.given = hd_run_settings_bit("batch");
    CHECK(hd_train(be, &again, train, test, &result) == -1 && has(hd_last_error(), "--batch-size 64") &&
              has(hd_last_error(), "32") && has(hd_last_error(), "last.safetensors"),
          "--batch-size 64 on a batch-32 run: '%s'", hd_last_error());
    again.batch = 128;
    again.augment = 0;
    again.given = hd_run_settings_bit("augment");
    CHECK(hd_train(be, &again, train, test, &result) == -1 && has(hd_last_error(), "--no-augment"),
          "--no-augment on an augmented run: '%s'", hd_last_error());
    again.augment = 1;
    /* Giving a setting with the run's own value is fine. */
    again.batch = 32;
    again.given = hd_run_settings_bit("batch");
    CHECK(hd_train(be, &again, train, test, &result) == 0, "--batch-size 32 on a batch-32 run: %s",
          hd_last_error());

    /* --epochs extends the run, and the run records it. */
    again.epochs = 2;
    again.given = hd_run_settings_bit("epochs");
    CHECK(hd_train(be, &again, train, test, &result) == 0 && result.epochs_run == 2, "--epochs 2: %s",
          hd_last_error());
    char *epochs = meta_of(run, "last.safetensors", "hd.train.epochs");
    CHECK(epochs && strcmp(epochs, "2") == 0, "the checkpoint records epochs 2 (%s)",
          epochs ? epochs : "none");
    free(epochs);
    CHECK(hd_train(be, &again, train, test, &result) == -1 && has(hd_last_error(), "done 2 epochs already"),
          "--epochs 2 on a run that has done 2: '%s'", hd_last_error());

    /* Other training data: one pixel changed is enough to be refused. */
    hd_dataset other = *train;
    other.images = malloc((size_t)train->count * train->rows * train->cols);
    memcpy(other.images, train->images, (size_t)train->count * train->rows * train->cols);
    other.images[12345] ^= 1;
    again.epochs = 3;
    CHECK(hd_train(be, &again, &other, test, &result) == -1 && has(hd_last_error(), "other data"),
          "resume on other data: '%s'", hd_last_error());
    free(other.images);

    CHECK(hd_run_settings_bit("no such") == 0, "an unknown key has no bit");
}

/* 3b. Leftovers that must not block: settings.txt alone (a start that failed before its first checkpoint)
 * is not a run; metrics.csv a row ahead of last.safetensors (a crash between the two writes) resumes; a run
 * that early stopping ended stays ended when resumed; resuming a directory that is not there creates
 * nothing. */
static void test_leftovers(hd_backend *be, const char *root, const hd_dataset *train,
                           const hd_dataset *test) {
    char run[4300], path[4400];
    snprintf(run, sizeof run, "%s/failed-start", root);
    CHECK(hd_mkdir_p(run) == 0, "mkdir");
    snprintf(path, sizeof path, "%s/settings.txt", run);
    CHECK(hd_write_file_atomic(path, "model: x\n", 9) == 0, "plant settings.txt");
    hd_train_config cfg = small_config(run, 2);
    hd_train_result result;
    CHECK(hd_train(be, &cfg, train, test, &result) == 0, "a directory holding only settings.txt: %s",
          hd_last_error());

    /* metrics.csv one row ahead of the checkpoint's 2 epochs: the extra row is dropped, the epoch trained
     * again. */
    hd_epoch_metrics *rows = NULL;
    int n = 0;
    snprintf(path, sizeof path, "%s/metrics.csv", run);
    CHECK(hd_metrics_csv_read(path, &rows, &n) == 0 && n == 2, "two rows (%d)", n);
    if (n == 2) {
        hd_epoch_metrics ahead[3] = {rows[0], rows[1], rows[1]};
        ahead[2].epoch = 3;
        ahead[2].train_loss = 123.0;
        CHECK(hd_metrics_csv_write(path, ahead, 3) == 0, "write a row ahead");
    }
    free(rows);
    cfg.resume = 1;
    cfg.epochs = 3;
    cfg.given = hd_run_settings_bit("epochs");
    CHECK(hd_train(be, &cfg, train, test, &result) == 0 && result.epochs_run == 3,
          "resume with metrics.csv a row ahead: %s", hd_last_error());
    CHECK(hd_metrics_csv_read(path, &rows, &n) == 0 && n == 3 && rows[2].train_loss != 123.0,
          "the row ahead was replaced by the epoch trained again (%d rows)", n);
    free(rows);

    /* Early stopping ends a run for good: patience 1 on random labels stops it within a few epochs. */
    snprintf(run, sizeof run, "%s/early", root);
    hd_train_config early = small_config(run, 12);
    early.es_patience = 1;
    hd_train_result first;
    CHECK(hd_train(be, &early, train, test, &first) == 0, "early-stopping run: %s", hd_last_error());
    if (first.stopped_early) {
        early.resume = 1;
        CHECK(hd_train(be, &early, train, test, &result) == 0 && result.epochs_run == first.epochs_run &&
                  result.stopped_early && result.test_accuracy == first.test_accuracy,
              "resuming a run that stopped early at %d epochs trains no more: %d epochs (%s)",
              first.epochs_run, result.epochs_run, hd_last_error());
    } else {
        printf("  (random labels did not stop early in 12 epochs this time: that check is left out)\n");
    }

    hd_run_lock lock;
    snprintf(run, sizeof run, "%s/no-such-run", root);
    CHECK(hd_run_dir_claim(run, HD_RUN_RESUME, &lock) == -1 && has(hd_last_error(), "no run directory") &&
              access(run, F_OK) != 0,
          "resuming a directory that is not there: '%s', and nothing made", hd_last_error());
}

/* 4. A signal mid-epoch: the resumed run equals the straight one, bit for bit. */
static void test_interrupt(hd_backend *be, const char *root, const hd_dataset *train, const hd_dataset *test,
                           double ema) {
    char straight[4300], stopped[4300];
    snprintf(straight, sizeof straight, "%s/straight-%g", root, ema);
    snprintf(stopped, sizeof stopped, "%s/stopped-%g", root, ema);
    hd_train_config a = small_config(straight, 3), b = small_config(stopped, 3);
    a.ema = b.ema = ema; /* --ema: the average, validated each epoch, must survive the stops as well */
    hd_train_result ra, rb;
    CHECK(hd_train(be, &a, train, test, &ra) == 0, "straight run: %s", hd_last_error());

    /* Stop in epoch 1 (after its first step), resume; stop again in epoch 2, resume to the end. */
    hd_interrupt_request(SIGINT);
    int rc = hd_train(be, &b, train, test, &rb);
    CHECK(rc == HD_TRAIN_INTERRUPTED && rb.interrupted == SIGINT, "interrupted: rc %d, signal %d (%s)", rc,
          rb.interrupted, hd_last_error());
    char *step = meta_of(stopped, "last.safetensors", "hd.train.epoch_step");
    char *done = meta_of(stopped, "last.safetensors", "hd.train.epochs_done");
    CHECK(step && done && strcmp(step, "1") == 0 && strcmp(done, "0") == 0,
          "saved after one step of epoch 1 (epoch_step %s, epochs_done %s)", step ? step : "none",
          done ? done : "none");
    free(step);
    free(done);
    hd_interrupt_request(0);
    b.resume = 1;
    b.epochs = 1;
    b.given = hd_run_settings_bit("epochs");
    CHECK(hd_train(be, &b, train, test, &rb) == 0, "resumed to the end of epoch 1: %s", hd_last_error());
    hd_interrupt_request(SIGTERM);
    b.epochs = 3;
    CHECK(hd_train(be, &b, train, test, &rb) == HD_TRAIN_INTERRUPTED && rb.interrupted == SIGTERM,
          "interrupted in epoch 2: %s", hd_last_error());
    hd_interrupt_request(0);
    CHECK(hd_train(be, &b, train, test, &rb) == 0, "resumed to the end: %s", hd_last_error());

    hd_epoch_metrics *rows_a = NULL, *rows_b = NULL;
    int na = 0, nb = 0;
    char path[4400];
    snprintf(path, sizeof path, "%s/metrics.csv", straight);
    CHECK(hd_metrics_csv_read(path, &rows_a, &na) == 0, "straight metrics");
    snprintf(path, sizeof path, "%s/metrics.csv", stopped);
    CHECK(hd_metrics_csv_read(path, &rows_b, &nb) == 0, "stopped metrics");
    CHECK(na == 3 && nb == 3, "three epochs each (%d, %d)", na, nb);
    for (int i = 0; i < na && i < nb; i++)
        CHECK(rows_a[i].train_loss == rows_b[i].train_loss && rows_a[i].train_acc == rows_b[i].train_acc &&
                  rows_a[i].val_loss == rows_b[i].val_loss,
              "epoch %d: train loss %.9g vs %.9g, val loss %.9g vs %.9g", i + 1, rows_a[i].train_loss,
              rows_b[i].train_loss, rows_a[i].val_loss, rows_b[i].val_loss);
    CHECK(ra.test_accuracy == rb.test_accuracy && ra.test_loss == rb.test_loss,
          "same test result: %.6f / %.6f vs %.6f / %.6f", ra.test_accuracy, ra.test_loss, rb.test_accuracy,
          rb.test_loss);
    free(rows_a);
    free(rows_b);
}

/* 5. Checkpoints whose weights are not numbers are refused naming the file. */
static void test_bad_checkpoints(hd_backend *be, const char *root) {
    hd_model model;
    CHECK(hd_model_create(&model, be, "flatten,dense:10", 1, 28, 28, 4) == 0, "model: %s", hd_last_error());
    CHECK(hd_model_init_weights(&model, 5) == 0, "init");
    float *params = malloc(model.param_count * sizeof *params);
    const float poison[2] = {NAN, -INFINITY};
    const char *said[2] = {"NaN", "an infinity"};
    for (int k = 0; k < 2; k++) {
        hd_model_get_params(&model, params);
        float keep = params[100];
        params[100] = poison[k];
        hd_model_set_params(&model, params);
        char path[4300];
        snprintf(path, sizeof path, "%s/poisoned-%d.safetensors", root, k);
        CHECK(hd_checkpoint_save(path, &model, NULL, NULL, 0) == 0, "save: %s", hd_last_error());
        params[100] = keep;
        hd_model_set_params(&model, params);
        int rc = hd_checkpoint_load(path, &model, NULL, NULL);
        CHECK(rc == -1 && has(hd_last_error(), path) && has(hd_last_error(), said[k]) &&
                  has(hd_last_error(), "dense1.weight") && has(hd_last_error(), "index 100"),
              "a checkpoint holding %s: '%s'", said[k], hd_last_error());
        float after = 0;
        hd_model_get_params(&model, params);
        after = params[100];
        CHECK(after == keep, "a refused load leaves the model as it was");
    }
    free(params);
    hd_model_destroy(&model);
}

int main(void) {
    hd_cpu_options cpu = {.threads = 1};
    hd_backend *be = hd_cpu_backend_create(&cpu);
    char *root = test_make_temp_dir("run-safety");
    CHECK(be && root, "backend and temporary directory: %s", hd_last_error());
    if (!be || !root)
        return test_finish();
    uint64_t rng = test_fresh_seed();
    hd_dataset train = random_set(240, 28, &rng, "train-images-random");
    hd_dataset test = random_set(50, 28, &rng, "t10k-images-random");
    test_input_repointed(be, &rng);
    test_shapes(be, root, &train, &rng);
    test_run_dir(be, root, &train, &test);
    test_resume_settings(be, root, &train, &test);
    test_leftovers(be, root, &train, &test);
    test_interrupt(be, root, &train, &test, 0.0);
    test_interrupt(be, root, &train, &test, 0.9);
    test_bad_checkpoints(be, root);
    hd_dataset_free(&train);
    hd_dataset_free(&test);
    test_remove_tree(root);
    free(root);
    hd_backend_destroy(be);
    return test_finish();
}
