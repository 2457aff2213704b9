/* serve_body.c: hd_serve_decode_body (serve.h): what POST /api/predict sent -> the 28x28 input. */
#include "hd/common.h"
#include "hd/serve.h"

#include <string.h>
#include <strings.h>

/* The media type of a Content-Type value, without parameters and surrounding blanks, is `type`. */
static int is_media_type(const char *content_type, const char *type) {
    if (!content_type)
        return 0;
    while (*content_type == ' ' || *content_type == '\t')
        content_type++;
    size_t len = strlen(type);
    if (strncasecmp(content_type, type, len) != 0)
        return 0;
    const char *rest = content_type + len;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    return *rest == '\0' || *rest == ';';
}

int hd_serve_decode_body(const char *content_type, const uint8_t *body, size_t size,
                         float pixels[HD_DIGIT_PIXELS]) {
    if (size == 0)
        return hd_fail("request body: empty; expected an image file, or %d grey bytes as "
                       "application/octet-stream",
                       HD_SERVE_RAW_BYTES);
    if (is_media_type(content_type, "application/octet-stream")) {
        if (size != HD_SERVE_RAW_BYTES)
            return hd_fail(
                "request body: %zu bytes of application/octet-stream; expected exactly %d (28x28 grey "
                "bytes)",
                size, HD_SERVE_RAW_BYTES);
        for (int i = 0; i < HD_DIGIT_PIXELS; i++)
            pixels[i] = (float)body[i] / 255.0f;
        return 0;
    }
    return hd_digit_image_from_memory(body, size, "request body", pixels);
}
