/* train_finish.h: the end of a run: best weights restored, the test set evaluated once,
 * results printed and written (RUN_DIR/results.txt), the report drawn. */
#ifndef HD_TRAIN_FINISH_H
#define HD_TRAIN_FINISH_H

#include <stdio.h>

#include "hd/idx.h"
#include "hd/pipeline.h"
#include "hd/report.h"
#include "hd/trainer.h"
#include "train_state.h"

int hd_train_finish(hd_model *model, const hd_train_state *st, const hd_float_set *test,
                    const hd_dataset *test_bytes, const hd_train_config *cfg, hd_train_result *result);

/* Evaluates `model` on `test` and fills the test-set parts of a report: accuracy, confusion
 * matrix, misclassified digits (from test_bytes) and the first conv layer's filters.
 * Shared by the trainer and `hd-gpu report`. Arrays are malloc'ed. */
int hd_report_fill_from_test(hd_model *model, const hd_float_set *test, const hd_dataset *test_bytes,
                             hd_report_inputs *in, double *test_loss);

/* Prints test accuracy, per-class accuracy and the confusion matrix (and to `file` if not NULL). */
void hd_print_test_results(FILE *out, double accuracy, double loss, const int *confusion, int classes,
                           int count);

#endif
