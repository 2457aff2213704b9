/* test_presets.c: the preset table (presets.h): the fast preset's layers and recipe, and that a flag
 * the command line gave wins over the preset's value. */
#include "check.h"
#include "hd/common.h"
#include "hd/presets.h"
#include "hd/run_settings.h"
#include "hd/spec.h"

#include <string.h>

int main(void) {
    CHECK(strcmp(hd_preset_names(), "fast keras") == 0, "names: %s", hd_preset_names());
    CHECK(hd_preset_find(HD_DEFAULT_SPEC) == NULL && hd_preset_find("Fast") == NULL,
          "a spec or another spelling is not a preset");
    const hd_preset *fast = hd_preset_find("fast");
    CHECK(fast != NULL, "fast is a preset");
    if (!fast)
        return test_finish();
    hd_layer_spec layers[HD_MAX_LAYERS];
    int n = 0;
    int parsed = hd_spec_parse(fast->spec, layers, HD_MAX_LAYERS, &n);
    CHECK(parsed == 0 && n == 7 && layers[0].units == 24 && layers[0].kernel == 5 && layers[2].units == 32 &&
              layers[2].kernel == 3 && layers[5].units == 256,
          "fast's layers: %s (%d layers): %s", fast->spec, n, hd_last_error());

    hd_train_config cfg;
    hd_train_config_defaults(&cfg);
    cfg.spec = "fast";
    hd_preset_apply(fast, &cfg);
    CHECK(strcmp(cfg.spec, HD_PRESET_FAST_SPEC) == 0 && cfg.optimizer == HD_OPT_ADAM && cfg.lr == 1e-2f &&
              cfg.adam_beta1 == 0.7f && cfg.adam_beta2 == 0.9f && cfg.lr_schedule == HD_LR_ONECYCLE &&
              cfg.batch == 256 && cfg.epochs == 1 && cfg.augment == 0 && cfg.normalize == 1 &&
              cfg.val_fraction == 0.0,
          "fast's recipe: lr %g betas %g %g schedule %d batch %d epochs %g augment %d val %g", (double)cfg.lr,
          (double)cfg.adam_beta1, (double)cfg.adam_beta2, cfg.lr_schedule, cfg.batch, cfg.epochs, cfg.augment,
          cfg.val_fraction);

    /* `--model-spec fast --epochs 3 --lr 0.005`: those two stay as given */
    hd_train_config_defaults(&cfg);
    cfg.epochs = 3;
    cfg.lr = 0.005f;
    cfg.given = hd_run_settings_bit("epochs") | hd_run_settings_bit("learning_rate");
    hd_preset_apply(fast, &cfg);
    CHECK(cfg.epochs == 3 && cfg.lr == 0.005f && cfg.batch == 256 && cfg.lr_schedule == HD_LR_ONECYCLE,
          "given flags win: epochs %g lr %g, the rest the preset's: batch %d", cfg.epochs, (double)cfg.lr,
          cfg.batch);

    hd_train_config defaults, keras;
    hd_train_config_defaults(&defaults);
    hd_train_config_defaults(&keras);
    hd_preset_apply(hd_preset_find("keras"), &keras);
    CHECK(strcmp(keras.spec, defaults.spec) == 0 && keras.lr == defaults.lr &&
              keras.batch == defaults.batch && keras.epochs == defaults.epochs &&
              keras.augment == defaults.augment && keras.val_fraction == defaults.val_fraction &&
              keras.adam_beta2 == defaults.adam_beta2 && keras.lr_schedule == defaults.lr_schedule &&
              keras.normalize == defaults.normalize,
          "keras is the defaults");
    return test_finish();
}
