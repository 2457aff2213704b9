/* cmd_predict.c: `hd-gpu predict --model FILE|RUN_DIR [options] IMAGE|DIR|- ...`: classifies
 * images of single digits (any format stb_image reads) with a trained checkpoint. Each image is
 * prepared as MNIST was (hd/digit_image.h); images are classified in batches of up to
 * PREDICT_BATCH. The device is opened (and its notice, if any, printed) only once the arguments
 * and the checkpoint's header are checked and an image has been read. An image that
 * cannot be used gets its line in order ("FILE: error: ..." or a JSON "error" object) and the
 * others are still classified; the exit code is then 1. */
#include "hd/cli.h"
#include "hd/common.h"
#include "hd/dataset_split.h"
#include "hd/digit_image.h"
#include "hd/model.h"
#include "hd/safetensors.h"
#include "hd/model_load.h"
#include "predict.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREDICT_BATCH 256

typedef struct {
    hd_device_options dev;
    hd_predict_format format;
    const char *model;
    const char *save_dir; /* --save-preprocessed */
} predict_settings;

#define P(s) ((predict_settings *)(s))
static int set_model(void *s, const char *v) {
    return P(s)->model = v, 0;
}
static int set_json(void *s, const char *v) {
    return (void)v, P(s)->format.json = 1, 0;
}
static int set_low(void *s, const char *v) {
    return hd_cli_real(v, 0, 1, &P(s)->format.low_confidence);
}
static int set_save(void *s, const char *v) {
    return P(s)->save_dir = v, 0;
}
static int set_quiet(void *s, const char *v) {
    return (void)v, P(s)->dev.quiet = 1, 0;
}
#undef P

static const hd_cli_option predict_options[] = {
    HD_CLI_OPTION("model", "FILE", set_model,
                  "checkpoint written by hd-gpu train, or its run directory (required)"),
    HD_CLI_OPTION(
        "json", NULL, set_json,
        "one JSON object per image on stdout: {\"file\", \"class\", \"probability\",\n"
        "\"low_confidence\", \"top3\": [{\"class\", \"probability\"}, ...], \"probabilities\": [all\n"
        "classes]} or {\"file\", \"error\"}"),
    HD_CLI_OPTION("low-confidence", "P", set_low,
                  "flag an answer whose probability is under P (default 0.5)"),
    HD_CLI_OPTION("save-preprocessed", "DIR", set_save,
                  "write the 28x28 images the model saw, as DIR/NAME.png"),
    HD_CLI_OPTION("quiet", NULL, set_quiet, "no notice when falling back to the CPU"),
};
static const hd_cli_group predict_groups[] = {
    HD_CLI_GROUP_WHOLE(NULL, predict_options),
    HD_CLI_GROUP("Device:", hd_device_cli_options, predict_settings, dev),
};
const hd_cli_command hd_cli_predict = {
    .name = "predict",
    .summary = "classify your own images of digits (--model FILE IMAGE...)",
    .synopsis = "--model FILE|RUN_DIR [options] IMAGE|DIR|- ...",
    .description =
        "Classifies images of one handwritten digit each (PNG, JPEG, BMP or GIF): files, the images in a\n"
        "directory (sorted by name), or - for one image on stdin. Each image is turned into MNIST's form\n"
        "first: grey, inverted when the background is light, cropped to the digit, scaled to fit 20x20\n"
        "and centred by centre of mass in 28x28. Prints the three most likely classes per image:\n"
        "\"digit.png: 7 (99.12%), 1 (0.50%), 9 (0.21%)\", or \"digit.png: error: ...\".",
    .groups = predict_groups,
    .n_groups = sizeof predict_groups / sizeof predict_groups[0],
    .positional = "IMAGE",
    .epilog = "Exit code: 0 all images classified, 1 an image or the model could not be used, 2 bad usage.\n",
    .run = hd_cmd_predict,
};

