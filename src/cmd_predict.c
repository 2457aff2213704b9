/* cmd_predict.c: `hd-gpu predict --model FILE [--json] IMAGE...`: classifies images of single
 * digits (any format stb_image reads) with a trained checkpoint, printing the three most
 * likely classes per image. Each image is prepared as MNIST was (hd/digit_image.h); images
 * are classified in batches of up to PREDICT_BATCH. A file that cannot be used is reported on
 * stderr (and as an "error" object with --json) and the others are still classified; the exit
 * code is then 1. */
#include "hd/cli.h"
#include "hd/common.h"
#include "hd/digit_image.h"
#include "hd/json_min.h"
#include "hd/model.h"
#include "model_load.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREDICT_BATCH 256
#define PREDICT_TOP   3

typedef struct {
    const char *model_path;
    int json;
    hd_device_options dev;
    char **images;
    int n_images;
} predict_options;

static void usage(FILE *out) {
    fprintf(out,
            "usage: hd-gpu predict --model FILE [options] IMAGE...\n"
            "Classifies images of one handwritten digit each (PNG, JPEG, BMP or GIF).\n"
            "Each image is turned into MNIST's form first: grey, inverted when the background is light,\n"
            "cropped to the digit, scaled to fit 20x20 and centred by centre of mass in 28x28.\n"
            "Prints the three most likely classes per image: \"digit.png: 7 (99.12%%), 1 (0.50%%), 9 "
            "(0.21%%)\".\n"
            "  --model FILE       checkpoint written by hd-gpu train (required)\n"
            "  --json             one JSON object per image on stdout: {\"file\", \"top3\": [{\"class\",\n"
            "                     \"probability\"}, ...]} or {\"file\", \"error\"}\n"
            "%s"
            "  --help             this text\n"
            "Exit code: 0 all images classified, 1 an image or the model could not be used, 2 bad usage.\n",
            hd_device_options_usage());
}

/* 1 = --help shown, 0 = go on, -1 = bad usage (message printed). */
static int parse_args(predict_options *opt, int argc, char **argv) {
    memset(opt, 0, sizeof *opt);
    hd_device_options_defaults(&opt->dev);
    opt->images = hd_malloc((size_t)(argc > 0 ? argc : 1) * sizeof *opt->images);
    if (!opt->images) {
        fprintf(stderr, "hd-gpu predict: %s\n", hd_last_error());
        return -1;
    }
    int only_files = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (only_files || arg[0] != '-') {
            opt->images[opt->n_images++] = argv[i];
        } else if (strcmp(arg, "--") == 0) {
            only_files = 1;
        } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            return 1;
        } else if (strcmp(arg, "--json") == 0) {
            opt->json = 1;
        } else if (strcmp(arg, "--model") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "hd-gpu predict: --model needs a file\n");
                return -1;
            }
            opt->model_path = argv[++i];
        } else {
            int rc = hd_device_options_parse(&opt->dev, argc, argv, &i);
            if (rc < 0)
                return -1;
            if (rc == 0) {
                fprintf(stderr, "hd-gpu predict: unknown option '%s'\n", arg);
                usage(stderr);
                return -1;
            }
        }
    }
    if (!opt->model_path) {
        fprintf(stderr, "hd-gpu predict: --model FILE is required\n");
        usage(stderr);
        return -1;
    }
    if (opt->n_images == 0) {
        fprintf(stderr, "hd-gpu predict: no images given\n");
        usage(stderr);
        return -1;
    }
    return 0;
}

/* A JSON string literal: quotes, backslashes and control characters escaped; a name that is
 * not valid UTF-8 has its bytes >= 0x80 written as \u00XX (read as Latin-1). */
static void print_json_string(FILE *out, const char *s) {
    int utf8 = hd_json_valid_utf8(s);
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", out);
        else if (*p == '\t')
            fputs("\\t", out);
        else if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && !utf8))
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

/* The top classes of one row of logits, by softmax probability (computed in double). */
static int top_classes(const float *logits, int classes, int top_class[PREDICT_TOP],
                       double top_prob[PREDICT_TOP]) {
    double max_logit = logits[0];
    for (int c = 1; c < classes; c++)
        max_logit = fmax(max_logit, logits[c]);
    double sum = 0.0;
    for (int c = 0; c < classes; c++)
        sum += exp(logits[c] - max_logit);
    int n_top = classes < PREDICT_TOP ? classes : PREDICT_TOP;
    for (int k = 0; k < n_top; k++) {
        top_class[k] = -1;
        top_prob[k] = -1.0;
        for (int c = 0; c < classes; c++) {
            double p = exp(logits[c] - max_logit) / sum;
            int taken = 0;
            for (int j = 0; j < k; j++)
                taken |= top_class[j] == c;
            if (!taken && p > top_prob[k]) {
                top_prob[k] = p;
                top_class[k] = c;
            }
        }
    }
    return n_top;
}

