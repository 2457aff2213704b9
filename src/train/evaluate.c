/* evaluate.c: evaluation (see evaluate.h): a model over a labelled set, the printed test results, and
 * a checkpoint with its test set loaded for evaluation. */
#include "hd/evaluate.h"
#include "hd/common.h"
#include "hd/interrupt.h"
#include "hd/model_load.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int hd_evaluate(hd_model *model, const hd_float_set *set, hd_eval_result *result, int *confusion,
                int *predicted, float *confidence) {
    hd_backend *be = model->be;
    int classes = model->classes, batch = model->max_batch;
    size_t image_size = (size_t)set->rows * set->cols;
    /* The callers check their sets with a file name; this keeps the copy below inside the input buffer. */
    if (hd_model_check_input(model, "evaluation set", 1, set->rows, set->cols) != 0)
        return -1;
    float *logits = hd_malloc(sizeof(float) * (size_t)batch * classes);
    float *images = set->images ? NULL : hd_malloc(sizeof(float) * image_size * (size_t)batch);
    if (!logits || (!set->images && !images)) {
        free(logits);
        free(images);
        return -1;
    }
    if (confusion)
        memset(confusion, 0, sizeof(int) * (size_t)classes * classes);
    float metrics[2];
    be->ops->zero(be, model->metrics, sizeof metrics);
    for (int begin = 0; begin < set->count; begin += batch) {
        if (hd_interrupt_pending()) { /* a signal asked the trainer to stop: it saves the run */
            free(logits);
            free(images);
            return hd_fail("evaluation interrupted");
        }
        int n = set->count - begin < batch ? set->count - begin : batch;
        const float *chunk = images;
        if (set->images) /* a float copy: as it is */
            chunk = set->images + (size_t)begin * image_size;
        else /* a byte view: converted a chunk at a time */
            for (int i = 0; i < n; i++)
                hd_float_set_image(set, begin + i, images + (size_t)i * image_size);
        be->ops->upload(be, model->input, chunk, sizeof(float) * image_size * n);
        be->ops->upload(be, model->labels, set->labels + begin, sizeof(int32_t) * n);
        const float *device_logits = hd_model_forward(model, n, 0, 0);
        hd_model_loss(model, n, 0);
        if (!confusion && !predicted && !confidence)
            continue;
        be->ops->download(be, logits, device_logits, sizeof(float) * (size_t)n * classes);
        for (int i = 0; i < n; i++) {
            const float *row = logits + (size_t)i * classes;
            int arg = 0;
            for (int c = 1; c < classes; c++)
                if (row[c] > row[arg])
                    arg = c;
            if (confusion)
                confusion[set->labels[begin + i] * classes + arg]++;
            if (predicted)
                predicted[begin + i] = arg;
            if (confidence) {
                double sum = 0;
                for (int c = 0; c < classes; c++)
                    sum += exp((double)row[c] - row[arg]);
                confidence[begin + i] = (float)(1.0 / sum);
            }
        }
    }
    be->ops->download(be, metrics, model->metrics, sizeof metrics);
    free(logits);
    free(images);
    result->count = set->count;
    result->loss = set->count ? metrics[0] / set->count : 0.0;
    result->accuracy = set->count ? metrics[1] / set->count : 0.0;
    return 0;
}

void hd_print_test_results(FILE *out, double accuracy, double loss, const int *confusion, int classes,
                           const char *class_names, int count) {
    fprintf(out, "test accuracy %.2f%% (%d images), test loss %.4f\n", 100 * accuracy, count, loss);
    if (class_names) { /* --class-names: the numbers below stay, so the table keeps its width */
        fprintf(out, "classes:");
        for (int c = 0; c < classes; c++) {
            char name[64];
            fprintf(out, "%s %d %s", c ? "," : "", c, hd_class_name(class_names, c, name, sizeof name));
        }
        fputc('\n', out);
    }
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

/* Once both halves are in: the test images must be the model's shape, and take its input convention. */
static int fit_test_to_model(hd_eval_inputs *in) {
    const hd_dataset *t = &in->test_bytes;
    if (hd_model_check_input(&in->model, hd_dataset_name(t), 1, t->rows, t->cols) != 0 ||
        hd_dataset_check_labels(t, in->model.classes) != 0)
        return -1;
    hd_normalize_pixels(in->test.images, (size_t)t->count * (size_t)t->rows * (size_t)t->cols,
                        in->model.input_mean, in->model.input_std);
    return 0;
}

int hd_eval_inputs_load_test(hd_eval_inputs *in, const hd_mnist_options *data) {
    const hd_dataset *t = &in->test_bytes;
    if (hd_mnist_load(data, NULL, &in->test_bytes) != 0 ||
        hd_float_set_from_bytes(&in->test, t->images, t->labels, t->rows, t->cols, NULL, t->count) != 0)
        return -1;
    return in->model.be ? fit_test_to_model(in) : 0;
}

int hd_eval_inputs_load_model(hd_eval_inputs *in, hd_backend *be, const char *model_path, int max_batch) {
    if (hd_model_load_checkpoint(&in->model, be, model_path, max_batch) != 0)
        return -1;
    return in->test.images ? fit_test_to_model(in) : 0;
}

int hd_eval_inputs_load(hd_eval_inputs *in, hd_backend *be, const char *model_path,
                        const hd_mnist_options *data, int max_batch) {
    memset(in, 0, sizeof *in);
    if (hd_eval_inputs_load_model(in, be, model_path, max_batch) != 0 ||
        hd_eval_inputs_load_test(in, data) != 0) {
        hd_eval_inputs_free(in);
        return -1;
    }
    return 0;
}

void hd_eval_inputs_free(hd_eval_inputs *in) {
    if (in->model.be)
        hd_model_destroy(&in->model);
    hd_dataset_free(&in->test_bytes);
    hd_float_set_free(&in->test);
}
