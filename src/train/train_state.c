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
#include <unistd.h>
#include <zlib.h>

int hd_train_state_init(hd_train_state *st, const hd_model *model) {
    memset(st, 0, sizeof *st);
    st->best_val_loss = INFINITY;
    st->lr_best = INFINITY;
    st->best_params = hd_malloc(sizeof(float) * model->param_count);
    st->best_state = hd_malloc(sizeof(float) * (model->state_count ? model->state_count : 1));
    return st->best_params && st->best_state ? 0 : -1;
}

void hd_train_state_free(hd_train_state *st) {
    free(st->best_params);
    free(st->best_state);
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

void hd_train_state_data_id(const hd_dataset *train, char *buf, size_t len) {
    uLong crc = crc32(0L, Z_NULL, 0);
    size_t pixels = (size_t)train->count * (size_t)train->rows * (size_t)train->cols;
    /* zlib takes lengths as uInt: feed it in pieces. */
    for (size_t at = 0; at < pixels; at += 1u << 30)
        crc = crc32(crc, train->images + at, (uInt)(pixels - at < (1u << 30) ? pixels - at : (1u << 30)));
    if (train->count > 0)
        crc = crc32(crc, train->labels, (uInt)train->count);
    snprintf(buf, len, "%dx%dx%d:%08lx", train->count, train->rows, train->cols, (unsigned long)crc);
}

int hd_train_state_save(const hd_train_state *st, const hd_train_config *cfg, const hd_model *model,
                        const hd_optimizer *opt) {
    const char *run_dir = cfg->run_dir;
    char values[10][64], path[4200];
    snprintf(values[0], sizeof values[0], "%d", st->epochs_done);
    snprintf(values[1], sizeof values[1], "%llu", (unsigned long long)st->global_step);
    snprintf(values[2], sizeof values[2], "%.17g", st->best_val_loss);
    snprintf(values[3], sizeof values[3], "%.17g", st->best_val_acc);
    snprintf(values[4], sizeof values[4], "%d", st->best_epoch);
    snprintf(values[5], sizeof values[5], "%d", st->es_wait);
    snprintf(values[6], sizeof values[6], "%.17g|%d", st->lr_best, st->lr_wait);
    snprintf(values[7], sizeof values[7], "%d", st->epoch_step);
    char loss[24], correct[24];
    hd_format_float(loss, sizeof loss, st->epoch_metrics[0]);
    hd_format_float(correct, sizeof correct, st->epoch_metrics[1]);
    snprintf(values[8], sizeof values[8], "%s|%s|%d", loss, correct, st->epoch_seen);
    hd_st_meta meta[10 + HD_RUN_SETTINGS_MAX + 2] = {
        {"hd.train.epochs_done", values[0]},   {"hd.train.global_step", values[1]},
        {"hd.train.best_val_loss", values[2]}, {"hd.train.best_val_acc", values[3]},
        {"hd.train.best_epoch", values[4]},    {"hd.train.es_wait", values[5]},
        {"hd.train.lr_plateau", values[6]},    {"hd.train.epoch_step", values[7]},
        {"hd.train.epoch_metrics", values[8]}, {"hd.train.data", st->data_id},
    };
    int n_meta = 10;
    meta[n_meta++] = (hd_st_meta){"hd.train.data_dir", cfg->data_dir ? cfg->data_dir : ""};
    hd_run_settings_text settings;
    n_meta += hd_run_settings_to_meta(cfg, &settings, meta + n_meta, HD_RUN_SETTINGS_MAX);
    run_path(path, sizeof path, run_dir, "metrics.csv");
    if (hd_metrics_csv_write(path, st->rows, st->n_rows) != 0)
        return -1;
    run_path(path, sizeof path, run_dir, "last.safetensors");
    return hd_checkpoint_save(path, model, opt, meta, n_meta);
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

int hd_train_state_resume_settings(hd_train_config *cfg, hd_run_settings_text *store) {
    char path[4200];
    run_path(path, sizeof path, cfg->run_dir, "last.safetensors");
    hd_safetensors *file = NULL;
    if (hd_safetensors_read(path, &file) != 0)
        return -1;
    int rc = hd_run_settings_restore(cfg, file, path, store);
    hd_safetensors_free(file);
    return rc;
}

/* "LOSS|CORRECT|SEEN": an interrupted epoch's metrics so far (absent in checkpoints from before). */
static int parse_epoch_metrics(const char *text, float metrics[2], long long *seen) {
    char buf[96];
    if (strlen(text) >= sizeof buf)
        return -1;
    snprintf(buf, sizeof buf, "%s", text);
    char *second = strchr(buf, '|'), *third = second ? strchr(second + 1, '|') : NULL;
    if (!third)
        return -1;
    *second++ = '\0';
    *third++ = '\0';
    double loss, correct;
    if (hd_parse_real(buf, 0.0, FLT_MAX, &loss) != 0 || hd_parse_real(second, 0.0, FLT_MAX, &correct) != 0 ||
        hd_parse_integer(third, 0, INT_MAX, seen) != 0)
        return -1;
    metrics[0] = (float)loss;
    metrics[1] = (float)correct;
    return 0;
}

int hd_train_state_resume(hd_train_state *st, const char *run_dir, hd_model *model, hd_optimizer *opt) {
    char path[4200];
    /* The best weights first (into the model, copied out), then the last state on top. A run stopped by a
     * signal in its first epoch has no best weights yet. */
    char best_path[4200];
    run_path(best_path, sizeof best_path, run_dir, "best.safetensors");
    int have_best = access(best_path, F_OK) == 0;
    if (have_best) {
        if (hd_checkpoint_load(best_path, model, NULL, NULL) != 0)
            return -1;
        hd_model_get_params(model, st->best_params);
        hd_model_get_state(model, st->best_state);
    }

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
    /* Absent in checkpoints written at an epoch's end by earlier versions: then nothing is in progress. */
    const char *step_text = hd_safetensors_meta(file, "hd.train.epoch_step");
    const char *metrics_text = hd_safetensors_meta(file, "hd.train.epoch_metrics");
    const char *data = hd_safetensors_meta(file, "hd.train.data");
    long long epoch_step = 0, seen = 0;
    float metrics[2] = {0.0f, 0.0f};
    if (step_text && hd_parse_integer(step_text, 0, INT_MAX, &epoch_step) != 0)
        rc = hd_fail("%s: bad hd.train.epoch_step '%s'", path, step_text);
    else if (metrics_text && parse_epoch_metrics(metrics_text, metrics, &seen) != 0)
        rc = hd_fail("%s: bad hd.train.epoch_metrics '%s'", path, metrics_text);
    else if (data && strcmp(data, st->data_id) != 0 && st->data_id[0])
        rc = hd_fail("%s: this run was trained on other data (images and labels %s; these are %s): pass the "
                     "run's data with --data",
                     path, data, st->data_id);
    if (!rc && best_epoch > 0 && !have_best)
        rc = hd_fail("%s: missing, but %s says the run's best epoch is %lld", best_path, path, best_epoch);
    st->epoch_step = (int)epoch_step;
    st->epoch_metrics[0] = metrics[0];
    st->epoch_metrics[1] = metrics[1];
    st->epoch_seen = (int)seen;
    hd_safetensors_free(file);
    if (rc)
        return -1;

    run_path(path, sizeof path, run_dir, "metrics.csv");
    hd_epoch_metrics *rows = NULL;
    int n = 0;
    if (hd_metrics_csv_read(path, &rows, &n) != 0)
        return -1;
    free(st->rows);
    st->rows = rows;
    st->n_rows = st->cap_rows = n;
    /* metrics.csv is written just before last.safetensors: a crash between the two leaves it a row ahead,
     * for an epoch the checkpoint does not hold, which is dropped (and trained again). */
    if (n < st->epochs_done)
        return hd_fail("%s: %d rows but the checkpoint says %d epochs were done", path, n, st->epochs_done);
    st->n_rows = st->epochs_done;
    return 0;
}
