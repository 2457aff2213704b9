/* run_settings.c: the table of settings that define a run, and what it serves (see run_settings.h): the
 * checkpoint metadata, --resume's restoring of them, and RUN_DIR/settings.txt (written, read back). */
#include "hd/run_settings.h"
#include "hd/common.h"
#include "hd/freeze.h"
#include "hd/model.h"

#include <errno.h>
#include <float.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    SET_INT,
    SET_SWITCH,
    SET_U64,
    SET_FLOAT,
    SET_DOUBLE,
    SET_SPEC,
    SET_OPTIMIZER,
    SET_SCHEDULE,
    SET_AUGMENT,
    SET_FREEZE
} setting_type;

typedef struct {
    const char *key;   /* hd.train.KEY in last.safetensors */
    const char *label; /* its line in RUN_DIR/settings.txt ("label: value"), NULL for none */
    const char *flag;  /* the option that sets it */
    setting_type type;
    int required;        /* written by every version that resumes: a checkpoint without it is refused */
    size_t offset, size; /* of its field in hd_train_config */
    double lo, hi;       /* accepted range of a number read back */
} run_setting;

#define AT(field) offsetof(hd_train_config, field), sizeof(((hd_train_config *)0)->field)
static const run_setting settings[] = {
    {"spec", "model", "--model-spec", SET_SPEC, 0, AT(spec), 0, 0},
    {"optimizer", "optimizer", "--optimizer", SET_OPTIMIZER, 0, AT(optimizer), 0, 0},
    {"learning_rate", "learning_rate", "--lr", SET_FLOAT, 0, AT(lr), 0, 10},
    {"momentum", "momentum", "--momentum", SET_FLOAT, 0, AT(momentum), 0, 1},
    {"nesterov", "nesterov", "--nesterov", SET_SWITCH, 0, AT(nesterov), 0, 1},
    {"adam_beta1", "adam_beta1", "--adam-beta1", SET_FLOAT, 0, AT(adam_beta1), 0, 0.9999},
    {"adam_beta2", "adam_beta2", "--adam-beta2", SET_FLOAT, 0, AT(adam_beta2), 0, 0.9999},
    {"lr_schedule", "lr_schedule", "--lr-schedule", SET_SCHEDULE, 0, AT(lr_schedule), 0, 0},
    {"pct_start", "onecycle_pct_start", "--pct-start", SET_DOUBLE, 0, AT(pct_start), 0.01, 0.99},
    {"lr_decay", "exp_lr_decay", "--lr-decay", SET_DOUBLE, 0, AT(lr_decay), 0.01, 1},
    {"batch", "batch_size", "--batch-size", SET_INT, 1, AT(batch), 1, 65536},
    {"epochs", "epochs", "--epochs", SET_DOUBLE, 0, AT(epochs), 0.01, 100000},
    {"seed", "seed", "--seed", SET_U64, 1, AT(seed), 0, 0},
    {"val_split", "validation_split", "--val-split", SET_DOUBLE, 1, AT(val_fraction), 0, 0.9},
    {"patience", "early_stopping_patience", "--patience", SET_INT, 0, AT(es_patience), 0, 100000},
    {"lr_patience", "reduce_lr_patience", "--lr-patience", SET_INT, 0, AT(lr_patience), 1, 100000},
    {"lr_factor", "reduce_lr_factor", "--lr-factor", SET_DOUBLE, 0, AT(lr_factor), 0.01, 1},
    {"min_lr", "min_lr", "--min-lr", SET_DOUBLE, 0, AT(min_lr), 0, 10},
    {"label_smoothing", "label_smoothing", "--label-smoothing", SET_FLOAT, 0, AT(label_smoothing), 0,
     0.9999999},
    {"ema", "ema_decay", "--ema", SET_DOUBLE, 0, AT(ema), 0, 0.99999999999999989 /* below 1 */},
    /* "augmentation on/off" in messages */
    {"augment", "augmentation", "--no-augment", SET_AUGMENT, 1, AT(augment), 0, 1},
    {"augment_rotation", "augment_rotation_deg", "--augment-rotation", SET_FLOAT, 0, AT(augment_rotation), 0,
     180},
    {"augment_shift", "augment_shift_px", "--augment-shift", SET_FLOAT, 0, AT(augment_shift), 0, 14},
    {"augment_zoom", "augment_zoom", "--augment-zoom", SET_FLOAT, 0, AT(augment_zoom), 0, 0.5},
    {"normalize", "normalize", "--normalize", SET_SWITCH, 0, AT(normalize), 0, 1},
    {"train_limit", "train_limit", "--train-limit", SET_INT, 0, AT(train_limit), 0, 1e9},
    {"test_limit", NULL, "--test-limit", SET_INT, 0, AT(test_limit), 0, 1e9},
    {"freeze", "freeze", "--freeze", SET_FREEZE, 0, AT(freeze), 0, 0},
    {"num_classes", "num_classes", "--num-classes", SET_INT, 0, AT(num_classes), 0, HD_MAX_CLASSES},
};
#undef AT
#define N_SETTINGS ((int)(sizeof settings / sizeof settings[0]))
_Static_assert(sizeof settings / sizeof settings[0] <= HD_RUN_SETTINGS_MAX, "raise HD_RUN_SETTINGS_MAX");
_Static_assert(sizeof settings / sizeof settings[0] <= 8 * sizeof(unsigned), "too many settings for a mask");

