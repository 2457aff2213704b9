/* test_predict_command.c: `hd-gpu predict` end to end, against the model it loads.
 *
 * A default-spec model with fresh random weights is saved as a checkpoint; digit images are drawn
 * and written as PNG (a thick "1", white on black at 28x28, and a "0" ring, black on white at
 * 60x60, so both polarities and a resize are taken), beside a blank image and a missing file.
 * hd_cmd_predict runs on them with its stdout caught in a file, in --json and in text mode. What
 * it prints must be the model's own answer: for each image, the softmax (in double) of the saved
 * model's logits on hd_digit_image_load's pixels, top three classes in order, probabilities within
 * 1e-6 (the output has 6 decimals; the same weights and pixels give the same logits up to float
 * rounding of the thread split). Bad images get an error object and exit 1, the others still
 * answered; a checkpoint whose model takes other inputs than 1x28x28 is refused, naming its shape. */
#include "check.h"
#include "hd/checkpoint.h"
#include "hd/cli.h"
#include "hd/common.h"
#include "hd/digit_image.h"
#include "hd/json_io.h"
#include "hd/model.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROB_TOL 1e-6

typedef struct {
    int classes[3];
    double probs[3];
} top3;

/* The model's answer for one image file, computed here as predict should. */
static int reference_top3(hd_model *model, const char *path, top3 *out) {
    float pixels[HD_DIGIT_PIXELS];
    if (hd_digit_image_load(path, pixels) != 0)
        return -1;
    if (model->classes < 3 || model->classes > 16)
        return hd_fail("reference: %d classes", model->classes);
    hd_backend *be = model->be;
    be->ops->upload(be, model->input, pixels, sizeof pixels);
    float logits[16];
    be->ops->download(be, logits, hd_model_forward(model, 1, 0, 0), (size_t)model->classes * sizeof(float));
    double max_logit = logits[0], sum = 0.0, p[16] = {0};
    for (int c = 1; c < model->classes; c++)
        max_logit = fmax(max_logit, logits[c]);
    for (int c = 0; c < model->classes; c++)
        sum += p[c] = exp(logits[c] - max_logit);
    for (int k = 0; k < 3; k++) {
        int best = 0;
        for (int c = 1; c < model->classes; c++)
            if (p[c] > p[best])
                best = c;
        out->classes[k] = best;
        out->probs[k] = p[best] / sum;
        p[best] = -1.0; /* taken */
    }
    return 0;
}

