/* presets.h: named models with their recipes (`--model-spec fast`): the one table that train's parsing,
 * --help and settings read. A preset's recipe values are defaults: a flag the command line gave (its
 * bit in hd_train_config.given) wins over them. */
#ifndef HD_PRESETS_H
#define HD_PRESETS_H

#include "hd/train_config.h"

/* The fast preset's layers: tuomaso/train_mnist_fast's final network (presets.c). */
#define HD_PRESET_FAST_SPEC                                                                                  \
    "conv:24:5:relu,maxpool:2,conv:32:3:relu,maxpool:2,flatten,dense:256:relu,dense:10"

typedef struct {
    const char *name;    /* as --model-spec takes it */
    const char *spec;    /* the layers (spec.h) */
    const char *summary; /* one line for --help */
    /* the recipe: the settings it changes from hd_train_config_defaults */
    hd_optimizer_kind optimizer;
    float lr, adam_beta1, adam_beta2;
    hd_lr_schedule_kind lr_schedule;
    int batch, augment, normalize;
    double epochs;
    double val_fraction;
} hd_preset;

/* The preset of that name, or NULL (then the text is a spec). */
const hd_preset *hd_preset_find(const char *name);
/* The names, space separated ("fast keras"). */
const char *hd_preset_names(void);
/* cfg->spec becomes the preset's layers, and every recipe setting the command line did not give
 * (cfg->given) the preset's value. */
void hd_preset_apply(const hd_preset *preset, hd_train_config *cfg);

#endif
