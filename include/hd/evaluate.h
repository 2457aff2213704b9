/* evaluate.h: running a model over a labelled set in large batches (no dropout, no
 * gradients): loss, accuracy, the confusion matrix and, optionally, per-image
 * predictions. Used for validation each epoch and for the final test evaluation. */
#ifndef HD_EVALUATE_H
#define HD_EVALUATE_H

#include "hd/model.h"
#include "hd/pipeline.h"

typedef struct {
    double loss;     /* mean cross-entropy */
    double accuracy; /* fraction correct */
    int count;
} hd_eval_result;

/* confusion (classes x classes, row = true) and predicted / confidence (count each) may be
 * NULL. Uses the model's own buffers in batches of up to model->max_batch. */
int hd_evaluate(hd_model *model, const hd_float_set *set, hd_eval_result *result, int *confusion,
                int *predicted, float *confidence);

#endif
