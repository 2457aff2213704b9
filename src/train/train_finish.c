/* train_finish.c: test evaluation, results and report at the end of a run. */
#include "train_finish.h"
#include "hd/common.h"
#include "hd/evaluate.h"
#include "hd/report_eval.h"
#include "hd/run_settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What ended the loop: early stopping, the epoch cap, or (the only other way out of it) the
 * target test accuracy. Divergence and interruption end a run before hd_train_finish. */
static const char *ended_by(const hd_train_state *st, const hd_train_config *cfg,
                            const hd_train_result *result) {
    if (result->stopped_early)
        return HD_ENDED_EARLY_STOPPING;
    if (st->epochs_done >= cfg->epochs || cfg->time_to_accuracy <= 0)
        return HD_ENDED_EPOCH_CAP;
    return HD_ENDED_TARGET_ACCURACY;
}

int hd_train_finish(hd_model *model, const hd_train_state *st, const hd_float_set *test,
                    const hd_dataset *test_bytes, const hd_train_config *cfg, hd_train_result *result) {
    if (st->best_epoch > 0) { /* the best epoch's weights with its running statistics, as best.safetensors */
        hd_model_set_params(model, st->best_params);
        hd_model_set_state(model, st->best_state);
    }
    result->best_epoch = st->best_epoch;
    result->best_val_loss = st->best_val_loss;
    result->best_val_acc = st->best_val_acc;

    hd_report_inputs in;
    memset(&in, 0, sizeof in);
    double test_loss = 0;
    if (hd_report_fill_from_test(model, test, test_bytes, &in, &test_loss) != 0) {
        hd_report_inputs_free(&in);
        return -1;
    }
    result->test_accuracy = in.test_accuracy;
    result->test_loss = test_loss;
    if (!cfg->quiet) {
        /* With --ema the weights kept are the moving average as it stood after that epoch. */
        const char *which = cfg->ema > 0 ? "averaged weights" : "weights";
        if (result->no_validation)
            printf("no validation split: kept the last %s (epoch %d)\n", which, st->best_epoch);
        else
            printf("kept the %s of epoch %d (val_loss %.4f, val_acc %.2f%%)\n", which, st->best_epoch,
                   st->best_val_loss, 100 * st->best_val_acc);
        hd_print_test_results(stdout, in.test_accuracy, test_loss, in.confusion, in.classes,
                              model->class_names, test->count);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/results.txt", cfg->run_dir);
    /* Assembled in memory and written atomically, as every file of a run. */
    char *text = NULL;
    size_t text_len = 0;
    FILE *f = open_memstream(&text, &text_len);
    if (!f) {
        hd_report_inputs_free(&in);
        return hd_fail("%s: out of memory", path);
    }
    char finished[64];
    time_t now = time(NULL);
    struct tm utc;
    strftime(finished, sizeof finished, "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&now, &utc));
    fprintf(f, "best_epoch: %d\nepochs_run: %d\nseconds_per_epoch: %.2f\nimages_per_sec: %.0f\n",
            st->best_epoch, st->epochs_done, result->seconds_per_epoch, result->images_per_sec);
    fprintf(f, HD_RESULTS_ENDED_BY ": %s\n" HD_RESULTS_FINISHED ": %s\n", ended_by(st, cfg, result),
            finished);
    hd_print_test_results(f, in.test_accuracy, test_loss, in.confusion, in.classes, model->class_names,
                          test->count);
    int written = fclose(f) == 0 && text ? hd_write_file_atomic(path, text, text_len)
                                         : hd_fail("%s: out of memory", path);
    free(text);
    if (written != 0) {
        hd_report_inputs_free(&in);
        return -1;
    }

    if (cfg->report) {
        in.rows = malloc(sizeof(hd_epoch_metrics) * (size_t)(st->n_rows ? st->n_rows : 1));
        if (in.rows)
            memcpy(in.rows, st->rows, sizeof(hd_epoch_metrics) * (size_t)st->n_rows);
        in.n_rows = in.rows ? st->n_rows : 0;
        in.best_epoch = st->best_epoch;
        in.settings_text = hd_run_settings_file_read(cfg->run_dir);
        in.test_loss = test_loss;
        in.ended_by = strdup(ended_by(st, cfg, result));
        in.finished = strdup(finished);
        in.summary = hd_malloc(sizeof *in.summary);
        if (in.summary)
            hd_model_summary_make(model, in.summary);
        if (hd_report_generate(cfg->run_dir, &in) != 0) {
            fprintf(stderr, "hd-gpu: report incomplete: %s\n", hd_last_error());
        } else if (!cfg->quiet) {
            printf("report: %s/report.html\n", cfg->run_dir);
        }
    }
    hd_report_inputs_free(&in);
    return 0;
}
