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

#include "hd/idx.h"
#include "hd/model.h"
#include "hd/optimizer.h"

typedef struct {
    const char *spec;
    int epochs;
    int batch;
    hd_optimizer_kind optimizer;
    float lr;
    float momentum;
    uint64_t seed;
    double val_fraction;
    int es_patience;     /* early stopping: epochs without val-loss improvement */
    double es_min_delta; /* improvement smaller than this does not count */
    int lr_patience;     /* reduce-LR-on-plateau */
    double lr_factor;
    double min_lr;
    int augment;
    int eval_batch;
    const char *run_dir;
    int resume;     /* continue the run in run_dir (its recorded settings restored: run_settings.h) */
    int overwrite;  /* a new run may replace the one run_dir holds (otherwise that is refused: run_dir.h) */
    unsigned given; /* the run settings the command line gave (hd_run_settings_given): --resume
                     * refuses those that contradict the run, and takes the rest from it */
    const char *data_dir; /* where the data came from (--data), recorded for --resume and the report */
    int progress;         /* live progress bar (1), plain lines (0) */
    int quiet;
    int train_limit; /* use only the first N training images (0 = all), for smoke tests */
    int test_limit;
    double time_to_accuracy; /* > 0: evaluate test after each epoch (report only), stop when reached */
    int report;              /* write plots and report.html at the end */
    double process_start;    /* hd_now_seconds() when the program started (time to accuracy) */
} hd_train_config;

typedef struct {
    int epochs_run;
    int best_epoch;
    double best_val_loss, best_val_acc;
    double test_accuracy, test_loss;
    double seconds_per_epoch; /* mean over the epochs of this invocation */
    double images_per_sec;
    int stopped_early;
    int interrupted; /* a signal stopped it (hd_train returned HD_TRAIN_INTERRUPTED): the signal */
} hd_train_result;

/* hd_train's return when SIGINT/SIGTERM stopped it (interrupt.h) after saving last.safetensors. */
#define HD_TRAIN_INTERRUPTED 1

void hd_train_config_defaults(hd_train_config *cfg);
/* Trains on `train` (validation carved out of it) and evaluates on `test`, writing the run's
 * settings.txt, checkpoints, metrics and report into cfg->run_dir (made, with its parents, when missing,
 * and claimed and locked for the run: run_dir.h). Returns 0, -1 + hd_fail, or HD_TRAIN_INTERRUPTED. */
int hd_train(hd_backend *be, const hd_train_config *cfg, const hd_dataset *train, const hd_dataset *test,
             hd_train_result *result);

#endif
