/* json_min.h: a small, strict JSON reader (RFC 8259) for file headers such as safetensors'.
 *
 * hd_json_parse builds a tree of hd_json nodes from untrusted text. It rejects anything
 * that is not one well-formed JSON value followed only by whitespace: bad tokens, control
 * characters or invalid UTF-8 inside strings, lone surrogates, "\u0000" (strings are
 * NUL-terminated C strings), nesting deeper than HD_JSON_MAX_DEPTH. Numbers are kept as
 * their literal text; hd_json_as_u64 converts the non-negative integer ones exactly.
 * Duplicate object keys are kept as they appear (callers that care check for them). */
#ifndef HD_JSON_MIN_H
#define HD_JSON_MIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HD_JSON_MAX_DEPTH 64

typedef enum {
    HD_JSON_NULL,
    HD_JSON_FALSE,
    HD_JSON_TRUE,
    HD_JSON_NUMBER,
    HD_JSON_STRING,
    HD_JSON_ARRAY,
    HD_JSON_OBJECT
} hd_json_type;

typedef struct hd_json hd_json;
struct hd_json {
    hd_json_type type;
    char *key;      /* member name inside an object (decoded UTF-8), else NULL */
    char *text;     /* STRING: decoded UTF-8; NUMBER: the literal as written; else NULL */
    size_t count;   /* ARRAY, OBJECT: number of children */
    hd_json *child; /* ARRAY, OBJECT: first element or member, in document order */
    hd_json *next;  /* next sibling */
};

/* Parses len bytes of text (need not be NUL-terminated). On failure returns -1 after
 * hd_fail("LABEL: invalid JSON: WHAT at byte N"). Free the tree with hd_json_free. */
int hd_json_parse(const char *label, const char *text, size_t len, hd_json **out);
void hd_json_free(hd_json *value);

/* The first member of an object named key, or NULL (also when obj is not an object). */
const hd_json *hd_json_member(const hd_json *obj, const char *key);

/* A NUMBER written as a non-negative integer (no sign, fraction or exponent) that fits in
 * 64 bits: stores it and returns 0; otherwise returns -1 without recording an error. */
int hd_json_as_u64(const hd_json *value, uint64_t *out);

/* 1 if the NUL-terminated s is valid UTF-8 (no overlong forms or surrogates), else 0. */
int hd_json_valid_utf8(const char *s);

/* A name for a type, for messages ("string", "array", ...). */
const char *hd_json_type_name(hd_json_type type);

#ifdef __cplusplus
}
#endif

#endif
