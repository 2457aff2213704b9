/* train_state.c: the trainer's state and its checkpoints (see train_state.h). */
#include "train_state.h"
#include "hd/checkpoint.h"
#include "hd/common.h"
#include "hd/safetensors.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hd_train_state_init(hd_train_state *st, const hd_model *model) {
    memset(st, 0, sizeof *st);
    st->best_val_loss = INFINITY;
    st->lr_best = INFINITY;
    st->best_params = hd_malloc(sizeof(float) * model->param_count);
    return st->best_params ? 0 : -1;
}

void hd_train_state_free(hd_train_state *st) {
    free(st->best_params);
    free(st->rows);
    memset(st, 0, sizeof *st);
}

int hd_train_state_add_row(hd_train_state *st, const hd_epoch_metrics *row) {
    if (st->n_rows == st->cap_rows) {
        int cap = st->cap_rows ? 2 * st->cap_rows : 64;
        hd_epoch_metrics *rows = realloc(st->rows, sizeof *rows * (size_t)cap);
        if (!rows)
            return hd_fail("out of memory (metrics history)");
        st->rows = rows;
        st->cap_rows = cap;
    }
    st->rows[st->n_rows++] = *row;
    return 0;
}

static void run_path(char *buf, size_t len, const char *run_dir, const char *name) {
    snprintf(buf, len, "%s/%s", run_dir, name);
}

int hd_train_state_save(const hd_train_state *st, const hd_train_config *cfg, const hd_model *model,
                        const hd_optimizer *opt) {
    const char *run_dir = cfg->run_dir;
    char values[11][48], path[4200];
    snprintf(values[0], sizeof values[0], "%d", st->epochs_done);
    snprintf(values[1], sizeof values[1], "%llu", (unsigned long long)st->global_step);
    snprintf(values[2], sizeof values[2], "%.17g", st->best_val_loss);
    snprintf(values[3], sizeof values[3], "%.17g", st->best_val_acc);
    snprintf(values[4], sizeof values[4], "%d", st->best_epoch);
    snprintf(values[5], sizeof values[5], "%d", st->es_wait);
    snprintf(values[6], sizeof values[6], "%.17g|%d", st->lr_best, st->lr_wait);
    snprintf(values[7], sizeof values[7], "%llu", (unsigned long long)cfg->seed);
    snprintf(values[8], sizeof values[8], "%d", cfg->batch);
    snprintf(values[9], sizeof values[9], "%d", cfg->augment);
    snprintf(values[10], sizeof values[10], "%.17g", cfg->val_fraction);
    const hd_st_meta meta[] = {
        {"hd.train.epochs_done", values[0]},   {"hd.train.global_step", values[1]},
        {"hd.train.best_val_loss", values[2]}, {"hd.train.best_val_acc", values[3]},
        {"hd.train.best_epoch", values[4]},    {"hd.train.es_wait", values[5]},
        {"hd.train.lr_plateau", values[6]},    {"hd.train.seed", values[7]},
        {"hd.train.batch", values[8]},         {"hd.train.augment", values[9]},
        {"hd.train.val_split", values[10]},
    };
    run_path(path, sizeof path, run_dir, "metrics.csv");
    if (hd_metrics_csv_write(path, st->rows, st->n_rows) != 0)
        return -1;
    run_path(path, sizeof path, run_dir, "last.safetensors");
    return hd_checkpoint_save(path, model, opt, meta, (int)(sizeof meta / sizeof meta[0]));
}

int hd_train_state_save_best(const hd_train_state *st, const char *run_dir, const hd_model *model) {
    char path[4200], epoch[16], loss[48];
    snprintf(epoch, sizeof epoch, "%d", st->best_epoch);
    snprintf(loss, sizeof loss, "%.17g", st->best_val_loss);
    const hd_st_meta meta[] = {{"hd.train.best_epoch", epoch}, {"hd.train.best_val_loss", loss}};
    run_path(path, sizeof path, run_dir, "best.safetensors");
    return hd_checkpoint_save(path, model, NULL, meta, 2);
}

/* Metadata values are read back as strictly as the command line: a whole number or a real, the entire
 * text, in the range the trainer could have written. A checkpoint is a file from anywhere; a value
 * out of range would otherwise reach an int conversion (undefined) or a batch size of a billion. */
static const char *meta_text(const hd_safetensors *file, const char *path, const char *key) {
    const char *text = hd_safetensors_meta(file, key);
    if (!text)
        hd_fail("%s: not a training checkpoint (no %s)", path, key);
    return text;
}

static int meta_integer(const hd_safetensors *file, const char *path, const char *key, long long lo,
                        long long hi, long long *value) {
    const char *text = meta_text(file, path, key);
    if (!text)
        return -1;
    if (hd_parse_integer(text, lo, hi, value) != 0)
        return hd_fail("%s: bad %s '%s' (expected a whole number in %lld..%lld)", path, key, text, lo, hi);
    return 0;
}

static int meta_u64(const hd_safetensors *file, const char *path, const char *key, uint64_t *value) {
    const char *text = meta_text(file, path, key);
    if (!text)
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] < '0' || text[0] > '9') /* strtoull takes "-1" */
        return hd_fail("%s: bad %s '%s' (expected a whole number of at most 64 bits)", path, key, text);
    *value = (uint64_t)v;
    return 0;
}

