/* cmd_eval.c: `hd-gpu eval --model FILE|RUN_DIR`: test-set accuracy, per-class accuracy and the
 * confusion matrix of a saved model. The arguments, the checkpoint and the test set are checked
 * before the device is opened, so that its notice (no usable GPU) comes after any of their errors. */
#include "hd/cli.h"
#include "hd/common.h"
#include "hd/dataset_split.h"
#include "hd/evaluate.h"
#include "hd/mnist.h"
#include "hd/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    hd_device_options dev;
    hd_mnist_options data;
    const char *model;
    int batch;
} eval_settings;

#define E(s) ((eval_settings *)(s))
static int set_model(void *s, const char *v) {
    return E(s)->model = v, 0;
}
static int set_data(void *s, const char *v) {
    return E(s)->data.data_dir = v, 0;
}
static int set_no_download(void *s, const char *v) {
    return (void)v, E(s)->data.allow_download = 0, 0;
}
static int set_batch_size(void *s, const char *v) {
    return hd_cli_int(v, 1, 65536, &E(s)->batch);
}
static int set_quiet(void *s, const char *v) {
    return (void)v, E(s)->data.quiet = E(s)->dev.quiet = 1, 0;
}
#undef E

static const hd_cli_option eval_options[] = {
    HD_CLI_OPTION("model", "FILE", set_model,
                  "checkpoint (RUN_DIR/best.safetensors), or a run directory (required)"),
    HD_CLI_OPTION("data", "DIR", set_data,
                  "MNIST directory (default: $HD_DATA_DIR, then the cache, downloading)"),
    HD_CLI_OPTION("no-download", NULL, set_no_download, "fail instead of downloading"),
    HD_CLI_OPTION("batch-size", "N", set_batch_size, "images per forward pass (default 1000)"),
    HD_CLI_OPTION("quiet", NULL, set_quiet, "no notices (CPU fallback, download progress); the results only"),
};
static const hd_cli_group eval_groups[] = {
    HD_CLI_GROUP_WHOLE(NULL, eval_options),
    HD_CLI_GROUP("Device:", hd_device_cli_options, eval_settings, dev),
};
const hd_cli_command hd_cli_eval = {
    .name = "eval",
    .summary = "evaluate a saved model on the test set (--model FILE or RUN_DIR)",
    .synopsis = "--model FILE|RUN_DIR [options]",
    .description = "Evaluates a checkpoint (e.g. RUN_DIR/best.safetensors) on the MNIST test set.",
    .groups = eval_groups,
    .n_groups = sizeof eval_groups / sizeof eval_groups[0],
    .run = hd_cmd_eval,
};

/* The checkpoint opens and reads as one (its header and metadata), before any device is opened. */
static int check_checkpoint(const char *path) {
    hd_safetensors *file = NULL;
    if (hd_safetensors_read(path, &file) != 0)
        return -1;
    hd_safetensors_free(file);
    return 0;
}

static int evaluate(const char *model_path, hd_backend *be, hd_model *model, hd_float_set *test) {
    int classes = model->classes;
    int *confusion = hd_calloc((size_t)classes * classes, sizeof(int));
    hd_eval_result r;
    double t0 = hd_now_seconds();
    if (!confusion || hd_evaluate(model, test, &r, confusion, NULL, NULL) != 0) {
        free(confusion);
        return -1;
    }
    double seconds = hd_now_seconds() - t0;
    printf("%s on %s\n", model_path, be->ops->describe(be));
    hd_print_test_results(stdout, r.accuracy, r.loss, confusion, classes, model->class_names, r.count);
    printf("evaluated %d images in %.2f s (%.0f images/s)\n", r.count, seconds, r.count / seconds);
    free(confusion);
    return 0;
}

int hd_cmd_eval(int argc, char **argv) {
    eval_settings s;
    memset(&s, 0, sizeof s);
    hd_device_options_defaults(&s.dev);
    hd_mnist_options_defaults(&s.data);
    s.batch = 1000;
    int first_operand;
    int parsed = hd_cli_parse(&hd_cli_eval, &s, argc, argv, &first_operand);
    if (parsed != 0)
        return parsed > 0 ? HD_EXIT_OK : HD_EXIT_USAGE;
    if (!s.model) {
        fprintf(stderr, "hd-gpu eval: --model FILE is required (see --help)\n");
        return HD_EXIT_USAGE;
    }
    char model_path[4200];
    hd_eval_inputs in;
    memset(&in, 0, sizeof in);
    hd_backend *be = NULL;
    int status = HD_EXIT_RUNTIME;
    /* The checkpoint's header and the test set first, then the device (and its notice), then the model. */
    if (hd_resolve_model_path(s.model, model_path, sizeof model_path) != 0 ||
        check_checkpoint(model_path) != 0 || hd_eval_inputs_load_test(&in, &s.data) != 0) {
        fprintf(stderr, "hd-gpu: %s\n", hd_last_error());
        goto out;
    }
    be = hd_device_options_open(&s.dev);
    if (!be)
        goto out;
    if (hd_eval_inputs_load_model(&in, be, model_path, s.batch) != 0 ||
        evaluate(model_path, be, &in.model, &in.test) != 0) {
        fprintf(stderr, "hd-gpu: %s\n", hd_last_error());
        goto out;
    }
    status = HD_EXIT_OK;
out:
    hd_eval_inputs_free(&in);
    hd_backend_destroy(be);
    return status;
}
