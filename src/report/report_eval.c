/* report_eval.c: the test-set parts of a run's report, by evaluation (see report_eval.h): from a model
 * in memory (the trainer) or from a run directory's best checkpoint (`hd-gpu report RUN_DIR`). */
#include "hd/report_eval.h"
#include "hd/common.h"
#include "hd/evaluate.h"
#include "hd/mnist.h"
#include "hd/run_settings.h"
#include "hd/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hd_report_fill_from_test(hd_model *model, const hd_float_set *test, const hd_dataset *test_bytes,
                             hd_report_inputs *in, double *test_loss) {
    int classes = model->classes, n = test->count;
    int *predicted = hd_malloc(sizeof(int) * (size_t)n);
    float *confidence = hd_malloc(sizeof(float) * (size_t)n);
    in->confusion = hd_calloc((size_t)classes * classes, sizeof(int));
    in->classes = classes;
    free(in->class_names);
    in->class_names = model->class_names ? strdup(model->class_names) : NULL;
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

int hd_run_evaluate_for_report(const char *run_dir, const char *device, hd_report_inputs *out) {
    char path[4200], data_dir[4096];
    out->settings_text = hd_run_settings_file_read(run_dir);
    hd_mnist_options data;
    hd_mnist_options_defaults(&data);
    data.quiet = 1;
    if (hd_run_settings_file_value(out->settings_text, HD_SETTINGS_FILE_DATA, data_dir, sizeof data_dir))
        data.data_dir = data_dir; /* evaluate on the data the run trained on */

    hd_cpu_options cpu = {0};
    hd_backend *be = hd_backend_open(device, 0, &cpu, NULL);
    if (!be)
        return -1;
    snprintf(path, sizeof path, "%s/best.safetensors", run_dir);
    hd_eval_inputs in;
    double loss = 0;
    int rc = -1;
    if (hd_eval_inputs_load(&in, be, path, &data, 1000) == 0) {
        rc = hd_report_fill_from_test(&in.model, &in.test, &in.test_bytes, out, &loss);
        out->test_loss = loss;
        out->summary = rc == 0 ? hd_malloc(sizeof *out->summary) : NULL;
        if (out->summary)
            hd_model_summary_make(&in.model, out->summary);
        hd_eval_inputs_free(&in);
    }
    hd_safetensors *file = NULL;
    if (rc == 0 && hd_safetensors_read(path, &file) == 0) {
        const char *best = hd_safetensors_meta(file, "hd.train.best_epoch");
        out->best_epoch = best ? atoi(best) : 0;
        hd_safetensors_free(file);
    }
    hd_backend_destroy(be);
    return rc;
}
