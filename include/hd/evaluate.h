/* evaluate.h: evaluation, in one place: running a model over a labelled set in large batches (no
 * dropout, no gradients: loss, accuracy, the confusion matrix and, optionally, per-image predictions),
 * printing the test results, and loading what evaluating a checkpoint needs (its model and the test
 * set). Used for validation each epoch, the final test evaluation, `hd-gpu eval` and `hd-gpu report`. */
#ifndef HD_EVALUATE_H
#define HD_EVALUATE_H

#include "hd/idx.h"
#include "hd/mnist.h"
#include "hd/model.h"
#include "hd/dataset_split.h"

#include <stdio.h>

typedef struct {
    double loss;     /* mean cross-entropy */
    double accuracy; /* fraction correct */
    int count;
} hd_eval_result;

/* confusion (classes x classes, row = true) and predicted / confidence (count each) may be
 * NULL. Uses the model's own buffers in batches of up to model->max_batch. */
int hd_evaluate(hd_model *model, const hd_float_set *set, hd_eval_result *result, int *confusion,
                int *predicted, float *confidence);

/* Prints test accuracy, per-class accuracy and the confusion matrix to `out`. */
void hd_print_test_results(FILE *out, double accuracy, double loss, const int *confusion, int classes,
                           const char *class_names, int count);

/* What evaluating a checkpoint on the test set needs: the model (hd_model_load_checkpoint,
 * model_load.h), the test set as loaded (bytes, for pictures of digits) and as floats. On failure
 * everything is released and -1 returned; on success release with hd_eval_inputs_free. */
typedef struct {
    hd_model model;
    hd_dataset test_bytes;
    hd_float_set test;
} hd_eval_inputs;

int hd_eval_inputs_load(hd_eval_inputs *in, hd_backend *be, const char *model_path,
                        const hd_mnist_options *data, int max_batch);
/* The same in two halves, for a caller that checks the data before it opens a device (`hd-gpu eval`): *in
 * zeroed first, the halves in either order; whichever comes second checks the test images against the
 * model's input shape and applies the model's input convention (--normalize) to them. On failure -1, and
 * the caller releases with hd_eval_inputs_free. */
int hd_eval_inputs_load_test(hd_eval_inputs *in, const hd_mnist_options *data);
int hd_eval_inputs_load_model(hd_eval_inputs *in, hd_backend *be, const char *model_path, int max_batch);
void hd_eval_inputs_free(hd_eval_inputs *in);

#endif
