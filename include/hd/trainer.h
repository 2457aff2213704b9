/* trainer.h: the training loop, backend-agnostic. Per epoch: shuffled (and augmented)
 * batches from the pipeline, forward, loss, backward, optimizer step; then validation on
 * a split carved from the training set. Early stopping and learning-rate reduction watch
 * the validation loss only; the test set is evaluated once at the end (and, for the
 * benchmark's time-to-accuracy only, after each epoch without steering anything).
 *
 * RUN_DIR holds: settings.txt, metrics.csv, last.safetensors (every epoch, with optimizer
 * and trainer state, for --resume), best.safetensors (best validation loss), results.txt
 * and the report (report.html and four PNGs). */
#ifndef HD_TRAINER_H
#define HD_TRAINER_H

#include "hd/backend.h"
#include "hd/idx.h"
#include "hd/train_config.h"

/* hd_train's return when SIGINT/SIGTERM stopped it (interrupt.h) after saving last.safetensors. */
#define HD_TRAIN_INTERRUPTED 1

/* Trains on `train` (validation carved out of it) and evaluates on `test`, writing the run's
 * settings.txt, checkpoints, metrics and report into cfg->run_dir (made, with its parents, when missing,
 * and claimed and locked for the run: run_dir.h). Returns 0, -1 + hd_fail, or HD_TRAIN_INTERRUPTED. */
int hd_train(hd_backend *be, const hd_train_config *cfg, const hd_dataset *train, const hd_dataset *test,
             hd_train_result *result);

#endif