/* What one run holds. */
typedef struct {
    predict_settings s;
    hd_predict_inputs in;
    char model_path[4200];
    hd_backend *be;
    hd_model model;
    float *pixels, *logits;
    int *ok;
    char (*messages)[1024];
    int max_batch;
} predict_run;

static void predict_run_free(predict_run *r) {
    if (r->model.be)
        hd_model_destroy(&r->model);
    hd_backend_destroy(r->be);
    hd_predict_inputs_free(&r->in);
    free(r->pixels);
    free(r->logits);
    free(r->ok);
    free(r->messages);
}

/* The 28x28 image the model saw, as SAVE_DIR/NAME.png (NAME: the file's name without its extension). */
static int save_preprocessed(const char *dir, const char *file, const float *pixels) {
    const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
    size_t stem = strcmp(base, "-") == 0 ? 0
                  : strrchr(base, '.')   ? (size_t)(strrchr(base, '.') - base)
                                         : strlen(base);
    char path[4200];
    snprintf(path, sizeof path, "%s/%.*s.png", dir, (int)(stem ? stem : 5), stem ? base : "stdin");
    uint8_t gray[HD_DIGIT_PIXELS];
    for (int i = 0; i < HD_DIGIT_PIXELS; i++)
        gray[i] = (uint8_t)lrintf(fminf(fmaxf(pixels[i], 0.0f), 1.0f) * 255.0f);
    return hd_write_png_gray(path, gray, HD_DIGIT_SIDE, HD_DIGIT_SIDE);
}

/* Loads the images [first, first + count) into r->pixels (ok[i], else messages[i]); returns how many. */
static int load_chunk(predict_run *r, int first, int count) {
    int n = 0;
    for (int i = 0; i < count; i++) {
        const char *file = r->in.names[first + i];
        float *pixels = r->pixels + (size_t)n * HD_DIGIT_PIXELS;
        r->ok[i] = hd_predict_load_image(file, pixels) == 0 &&
                   (!r->s.save_dir || save_preprocessed(r->s.save_dir, file, pixels) == 0);
        if (r->ok[i])
            n++;
        else
            snprintf(r->messages[i], sizeof r->messages[i], "%s", hd_last_error());
    }
    return n;
}

/* predict reads 28x28 grayscale digits, so the checkpoint's model must take them. */
static int open_model(predict_run *r) {
    r->be = hd_device_options_open(&r->s.dev);
    if (!r->be)
        return -1;
    if (hd_model_load_checkpoint(&r->model, r->be, r->model_path, r->max_batch) != 0) {
        memset(&r->model, 0, sizeof r->model);
        return -1;
    }
    if (r->model.in_c == 1 && r->model.in_h == HD_DIGIT_SIDE && r->model.in_w == HD_DIGIT_SIDE)
        return 0;
    int c = r->model.in_c, h = r->model.in_h, w = r->model.in_w;
    hd_model_destroy(&r->model);
    memset(&r->model, 0, sizeof r->model);
    return hd_fail("%s: the model takes %dx%dx%d inputs; predict reads 1x%dx%d grayscale images",
                   r->model_path, c, h, w, HD_DIGIT_SIDE, HD_DIGIT_SIDE);
}

/* Classifies the n loaded images of [first, first + count) and prints every line; returns the failures. */
static int answer_chunk(predict_run *r, int first, int count, int n) {
    hd_model *model = &r->model;
    if (n > 0) {
        hd_backend *be = model->be;
        /* the model's input convention (--normalize); the images are saved (--save) before this */
        hd_normalize_pixels(r->pixels, (size_t)n * HD_DIGIT_PIXELS, model->input_mean, model->input_std);
        be->ops->upload(be, model->input, r->pixels, (size_t)n * HD_DIGIT_PIXELS * sizeof *r->pixels);
        const float *device_logits = hd_model_forward(model, n, 0, 0);
        be->ops->download(be, r->logits, device_logits, (size_t)n * model->classes * sizeof *r->logits);
    }
    int failed = 0;
    for (int i = 0, row = 0; i < count; i++) {
        const char *file = r->in.names[first + i];
        if (r->ok[i]) {
            hd_predict_print(stdout, &r->s.format, file, r->logits + (size_t)row++ * model->classes,
                             model->classes);
        } else {
            hd_predict_print_error(stdout, &r->s.format, file, r->messages[i]);
            failed++;
        }
    }
    fflush(stdout);
    return failed;
}

