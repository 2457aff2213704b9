/* cmd_export.c: `hd-gpu export --model M -o FILE [--softmax]`: a checkpoint as an ONNX model
 * (onnx_export.h), written atomically. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "hd/backend.h"
#include "hd/cli.h"
#include "hd/cli_options.h"
#include "hd/common.h"
#include "hd/model.h"
#include "hd/onnx_export.h"
#include "hd/model_load.h"

typedef struct {
    const char *model, *output;
    int softmax;
} export_settings;

static int set_model(void *s, const char *v) {
    return ((export_settings *)s)->model = v, 0;
}
static int set_output(void *s, const char *v) {
    return ((export_settings *)s)->output = v, 0;
}
static int set_softmax(void *s, const char *v) {
    return (void)v, ((export_settings *)s)->softmax = 1, 0;
}

static const hd_cli_option export_options[] = {
    HD_CLI_OPTION("model", "M", set_model,
                  "a checkpoint (.safetensors), or a run directory (its best.safetensors)"),
    HD_CLI_OPTION_SHORT("output", 'o', "FILE", set_output, "the ONNX file to write (replaced atomically)"),
    HD_CLI_OPTION("softmax", NULL, set_softmax,
                  "end with Softmax: output \"probabilities\" instead of logits"),
};
static const hd_cli_group export_groups[] = {HD_CLI_GROUP_WHOLE(NULL, export_options)};
const hd_cli_command hd_cli_export = {
    .name = "export",
    .summary = "write a model as ONNX (--model M -o FILE)",
    .synopsis = "--model M -o FILE [--softmax]",
    .description =
        "Writes the model as a standard ONNX model (opset 13): input \"input\", float\n"
        "[N, 1, 28, 28] (N any batch size), each pixel its MNIST byte / 255 as hd-gpu trains on it;\n"
        "output \"logits\", float [N, classes].",
    .groups = export_groups,
    .n_groups = 1,
#ifndef HD_HAVE_ONNX
    .epilog = "\nThis hd-gpu was built without ONNX export (protobuf-c, onnx.proto): it refuses.\n",
#endif
    .run = hd_cmd_export,
};

int hd_cmd_export(int argc, char **argv) {
    export_settings s = {NULL, NULL, 0};
    int first_operand;
    int parsed = hd_cli_parse(&hd_cli_export, &s, argc, argv, &first_operand);
    if (parsed != 0)
        return parsed > 0 ? HD_EXIT_OK : HD_EXIT_USAGE;
    const char *model_path = s.model, *out_path = s.output;
    int softmax = s.softmax;
    if (!model_path || !out_path || !*model_path || !*out_path) {
        fprintf(stderr, "hd-gpu export: --model and -o are both needed (see --help)\n");
        return HD_EXIT_USAGE;
    }
    if (!hd_onnx_available()) {
        fprintf(stderr, "hd-gpu export: this hd-gpu was built without protobuf-c or ONNX's onnx.proto "
                        "(Debian: libprotobuf-c-dev protobuf-c-compiler python3-onnx)\n");
        return HD_EXIT_RUNTIME;
    }
    char path[4200];
    struct stat st;
    if (stat(model_path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(path, sizeof path, "%s/best.safetensors", model_path);
        model_path = path;
    }

    struct stat out_st;
    if (stat(out_path, &out_st) == 0 && stat(model_path, &st) == 0 && out_st.st_dev == st.st_dev &&
        out_st.st_ino == st.st_ino) {
        fprintf(stderr, "hd-gpu export: %s: that is the checkpoint itself; name another output file\n",
                out_path);
        return HD_EXIT_USAGE;
    }

    /* One CPU thread and a batch of one: the model is only read, for its parameters. */
    hd_backend *be = hd_cpu_backend_create(&(hd_cpu_options){1});
    if (!be) {
        fprintf(stderr, "hd-gpu export: %s\n", hd_last_error());
        return HD_EXIT_RUNTIME;
    }
    hd_model model;
    if (hd_model_load_checkpoint(&model, be, model_path, 1) != 0) {
        fprintf(stderr, "hd-gpu export: %s\n", hd_last_error());
        hd_backend_destroy(be);
        return HD_EXIT_RUNTIME;
    }
    hd_onnx_options opt = {.softmax = softmax, .source = model_path};
    int rc = hd_onnx_export(&model, &opt, out_path);
    if (rc != 0)
        fprintf(stderr, "hd-gpu export: %s\n", hd_last_error());
    else
        printf("wrote %s (ONNX opset %d, %zu parameters, output %s [N, %d])\n", out_path, HD_ONNX_OPSET,
               model.param_count, softmax ? "probabilities" : "logits", model.classes);
    hd_model_destroy(&model);
    hd_backend_destroy(be);
    return rc == 0 ? HD_EXIT_OK : HD_EXIT_RUNTIME;
}
