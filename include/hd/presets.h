/* presets.h: named models with their recipes (`--model-spec fast`): the one table that train's parsing,
 * --help and settings read. A preset's recipe values are defaults: a flag the command line gave (its
 * bit in hd_train_config.given) wins over them. */
#ifndef HD_PRESETS_H
#define HD_PRESETS_H

#include "hd/train_config.h"

/* The fast preset's layers: tuomaso/train_mnist_fast's final network (presets.c). */
#define HD_PRESET_FAST_SPEC                                                                                  \
    "conv:24:5:relu,maxpool:2,conv:32:3:relu,maxpool:2,flatten,dense:256:relu,dense:10"
/* LeNet-5 (LeCun et al. 1998) on 28x28 inputs: C1 padded so that its 6 maps stay 28x28, as the paper's
 * 32x32 inputs gave; ReLU and average pooling for its scaled tanh and trainable subsampling. */
#define HD_PRESET_LENET5_SPEC                                                                                \
    "conv:6:5:same:relu,avgpool:2,conv:16:5:relu,avgpool:2,conv:120:5:relu,flatten,dense:84:relu,dense:10"
/* best: Chris Deotte's "How to choose CNN architecture MNIST" network (Kaggle, 2018): 32C3-32C3-32C5S2-64C3-
 * 64C3-64C5S2-128C4, batch norm after every conv, dropout 0.4 (presets.c). */
#define HD_PRESET_BEST_SPEC                                                                                  \
    "conv:32:3:relu,bn,conv:32:3:relu,bn,conv:32:5:s2:same:relu,bn,dropout:0.4,conv:64:3:relu,bn,"           \
    "conv:64:3:relu,bn,conv:64:5:s2:same:relu,bn,dropout:0.4,conv:128:4:relu,bn,flatten,dropout:0.4,"        \
    "dense:10"

typedef struct {
    const char *name;    /* as --model-spec takes it */
    const char *spec;    /* the layers (spec.h) */
    const char *summary; /* one line for --help */
    /* the recipe: the settings it changes from hd_train_config_defaults */
    hd_optimizer_kind optimizer;
    float lr, adam_beta1, adam_beta2;
    hd_lr_schedule_kind lr_schedule;
    float augment_rotation, augment_shift, augment_zoom; /* degrees, pixels, zoom's half-range */
    double lr_decay;                                     /* exp's factor per epoch (0: the default) */
    float label_smoothing;
    int batch, augment, normalize;
    double ema; /* the weights' moving average's decay (0: none) */
    double epochs;
    double val_fraction;
} hd_preset;

/* The preset of that name, or NULL (then the text is a spec). */
const hd_preset *hd_preset_find(const char *name);
/* The layers a --model-spec value names without its recipe (bench --spec, summary): a preset's spec, or the
 * text itself. */
const char *hd_preset_layers(const char *spec_or_name);
/* The names, space separated ("fast keras lenet5 best"). */
const char *hd_preset_names(void);
/* For train --help and the man page: each preset with its parameter count, layers and recipe. */
const char *hd_preset_help(void);
/* cfg->spec becomes the preset's layers, and every recipe setting the command line did not give
 * (cfg->given) the preset's value. */
void hd_preset_apply(const hd_preset *preset, hd_train_config *cfg);

#endif
