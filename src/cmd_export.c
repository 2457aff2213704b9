/* cmd_export.c: `hd-gpu export --model M -o FILE [--softmax]`: a checkpoint as an ONNX model
 * (onnx_export.h), written atomically. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "hd/backend.h"
#include "hd/cli.h"
#include "hd/common.h"
#include "hd/model.h"
#include "hd/onnx_export.h"
#include "model_load.h"

static void print_usage(FILE *out) {
    fprintf(out,
            "usage: hd-gpu export --model M -o FILE [--softmax]\n"
            "\n"
            "Writes the model as a standard ONNX model (opset %d): input \"input\", float\n"
            "[N, 1, 28, 28] (N any batch size), each pixel its MNIST byte / 255 as hd-gpu trains on it;\n"
            "output \"logits\", float [N, classes].\n"
            "\n"
            "  --model M       a checkpoint (.safetensors), or a run directory (its best.safetensors)\n"
            "  -o, --output F  the ONNX file to write (replaced atomically)\n"
            "  --softmax       end with Softmax: output \"probabilities\" instead of logits\n"
            "  -h, --help      this text\n",
            HD_ONNX_OPSET);
    if (!hd_onnx_available())
        fprintf(out, "\nThis hd-gpu was built without ONNX export (protobuf-c, onnx.proto): it refuses.\n");
}

int hd_cmd_export(int argc, char **argv) {
    const char *model_path = NULL, *out_path = NULL;
    int softmax = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            print_usage(stdout);
            return HD_EXIT_OK;
        } else if (strcmp(argv[i], "--softmax") == 0) {
            softmax = 1;
        } else if (strcmp(argv[i], "--model") == 0 || strcmp(argv[i], "-o") == 0 ||
                   strcmp(argv[i], "--output") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "hd-gpu export: %s needs a value\n", argv[i]);
                return HD_EXIT_USAGE;
            }
            if (strcmp(argv[i], "--model") == 0)
                model_path = argv[++i];
            else
                out_path = argv[++i];
        } else if (strncmp(argv[i], "--model=", 8) == 0) {
            model_path = argv[i] + 8;
        } else if (strncmp(argv[i], "--output=", 9) == 0) {
            out_path = argv[i] + 9;
        } else {
            fprintf(stderr, "hd-gpu export: unknown argument %s\n", argv[i]);
            print_usage(stderr);
            return HD_EXIT_USAGE;
        }
    }
    if (!model_path || !out_path || !*model_path || !*out_path) {
        fprintf(stderr, "hd-gpu export: --model and -o are both needed\n");
        print_usage(stderr);
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
