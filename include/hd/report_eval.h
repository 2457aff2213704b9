/* report_eval.h: the test-set parts of a run's report (report.h's hd_report_inputs), made by evaluating
 * a model on the test set (evaluate.h): by the trainer at the end of a run, and from a run directory's
 * best checkpoint for `hd-gpu report RUN_DIR`. */
#ifndef HD_REPORT_EVAL_H
#define HD_REPORT_EVAL_H

#include "hd/idx.h"
#include "hd/model.h"
#include "hd/dataset_split.h"
#include "hd/report.h"

/* Evaluates `model` on `test` and fills the test-set parts of a report: accuracy, confusion
 * matrix, misclassified digits (from test_bytes) and the first conv layer's filters.
 * Arrays are malloc'ed. */
int hd_report_fill_from_test(hd_model *model, const hd_float_set *test, const hd_dataset *test_bytes,
                             hd_report_inputs *in, double *test_loss);

/* Called by `hd-gpu report RUN_DIR`.
 * Loads RUN_DIR/best.safetensors into the model the run describes, evaluates it on the
 * MNIST test set on the device ("auto", "cpu" or a GPU index), and fills *out with:
 * best_epoch, settings_text (RUN_DIR/settings.txt), test_accuracy, confusion and classes,
 * the misclassified test digits (all of them, or at least the first 36, in test-set order,
 * with true label, prediction and its probability) and the first conv layer's weights.
 * It leaves rows / n_rows alone (the caller reads RUN_DIR/metrics.csv). Every array is
 * malloc'ed (free with hd_report_inputs_free). 0, or -1 + hd_fail() on error. */
int hd_run_evaluate_for_report(const char *run_dir, const char *device, hd_report_inputs *out);

#endif
