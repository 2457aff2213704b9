/* json_min.c: the strict JSON reader declared in json_min.h (recursive descent). */
#include "hd/json_min.h"

#include "hd/common.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *label;
    const unsigned char *s;
    size_t len, pos;
} json_parser;

static int parse_value(json_parser *p, int depth, hd_json **out);

static int syntax_error(const json_parser *p, const char *what) {
    return hd_fail("%s: invalid JSON: %s at byte %zu", p->label, what, p->pos);
}

static void skip_whitespace(json_parser *p) {
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

/* Length of the valid UTF-8 sequence at s (at most avail bytes), or 0 when invalid:
 * overlong forms, surrogates and code points above U+10FFFF are rejected. */
static size_t utf8_sequence_length(const unsigned char *s, size_t avail) {
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07u;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0u) != 0x80u)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

static size_t utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int read_hex4(json_parser *p, uint32_t *value) {
    if (p->len - p->pos < 4)
        return syntax_error(p, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p->s[p->pos + (size_t)i];
        uint32_t digit;
        if (c >= '0' && c <= '9')
            digit = (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            digit = (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            digit = (uint32_t)(c - 'A' + 10);
        else
            return syntax_error(p, "bad hex digit in \\u escape");
        v = (v << 4) | digit;
    }
    p->pos += 4;
    *value = v;
    return 0;
}

/* After a backslash: decodes one escape into out, returning the bytes written or -1. */
static int decode_escape(json_parser *p, char *out) {
    if (p->pos >= p->len)
        return syntax_error(p, "unterminated string");
    unsigned char c = p->s[p->pos++];
    const char *simple = strchr("\"\\/bfnrt", c);
    if (c != 0 && simple) {
        static const char replacement[] = "\"\\/\b\f\n\r\t";
        out[0] = replacement[simple - "\"\\/bfnrt"];
        return 1;
    }
    if (c != 'u')
        return syntax_error(p, "bad escape in string");
    uint32_t cp;
    if (read_hex4(p, &cp) != 0)
        return -1;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return syntax_error(p, "lone low surrogate in \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        uint32_t low;
        if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
            return syntax_error(p, "high surrogate without a low surrogate");
        p->pos += 2;
        if (read_hex4(p, &low) != 0)
            return -1;
        if (low < 0xDC00 || low > 0xDFFF)
            return syntax_error(p, "high surrogate without a low surrogate");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    if (cp == 0)
        return syntax_error(p, "\\u0000 in string");
    return (int)utf8_encode(cp, out);
}

/* At an opening quote: decodes the string into a new NUL-terminated buffer. */
static int parse_string(json_parser *p, char **out) {
    size_t start = ++p->pos, end = start;
    while (end < p->len && p->s[end] != '"')
        end += (p->s[end] == '\\' && end + 1 < p->len) ? 2 : 1;
    if (end >= p->len)
        return syntax_error(p, "unterminated string");
    /* Decoded text is never longer than the escaped text. */
    char *buf = hd_malloc(end - start + 1);
    if (!buf)
        return -1;
    size_t n = 0;
    while (p->pos < end) {
        unsigned char c = p->s[p->pos];
        if (c == '\\') {
            p->pos++;
            int written = decode_escape(p, buf + n);
            if (written < 0) {
                free(buf);
                return -1;
            }
            n += (size_t)written;
        } else if (c < 0x20) {
            free(buf);
            return syntax_error(p, "control character in string");
        } else {
            size_t seq = utf8_sequence_length(p->s + p->pos, end - p->pos);
            if (seq == 0) {
                free(buf);
                return syntax_error(p, "invalid UTF-8 in string");
            }
            memcpy(buf + n, p->s + p->pos, seq);
            n += seq;
            p->pos += seq;
        }
    }
    buf[n] = '\0';
    p->pos = end + 1;
    *out = buf;
    return 0;
}

static int is_digit(const json_parser *p) {
    return p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9';
}

static int parse_number(json_parser *p, hd_json *node) {
    size_t start = p->pos;
    if (p->s[p->pos] == '-')
        p->pos++;
    if (!is_digit(p))
        return syntax_error(p, "bad number");
    if (p->s[p->pos] == '0')
        p->pos++;
    else
        while (is_digit(p))
            p->pos++;
    if (p->pos < p->len && p->s[p->pos] == '.') {
        p->pos++;
        if (!is_digit(p))
            return syntax_error(p, "bad number fraction");
        while (is_digit(p))
            p->pos++;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        if (!is_digit(p))
            return syntax_error(p, "bad number exponent");
        while (is_digit(p))
            p->pos++;
    }
    size_t n = p->pos - start;
    node->text = hd_malloc(n + 1);
    if (!node->text)
        return -1;
    memcpy(node->text, p->s + start, n);
    node->text[n] = '\0';
    return 0;
}

static int parse_literal(json_parser *p, const char *word, hd_json_type type, hd_json *node) {
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return syntax_error(p, "unexpected character");
    p->pos += n;
    node->type = type;
    return 0;
}

/* At '[' or '{': parses elements (or "key": value members) until the closing bracket. */
static int parse_container(json_parser *p, int depth, hd_json *node) {
    int is_object = p->s[p->pos] == '{';
    unsigned char close = is_object ? '}' : ']';
    node->type = is_object ? HD_JSON_OBJECT : HD_JSON_ARRAY;
    if (depth >= HD_JSON_MAX_DEPTH)
        return syntax_error(p, "nesting too deep");
    p->pos++;
    skip_whitespace(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return 0;
    }
    hd_json **tail = &node->child;
    for (;;) {
        char *key = NULL;
        if (is_object) {
            skip_whitespace(p);
            if (p->pos >= p->len || p->s[p->pos] != '"')
                return syntax_error(p, "expected a string key");
            if (parse_string(p, &key) != 0)
                return -1;
            skip_whitespace(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') {
                free(key);
                return syntax_error(p, "expected ':'");
            }
            p->pos++;
        }
        hd_json *child = NULL;
        int rc = parse_value(p, depth + 1, &child);
        if (child) {
            child->key = key;
            *tail = child;
            tail = &child->next;
            node->count++;
        } else {
            free(key);
        }
        if (rc != 0)
            return -1;
        skip_whitespace(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
            return 0;
        }
        return syntax_error(p, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

/* Parses one value. On failure *out may hold a partial node, which the caller frees. */
static int parse_value(json_parser *p, int depth, hd_json **out) {
    *out = NULL;
    skip_whitespace(p);
    if (p->pos >= p->len)
        return syntax_error(p, "unexpected end of text");
    hd_json *node = hd_calloc(1, sizeof *node);
    if (!node)
        return -1;
    *out = node;
    unsigned char c = p->s[p->pos];
    switch (c) {
    case '{':
    case '[':
        return parse_container(p, depth, node);
    case '"':
        node->type = HD_JSON_STRING;
        return parse_string(p, &node->text);
    case 't':
        return parse_literal(p, "true", HD_JSON_TRUE, node);
    case 'f':
        return parse_literal(p, "false", HD_JSON_FALSE, node);
    case 'n':
        return parse_literal(p, "null", HD_JSON_NULL, node);
    default:
        if (c == '-' || (c >= '0' && c <= '9')) {
            node->type = HD_JSON_NUMBER;
            return parse_number(p, node);
        }
        return syntax_error(p, "unexpected character");
    }
}

int hd_json_parse(const char *label, const char *text, size_t len, hd_json **out) {
    json_parser p = {label, (const unsigned char *)text, len, 0};
    hd_json *root = NULL;
    *out = NULL;
    if (parse_value(&p, 0, &root) != 0) {
        hd_json_free(root);
        return -1;
    }
    skip_whitespace(&p);
    if (p.pos != p.len) {
        hd_json_free(root);
        return syntax_error(&p, "unexpected text after the value");
    }
    *out = root;
    return 0;
}

void hd_json_free(hd_json *value) {
    while (value) {
        hd_json *next = value->next;
        hd_json_free(value->child);
        free(value->key);
        free(value->text);
        free(value);
        value = next;
    }
}

const hd_json *hd_json_member(const hd_json *obj, const char *key) {
    if (!obj || obj->type != HD_JSON_OBJECT)
        return NULL;
    for (const hd_json *m = obj->child; m; m = m->next)
        if (strcmp(m->key, key) == 0)
            return m;
    return NULL;
}

int hd_json_as_u64(const hd_json *value, uint64_t *out) {
    if (!value || value->type != HD_JSON_NUMBER)
        return -1;
    uint64_t v = 0;
    for (const char *c = value->text; *c; c++) {
        if (*c < '0' || *c > '9')
            return -1;
        uint64_t digit = (uint64_t)(*c - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return -1;
        v = v * 10 + digit;
    }
    *out = v;
    return 0;
}

int hd_json_valid_utf8(const char *s) {
    const unsigned char *u = (const unsigned char *)s;
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        size_t seq = utf8_sequence_length(u + i, len - i);
        if (seq == 0)
            return 0;
        i += seq;
    }
    return 1;
}

const char *hd_json_type_name(hd_json_type type) {
    switch (type) {
    case HD_JSON_NULL:
        return "null";
    case HD_JSON_FALSE:
    case HD_JSON_TRUE:
        return "boolean";
    case HD_JSON_NUMBER:
        return "number";
    case HD_JSON_STRING:
        return "string";
    case HD_JSON_ARRAY:
        return "array";
    case HD_JSON_OBJECT:
        return "object";
    }
    return "unknown";
}
