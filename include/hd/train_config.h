/* train_config.h: what a training run is asked to do (hd_train_config, with its defaults: the Keras
 * recipe) and what it reports back (hd_train_result), apart from the loop (trainer.h), so that the
 * parts of a run below it (train_state, train_finish, run_settings) need not include the trainer. */
#ifndef HD_TRAIN_CONFIG_H
#define HD_TRAIN_CONFIG_H

#include "hd/lr_schedule.h"
#include "hd/optimizer.h"

#include <stdint.h>

typedef struct {
    const char *spec;
    double epochs; /* may end in a fraction (1.5): the last epoch then trains that share of its batches */
    int batch;
    hd_optimizer_kind optimizer;
    float lr;
    float momentum;
    int nesterov; /* SGD: Nesterov momentum */
    float adam_beta1, adam_beta2;
    hd_lr_schedule_kind lr_schedule; /* stepped per batch; plateau reduction only with constant */
    double pct_start;                /* onecycle: fraction of the steps spent rising */
    double lr_decay;                 /* exp: the learning rate's factor per epoch */
    float label_smoothing;           /* targets (1 - E) one_hot + E / classes in training, E in [0, 1) */
    double ema; /* --ema: the decay of the weights' moving average that evaluation and the kept checkpoint
                 * use (optimizer.h); 0: none, the live weights */
    uint64_t seed;
    double val_fraction;
    int es_patience;     /* early stopping: epochs without val-loss improvement */
    double es_min_delta; /* improvement smaller than this does not count */
    int lr_patience;     /* reduce-LR-on-plateau */
    double lr_factor;
    double min_lr;
    int augment;
    float augment_rotation; /* the random affine's ranges (augment.h): up to this many degrees either way, */
    float augment_shift;    /* this many pixels along each axis, */
    float augment_zoom;     /* and a zoom in [1 - this, 1 + this] */
    int normalize;          /* inputs by the training images' mean and std (recorded in the model: model.h) */
    int eval_batch; /* images per evaluation chunk; 0 (the default): the training batch, so that the model's
                     * buffers are sized for one batch, not for a larger evaluation one */
    /* Transfer learning (src/train/transfer.c): */
    const char *init;        /* --init: start from this run directory's or checkpoint's matching tensors */
    const char *freeze;      /* --freeze WHICH (freeze.h); NULL or "": nothing frozen */
    int num_classes;         /* --num-classes; 0: the training labels' largest + 1. The last layer's units */
    const char *class_names; /* --class-names FILE: one name a line, as many as the classes */
    const char *run_dir;
    int resume;     /* continue the run in run_dir (its recorded settings restored: run_settings.h) */
    int overwrite;  /* a new run may replace the one run_dir holds (otherwise that is refused: run_dir.h) */
    unsigned given; /* the run settings the command line gave (bits: hd_run_settings_bit): --resume
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
    int no_validation; /* no validation split (--val-split 0): the last weights were kept */
    int interrupted; /* a signal stopped it (hd_train returned HD_TRAIN_INTERRUPTED, trainer.h): the signal */
} hd_train_result;

/* The defaults: Adam 1e-3, batch 128, up to 40 epochs, 10% validation, early stopping after 6 flat
 * epochs, learning rate halved after 2 (down to 1e-5), augmentation on, the default model. */
void hd_train_config_defaults(hd_train_config *cfg);

#endif
