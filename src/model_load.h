/* model_load.h: a model of the right architecture, built from a checkpoint's spec. */
#ifndef HD_MODEL_LOAD_H
#define HD_MODEL_LOAD_H

#include "hd/idx.h"
#include "hd/mnist.h"
#include "hd/model.h"
#include "hd/pipeline.h"

/* Reads the spec and input shape from the checkpoint at `path`, creates the model on
 * `be` for batches of up to max_batch, and loads its weights. */
int hd_model_load_checkpoint(hd_model *model, hd_backend *be, const char *path, int max_batch);

/* What evaluating a checkpoint on the test set needs: the model (as above), the test set
 * as loaded (bytes, for pictures of digits) and as floats. On failure everything is
 * released and -1 returned; on success release with hd_eval_inputs_free. */
typedef struct {
    hd_model model;
    hd_dataset test_bytes;
    hd_float_set test;
} hd_eval_inputs;

int hd_eval_inputs_load(hd_eval_inputs *in, hd_backend *be, const char *model_path,
                        const hd_mnist_options *data, int max_batch);
void hd_eval_inputs_free(hd_eval_inputs *in);

#endif
