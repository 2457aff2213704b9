/* presets.c: the table of named models and recipes (presets.h). */
#include "hd/presets.h"
#include "hd/run_settings.h"
#include "hd/spec.h"

#include <stdio.h>
#include <string.h>

/* fast: tuomaso/train_mnist_fast's final network and recipe (issue 24). Its max-pool then ReLU is written
 * here as ReLU (in the conv) then max-pool: ReLU is monotonic, so max(relu(a), relu(b)) = relu(max(a, b)),
 * the same function. Adam 1e-2 with betas (0.7, 0.9), one-cycle peaking at 1e-2, batch 256, one epoch,
 * no augmentation, every training image trained on, inputs normalised by the training set's mean and std. */
static const hd_preset presets[] = {
    {"fast", HD_PRESET_FAST_SPEC, "one epoch, one-cycle Adam, batch 256, no validation (issue 24)",
     HD_OPT_ADAM, 1e-2f, 0.7f, 0.9f, HD_LR_ONECYCLE, 256, 0, 1, 1.0, 0.0},
    {"keras", HD_DEFAULT_SPEC, "the default model and recipe (Keras's MNIST CNN)", HD_OPT_ADAM, 1e-3f, 0.9f,
     0.999f, HD_LR_CONSTANT, 128, 1, 0, 40.0, 0.1},
};
#define N_PRESETS (sizeof presets / sizeof presets[0])

const hd_preset *hd_preset_find(const char *name) {
    for (size_t i = 0; name && i < N_PRESETS; i++)
        if (strcmp(name, presets[i].name) == 0)
            return &presets[i];
    return NULL;
}

const char *hd_preset_names(void) {
    static char names[N_PRESETS * 16];
    size_t used = 0;
    for (size_t i = 0; i < N_PRESETS && used < sizeof names; i++)
        used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", i ? " " : "", presets[i].name);
    return names;
}

void hd_preset_apply(const hd_preset *p, hd_train_config *cfg) {
#define UNLESS_GIVEN(key, field, value)                                                                      \
    do {                                                                                                     \
        if (!(cfg->given & hd_run_settings_bit(key)))                                                        \
            cfg->field = (value);                                                                            \
    } while (0)
    cfg->spec = p->spec;
    UNLESS_GIVEN("optimizer", optimizer, p->optimizer);
    UNLESS_GIVEN("learning_rate", lr, p->lr);
    UNLESS_GIVEN("adam_beta1", adam_beta1, p->adam_beta1);
    UNLESS_GIVEN("adam_beta2", adam_beta2, p->adam_beta2);
    UNLESS_GIVEN("lr_schedule", lr_schedule, p->lr_schedule);
    UNLESS_GIVEN("batch", batch, p->batch);
    UNLESS_GIVEN("epochs", epochs, p->epochs);
    UNLESS_GIVEN("augment", augment, p->augment);
    UNLESS_GIVEN("normalize", normalize, p->normalize);
    UNLESS_GIVEN("val_split", val_fraction, p->val_fraction);
#undef UNLESS_GIVEN
}