/* Which of them --epochs is: the one a resumed run may change. */
static int is_epochs(const run_setting *s) {
    return strcmp(s->key, "epochs") == 0;
}

unsigned hd_run_settings_bit(const char *key) {
    for (int s = 0; s < N_SETTINGS; s++)
        if (strcmp(settings[s].key, key) == 0)
            return 1u << s;
    return 0;
}

/* A field of hd_train_config by its table entry, through memcpy: the table knows its type. */
#define read_field(type, at) (*(type *)memcpy(&(type){0}, (at), sizeof(type)))
#define write_field(type, at, value)                                                                         \
    do {                                                                                                     \
        type value_ = (value);                                                                               \
        memcpy((at), &value_, sizeof value_);                                                                \
    } while (0)

static void format_value(const hd_train_config *cfg, const run_setting *s, char *buf, size_t len) {
    const void *field = (const char *)cfg + s->offset;
    switch (s->type) {
    case SET_INT:
    case SET_SWITCH:
    case SET_AUGMENT:
        snprintf(buf, len, "%d", read_field(int, field));
        break;
    case SET_U64:
        snprintf(buf, len, "%llu", (unsigned long long)read_field(uint64_t, field));
        break;
    case SET_FLOAT:
        hd_format_float(buf, len, read_field(float, field));
        break;
    case SET_DOUBLE:
        snprintf(buf, len, "%.17g", read_field(double, field));
        break;
    case SET_SPEC: {
        /* Canonical form, so that "conv:32:3:relu" and an equivalent spelling compare equal. */
        hd_layer_spec layers[HD_MAX_LAYERS];
        int n = 0;
        const char *spec;
        memcpy((void *)&spec, field, sizeof spec);
        if (hd_spec_parse(spec, layers, HD_MAX_LAYERS, &n) == 0)
            hd_spec_format(layers, n, buf, len);
        else
            snprintf(buf, len, "%s", spec);
        break;
    }
    case SET_OPTIMIZER:
        snprintf(buf, len, "%s", hd_optimizer_name(read_field(hd_optimizer_kind, field)));
        break;
    case SET_SCHEDULE:
        snprintf(buf, len, "%s", hd_lr_schedule_name(read_field(hd_lr_schedule_kind, field)));
        break;
    case SET_FREEZE: {
        const char *text;
        memcpy((void *)&text, field, sizeof text);
        snprintf(buf, len, "%s", text ? text : "");
        break;
    }
    }
}

int hd_run_settings_to_meta(const hd_train_config *cfg, hd_run_settings_text *text, hd_st_meta *meta,
                            int max) {
    int n = 0;
    for (int s = 0; s < N_SETTINGS && n < max; s++) {
        snprintf(text->keys[s], sizeof text->keys[s], "hd.train.%s", settings[s].key);
        format_value(cfg, &settings[s], text->values[s], sizeof text->values[s]);
        meta[n++] = (hd_st_meta){text->keys[s], text->values[s]};
    }
    return n;
}

/* What a recorded value of s must be, for messages. */
static void expectation(const run_setting *s, char *buf, size_t len) {
    switch (s->type) {
    case SET_INT:
    case SET_SWITCH:
    case SET_AUGMENT:
        snprintf(buf, len, "a whole number in %.0f..%.0f", s->lo, s->hi);
        break;
    case SET_U64:
        snprintf(buf, len, "a whole number of at most 64 bits");
        break;
    case SET_FLOAT:
    case SET_DOUBLE:
        snprintf(buf, len, "a number in [%g, %g]", s->lo, s->hi);
        break;
    case SET_SPEC:
        snprintf(buf, len, "a model spec of at most %d characters", HD_RUN_SETTING_LEN - 1);
        break;
    case SET_OPTIMIZER:
        snprintf(buf, len, "an optimizer name");
        break;
    case SET_SCHEDULE:
        snprintf(buf, len, "one of: %s", hd_lr_schedule_names());
        break;
    case SET_FREEZE:
        snprintf(buf, len, "layer kinds and numbers for --freeze");
        break;
    }
}

