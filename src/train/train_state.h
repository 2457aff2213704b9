/* train_state.h: what the trainer carries between epochs, and its round trip through the
 * run directory (last.safetensors, best.safetensors, metrics.csv) for --resume. */
#ifndef HD_TRAIN_STATE_H
#define HD_TRAIN_STATE_H

#include "hd/idx.h"
#include "hd/metrics.h"
#include "hd/model.h"
#include "hd/optimizer.h"
#include "hd/run_settings.h"
#include "hd/train_config.h"

typedef struct {
    int epochs_done;      /* completed epochs */
    uint64_t global_step; /* optimizer steps so far (dropout masks use it) */
    double best_val_loss;
    double best_val_acc;
    int best_epoch; /* 1-based; 0 = none yet */
    int es_wait;    /* epochs since the best validation loss */
    double lr_best; /* reduce-LR-on-plateau's own best (min_delta 1e-4, as Keras) */
    int lr_wait;
    int epoch_step;         /* batches done of epoch epochs_done + 1 when a signal stopped it, else 0 */
    float epoch_metrics[2]; /* that epoch's summed loss and correct count so far (model->metrics) */
    int epoch_seen;         /* and its images so far */
    char data_id[64];       /* the training set's fingerprint (hd_train_state_data_id) */
    float *best_params;     /* host copy of the best weights */
    float *best_state;      /* and of the model's state then (batch norm's running statistics) */
    hd_epoch_metrics *rows;
    int n_rows, cap_rows;
} hd_train_state;

int hd_train_state_init(hd_train_state *st, const hd_model *model);
void hd_train_state_free(hd_train_state *st);
int hd_train_state_add_row(hd_train_state *st, const hd_epoch_metrics *row);

/* "COUNTxROWSxCOLS:CRC" of a training set's images and labels: a resumed run must train on the same data. */
void hd_train_state_data_id(const hd_dataset *train, char *buf, size_t len);

/* Writes RUN_DIR/last.safetensors (model, optimizer, this state, the data's fingerprint and the
 * settings that define the run: run_settings.h) and metrics.csv. */
int hd_train_state_save(const hd_train_state *st, const hd_train_config *cfg, const hd_model *model,
                        const hd_optimizer *opt);
/* Writes RUN_DIR/best.safetensors from the model's current weights. */
int hd_train_state_save_best(const hd_train_state *st, const char *run_dir, const hd_model *model);
/* Sets cfg's run settings to those the run in cfg->run_dir was started with (run_settings.h: what the
 * command line gave must agree, but for --epochs), so that --resume continues the same run; strings go
 * into *store. */
int hd_train_state_resume_settings(hd_train_config *cfg, hd_run_settings_text *store);
/* Restores model, optimizer and state from RUN_DIR (after --resume). */
int hd_train_state_resume(hd_train_state *st, const char *run_dir, hd_model *model, hd_optimizer *opt);

#endif
