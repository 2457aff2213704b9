/* test_trainer.c: the training loop on real MNIST subsets (skipped without the data).
 *  - same seed, same thread count: identical loss history, bit for bit;
 *  - a run interrupted after 2 epochs and resumed gives the same 3rd epoch as a straight run;
 *  - a smoke run reaches a stated accuracy within seconds;
 *  - a diverging run stops with an error and leaves its last good checkpoint loadable. */
#include "check.h"
#include "hd/checkpoint.h"
#include "hd/common.h"
#include "hd/metrics.h"
#include "hd/plot.h"
#include "hd/run_settings.h"
#include "hd/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static hd_train_config small_config(const char *run_dir, int epochs) {
    hd_train_config cfg;
    hd_train_config_defaults(&cfg);
    cfg.run_dir = run_dir;
    cfg.epochs = epochs;
    cfg.train_limit = 3000;
    cfg.test_limit = 1000;
    cfg.quiet = 1;
    cfg.report = 0;
    cfg.seed = 1234;
    return cfg;
}

static int read_rows(const char *run_dir, hd_epoch_metrics **rows, int *n) {
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.csv", run_dir);
    return hd_metrics_csv_read(path, rows, n);
}

static void test_determinism_and_resume(hd_backend *be, const hd_dataset *train, const hd_dataset *test) {
    char *a = test_make_temp_dir("train-a"), *b = test_make_temp_dir("train-b"),
         *c = test_make_temp_dir("train-c");
    hd_train_result ra, rb, rc;
    hd_train_config ca = small_config(a, 3), cb = small_config(b, 3), cc = small_config(c, 2);
    CHECK(hd_train(be, &ca, train, test, &ra) == 0, "run a: %s", hd_last_error());
    CHECK(hd_train(be, &cb, train, test, &rb) == 0, "run b: %s", hd_last_error());
    hd_epoch_metrics *rows_a = NULL, *rows_b = NULL, *rows_c = NULL;
    int na = 0, nb = 0, nc = 0;
    CHECK(read_rows(a, &rows_a, &na) == 0 && read_rows(b, &rows_b, &nb) == 0, "metrics.csv readable");
    CHECK(na == 3 && nb == 3, "three epochs each (%d, %d)", na, nb);
    for (int i = 0; i < na && i < nb; i++) {
        CHECK(rows_a[i].train_loss == rows_b[i].train_loss && rows_a[i].val_loss == rows_b[i].val_loss &&
                  rows_a[i].val_acc == rows_b[i].val_acc,
              "epoch %d identical: train loss %.9g vs %.9g, val loss %.9g vs %.9g", i + 1,
              rows_a[i].train_loss, rows_b[i].train_loss, rows_a[i].val_loss, rows_b[i].val_loss);
    }
    CHECK(ra.test_accuracy == rb.test_accuracy, "same test accuracy %.4f vs %.4f", ra.test_accuracy,
          rb.test_accuracy);
    CHECK(na == 3 && rows_a[2].train_loss < rows_a[0].train_loss, "loss falls: %.4f -> %.4f",
          rows_a[0].train_loss, na == 3 ? rows_a[2].train_loss : 0.0);

    /* Two epochs, then --resume to three: the third epoch must equal run a's, bit for bit. */
    CHECK(hd_train(be, &cc, train, test, &rc) == 0, "run c: %s", hd_last_error());
    cc.epochs = 3;
    cc.given = hd_run_settings_bit("epochs"); /* as `--resume DIR --epochs 3` */
    cc.resume = 1;
    /* A resumed run keeps its own seed (hence the same validation split), batch size and
     * augmentation: values the command line did not give do not replace them. */
    cc.seed = 999;
    cc.batch = 64;
    cc.augment = !cc.augment;
    CHECK(hd_train(be, &cc, train, test, &rc) == 0, "run c resumed: %s", hd_last_error());
    CHECK(read_rows(c, &rows_c, &nc) == 0 && nc == 3, "resumed run has 3 rows (%d)", nc);
    if (nc == 3 && na == 3)
        CHECK(rows_c[2].train_loss == rows_a[2].train_loss && rows_c[2].val_loss == rows_a[2].val_loss,
              "resumed epoch 3 equals the straight run: %.9g vs %.9g", rows_c[2].train_loss,
              rows_a[2].train_loss);
    free(rows_a), free(rows_b), free(rows_c);
    test_remove_tree(a), test_remove_tree(b), test_remove_tree(c);
    free(a), free(b), free(c);
}