/* Parses a recorded value into cfg's field (strings into store). */
static int parse_value(hd_train_config *cfg, const run_setting *s, const char *text, char *store,
                       size_t len) {
    void *field = (char *)cfg + s->offset;
    long long whole = 0;
    double real = 0;
    switch (s->type) {
    case SET_INT:
    case SET_SWITCH:
    case SET_AUGMENT:
        if (hd_parse_integer(text, (long long)s->lo, (long long)s->hi, &whole) != 0)
            return -1;
        write_field(int, field, (int)whole);
        return 0;
    case SET_U64: {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(text, &end, 10);
        if (errno || end == text || *end || text[0] < '0' || text[0] > '9')
            return -1;
        write_field(uint64_t, field, (uint64_t)v);
        return 0;
    }
    case SET_FLOAT:
    case SET_DOUBLE:
        if (hd_parse_real(text, s->lo, s->hi, &real) != 0)
            return -1;
        if (s->type == SET_FLOAT)
            write_field(float, field, (float)real);
        else
            write_field(double, field, real);
        return 0;
    case SET_SPEC: {
        hd_layer_spec layers[HD_MAX_LAYERS];
        int n = 0;
        if (strlen(text) >= len || hd_spec_parse(text, layers, HD_MAX_LAYERS, &n) != 0)
            return -1;
        memcpy(store, text, strlen(text) + 1);
        write_field(const char *, field, (const char *)store);
        return 0;
    }
    case SET_OPTIMIZER: {
        hd_optimizer_kind kind;
        if (hd_optimizer_parse(text, &kind) != 0)
            return -1;
        write_field(hd_optimizer_kind, field, kind);
        return 0;
    }
    case SET_SCHEDULE: {
        hd_lr_schedule_kind kind;
        if (hd_lr_schedule_parse(text, &kind) != 0)
            return -1;
        write_field(hd_lr_schedule_kind, field, kind);
        return 0;
    }
    case SET_FREEZE:
        if (strlen(text) >= len || hd_freeze_check(text) != 0)
            return -1;
        memcpy(store, text, strlen(text) + 1);
        write_field(const char *, field, (const char *)store);
        return 0;
    }
    return -1;
}

int hd_run_settings_restore(hd_train_config *cfg, const hd_safetensors *file, const char *path,
                            hd_run_settings_text *store) {
    for (int i = 0; i < N_SETTINGS; i++) {
        const run_setting *s = &settings[i];
        char key[48];
        snprintf(key, sizeof key, "hd.train.%s", s->key);
        const char *recorded = hd_safetensors_meta(file, key);
        if (!recorded) {
            if (s->required)
                return hd_fail("%s: not a training checkpoint (no %s)", path, key);
            /* Written by a version from before the setting: the run trained with its default (no --ema, the
             * first augmentation ranges, ...), which a preset's value must not replace; a flag given now
             * stands, as there is nothing to contradict. */
            if (!((cfg->given >> i) & 1u)) {
                hd_train_config defaults;
                hd_train_config_defaults(&defaults);
                memcpy((char *)cfg + s->offset, (const char *)&defaults + s->offset, s->size);
            }
            continue;
        }
        hd_train_config from_file = *cfg;
        if (parse_value(&from_file, s, recorded, store->values[i], sizeof store->values[i]) != 0) {
            char expected[96];
            expectation(s, expected, sizeof expected);
            return hd_fail("%s: bad %s '%s' (expected %s)", path, key, recorded, expected);
        }
        char want[HD_RUN_SETTING_LEN], have[HD_RUN_SETTING_LEN];
        format_value(cfg, s, want, sizeof want);
        format_value(&from_file, s, have, sizeof have);
        int given = (cfg->given >> i) & 1u;
        if (s->type == SET_AUGMENT) { /* as people say it */
            snprintf(want, sizeof want, "%s", strcmp(want, "1") == 0 ? "on" : "off");
            snprintf(have, sizeof have, "%s", strcmp(have, "1") == 0 ? "on" : "off");
        }
        if (given && strcmp(want, have) != 0 && !is_epochs(s))
            return hd_fail("%s%s%s contradicts the run being resumed, which has %s %s (%s); a resumed run "
                           "keeps its settings (only --epochs may change)",
                           s->flag, s->type == SET_AUGMENT ? "" : " ", s->type == SET_AUGMENT ? "" : want,
                           s->type == SET_AUGMENT ? "augmentation" : s->key, have, path);
        if (!given)
            memcpy((char *)cfg + s->offset, (const char *)&from_file + s->offset, s->size);
    }
    return 0;
}

