/* test_presets.c: the preset table (presets.h): the fast preset's layers and recipe, that a flag the
 * command line gave wins over the preset's value, lenet5's and best's layers (parameter counts worked out by
 * hand) and best's recipe, and the help text that lists them. */
#include "check.h"
#include "hd/common.h"
#include "hd/model.h"
#include "hd/model_summary.h"
#include "hd/presets.h"
#include "hd/run_settings.h"
#include "hd/spec.h"

#include <string.h>

int main(void) {
    CHECK(strcmp(hd_preset_names(), "fast keras lenet5 best") == 0, "names: %s", hd_preset_names());
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

    /* LeNet-5 on 28x28: C1 6 5x5 same (156), S2, C3 16 5x5 on 6 maps (2,416), S4, C5 120 5x5 (48,120), F6 84
     * (10,164), output 10 (850): 61,706, the paper's count. best: convs 320, 9,248, 25,632, 18,496, 36,928,
     * 102,464, 131,200; batch norms 2 x (32 + 32 + 32 + 64 + 64 + 64 + 128) = 832; dense 1,290: 326,410. */
    static const struct {
        const char *name;
        size_t params;
        int out_side; /* the last conv's output side: strides and padding as intended */
    } sizes[] = {{"lenet5", 61706, 1}, {"best", 326410, 1}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        const hd_preset *p = hd_preset_find(sizes[i].name);
        hd_model layout;
        int ok = p && hd_model_layout(&layout, p->spec, 1, 28, 28, 1) == 0;
        CHECK(ok, "%s: %s", sizes[i].name, ok ? "" : hd_last_error());
        if (!ok)
            continue;
        int last_conv = -1;
        for (int l = 0; l < layout.n_layers; l++)
            if (layout.layers[l].spec.kind == HD_LAYER_CONV)
                last_conv = l;
        CHECK(layout.param_count == sizes[i].params && layout.layers[last_conv].out_h == sizes[i].out_side,
              "%s: %zu parameters (want %zu), last conv %dx%d", sizes[i].name, layout.param_count,
              sizes[i].params, layout.layers[last_conv].out_h, layout.layers[last_conv].out_w);
        char count[32];
        hd_format_count(sizes[i].params, count, sizeof count);
        const char *line = strstr(hd_preset_help(), sizes[i].name);
        CHECK(line && strstr(line, count) && strstr(line, p->spec), "--help lists %s with %s parameters",
              sizes[i].name, count);
    }
    hd_train_config best;
    hd_train_config_defaults(&best);
    best.label_smoothing = 0.1f; /* --label-smoothing 0.1 given */
    best.augment_shift = 3.0f;   /* --augment-shift 3 given */
    best.augment_zoom = 0.3f;    /* not given: the preset's 0.1 */
    best.given = hd_run_settings_bit("label_smoothing") | hd_run_settings_bit("augment_shift");
    hd_preset_apply(hd_preset_find("best"), &best);
    CHECK(strcmp(best.spec, HD_PRESET_BEST_SPEC) == 0 && best.lr == 1e-3f && best.lr_schedule == HD_LR_EXP &&
              best.lr_decay == 0.95 && best.batch == 64 && best.epochs == 30 && best.augment == 1 &&
              best.val_fraction == 0.0 && best.label_smoothing == 0.1f,
          "best's recipe: lr %g schedule %d decay %g batch %d epochs %g augment %d val %g, smoothing %g "
          "(given)",
          (double)best.lr, best.lr_schedule, best.lr_decay, best.batch, best.epochs, best.augment,
          best.val_fraction, (double)best.label_smoothing);
    CHECK(best.ema > 0.0 && best.ema < 1.0, "best averages its weights (--ema %g)", best.ema);
    CHECK(best.augment_rotation == 10.0f && best.augment_shift == 3.0f && best.augment_zoom == 0.1f,
          "best's augmentation: rotation %g, shift %g (given 3), zoom %g", (double)best.augment_rotation,
          (double)best.augment_shift, (double)best.augment_zoom);
    return test_finish();
}