/* A loss as the trainer writes it: a real >= 0, or "inf" for "none yet". */
static int parse_loss(const char *text, double *loss) {
    if (strcmp(text, "inf") == 0) {
        *loss = INFINITY;
        return 0;
    }
    return hd_parse_real(text, 0.0, DBL_MAX, loss);
}

static int meta_real(const hd_safetensors *file, const char *path, const char *key, double lo, double hi,
                     double *value) {
    const char *text = meta_text(file, path, key);
    if (!text)
        return -1;
    if (hd_parse_real(text, lo, hi, value) != 0)
        return hd_fail("%s: bad %s '%s' (expected a number in [%g, %g])", path, key, text, lo, hi);
    return 0;
}

static int meta_loss(const hd_safetensors *file, const char *path, const char *key, double *value) {
    const char *text = meta_text(file, path, key);
    if (!text)
        return -1;
    if (parse_loss(text, value) != 0)
        return hd_fail("%s: bad %s '%s' (expected a number >= 0 or inf)", path, key, text);
    return 0;
}

/* "LOSS|WAIT": the plateau detector's best validation loss ("inf" before the first epoch) and wait. */
static int parse_plateau(const char *text, double *loss, long long *wait) {
    char buf[64];
    const char *bar = text ? strchr(text, '|') : NULL;
    if (!bar || (size_t)(bar - text) >= sizeof buf)
        return -1;
    memcpy(buf, text, (size_t)(bar - text));
    buf[bar - text] = '\0';
    if (parse_loss(buf, loss) != 0)
        return -1;
    return hd_parse_integer(bar + 1, 0, INT_MAX, wait);
}

int hd_train_state_resume_settings(hd_train_config *cfg) {
    char path[4200];
    run_path(path, sizeof path, cfg->run_dir, "last.safetensors");
    hd_safetensors *file = NULL;
    if (hd_safetensors_read(path, &file) != 0)
        return -1;
    uint64_t seed;
    long long batch, augment;
    double val_fraction;
    int rc = (meta_u64(file, path, "hd.train.seed", &seed) ||
              meta_integer(file, path, "hd.train.batch", 1, 65536, &batch) ||
              meta_integer(file, path, "hd.train.augment", 0, 1, &augment) ||
              meta_real(file, path, "hd.train.val_split", 0.0, 0.9, &val_fraction))
                 ? -1
                 : 0;
    hd_safetensors_free(file);
    if (rc != 0)
        return -1;
    cfg->seed = seed;
    cfg->batch = (int)batch;
    cfg->augment = (int)augment;
    cfg->val_fraction = val_fraction;
    return 0;
}

int hd_train_state_resume(hd_train_state *st, const char *run_dir, hd_model *model, hd_optimizer *opt) {
    char path[4200];
    /* The best weights first (into the model, copied out), then the last state on top. */
    run_path(path, sizeof path, run_dir, "best.safetensors");
    if (hd_checkpoint_load(path, model, NULL, NULL) != 0)
        return -1;
    hd_model_get_params(model, st->best_params);

    run_path(path, sizeof path, run_dir, "last.safetensors");
    hd_safetensors *file = NULL;
    if (hd_checkpoint_load(path, model, opt, &file) != 0)
        return -1;
    long long epochs_done = 0, best_epoch = 0, es_wait = 0, lr_wait = 0;
    uint64_t global_step = 0, seed = 0;
    double best_val_loss = 0.0, best_val_acc = 0.0, lr_best = 0.0;
    int rc = meta_integer(file, path, "hd.train.epochs_done", 0, INT_MAX, &epochs_done) ||
             meta_u64(file, path, "hd.train.global_step", &global_step) ||
             meta_loss(file, path, "hd.train.best_val_loss", &best_val_loss) ||
             meta_real(file, path, "hd.train.best_val_acc", 0.0, 1.0, &best_val_acc) ||
             meta_integer(file, path, "hd.train.best_epoch", 0, INT_MAX, &best_epoch) ||
             meta_integer(file, path, "hd.train.es_wait", 0, INT_MAX, &es_wait) ||
             meta_u64(file, path, "hd.train.seed", &seed);
    const char *plateau = rc ? NULL : hd_safetensors_meta(file, "hd.train.lr_plateau");
    if (!rc && parse_plateau(plateau, &lr_best, &lr_wait) != 0)
        rc = hd_fail("%s: missing or bad hd.train.lr_plateau%s%s%s", path, plateau ? " '" : "",
                     plateau ? plateau : "", plateau ? "'" : "");
    if (rc) {
        hd_safetensors_free(file);
        return -1;
    }
    st->epochs_done = (int)epochs_done;
    st->global_step = global_step;
    st->best_val_loss = best_val_loss;
    st->best_val_acc = best_val_acc;
    st->best_epoch = (int)best_epoch;
    st->es_wait = (int)es_wait;
    st->lr_best = lr_best;
    st->lr_wait = (int)lr_wait;
    hd_safetensors_free(file);

    run_path(path, sizeof path, run_dir, "metrics.csv");
    hd_epoch_metrics *rows = NULL;
    int n = 0;
    if (hd_metrics_csv_read(path, &rows, &n) != 0)
        return -1;
    free(st->rows);
    st->rows = rows;
    st->n_rows = st->cap_rows = n;
    if (n != st->epochs_done)
        return hd_fail("%s: %d rows but the checkpoint says %d epochs were done", path, n, st->epochs_done);
    return 0;
}