/* A setting as settings.txt shows it: the spec as given, numbers in the fewest digits, "on"/"off". */
static void format_shown(const hd_train_config *cfg, const run_setting *s, char *buf, size_t len) {
    const void *field = (const char *)cfg + s->offset;
    switch (s->type) {
    case SET_SPEC:
        snprintf(buf, len, "%s", *(const char *const *)field);
        break;
    case SET_FREEZE:
        snprintf(buf, len, "%s", *(const char *const *)field ? *(const char *const *)field : "");
        break;
    case SET_FLOAT:
        snprintf(buf, len, "%g", (double)*(const float *)field);
        break;
    case SET_DOUBLE:
        snprintf(buf, len, "%g", *(const double *)field);
        break;
    case SET_SWITCH:
    case SET_AUGMENT:
        snprintf(buf, len, "%s", *(const int *)field ? "on" : "off");
        break;
    default:
        format_value(cfg, s, buf, len);
        break;
    }
}

int hd_run_settings_file_write(const hd_train_config *cfg, const char *device) {
    char text[8192], path[4200], value[HD_RUN_SETTING_LEN];
    size_t used = (size_t)snprintf(text, sizeof text, "device: %s\n", device);
    for (int i = 0; i < N_SETTINGS && used < sizeof text; i++) {
        if (!settings[i].label)
            continue;
        /* Momentum and Nesterov are SGD's: an Adam run's file does not mention them. */
        if (cfg->optimizer != HD_OPT_SGD &&
            (strcmp(settings[i].key, "momentum") == 0 || strcmp(settings[i].key, "nesterov") == 0))
            continue;
        /* Likewise Adam's betas in an SGD run's, and one-cycle's rise in another schedule's. */
        if (cfg->optimizer != HD_OPT_ADAM && strncmp(settings[i].key, "adam_", 5) == 0)
            continue;
        if (cfg->lr_schedule != HD_LR_ONECYCLE && strcmp(settings[i].key, "pct_start") == 0)
            continue;
        /* and the augmentation's ranges in a run without augmentation */
        if (!cfg->augment && strncmp(settings[i].key, "augment_", 8) == 0)
            continue;
        /* Nothing frozen, or the class count taken from the labels: the usual case goes unsaid. */
        if ((strcmp(settings[i].key, "freeze") == 0 && (!cfg->freeze || !cfg->freeze[0])) ||
            (strcmp(settings[i].key, "ema") == 0 && cfg->ema == 0.0) ||
            (strcmp(settings[i].key, "num_classes") == 0 && cfg->num_classes == 0) ||
            (cfg->lr_schedule != HD_LR_EXP && strcmp(settings[i].key, "lr_decay") == 0))
            continue;
        format_shown(cfg, &settings[i], value, sizeof value);
        used += (size_t)snprintf(text + used, sizeof text - used, "%s: %s\n", settings[i].label, value);
    }
    if (cfg->init && cfg->init[0] && used < sizeof text) /* where the weights came from (not a setting) */
        used += (size_t)snprintf(text + used, sizeof text - used, "init: %s\n", cfg->init);
    if (cfg->data_dir && cfg->data_dir[0] &&
        used < sizeof text) /* `hd-gpu report` evaluates on the same data */
        used +=
            (size_t)snprintf(text + used, sizeof text - used, HD_SETTINGS_FILE_DATA ": %s\n", cfg->data_dir);
    if (used >= sizeof text)
        return hd_fail("%s/settings.txt: the settings do not fit in %zu bytes", cfg->run_dir, sizeof text);
    snprintf(path, sizeof path, "%s/settings.txt", cfg->run_dir);
    return hd_write_file_atomic(path, text, used);
}

char *hd_run_settings_file_read(const char *run_dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/settings.txt", run_dir);
    uint8_t *data = NULL;
    size_t size = 0;
    if (hd_read_file(path, &data, &size) != 0)
        return NULL;
    return (char *)data;
}

int hd_run_settings_file_value(const char *text, const char *label, char *value, size_t len) {
    size_t label_len = strlen(label);
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, label, label_len) != 0 || strncmp(line + label_len, ": ", 2) != 0)
            continue;
        const char *start = line + label_len + 2;
        size_t n = strcspn(start, "\n");
        if (n == 0 || n >= len)
            return 0;
        memcpy(value, start, n);
        value[n] = '\0';
        return 1;
    }
    return 0;
}

int hd_run_settings_recorded_data_dir(const char *run_dir, char *buf, size_t len) {
    char path[4200];
    snprintf(path, sizeof path, "%s/last.safetensors", run_dir);
    hd_safetensors *file = NULL;
    if (hd_safetensors_read(path, &file) != 0)
        return -1;
    const char *dir = hd_safetensors_meta(file, "hd.train.data_dir");
    int rc = 0;
    if (dir && strlen(dir) >= len)
        rc = hd_fail("%s: hd.train.data_dir is longer than %zu characters", path, len - 1);
    else
        snprintf(buf, len, "%s", dir ? dir : "");
    hd_safetensors_free(file);
    return rc;
}
