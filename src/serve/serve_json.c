/* serve_json.c: the JSON answers of `hd-gpu serve` (serve.h), through jansson, and the base64 PNG of the
 * 28x28 image the model saw. */
#include "hd/common.h"
#include "hd/json_io.h"
#include "hd/serve.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

char *hd_base64_encode(const uint8_t *data, size_t size) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (size > ((size_t)-1 / 4) * 3 - 3) {
        hd_fail("base64: %zu bytes is too many", size);
        return NULL;
    }
    char *text = hd_malloc((size + 2) / 3 * 4 + 1), *p = text;
    if (!text)
        return NULL;
    size_t i = 0;
    for (; i + 3 <= size; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        *p++ = alphabet[v >> 18];
        *p++ = alphabet[(v >> 12) & 63];
        *p++ = alphabet[(v >> 6) & 63];
        *p++ = alphabet[v & 63];
    }
    if (size - i == 1) {
        uint32_t v = (uint32_t)data[i] << 16;
        *p++ = alphabet[v >> 18];
        *p++ = alphabet[(v >> 12) & 63];
        *p++ = '=';
        *p++ = '=';
    } else if (size - i == 2) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;
        *p++ = alphabet[v >> 18];
        *p++ = alphabet[(v >> 12) & 63];
        *p++ = alphabet[(v >> 6) & 63];
        *p++ = '=';
    }
    *p = '\0';
    return text;
}

/* The PNG of the input (grey bytes, as predict --save-preprocessed writes it), base64. */
static char *preprocessed_png_base64(const float pixels[HD_DIGIT_PIXELS]) {
    uint8_t gray[HD_DIGIT_PIXELS];
    for (int i = 0; i < HD_DIGIT_PIXELS; i++)
        gray[i] = (uint8_t)lrintf(fminf(fmaxf(pixels[i], 0.0f), 1.0f) * 255.0f);
    size_t size;
    uint8_t *png = hd_png_gray_encode(gray, HD_DIGIT_SIDE, HD_DIGIT_SIDE, &size);
    if (!png)
        return NULL;
    char *text = hd_base64_encode(png, size);
    free(png);
    return text;
}

static char *dump(json_t *root) {
    if (!root) {
        hd_fail("cannot build a JSON answer (out of memory)");
        return NULL;
    }
    char *text = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(root);
    if (!text)
        hd_fail("cannot write a JSON answer (out of memory)");
    return text;
}

char *hd_serve_predict_json(const float *probabilities, int classes, const float pixels[HD_DIGIT_PIXELS],
                            double ms, int batch) {
    char *png = preprocessed_png_base64(pixels);
    json_t *probs = json_array();
    if (!png || !probs) {
        free(png);
        json_decref(probs);
        return NULL;
    }
    int label = 0;
    for (int c = 0; c < classes; c++) {
        if (probabilities[c] > probabilities[label])
            label = c;
        json_array_append_new(probs, json_real(probabilities[c]));
    }
    json_t *root = json_pack("{s:i, s:o, s:s, s:f, s:i}", "label", label, "probabilities", probs,
                             "preprocessed", png, "ms", ms, "batch", batch);
    free(png);
    return dump(root);
}

char *hd_serve_error_json(const char *message) {
    return dump(json_pack("{s:s}", "error", message));
}
