/* cmd_summary.c: `hd-gpu summary [--model-spec S | --model M]`: the layer table of a model
 * (model_summary.h), built from a spec on 1x28x28 MNIST images or read from a checkpoint. */
#include <stdio.h>
#include <string.h>

#include "hd/backend.h"
#include "hd/cli.h"
#include "hd/cli_options.h"
#include "hd/common.h"
#include "hd/model.h"
#include "hd/model_summary.h"
#include "hd/model_load.h"
#include "hd/presets.h"

typedef struct {
    const char *spec, *model;
} summary_settings;

static int set_model_spec(void *s, const char *v) {
    return ((summary_settings *)s)->spec = hd_preset_layers(v), 0;
}
static int set_model(void *s, const char *v) {
    return ((summary_settings *)s)->model = v, 0;
}

static const hd_cli_option summary_options[] = {
    HD_CLI_OPTION("model-spec", "SPEC", set_model_spec,
                  "a spec or preset as for `hd-gpu train`, on 1x28x28 images (default " HD_DEFAULT_SPEC ")"),
    HD_CLI_OPTION("model", "M", set_model,
                  "a checkpoint (.safetensors), or a run directory (its best.safetensors)"),
};
static const hd_cli_group summary_groups[] = {HD_CLI_GROUP_WHOLE(NULL, summary_options)};
const hd_cli_command hd_cli_summary = {
    .name = "summary",
    .summary = "the model's layers, output shapes and parameters",
    .synopsis = "[--model-spec SPEC | --model M]",
    .description = "Prints the model's layers (output shape of one image, parameters) and its total\n"
                   "parameter count.",
    .groups = summary_groups,
    .n_groups = 1,
    .run = hd_cmd_summary,
};

int hd_cmd_summary(int argc, char **argv) {
    summary_settings s = {NULL, NULL};
    int first_operand;
    int parsed = hd_cli_parse(&hd_cli_summary, &s, argc, argv, &first_operand);
    if (parsed != 0)
        return parsed > 0 ? HD_EXIT_OK : HD_EXIT_USAGE;
    if (first_operand < argc) {
        fprintf(stderr, "hd-gpu summary: unexpected argument '%s' (see --help)\n", argv[first_operand]);
        return HD_EXIT_USAGE;
    }
    const char *spec = s.spec, *model_path = s.model;
    if (spec && model_path) {
        fprintf(stderr, "hd-gpu summary: --model-spec and --model exclude each other\n");
        return HD_EXIT_USAGE;
    }
    char path[4200];
    if (model_path) {
        if (hd_resolve_model_path(model_path, path, sizeof path) != 0) {
            fprintf(stderr, "hd-gpu summary: %s\n", hd_last_error());
            return HD_EXIT_RUNTIME;
        }
        model_path = path;
    }

    /* One CPU thread: building the model only works out shapes (and, for a checkpoint, checks
     * its tensors against them). */
    hd_backend *be = hd_cpu_backend_create(&(hd_cpu_options){1});
    if (!be) {
        fprintf(stderr, "hd-gpu summary: %s\n", hd_last_error());
        return HD_EXIT_RUNTIME;
    }
    hd_model model;
    int rc = model_path ? hd_model_load_checkpoint(&model, be, model_path, 1)
                        : hd_model_create(&model, be, spec ? spec : HD_DEFAULT_SPEC, 1, 28, 28, 1);
    if (rc != 0) {
        fprintf(stderr, "hd-gpu summary: %s\n", hd_last_error());
        hd_backend_destroy(be);
        return HD_EXIT_RUNTIME;
    }
    hd_model_summary summary;
    hd_model_summary_make(&model, &summary);
    if (model_path)
        printf("%s\n", model_path);
    hd_model_summary_print(stdout, &summary);
    hd_model_destroy(&model);
    hd_backend_destroy(be);
    return HD_EXIT_OK;
}
