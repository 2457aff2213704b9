/* train_state.c: the trainer's state and its checkpoints (see train_state.h). */
#include "train_state.h"
#include "hd/checkpoint.h"
#include "hd/common.h"
#include "hd/safetensors.h"

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

static int meta_number(const hd_safetensors *file, const char *path, const char *key, double *value) {
    const char *text = hd_safetensors_meta(file, key);
    char *end;
    if (!text)
        return hd_fail("%s: not a training checkpoint (no %s)", path, key);
    *value = strtod(text, &end);
    if (end == text)
        return hd_fail("%s: bad %s '%s'", path, key, text);
    return 0;
}

int hd_train_state_resume_settings(hd_train_config *cfg) {
    char path[4200];
    run_path(path, sizeof path, cfg->run_dir, "last.safetensors");
    hd_safetensors *file = NULL;
    if (hd_safetensors_read(path, &file) != 0)
        return -1;
    double v[4];
    static const char *const keys[4] = {"hd.train.seed", "hd.train.batch", "hd.train.augment",
                                        "hd.train.val_split"};
    for (int i = 0; i < 4; i++) {
        if (meta_number(file, path, keys[i], &v[i]) != 0) {
            hd_safetensors_free(file);
            return -1;
        }
    }
    cfg->seed = (uint64_t)strtoull(hd_safetensors_meta(file, "hd.train.seed"), NULL, 10);
    cfg->batch = (int)v[1];
    cfg->augment = (int)v[2];
    cfg->val_fraction = v[3];
    hd_safetensors_free(file);
    if (cfg->batch < 1)
        return hd_fail("%s: bad hd.train.batch", path);
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
    double v[8];
    static const char *const keys[7] = {
        "hd.train.epochs_done", "hd.train.global_step", "hd.train.best_val_loss", "hd.train.best_val_acc",
        "hd.train.best_epoch",  "hd.train.es_wait",     "hd.train.seed"};
    for (int i = 0; i < 7; i++) {
        if (meta_number(file, path, keys[i], &v[i]) != 0) {
            hd_safetensors_free(file);
            return -1;
        }
    }
    const char *plateau = hd_safetensors_meta(file, "hd.train.lr_plateau");
    if (!plateau || sscanf(plateau, "%lf|%d", &st->lr_best, &st->lr_wait) != 2) {
        hd_safetensors_free(file);
        return hd_fail("%s: missing or bad hd.train.lr_plateau", path);
    }
    st->epochs_done = (int)v[0];
    st->global_step = (uint64_t)v[1];
    st->best_val_loss = v[2];
    st->best_val_acc = v[3];
    st->best_epoch = (int)v[4];
    st->es_wait = (int)v[5];
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
