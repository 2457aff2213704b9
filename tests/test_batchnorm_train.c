/* test_batchnorm_train.c: a small network with batch norm trained on real MNIST subsets (skipped
 * without the data), on the CPU:
 *  - on 512 training images its training loss falls over 3 epochs;
 *  - the checkpoint holds bnN.weight/.bias/.running_mean/.running_var (F32) and num_batches_tracked
 *    (an I64 scalar equal to the optimizer's step count), and the running statistics moved from their
 *    initial 0 and 1;
 *  - a run stopped after 1 epoch and resumed to 2 ends with the same last.safetensors tensors as a
 *    straight 2-epoch run, bit for bit: running statistics and num_batches_tracked included;
 *  - a run whose best epoch is not its last reports the test loss of best.safetensors: the trainer
 *    restores the best epoch's running statistics with its weights (it once kept the last epoch's). */
#include "check.h"
#include "hd/checkpoint.h"
#include "hd/dataset_split.h"
#include "hd/evaluate.h"
#include "hd/model_load.h"
#include "hd/common.h"
#include "hd/metrics.h"
#include "hd/run_settings.h"
#include "hd/trainer.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPEC "conv:8:3,bn,relu,maxpool:2,flatten,dense:32,bn,relu,dense:10"

static hd_train_config small_config(const char *run_dir, int epochs) {
    hd_train_config cfg;
    hd_train_config_defaults(&cfg);
    cfg.run_dir = run_dir;
    cfg.spec = SPEC;
    cfg.epochs = epochs;
    cfg.train_limit = 512;
    cfg.test_limit = 200;
    cfg.batch = 32;
    cfg.quiet = 1;
    cfg.report = 0;
    cfg.seed = 4242;
    return cfg;
}

static char *join(const char *dir, const char *name) {
    return test_path_join(dir, name);
}

static void test_loss_falls_and_checkpoint(hd_backend *be, const hd_dataset *train, const hd_dataset *test) {
    char *dir = test_make_temp_dir("bn-train");
    hd_train_config cfg = small_config(dir, 3);
    hd_train_result r;
    CHECK(hd_train(be, &cfg, train, test, &r) == 0, "bn run: %s", hd_last_error());
    char *csv = join(dir, "metrics.csv");
    hd_epoch_metrics *rows = NULL;
    int n = 0;
    CHECK(hd_metrics_csv_read(csv, &rows, &n) == 0 && n == 3, "3 epochs in metrics.csv (%d)", n);
    if (n == 3) {
        printf("bn network on 512 images: train loss %.4f -> %.4f -> %.4f, test accuracy %.2f%%\n",
               rows[0].train_loss, rows[1].train_loss, rows[2].train_loss, 100 * r.test_accuracy);
        CHECK(rows[2].train_loss < 0.8 * rows[0].train_loss, "loss falls: %.4f -> %.4f", rows[0].train_loss,
              rows[2].train_loss);
    }
    free(rows);

    char *path = join(dir, "last.safetensors");
    hd_safetensors *file = NULL;
    CHECK(hd_safetensors_read(path, &file) == 0, "read %s: %s", path, hd_last_error());
    if (file) {
        const char *t = hd_safetensors_meta(file, "hd.optimizer.t");
        hd_st_dtype dtype = HD_ST_F32;
        int rank = -1;
        const void *bytes = hd_safetensors_find_any(file, "bn2.num_batches_tracked", &dtype, &rank, NULL);
        int64_t tracked = -1;
        if (bytes)
            memcpy(&tracked, bytes, sizeof tracked);
        char text[32];
        snprintf(text, sizeof text, "%" PRId64, tracked);
        CHECK(bytes && dtype == HD_ST_I64 && rank == 0 && t && strcmp(text, t) == 0 && tracked > 0,
              "bn2.num_batches_tracked is an I64 scalar equal to the optimizer's t (%s vs %s)", text,
              t ? t : "-");
        int64_t dims[HD_ST_MAX_RANK];
        const float *mean = hd_safetensors_find(file, "bn1.running_mean", &rank, dims);
        const float *var = hd_safetensors_find(file, "bn1.running_var", NULL, NULL);
        CHECK(mean && var && rank == 1 && dims[0] == 8, "bn1.running_mean [8] and running_var present");
        int moved = 0;
        for (int c = 0; mean && var && c < 8; c++)
            moved += mean[c] != 0.0f && var[c] != 1.0f && var[c] > 0.0f;
        CHECK(moved == 8, "every channel's running statistics moved (%d of 8)", moved);
        CHECK(hd_safetensors_find(file, "bn1.weight", NULL, NULL) &&
                  hd_safetensors_find(file, "bn2.bias", NULL, NULL) &&
                  hd_safetensors_find(file, "optimizer.m.bn1.weight", NULL, NULL) &&
                  !hd_safetensors_find_any(file, "optimizer.m.bn1.running_mean", NULL, NULL, NULL),
              "gamma/beta with optimizer state; running stats without");
        hd_safetensors_free(file);
    }
    free(path), free(csv);
    test_remove_tree(dir);
    free(dir);
}

