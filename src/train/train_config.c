/* train_config.c: hd_train_config's defaults (see train_config.h). */
#include "hd/train_config.h"
#include "hd/augment.h"
#include "hd/common.h"
#include "hd/spec.h"

#include <string.h>

void hd_train_config_defaults(hd_train_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->process_start = hd_now_seconds();
    cfg->spec = HD_DEFAULT_SPEC;
    cfg->epochs = 40;
    cfg->batch = 128;
    cfg->optimizer = HD_OPT_ADAM;
    cfg->lr = 1e-3f;
    cfg->momentum = 0.9f;
    cfg->adam_beta1 = 0.9f;
    cfg->adam_beta2 = 0.999f;
    cfg->lr_schedule = HD_LR_CONSTANT;
    cfg->pct_start = 0.3;
    cfg->lr_decay = HD_LR_DECAY_DEFAULT;
    cfg->seed = 42;
    cfg->val_fraction = 0.1;
    cfg->es_patience = 6;
    cfg->es_min_delta = 0.0;
    cfg->lr_patience = 2;
    cfg->lr_factor = 0.5;
    cfg->min_lr = 1e-5;
    cfg->augment = 1;
    cfg->augment_rotation = HD_AUGMENT_DEFAULT_ROTATION_DEG;
    cfg->augment_shift = HD_AUGMENT_DEFAULT_SHIFT_PX;
    cfg->augment_zoom = HD_AUGMENT_DEFAULT_ZOOM;
    cfg->eval_batch = 0;
    cfg->report = 1;
}
