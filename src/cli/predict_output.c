/* predict_output.c: how `hd-gpu predict` prints an answer or an error (see predict.h); the JSON
 * lines are built with jansson. */
#include "predict.h"
#include "hd/common.h"
#include "hd/json_io.h"
#include "hd/model.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOP 3

/* A JSON string: the text as it is when it is UTF-8, else its bytes read as Latin-1. */
static json_t *json_text(const char *s) {
    if (hd_json_valid_utf8(s))
        return json_string(s);
    size_t len = strlen(s);
    char *utf8 = malloc(2 * len + 1), *p = utf8;
    if (!utf8)
        return NULL;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c < 0x80) {
            *p++ = (char)*c;
        } else {
            *p++ = (char)(0xc0 | (*c >> 6));
            *p++ = (char)(0x80 | (*c & 0x3f));
        }
    }
    *p = '\0';
    json_t *text = json_string(utf8);
    free(utf8);
    return text;
}

static void print_json(FILE *out, json_t *obj) {
    char *line = obj ? json_dumps(obj, JSON_PRESERVE_ORDER) : NULL;
    if (line)
        fprintf(out, "%s\n", line);
    else
        fprintf(stderr, "hd-gpu predict: cannot format a JSON line (out of memory)\n");
    free(line);
    json_decref(obj);
}

/* Softmax (in double) of one row of logits, and the classes by decreasing probability. */
static void softmax_ranked(const float *logits, int classes, double *prob, int *order) {
    double max_logit = logits[0], sum = 0.0;
    for (int c = 1; c < classes; c++)
        max_logit = fmax(max_logit, logits[c]);
    for (int c = 0; c < classes; c++)
        sum += prob[c] = exp(logits[c] - max_logit);
    for (int c = 0; c < classes; c++) {
        prob[c] /= sum;
        order[c] = c;
    }
    for (int i = 1; i < classes; i++) /* insertion sort: stable, so ties keep the lower class first */
        for (int j = i; j > 0 && prob[order[j]] > prob[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
}

void hd_predict_print(FILE *out, const hd_predict_format *fmt, const char *file, const float *logits,
                      int classes) {
    if (classes < 1) {
        hd_predict_print_error(out, fmt, file, "the model has no classes");
        return;
    }
    double *prob = malloc((size_t)classes * sizeof *prob);
    int *order = malloc((size_t)classes * sizeof *order);
    if (!prob || !order) {
        free(prob);
        free(order);
        hd_predict_print_error(out, fmt, file, "out of memory");
        return;
    }
    softmax_ranked(logits, classes, prob, order);
    char name[64];
    int n_top = classes < TOP ? classes : TOP;
    int low = prob[order[0]] < fmt->low_confidence;
    if (fmt->json) {
        json_t *obj = json_object(), *top = json_array(), *all = json_array();
        json_object_set_new(obj, "file", json_text(file));
        json_object_set_new(obj, "class", json_integer(order[0]));
        if (fmt->class_names)
            json_object_set_new(obj, "name",
                                json_text(hd_class_name(fmt->class_names, order[0], name, sizeof name)));
        json_object_set_new(obj, "probability", json_real(prob[order[0]]));
        json_object_set_new(obj, "low_confidence", json_boolean(low));
        for (int k = 0; k < n_top; k++) {
            json_t *entry = json_pack("{s:i, s:f}", "class", order[k], "probability", prob[order[k]]);
            if (fmt->class_names)
                json_object_set_new(entry, "name",
                                    json_text(hd_class_name(fmt->class_names, order[k], name, sizeof name)));
            json_array_append_new(top, entry);
        }
        json_object_set_new(obj, "top3", top);
        for (int c = 0; c < classes; c++)
            json_array_append_new(all, json_real(prob[c]));
        json_object_set_new(obj, "probabilities", all);
        print_json(out, obj);
    } else {
        fprintf(out, "%s:", file);
        for (int k = 0; k < n_top; k++)
            fprintf(out, "%s %d%s%s (%.2f%%)", k ? "," : "", order[k], fmt->class_names ? " " : "",
                    fmt->class_names ? hd_class_name(fmt->class_names, order[k], name, sizeof name) : "",
                    100.0 * prob[order[k]]);
        fprintf(out, "%s\n", low ? " [low confidence]" : "");
    }
    free(prob);
    free(order);
}

void hd_predict_print_error(FILE *out, const hd_predict_format *fmt, const char *file, const char *message) {
    if (fmt->json) {
        json_t *obj = json_object();
        json_object_set_new(obj, "file", json_text(file));
        json_object_set_new(obj, "error", json_text(message));
        print_json(out, obj);
        return;
    }
    size_t len = strlen(file);
    if (strncmp(message, file, len) == 0 && strncmp(message + len, ": ", 2) == 0)
        message += len + 2; /* the line names the file already */
    fprintf(out, "%s: error: %s\n", file, message);
}
