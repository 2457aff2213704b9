/* fuzz_json.c: the JSON reader of safetensors headers (json_min.h). A parsed tree must be what the
 * header promises: every key and string valid UTF-8, counts equal to the children, no deeper than
 * HD_JSON_MAX_DEPTH, and a number hd_json_as_u64 accepts printed back as its own literal. */
#include "fuzz_util.h"

#include "hd/common.h"
#include "hd/json_min.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void check_tree(const hd_json *value, int depth) {
    FUZZ_ASSERT(depth <= HD_JSON_MAX_DEPTH + 1, "depth %d", depth);
    FUZZ_ASSERT(!value->key || hd_json_valid_utf8(value->key), "key is not UTF-8");
    switch (value->type) {
    case HD_JSON_STRING:
        FUZZ_ASSERT(value->text && hd_json_valid_utf8(value->text), "string is not UTF-8");
        break;
    case HD_JSON_NUMBER: {
        FUZZ_ASSERT(value->text && value->text[0], "number without its literal");
        uint64_t u;
        if (hd_json_as_u64(value, &u) == 0) {
            char printed[32];
            snprintf(printed, sizeof printed, "%" PRIu64, u);
            FUZZ_ASSERT(strcmp(printed, value->text) == 0, "%s read as %s", value->text, printed);
        }
        break;
    }
    case HD_JSON_ARRAY:
    case HD_JSON_OBJECT: {
        size_t children = 0;
        for (const hd_json *child = value->child; child; child = child->next) {
            FUZZ_ASSERT((value->type == HD_JSON_OBJECT) == (child->key != NULL), "member key mismatch");
            check_tree(child, depth + 1);
            children++;
        }
        FUZZ_ASSERT(children == value->count, "count %zu, children %zu", value->count, children);
        break;
    }
    default:
        FUZZ_ASSERT(value->type <= HD_JSON_TRUE, "type %d", (int)value->type);
        FUZZ_ASSERT(!value->text && !value->child, "a literal with text or children");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hd_json *root = (hd_json *)1;
    hd_clear_error();
    int rc = hd_json_parse("fuzz input", (const char *)data, size, &root);
    fuzz_check_result(rc, "fuzz input: invalid JSON: ");
    if (rc == 0) {
        FUZZ_ASSERT(root && !root->key, "root");
        check_tree(root, 1);
        hd_json_free(root);
    }
    return 0;
}
