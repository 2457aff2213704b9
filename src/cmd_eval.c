/* cmd_eval.c: `hd-gpu eval --model FILE`: test-set accuracy, per-class accuracy and the
 * confusion matrix of a saved model. */
#include "hd/cli.h"
#include "hd/common.h"
#include "hd/evaluate.h"
#include "hd/mnist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void eval_usage(FILE *out) {
    fprintf(out,
            "usage: hd-gpu eval --model FILE [--data DIR] [--no-download] [--batch-size N] [device options]\n"
            "Evaluates a checkpoint (e.g. RUN_DIR/best.safetensors) on the MNIST test set.\n%s",
            hd_device_options_usage());
}

int hd_cmd_eval(int argc, char **argv) {
    hd_device_options dev;
    hd_device_options_defaults(&dev);
    hd_mnist_options data;
    hd_mnist_options_defaults(&data);
    const char *model_path = NULL;
    int batch = 1000;
    for (int i = 0; i < argc; i++) {
        int dev_rc = hd_device_options_parse(&dev, argc, argv, &i);
        if (dev_rc < 0)
            return HD_EXIT_USAGE;
        if (dev_rc > 0)
            continue;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            eval_usage(stdout);
            return HD_EXIT_OK;
        } else if (strcmp(argv[i], "--no-download") == 0) {
            data.allow_download = 0;
        } else if (i + 1 < argc && strcmp(argv[i], "--model") == 0) {
            model_path = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--data") == 0) {
            data.data_dir = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--batch-size") == 0) {
            batch = atoi(argv[++i]);
            if (batch < 1 || batch > 65536) {
                fprintf(stderr, "hd-gpu eval: --batch-size '%s': expected 1 to 65536\n", argv[i]);
                return HD_EXIT_USAGE;
            }
        } else {
            fprintf(stderr, "hd-gpu eval: unknown option or missing value: '%s' (see --help)\n", argv[i]);
            return HD_EXIT_USAGE;
        }
    }
    if (!model_path) {
        fprintf(stderr, "hd-gpu eval: --model FILE is required (see --help)\n");
        return HD_EXIT_USAGE;
    }
    hd_backend *be = hd_device_options_open(&dev);
    if (!be)
        return HD_EXIT_RUNTIME;
    hd_eval_inputs in;
    if (hd_eval_inputs_load(&in, be, model_path, &data, batch) != 0) {
        fprintf(stderr, "hd-gpu: %s\n", hd_last_error());
        hd_backend_destroy(be);
        return HD_EXIT_RUNTIME;
    }
    int status = HD_EXIT_RUNTIME;
    int classes = in.model.classes;
    int *confusion = hd_calloc((size_t)classes * classes, sizeof(int));
    hd_eval_result r;
    double t0 = hd_now_seconds();
    if (!confusion || hd_evaluate(&in.model, &in.test, &r, confusion, NULL, NULL) != 0) {
        fprintf(stderr, "hd-gpu: %s\n", hd_last_error());
    } else {
        double seconds = hd_now_seconds() - t0;
        printf("%s on %s\n", model_path, be->ops->describe(be));
        hd_print_test_results(stdout, r.accuracy, r.loss, confusion, classes, r.count);
        printf("evaluated %d images in %.2f s (%.0f images/s)\n", r.count, seconds, r.count / seconds);
        status = HD_EXIT_OK;
    }
    free(confusion);
    hd_eval_inputs_free(&in);
    hd_backend_destroy(be);
    return status;
}
