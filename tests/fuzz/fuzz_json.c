/* fuzz_json.c: the strict JSON reader of safetensors headers and other untrusted text (json_io.h, over
 * jansson). A refused input gets one line naming the input; an accepted one must be what the reader
 * promises: an object or array, no deeper than HD_JSON_MAX_DEPTH, every string and key valid UTF-8
 * without NUL bytes, and the same value again when its own text is read back (every number included). */
#include "fuzz_util.h"

#include "hd/common.h"
#include "hd/json_io.h"

#include <stdlib.h>
#include <string.h>

static void check_string(const char *s, size_t length, const char *what) {
    FUZZ_ASSERT(s && strlen(s) == length, "%s with a NUL byte inside", what);
    FUZZ_ASSERT(hd_json_valid_utf8(s), "%s is not UTF-8", what);
}

static void check_tree(json_t *value, int depth) {
    FUZZ_ASSERT(depth <= HD_JSON_MAX_DEPTH + 1, "depth %d", depth);
    if (json_is_string(value)) {
        check_string(json_string_value(value), json_string_length(value), "string");
    } else if (json_is_array(value)) {
        for (size_t i = 0; i < json_array_size(value); i++)
            check_tree(json_array_get(value, i), depth + 1);
    } else if (json_is_object(value)) {
        size_t count = 0;
        for (void *it = json_object_iter(value); it; it = json_object_iter_next(value, it)) {
            const char *key = json_object_iter_key(it);
            json_t *member = json_object_iter_value(it);
            check_string(key, strlen(key), "key");
            FUZZ_ASSERT(json_object_get(value, key) == member, "key '%s' does not find its own member", key);
            check_tree(member, depth + 1);
            count++;
        }
        FUZZ_ASSERT(count == json_object_size(value), "%zu members iterated of %zu", count,
                    json_object_size(value));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json_t *root = (json_t *)1;
    hd_clear_error();
    int rc = hd_json_load("fuzz input", data, size, (size_t)1 << 20, &root);
    fuzz_check_result(rc, "fuzz input: ");
    if (rc != 0) {
        FUZZ_ASSERT(root == NULL, "refused input left a value");
        return 0;
    }
    FUZZ_ASSERT(json_is_object(root) || json_is_array(root), "top level is a %s", hd_json_type_name(root));
    check_tree(root, 1);
    /* Written back and read again: the same value (reals are written to round-trip exactly). */
    char *text = hd_json_text("fuzz output", json_incref(root), JSON_COMPACT);
    FUZZ_ASSERT(text, "cannot write an accepted value: %s", hd_last_error());
    json_t *again = NULL;
    FUZZ_ASSERT(hd_json_load("fuzz output", text, strlen(text), (size_t)1 << 22, &again) == 0,
                "its own text is refused: %s", hd_last_error());
    FUZZ_ASSERT(json_equal(root, again), "read back as a different value: %s", text);
    json_decref(again);
    free(text);
    json_decref(root);
    return 0;
}
