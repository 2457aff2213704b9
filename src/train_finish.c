/* train_finish.c: test evaluation, results and report at the end of a run. */
#include "train_finish.h"
#include "hd/common.h"
#include "hd/evaluate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void hd_print_test_results(FILE *out, double accuracy, double loss, const int *confusion, int classes,
                           int count) {
    fprintf(out, "test accuracy %.2f%% (%d images), test loss %.4f\n", 100 * accuracy, count, loss);
    fprintf(out, "per-class accuracy:");
    for (int c = 0; c < classes; c++) {
        int total = 0;
        for (int p = 0; p < classes; p++)
            total += confusion[c * classes + p];
        fprintf(out, " %d:%.1f%%", c, total ? 100.0 * confusion[c * classes + c] / total : 0.0);
    }
    fprintf(out, "\nconfusion matrix (rows: true class, columns: predicted):\n     ");
    for (int p = 0; p < classes; p++)
        fprintf(out, "%6d", p);
    fputc('\n', out);
    for (int c = 0; c < classes; c++) {
        fprintf(out, "%5d", c);
        for (int p = 0; p < classes; p++)
            fprintf(out, "%6d", confusion[c * classes + p]);
        fputc('\n', out);
    }
}

int hd_report_fill_from_test(hd_model *model, const hd_float_set *test, const hd_dataset *test_bytes,
                             hd_report_inputs *in, double *test_loss) {
    int classes = model->classes, n = test->count;
    int *predicted = hd_malloc(sizeof(int) * (size_t)n);
    float *confidence = hd_malloc(sizeof(float) * (size_t)n);
    in->confusion = hd_calloc((size_t)classes * classes, sizeof(int));
    in->classes = classes;
    hd_eval_result r = {0};
    if (!predicted || !confidence || !in->confusion ||
        hd_evaluate(model, test, &r, in->confusion, predicted, confidence) != 0) {
        free(predicted);
        free(confidence);
        return -1;
    }
    in->test_accuracy = r.accuracy;
    *test_loss = r.loss;
    /* The misclassified digits, in test-set order, as the raw bytes. */
    int wrong = 0;
    for (int i = 0; i < n; i++)
        wrong += predicted[i] != test->labels[i];
    size_t image_size = (size_t)test->rows * test->cols;
    in->digit_rows = test->rows;
    in->digit_cols = test->cols;
    in->digits = hd_malloc(image_size * (size_t)(wrong ? wrong : 1));
    in->digit_true = hd_malloc(sizeof(int) * (size_t)(wrong ? wrong : 1));
    in->digit_predicted = hd_malloc(sizeof(int) * (size_t)(wrong ? wrong : 1));
    in->digit_confidence = hd_malloc(sizeof(float) * (size_t)(wrong ? wrong : 1));
    if (!in->digits || !in->digit_true || !in->digit_predicted || !in->digit_confidence) {
        free(predicted);
        free(confidence);
        return -1;
    }
    for (int i = 0, k = 0; i < n; i++) {
        if (predicted[i] == test->labels[i])
            continue;
        memcpy(in->digits + image_size * k, test_bytes->images + image_size * i, image_size);
        in->digit_true[k] = test->labels[i];
        in->digit_predicted[k] = predicted[i];
        in->digit_confidence[k] = confidence[i];
        k++;
    }
    in->n_digits = wrong;
    free(predicted);
    free(confidence);
    /* First convolution layer's filters. */
    for (int l = 0; l < model->n_layers; l++) {
        const hd_layer *layer = &model->layers[l];
        if (layer->spec.kind != HD_LAYER_CONV)
            continue;
        float *params = hd_malloc(sizeof(float) * model->param_count);
        in->filters = hd_malloc(sizeof(float) * layer->weight_count);
        if (!params || !in->filters) {
            free(params);
            return -1;
        }
        hd_model_get_params(model, params);
        memcpy(in->filters, params + layer->weight_offset, sizeof(float) * layer->weight_count);
        free(params);
        in->filter_count = layer->weight_dims[0];
        in->filter_in_c = layer->weight_dims[1];
        in->filter_k = layer->weight_dims[2];
        break;
    }
    return 0;
}

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

static char *read_settings(const char *run_dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/settings.txt", run_dir);
    uint8_t *data = NULL;
    size_t size = 0;
    if (hd_read_file(path, &data, &size) != 0)
        return NULL;
    return (char *)data;
}

int hd_train_finish(hd_model *model, const hd_train_state *st, const hd_float_set *test,
                    const hd_dataset *test_bytes, const hd_train_config *cfg, hd_train_result *result) {
    if (st->best_epoch > 0)
        hd_model_set_params(model, st->best_params);
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
        printf("kept the weights of epoch %d (val_loss %.4f, val_acc %.2f%%)\n", st->best_epoch,
               st->best_val_loss, 100 * st->best_val_acc);
        hd_print_test_results(stdout, in.test_accuracy, test_loss, in.confusion, in.classes, test->count);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/results.txt", cfg->run_dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        hd_report_inputs_free(&in);
        return hd_fail("%s: cannot write", path);
    }
    char finished[64];
    time_t now = time(NULL);
    struct tm utc;
    strftime(finished, sizeof finished, "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&now, &utc));
    fprintf(f, "best_epoch: %d\nepochs_run: %d\nseconds_per_epoch: %.2f\nimages_per_sec: %.0f\n",
            st->best_epoch, st->epochs_done, result->seconds_per_epoch, result->images_per_sec);
    fprintf(f, HD_RESULTS_ENDED_BY ": %s\n" HD_RESULTS_FINISHED ": %s\n", ended_by(st, cfg, result),
            finished);
    hd_print_test_results(f, in.test_accuracy, test_loss, in.confusion, in.classes, test->count);
    fclose(f);

    if (cfg->report) {
        in.rows = malloc(sizeof(hd_epoch_metrics) * (size_t)(st->n_rows ? st->n_rows : 1));
        if (in.rows)
            memcpy(in.rows, st->rows, sizeof(hd_epoch_metrics) * (size_t)st->n_rows);
        in.n_rows = in.rows ? st->n_rows : 0;
        in.best_epoch = st->best_epoch;
        in.settings_text = read_settings(cfg->run_dir);
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