static void print_prediction(const predict_options *opt, const char *file, const float *logits, int classes) {
    int top_class[PREDICT_TOP];
    double top_prob[PREDICT_TOP];
    int n_top = top_classes(logits, classes, top_class, top_prob);
    if (opt->json) {
        fputs("{\"file\": ", stdout);
        print_json_string(stdout, file);
        fputs(", \"top3\": [", stdout);
        for (int k = 0; k < n_top; k++)
            printf("%s{\"class\": %d, \"probability\": %.6f}", k ? ", " : "", top_class[k], top_prob[k]);
        fputs("]}\n", stdout);
    } else {
        printf("%s:", file);
        for (int k = 0; k < n_top; k++)
            printf("%s %d (%.2f%%)", k ? "," : "", top_class[k], 100.0 * top_prob[k]);
        putchar('\n');
    }
}

/* message already names the file (hd_digit_image_load's messages do). */
static void print_error(const predict_options *opt, const char *file, const char *message) {
    fprintf(stderr, "hd-gpu predict: %s\n", message);
    if (opt->json) {
        fputs("{\"file\": ", stdout);
        print_json_string(stdout, file);
        fputs(", \"error\": ", stdout);
        print_json_string(stdout, message);
        fputs("}\n", stdout);
    }
}

/* Classifies the images [first, first + count): returns the number that failed. */
static int predict_chunk(const predict_options *opt, hd_model *model, int first, int count, float *pixels,
                         int *ok, float *logits) {
    hd_backend *be = model->be;
    int failed = 0, n = 0;
    char(*messages)[1024] = hd_malloc((size_t)count * sizeof *messages);
    if (!messages) {
        fprintf(stderr, "hd-gpu predict: %s\n", hd_last_error());
        return count;
    }
    for (int i = 0; i < count; i++) {
        ok[i] = hd_digit_image_load(opt->images[first + i], pixels + (size_t)n * HD_DIGIT_PIXELS) == 0;
        if (ok[i])
            n++;
        else
            snprintf(messages[i], sizeof messages[i], "%s", hd_last_error());
    }
    if (n > 0) {
        be->ops->upload(be, model->input, pixels, (size_t)n * HD_DIGIT_PIXELS * sizeof *pixels);
        const float *device_logits = hd_model_forward(model, n, 0, 0);
        be->ops->download(be, logits, device_logits, (size_t)n * model->classes * sizeof *logits);
    }
    for (int i = 0, row = 0; i < count; i++) {
        const char *file = opt->images[first + i];
        if (ok[i]) {
            print_prediction(opt, file, logits + (size_t)row * model->classes, model->classes);
            row++;
        } else {
            print_error(opt, file, messages[i]);
            failed++;
        }
    }
    fflush(stdout);
    free(messages);
    return failed;
}

/* predict reads 28x28 grayscale digits, so the checkpoint's model must take them. */
static int load_model(const predict_options *opt, hd_backend *be, int max_batch, hd_model *model) {
    if (hd_model_load_checkpoint(model, be, opt->model_path, max_batch) != 0)
        return -1;
    if (model->in_c == 1 && model->in_h == HD_DIGIT_SIDE && model->in_w == HD_DIGIT_SIDE)
        return 0;
    int c = model->in_c, h = model->in_h, w = model->in_w;
    hd_model_destroy(model);
    return hd_fail("%s: the model takes %dx%dx%d inputs; predict reads 1x%dx%d grayscale images",
                   opt->model_path, c, h, w, HD_DIGIT_SIDE, HD_DIGIT_SIDE);
}

int hd_cmd_predict(int argc, char **argv) {
    predict_options opt;
    int rc = parse_args(&opt, argc, argv);
    if (rc != 0) {
        free(opt.images);
        return rc > 0 ? HD_EXIT_OK : HD_EXIT_USAGE;
    }
    int max_batch = opt.n_images < PREDICT_BATCH ? opt.n_images : PREDICT_BATCH;
    hd_backend *be = hd_device_options_open(&opt.dev);
    if (!be) {
        free(opt.images);
        return HD_EXIT_RUNTIME;
    }
    hd_model model;
    memset(&model, 0, sizeof model);
    if (load_model(&opt, be, max_batch, &model) != 0) {
        fprintf(stderr, "hd-gpu predict: %s\n", hd_last_error());
        hd_backend_destroy(be);
        free(opt.images);
        return HD_EXIT_RUNTIME;
    }
    float *pixels = hd_malloc((size_t)max_batch * HD_DIGIT_PIXELS * sizeof *pixels);
    float *logits = hd_malloc((size_t)max_batch * model.classes * sizeof *logits);
    int *ok = hd_malloc((size_t)max_batch * sizeof *ok);
    int failed = 0;
    if (!pixels || !logits || !ok) {
        fprintf(stderr, "hd-gpu predict: %s\n", hd_last_error());
        failed = opt.n_images;
    } else {
        for (int first = 0; first < opt.n_images; first += max_batch) {
            int count = opt.n_images - first < max_batch ? opt.n_images - first : max_batch;
            failed += predict_chunk(&opt, &model, first, count, pixels, ok, logits);
        }
    }
    free(pixels);
    free(logits);
    free(ok);
    hd_model_destroy(&model);
    hd_backend_destroy(be);
    free(opt.images);
    return failed ? HD_EXIT_RUNTIME : HD_EXIT_OK;
}
