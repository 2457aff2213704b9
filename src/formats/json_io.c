/* json_io.c: the jansson wrappers declared in json_io.h. */
#include "hd/json_io.h"

#include "hd/common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int hd_json_load(const char *label, const void *text, size_t len, size_t max_len, json_t **out) {
    *out = NULL;
    if (len > max_len)
        return hd_fail("%s: %zu bytes of JSON, more than the %zu-byte limit", label, len, max_len);
    json_error_t error;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);
    if (!root)
        return hd_fail("%s: invalid JSON: %s at byte %d", label, error.text, error.position);
    *out = root;
    return 0;
}

int hd_json_get_u64(const json_t *value, uint64_t *out) {
    if (!json_is_integer(value) || json_integer_value(value) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(value);
    return 0;
}

const char *hd_json_type_name(const json_t *value) {
    switch (value ? json_typeof(value) : JSON_NULL) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "real number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

int hd_json_valid_utf8(const char *s) {
    json_t *string = json_string(s); /* NULL when s is not valid UTF-8 */
    int valid = string != NULL;
    json_decref(string);
    return valid;
}

json_t *hd_json_number(double x) {
    return isfinite(x) ? json_real(x) : json_null();
}

char *hd_json_text(const char *label, json_t *value, size_t flags) {
    if (!value) {
        hd_fail("%s: cannot build the JSON value (out of memory, or a string that is not UTF-8)", label);
        return NULL;
    }
    char *text = json_dumps(value, flags);
    json_decref(value);
    if (!text)
        hd_fail("%s: cannot write the JSON text (out of memory)", label);
    return text;
}