static void test_smoke_accuracy(hd_backend *be, const hd_dataset *train, const hd_dataset *test) {
    /* 12,000 training images (10,800 after the validation split), 3 epochs, no augmentation:
     * the classic CNN reaches about 95.5-96% on 2,000 test images; the bar of 94% leaves room
     * for the fresh seed each run draws. */
    char *dir = test_make_temp_dir("smoke");
    hd_train_config cfg = small_config(dir, 3);
    cfg.train_limit = 12000;
    cfg.test_limit = 2000;
    cfg.augment = 0;
    cfg.seed = test_fresh_seed();
    cfg.report = 1;
    hd_train_result r;
    double t0 = hd_now_seconds();
    CHECK(hd_train(be, &cfg, train, test, &r) == 0, "smoke run: %s", hd_last_error());
    printf("smoke: test accuracy %.2f%% after 3 epochs on 12k images (%.1f s)\n", 100 * r.test_accuracy,
           hd_now_seconds() - t0);
    CHECK(r.test_accuracy >= 0.94, "smoke accuracy %.4f >= 0.94", r.test_accuracy);
    char path[4200];
    snprintf(path, sizeof path, "%s/best.safetensors", dir);
    char spec[512];
    CHECK(hd_checkpoint_read_spec(path, spec, sizeof spec) == 0 && strcmp(spec, HD_DEFAULT_SPEC) == 0,
          "best checkpoint holds the default spec");
    snprintf(path, sizeof path, "%s/report.html", dir);
    uint8_t *html = NULL;
    size_t size = 0;
    CHECK(hd_read_file(path, &html, &size) == 0 && size > 500, "report.html written (%zu bytes)", size);
    free(html);
    test_remove_tree(dir);
    free(dir);
}

static void test_divergence(hd_backend *be, const hd_dataset *train, const hd_dataset *test) {
    /* A linear softmax model under SGD at learning rate 1e37 overflows to inf (then NaN)
     * within a few steps; the run must stop with an error naming the divergence, write no
     * checkpoint from the bad epoch, and the last good checkpoint must still load. */
    char *dir = test_make_temp_dir("diverge");
    hd_train_config cfg = small_config(dir, 1);
    cfg.augment = 0;
    hd_train_result r;
    CHECK(hd_train(be, &cfg, train, test, &r) == 0, "first good epoch: %s", hd_last_error());
    cfg.optimizer = HD_OPT_SGD;
    cfg.spec = "flatten,dense:10";
    cfg.lr = 1e37f;
    char *dir2 = test_make_temp_dir("diverge2");
    cfg.run_dir = dir2;
    int rc = hd_train(be, &cfg, train, test, &r);
    CHECK(rc != 0 && strstr(hd_last_error(), "diverged"), "divergence reported: rc %d, '%s'", rc,
          hd_last_error());
    char path[4200];
    snprintf(path, sizeof path, "%s/last.safetensors", dir2);
    FILE *f = fopen(path, "rb");
    CHECK(f == NULL, "no checkpoint written from a diverged epoch");
    if (f)
        fclose(f);
    snprintf(path, sizeof path, "%s/last.safetensors", dir);
    char spec[512];
    CHECK(hd_checkpoint_read_spec(path, spec, sizeof spec) == 0, "earlier good checkpoint intact: %s",
          hd_last_error());
    test_remove_tree(dir), test_remove_tree(dir2);
    free(dir), free(dir2);
}

int main(void) {
    hd_dataset train, test;
    if (test_load_mnist(&train, &test) != 0)
        return test_finish();
    hd_cpu_options cpu = {2};
    hd_backend *be = hd_cpu_backend_create(&cpu);
    test_determinism_and_resume(be, &train, &test);
    test_smoke_accuracy(be, &train, &test);
    test_divergence(be, &train, &test);
    hd_backend_destroy(be);
    hd_dataset_free(&train);
    hd_dataset_free(&test);
    hd_plot_release_caches();
    return test_finish();
}