/* Runs hd_cmd_predict with stdout redirected to `capture`; returns its exit code. */
static int run_predict(const char *capture, char **argv, int argc) {
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int fd = open(capture, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (saved < 0 || fd < 0) {
        CHECK(0, "redirecting stdout to %s", capture);
        return -1;
    }
    dup2(fd, STDOUT_FILENO);
    close(fd);
    int rc = hd_cmd_predict(argc, argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    return rc;
}

static char *read_text(const char *path) {
    uint8_t *data = NULL;
    size_t size = 0;
    if (hd_read_file(path, &data, &size) != 0)
        return NULL;
    char *text = realloc(data, size + 1);
    if (!text) {
        free(data);
        return NULL;
    }
    text[size] = '\0';
    return text;
}

static double json_number(const json_t *obj, const char *key) {
    const json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void check_top3(const char *what, const char *file, const top3 *got, const top3 *want) {
    for (int k = 0; k < 3; k++) {
        CHECK(got->classes[k] == want->classes[k], "%s %s: class #%d is %d, the model says %d", what, file,
              k + 1, got->classes[k], want->classes[k]);
        CHECK(fabs(got->probs[k] - want->probs[k]) <= PROB_TOL, "%s %s: p(#%d) %.7f, the model says %.7f",
              what, file, k + 1, got->probs[k], want->probs[k]);
    }
}

/* One JSON line: {"file": ..., "top3": [...]} or {"file": ..., "error": ...}. */
static void check_json_line(const char *line, size_t len, const char *file, const top3 *want) {
    json_t *root = NULL;
    if (hd_json_load("predict --json", line, len, (size_t)1 << 20, &root) != 0) {
        CHECK(0, "%s", hd_last_error());
        return;
    }
    const char *name = json_string_value(json_object_get(root, "file"));
    CHECK(name && strcmp(name, file) == 0, "JSON line names %s", name ? name : "(nothing)");
    const json_t *list = json_object_get(root, "top3");
    const char *error = json_string_value(json_object_get(root, "error"));
    if (!want) {
        CHECK(!list && error && strstr(error, file), "%s: an error object naming the file", file);
    } else if (json_is_array(list) && json_array_size(list) == 3) {
        top3 got = {{0}, {0}};
        for (int k = 0; k < 3; k++) {
            got.classes[k] = (int)json_number(json_array_get(list, (size_t)k), "class");
            got.probs[k] = json_number(json_array_get(list, (size_t)k), "probability");
        }
        check_top3("--json", file, &got, want);
    } else {
        CHECK(0, "%s: no top3 list of 3 in the JSON line", file);
    }
    json_decref(root);
}

/* "FILE: 7 (99.12%), 1 (0.50%), 9 (0.21%)": percentages have 2 decimals. */
static void check_text_line(const char *line, const char *file, const top3 *want) {
    size_t name_len = strlen(file);
    CHECK(strncmp(line, file, name_len) == 0 && line[name_len] == ':', "text line starts with %s:", file);
    top3 got = {{0}, {0}};
    double percent[3] = {0};
    int n = sscanf(line + name_len, ": %d (%lf%%), %d (%lf%%), %d (%lf%%)", &got.classes[0], &percent[0],
                   &got.classes[1], &percent[1], &got.classes[2], &percent[2]);
    CHECK(n == 6, "text line '%s' parsed %d of 6 fields", line, n);
    for (int k = 0; k < 3; k++) {
        CHECK(got.classes[k] == want->classes[k], "text %s: class #%d is %d, the model says %d", file, k + 1,
              got.classes[k], want->classes[k]);
        CHECK(fabs(percent[k] - 100.0 * want->probs[k]) <= 0.005 + 1e-4,
              "text %s: %.2f%%, the model says %.4f%%", file, percent[k], 100.0 * want->probs[k]);
    }
}

static void draw_one(uint8_t *img) { /* 28x28, white on black */
    memset(img, 0, 28 * 28);
    for (int y = 5; y < 23; y++)
        for (int x = 12 + (23 - y) / 6; x < 16 + (23 - y) / 6; x++)
            img[y * 28 + x] = 255;
}

static void draw_zero(uint8_t *img) { /* 60x60, black on white */
    for (int y = 0; y < 60; y++)
        for (int x = 0; x < 60; x++) {
            double r = hypot((x - 30) / 0.75, y - 30.0);
            img[y * 60 + x] = r >= 14.0 && r <= 22.0 ? 0 : 250;
        }
}

static void test_predictions(const char *dir, uint64_t seed) {
    hd_cpu_options cpu = {.threads = 1};
    hd_backend *be = hd_cpu_backend_create(&cpu);
    hd_model model;
    int built = be && hd_model_create(&model, be, HD_DEFAULT_SPEC, 1, 28, 28, 1) == 0;
    CHECK(built, "model: %s", hd_last_error());
    if (!built) {
        hd_backend_destroy(be);
        return;
    }
    hd_model_init_weights(&model, seed);
    char *ckpt = test_path_join(dir, "model.safetensors"), *one = test_path_join(dir, "one.png"),
         *zero = test_path_join(dir, "zero.png"), *blank = test_path_join(dir, "blank.png"),
         *missing = test_path_join(dir, "missing.png"), *out = test_path_join(dir, "stdout.txt");
    uint8_t one_img[28 * 28], zero_img[60 * 60], blank_img[28 * 28] = {0};
    draw_one(one_img);
    draw_zero(zero_img);
    CHECK(hd_checkpoint_save(ckpt, &model, NULL, NULL, 0) == 0, "save: %s", hd_last_error());
    CHECK(hd_write_png_gray(one, one_img, 28, 28) == 0 && hd_write_png_gray(zero, zero_img, 60, 60) == 0 &&
              hd_write_png_gray(blank, blank_img, 28, 28) == 0,
          "writing images: %s", hd_last_error());
    top3 want_one = {{0}, {0}}, want_zero = {{0}, {0}};
    CHECK(reference_top3(&model, one, &want_one) == 0 && reference_top3(&model, zero, &want_zero) == 0,
          "reference: %s", hd_last_error());

    /* --json, a bad image and a missing one among good ones: exit 1, one line per image in order. */
    char *json_argv[] = {"--model", ckpt, "--device", "cpu", "--threads", "1",
                         "--json",  one,  blank,      zero,  missing};
    int rc = run_predict(out, json_argv, (int)(sizeof json_argv / sizeof json_argv[0]));
    CHECK(rc == HD_EXIT_RUNTIME, "--json with a blank and a missing image: exit %d, expected 1", rc);
    char *text = read_text(out);
    CHECK(text != NULL, "reading %s", out);
    const char *files[] = {one, blank, zero, missing};
    const top3 *wants[] = {&want_one, NULL, &want_zero, NULL};
    int lines = 0;
    for (char *line = text; line && *line; lines++) {
        char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (lines < 4)
            check_json_line(line, len, files[lines], wants[lines]);
        line = end ? end + 1 : NULL;
    }
    CHECK(lines == 4, "--json printed %d lines for 4 images", lines);
    free(text);

    /* Text mode, good images only: exit 0. */
    char *text_argv[] = {"--model", ckpt, "--device", "cpu", "--threads", "1", zero, one};
    rc = run_predict(out, text_argv, (int)(sizeof text_argv / sizeof text_argv[0]));
    CHECK(rc == HD_EXIT_OK, "text mode: exit %d", rc);
    text = read_text(out);
    char *second = text ? strchr(text, '\n') : NULL;
    CHECK(second != NULL, "text mode printed two lines: '%s'", text ? text : "");
    if (second) {
        *second++ = '\0';
        check_text_line(text, zero, &want_zero);
        char *nl = strchr(second, '\n');
        if (nl)
            *nl = '\0';
        check_text_line(second, one, &want_one);
    }
    free(text);
    hd_model_destroy(&model);

    /* A model for 14x14 inputs: refused, naming the file and the shape. */
    built = hd_model_create(&model, be, HD_DEFAULT_SPEC, 1, 14, 14, 1) == 0;
    CHECK(built, "14x14 model: %s", hd_last_error());
    if (built) {
        hd_model_init_weights(&model, seed + 1);
        CHECK(hd_checkpoint_save(ckpt, &model, NULL, NULL, 0) == 0, "save 14x14: %s", hd_last_error());
        hd_model_destroy(&model);
    }
    char *shape_argv[] = {"--model", ckpt, "--device", "cpu", one};
    rc = run_predict(out, shape_argv, (int)(sizeof shape_argv / sizeof shape_argv[0]));
    CHECK(rc == HD_EXIT_RUNTIME && strstr(hd_last_error(), ckpt) &&
              strstr(hd_last_error(), "takes 1x14x14 inputs"),
          "a 14x14 model: exit %d, '%s'", rc, hd_last_error());

    hd_backend_destroy(be);
    free(ckpt);
    free(one);
    free(zero);
    free(blank);
    free(missing);
    free(out);
}

int main(void) {
#ifndef HD_HAVE_STB
    test_skip("built without stb: predict cannot read images");
    return test_finish();
#endif
    uint64_t seed = test_fresh_seed();
    char *dir = test_make_temp_dir("predict-cmd");
    CHECK(dir != NULL, "temporary directory");
    if (dir) {
        test_predictions(dir, seed);
        test_remove_tree(dir);
        free(dir);
    }
    return test_finish();
}