static void test_resume_bit_exact(hd_backend *be, const hd_dataset *train, const hd_dataset *test) {
    char *a = test_make_temp_dir("bn-straight"), *b = test_make_temp_dir("bn-resumed");
    hd_train_config ca = small_config(a, 2), cb = small_config(b, 1);
    hd_train_result r;
    CHECK(hd_train(be, &ca, train, test, &r) == 0, "straight run: %s", hd_last_error());
    CHECK(hd_train(be, &cb, train, test, &r) == 0, "first epoch: %s", hd_last_error());
    cb.epochs = 2;
    cb.given = hd_run_settings_bit("epochs");
    cb.resume = 1;
    CHECK(hd_train(be, &cb, train, test, &r) == 0, "resumed: %s", hd_last_error());
    char *pa = join(a, "last.safetensors"), *pb = join(b, "last.safetensors");
    hd_safetensors *fa = NULL, *fb = NULL;
    CHECK(hd_safetensors_read(pa, &fa) == 0 && hd_safetensors_read(pb, &fb) == 0, "read both: %s",
          hd_last_error());
    if (fa && fb) {
        int n = hd_safetensors_count(fa), same = 0, state = 0;
        CHECK(n == hd_safetensors_count(fb), "same tensors (%d vs %d)", n, hd_safetensors_count(fb));
        for (int i = 0; i < n && n == hd_safetensors_count(fb); i++) {
            const char *name = hd_safetensors_name(fa, i);
            hd_st_dtype da, db;
            int ra, rb;
            int64_t dims_a[HD_ST_MAX_RANK], dims_b[HD_ST_MAX_RANK];
            const void *xa = hd_safetensors_find_any(fa, name, &da, &ra, dims_a);
            const void *xb = hd_safetensors_find_any(fb, name, &db, &rb, dims_b);
            size_t count = 1;
            for (int d = 0; d < ra; d++)
                count *= (size_t)dims_a[d];
            size_t bytes = count * (da == HD_ST_I64 ? 8 : 4);
            int ok = xb && da == db && ra == rb && memcmp(dims_a, dims_b, sizeof dims_a) == 0 &&
                     memcmp(xa, xb, bytes) == 0;
            CHECK(ok, "%s: the resumed run's tensor equals the straight run's, bit for bit", name);
            same += ok;
            state += ok && (strstr(name, "running_") || strstr(name, "num_batches_tracked"));
        }
        printf("resume: %d of %d tensors bit-identical (%d of them running statistics or counts)\n", same, n,
               state);
        CHECK(state == 6, "the 6 state tensors compared (%d)", state);
    }
    hd_safetensors_free(fa);
    hd_safetensors_free(fb);
    free(pa), free(pb);
    test_remove_tree(a), test_remove_tree(b);
    free(a), free(b);
}

