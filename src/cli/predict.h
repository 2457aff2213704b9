/* predict.h: the parts of `hd-gpu predict` (cmd_predict.c): what its operands name
 * (predict_inputs.c) and how an answer is printed (predict_output.c). */
#ifndef HD_PREDICT_H
#define HD_PREDICT_H

#include "hd/digit_image.h"

#include <stdio.h>

/* The images to classify, in order: an operand "-" is one image read from stdin, a directory
 * stands for its image files (.png .jpg .jpeg .bmp .gif, any case) sorted by name, anything
 * else is a file. */
typedef struct {
    char **names; /* as printed: the operand, or DIR/FILE */
    int count;
} hd_predict_inputs;

/* -1 + hd_fail() naming the directory that cannot be read. */
int hd_predict_inputs_list(hd_predict_inputs *in, char *const *operands, int n_operands);
void hd_predict_inputs_free(hd_predict_inputs *in);
/* hd_digit_image_load, or for "-" the image on stdin (at most HD_DIGIT_MAX_FILE_BYTES). */
int hd_predict_load_image(const char *name, float pixels[HD_DIGIT_PIXELS]);

typedef struct {
    int json;
    double low_confidence;   /* a top probability under this is flagged */
    const char *class_names; /* the model's (one a line), or NULL: classes as numbers */
} hd_predict_format;

/* One image's answer from its logits: text "FILE: 7 (99.12%), 1 (0.50%), 9 (0.21%)" (with
 * " [low confidence]" appended when flagged), or one JSON object per line with all the
 * classes' probabilities. With class names, each class is "7 Sneaker" in text and has a "name" beside
 * its "class" in JSON. */
void hd_predict_print(FILE *out, const hd_predict_format *fmt, const char *file, const float *logits,
                      int classes);
/* An image that could not be used: "FILE: error: MESSAGE" or {"file", "error"}. */
void hd_predict_print_error(FILE *out, const hd_predict_format *fmt, const char *file, const char *message);

#endif
