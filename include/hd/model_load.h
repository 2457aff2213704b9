/* model_load.h: a model of the right architecture, built from a checkpoint's spec. */
#ifndef HD_MODEL_LOAD_H
#define HD_MODEL_LOAD_H

#include "hd/model.h"

/* Reads the spec and input shape from the checkpoint at `path`, creates the model on
 * `be` for batches of up to max_batch, and loads its weights. */
int hd_model_load_checkpoint(hd_model *model, hd_backend *be, const char *path, int max_batch);

#endif
