/* cmd_summary.c: `hd-gpu summary [--model-spec S | --model M]`: the layer table of a model
 * (model_summary.h), built from a spec on 1x28x28 MNIST images or read from a checkpoint. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "hd/backend.h"
#include "hd/cli.h"
#include "hd/common.h"
#include "hd/model.h"
#include "hd/model_summary.h"
#include "model_load.h"

static void print_usage(FILE *out) {
    fprintf(out,
            "usage: hd-gpu summary [--model-spec SPEC | --model M]\n"
            "\n"
            "Prints the model's layers (output shape of one image, parameters) and its total\n"
            "parameter count.\n"
            "\n"
            "  --model-spec SPEC  a spec as for `hd-gpu train`, on 1x28x28 images\n"
            "                     (default %s)\n"
            "  --model M          a checkpoint (.safetensors), or a run directory (its best.safetensors)\n"
            "  -h, --help         this text\n",
            HD_DEFAULT_SPEC);
}

/* Takes the value of --name VALUE or --name=VALUE at argv[*i]; 1 taken, 0 not this option,
 * -1 value missing (message printed). */
static int take_value(int argc, char **argv, int *i, const char *name, const char **value) {
    size_t len = strlen(name);
    if (strncmp(argv[*i], name, len) != 0)
        return 0;
    if (argv[*i][len] == '=') {
        *value = argv[*i] + len + 1;
        return 1;
    }
    if (argv[*i][len] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "hd-gpu summary: %s needs a value\n", name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

int hd_cmd_summary(int argc, char **argv) {
    const char *spec = NULL, *model_path = NULL;
    for (int i = 0; i < argc; i++) {
        int took;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            print_usage(stdout);
            return HD_EXIT_OK;
        } else if ((took = take_value(argc, argv, &i, "--model-spec", &spec)) != 0 ||
                   (took = take_value(argc, argv, &i, "--model", &model_path)) != 0) {
            if (took < 0)
                return HD_EXIT_USAGE;
        } else {
            fprintf(stderr, "hd-gpu summary: unknown argument %s\n", argv[i]);
            print_usage(stderr);
            return HD_EXIT_USAGE;
        }
    }
    if (spec && model_path) {
        fprintf(stderr, "hd-gpu summary: --model-spec and --model exclude each other\n");
        return HD_EXIT_USAGE;
    }
    char path[4200];
    struct stat st;
    if (model_path && stat(model_path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(path, sizeof path, "%s/best.safetensors", model_path);
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