/* Arguments, operands and the checkpoint's header: 0, or the exit code with the message printed. */
static int prepare(predict_run *r, int argc, char **argv) {
    hd_device_options_defaults(&r->s.dev);
    r->s.format.low_confidence = 0.5;
    int first_operand;
    int parsed = hd_cli_parse(&hd_cli_predict, &r->s, argc, argv, &first_operand);
    if (parsed != 0)
        return parsed > 0 ? -HD_EXIT_OK - 1 : HD_EXIT_USAGE;
    if (!r->s.model) {
        fprintf(stderr, "hd-gpu predict: --model FILE is required (see --help)\n");
        return HD_EXIT_USAGE;
    }
    if (first_operand >= argc) {
        fprintf(stderr, "hd-gpu predict: no images given (see --help)\n");
        return HD_EXIT_USAGE;
    }
    hd_safetensors *file = NULL;
    if (hd_resolve_model_path(r->s.model, r->model_path, sizeof r->model_path) != 0 ||
        hd_safetensors_read(r->model_path, &file) != 0 || (r->s.save_dir && hd_mkdir_p(r->s.save_dir) != 0) ||
        hd_predict_inputs_list(&r->in, argv + first_operand, argc - first_operand) != 0) {
        hd_safetensors_free(file);
        fprintf(stderr, "hd-gpu predict: %s\n", hd_last_error());
        return HD_EXIT_RUNTIME;
    }
    hd_safetensors_free(file);
    r->max_batch = r->in.count < PREDICT_BATCH ? r->in.count : PREDICT_BATCH;
    r->pixels = hd_malloc((size_t)r->max_batch * HD_DIGIT_PIXELS * sizeof *r->pixels);
    r->ok = hd_malloc((size_t)r->max_batch * sizeof *r->ok);
    r->messages = hd_malloc((size_t)r->max_batch * sizeof *r->messages);
    if (!r->pixels || !r->ok || !r->messages) {
        fprintf(stderr, "hd-gpu predict: %s\n", hd_last_error());
        return HD_EXIT_RUNTIME;
    }
    return 0;
}

int hd_cmd_predict(int argc, char **argv) {
    predict_run r;
    memset(&r, 0, sizeof r);
    int rc = prepare(&r, argc, argv);
    if (rc != 0) {
        predict_run_free(&r);
        return rc < 0 ? HD_EXIT_OK : rc;
    }
    int failed = 0;
    for (int first = 0; first < r.in.count; first += r.max_batch) {
        int count = r.in.count - first < r.max_batch ? r.in.count - first : r.max_batch;
        int n = load_chunk(&r, first, count);
        if (!r.be && n > 0) { /* only once an image is read: no device notice before the files' errors */
            if (open_model(&r) != 0 ||
                !(r.logits = hd_malloc((size_t)r.max_batch * r.model.classes * sizeof *r.logits))) {
                if (r.be)
                    fprintf(stderr, "hd-gpu predict: %s\n", hd_last_error());
                predict_run_free(&r);
                return HD_EXIT_RUNTIME;
            }
            r.s.format.class_names = r.model.class_names; /* --class-names of the run, if any */
        }
        failed += answer_chunk(&r, first, count, n);
    }
    predict_run_free(&r);
    return failed ? HD_EXIT_RUNTIME : HD_EXIT_OK;
}
