/* json_io.h: JSON through jansson (Debian's libjansson-dev): strict reading of untrusted text with
 * one-line errors, and the few helpers every JSON writer in hd-gpu shares.
 *
 * Reading (hd_json_load) refuses anything that is not one object or array followed only by
 * whitespace: bad tokens, control characters or invalid UTF-8 in strings, lone surrogates,
 * "\u0000", duplicate keys in any object, integers outside 64-bit signed range, reals that
 * overflow, nesting deeper than HD_JSON_MAX_DEPTH, text longer than the caller's bound.
 * Objects keep their members in document order (jansson iterates in insertion order).
 *
 * Writing: build a json_t tree (json_pack is the shortest way) and turn it into text with
 * hd_json_text; a figure that was not measured (NAN) becomes null through hd_json_number. */
#ifndef HD_JSON_IO_H
#define HD_JSON_IO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* jansson's own nesting limit, fixed when the library is built (2048 in Debian 12's 2.14). */
#define HD_JSON_MAX_DEPTH JSON_PARSER_MAX_DEPTH

/* Parses len bytes of text (need not be NUL-terminated). len above max_len is refused before
 * parsing. On failure returns -1 after hd_fail("LABEL: invalid JSON: WHAT at byte N") and
 * leaves *out NULL; on success the caller owns *out (json_decref). */
int hd_json_load(const char *label, const void *text, size_t len, size_t max_len, json_t **out);

/* An integer value >= 0: stores it and returns 0; anything else returns -1 (no error recorded). */
int hd_json_get_u64(const json_t *value, uint64_t *out);

/* A name for a value's type, for messages ("string", "integer", "object", ...). */
const char *hd_json_type_name(const json_t *value);

/* 1 if the NUL-terminated s is valid UTF-8 (as jansson checks it: no overlong forms,
 * surrogates or code points above U+10FFFF), else 0. */
int hd_json_valid_utf8(const char *s);

/* A real, or null when x is not finite (JSON has no NaN or infinity). NULL only when out of memory. */
json_t *hd_json_number(double x);

/* The text of value (flags as json_dumps: JSON_COMPACT, JSON_INDENT(n), JSON_REAL_PRECISION(n)),
 * malloc'd, to be freed with free(). Takes over the caller's reference to value (NULL allowed:
 * a tree that could not be built). Returns NULL after hd_fail("LABEL: ...") on failure. */
char *hd_json_text(const char *label, json_t *value, size_t flags);

#ifdef __cplusplus
}
#endif

#endif
