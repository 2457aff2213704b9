/* fuzz_serve_body.c: the body of POST /api/predict, what `hd-gpu serve` takes from anyone who reaches it
 * (hd_serve_decode_body, serve.h), and the answer built from it. The first byte picks the Content-Type
 * (raw grey bytes or an image file, spelt in the ways a client may spell them); the rest is the body. A
 * success must give 784 values in [0, 1] (raw: exactly 784 bytes, each byte / 255) and an answer that is
 * valid JSON with a base64 PNG; a failure one line starting "request body". */
#include "fuzz_util.h"

#include "hd/common.h"
#include "hd/serve.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const content_types[] = {
    "application/octet-stream",
    " Application/Octet-Stream ; charset=binary",
    "application/octet-streams",
    "image/png",
    "image/jpeg",
    NULL,
    "",
    "text/plain",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    const size_t n_types = sizeof content_types / sizeof content_types[0];
    const char *type = content_types[data[0] % n_types];
    int raw = data[0] % n_types <= 1;
    const uint8_t *body = data + 1;
    size_t body_size = size - 1;
    float pixels[HD_DIGIT_PIXELS];
    hd_clear_error();
    int rc = hd_serve_decode_body(type, body, body_size, pixels);
    fuzz_check_result(rc, "request body");
    if (rc != 0)
        return 0;
    FUZZ_ASSERT(!raw || body_size == HD_SERVE_RAW_BYTES, "raw body of %zu bytes accepted", body_size);
    for (int i = 0; i < HD_DIGIT_PIXELS; i++) {
        FUZZ_ASSERT(isfinite(pixels[i]) && pixels[i] >= 0.0f && pixels[i] <= 1.0f, "pixel %d is %g", i,
                    (double)pixels[i]);
        FUZZ_ASSERT(!raw || pixels[i] == (float)body[i] / 255.0f, "raw pixel %d is %g, byte %d", i,
                    (double)pixels[i], body[i]);
    }
    float probabilities[10];
    for (int c = 0; c < 10; c++)
        probabilities[c] = c == body[0] % 10 ? 0.91f : 0.01f;
    char *text = hd_serve_predict_json(probabilities, 10, pixels, 1.5, 1);
    FUZZ_ASSERT(text, "no answer: %s", hd_last_error());
    json_t *answer = json_loads(text, 0, NULL);
    FUZZ_ASSERT(answer, "the answer is not JSON: %s", text);
    FUZZ_ASSERT(json_integer_value(json_object_get(answer, "label")) == body[0] % 10, "label: %s", text);
    const char *png = json_string_value(json_object_get(answer, "preprocessed"));
    FUZZ_ASSERT(png && strncmp(png, "iVBORw0KGgo", 11) == 0 && strlen(png) % 4 == 0, "preprocessed: %s",
                text);
    json_decref(answer);
    free(text);
    return 0;
}