static void test_best_epoch_state(hd_backend *be, const hd_train_config *base, const hd_dataset *train,
                                  const hd_dataset *test) {
    char *dir = test_make_temp_dir("bn-best");
    hd_train_config cfg = *base;
    cfg.run_dir = dir;
    /* A learning rate high enough that the validation loss goes up again before the end. Whether it does
     * for a given seed moves with the kernels' rounding, so the first of a few seeds whose best epoch is
     * not its last is taken (seed 2 was, when this was written; the check below says so if none is). */
    cfg.epochs = 5;
    cfg.lr = 0.03f;
    cfg.val_fraction = 0.25;
    cfg.lr_patience = 100;
    cfg.es_patience = 100;
    cfg.overwrite = 1; /* each seed's run replaces the last one's */
    hd_train_result r;
    for (cfg.seed = 2; cfg.seed < 8; cfg.seed++) {
        CHECK(hd_train(be, &cfg, train, test, &r) == 0, "run: %s", hd_last_error());
        if (r.best_epoch >= 1 && r.best_epoch < cfg.epochs)
            break;
    }
    printf("seed %llu: best epoch %d of %g\n", (unsigned long long)cfg.seed, r.best_epoch, cfg.epochs);
    CHECK(r.best_epoch >= 1 && r.best_epoch < cfg.epochs,
          "best epoch %d of %g: the test needs a run whose best epoch is not its last (seeds 2-7 gave none)",
          r.best_epoch, cfg.epochs);
    char *best = join(dir, "best.safetensors");
    hd_model model;
    hd_float_set set;
    CHECK(hd_model_load_checkpoint(&model, be, best, cfg.batch) == 0, "load best: %s", hd_last_error());
    CHECK(hd_float_set_view_bytes(&set, test->images, test->labels, test->rows, test->cols, NULL,
                                  cfg.test_limit) == 0,
          "test set");
    hd_eval_result e;
    CHECK(hd_evaluate(&model, &set, &e, NULL, NULL, NULL) == 0, "evaluate: %s", hd_last_error());
    printf("best epoch %d of %g: the run's test loss %.9g, best.safetensors' %.9g\n", r.best_epoch,
           cfg.epochs, r.test_loss, e.loss);
    CHECK(fabs(r.test_loss - e.loss) <= 1e-6 * e.loss && r.test_accuracy == e.accuracy,
          "the run's test figures are best.safetensors' (loss %.9g vs %.9g, accuracy %.4f vs %.4f)",
          r.test_loss, e.loss, r.test_accuracy, e.accuracy);
    hd_float_set_free(&set);
    hd_model_destroy(&model);
    free(best);
    test_remove_tree(dir);
    free(dir);
}

/* A bn over one value per channel (after dense) in an epoch's last batch of one image is refused before any
 * step, naming the layer; a bn over 2-D maps takes such a batch (its variance is over the map), and a frozen
 * bn uses its running statistics, so neither is refused. */
static void test_one_value_batch(hd_backend *be, const hd_dataset *train, const hd_dataset *test) {
    char *dir = test_make_temp_dir("bn-one");
    char *run = join(dir, "run");
    hd_train_config cfg = small_config(run, 1);
    cfg.val_fraction = 0.0;
    cfg.train_limit = 65; /* batches of 32, 32 and 1 */
    hd_train_result r;
    int rc = hd_train(be, &cfg, train, test, &r);
    CHECK(rc != 0 && strstr(hd_last_error(), "bn2 sees one value per channel") &&
              strstr(hd_last_error(), "65 training images in batches of 32"),
          "a last batch of one through bn2: %s", rc ? hd_last_error() : "trained");
    cfg.spec = "conv:4:3,bn,relu,maxpool:2,flatten,dense:10";
    cfg.overwrite = 1;
    CHECK(hd_train(be, &cfg, train, test, &r) == 0, "bn over 13x13 maps, last batch of one: %s",
          hd_last_error());
    cfg.spec = SPEC;
    cfg.freeze = "bn";
    CHECK(hd_train(be, &cfg, train, test, &r) == 0, "frozen bn, last batch of one: %s", hd_last_error());
    test_remove_tree(dir);
    free(run);
    free(dir);
}

int main(void) {
    hd_dataset train, test;
    if (test_load_mnist(&train, &test) != 0)
        return test_finish();
    hd_cpu_options cpu = {2};
    hd_backend *be = hd_cpu_backend_create(&cpu);
    test_loss_falls_and_checkpoint(be, &train, &test);
    test_resume_bit_exact(be, &train, &test);
    test_one_value_batch(be, &train, &test);
    hd_train_config base = small_config(NULL, 1);
    test_best_epoch_state(be, &base, &train, &test);
    hd_backend_destroy(be);
    hd_dataset_free(&train);
    hd_dataset_free(&test);
    return test_finish();
}
