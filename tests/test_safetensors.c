/* test_safetensors.c: safetensors round trip, byte layout, rejection of damaged or hostile
 * files with specific messages, and kill-safety of the atomic write (SIGKILL mid-write). */
#include "check.h"
#include "hd/common.h"
#include "hd/json_io.h"
#include "hd/safetensors.h"

#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define N_TENSORS 5

typedef struct {
    hd_st_tensor tensors[N_TENSORS];
    float storage[6 + 4 + 1 + 12];
} sample_set;

/* Tensors of ranks 2, 1, 0, 4 and an empty one, with random values and special floats. */
static void make_sample(sample_set *s, uint64_t *rng) {
    test_fill_uniform(s->storage, sizeof s->storage / sizeof s->storage[0], -3.0f, 3.0f, rng);
    s->storage[1] = -0.0f;
    s->storage[2] = 1e-40f; /* subnormal */
    s->storage[7] = INFINITY;
    uint32_t nan_bits = 0x7fc01234u; /* NaN with a payload: must survive byte-exact */
    memcpy(&s->storage[8], &nan_bits, sizeof nan_bits);
    s->tensors[0] = (hd_st_tensor){"conv1.weight", s->storage, 2, HD_ST_F32, {2, 3, 0, 0}};
    s->tensors[1] = (hd_st_tensor){"bias \"quoted\" \\ é", s->storage + 6, 1, HD_ST_F32, {4, 0, 0, 0}};
    s->tensors[2] = (hd_st_tensor){"scalar", s->storage + 10, 0, HD_ST_F32, {0, 0, 0, 0}};
    s->tensors[3] = (hd_st_tensor){"four.d", s->storage + 11, 4, HD_ST_F32, {2, 1, 3, 2}};
    s->tensors[4] = (hd_st_tensor){"empty", NULL, 2, HD_ST_F32, {0, 5, 0, 0}};
}

static const hd_st_meta sample_meta[] = {
    {"epoch", "3"}, {"note", "line\nbreak \"q\" \\ tab\t ünïcode"}, {"empty", ""}};

static int write_bytes(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t written = size ? fwrite(data, 1, size, f) : 0;
    return (fclose(f) == 0 && written == size) ? 0 : -1;
}

/* Writes bytes to path and expects the reader to refuse them with a message containing needle. */
static void expect_reject(const char *path, const void *data, size_t size, const char *needle,
                          const char *what) {
    CHECK(write_bytes(path, data, size) == 0, "%s: cannot write test file", what);
    hd_safetensors *f = (hd_safetensors *)1;
    hd_clear_error();
    int rc = hd_safetensors_read(path, &f);
    const char *msg = hd_last_error();
    CHECK(rc == -1 && f == NULL, "%s: accepted", what);
    CHECK(strncmp(msg, path, strlen(path)) == 0, "%s: message does not name the file: %s", what, msg);
    CHECK(strstr(msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, msg, needle);
    printf("  rejected %-34s %s\n", what, msg + strlen(path));
    if (rc == 0)
        hd_safetensors_free(f);
}

/* A file with a hand-written header (padded to 8 bytes unless raw) and data bytes. */
static size_t build_raw(unsigned char *out, const char *header, const void *data, size_t data_len, int pad) {
    size_t n = strlen(header);
    size_t padded = pad ? (n + 7) / 8 * 8 : n;
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    /* NOLINTNEXTLINE(bugprone-not-null-terminated-result): a byte image, padded with spaces below */
    memcpy(out + 8, header, n);
    memset(out + 8 + n, ' ', padded - n);
    if (data_len)
        memcpy(out + 8 + padded, data, data_len);
    return 8 + padded + data_len;
}

static void test_round_trip_and_layout(const char *dir, uint64_t *rng) {
    sample_set s;
    make_sample(&s, rng);
    char *path = test_path_join(dir, "sample.safetensors");
    CHECK(hd_safetensors_write(path, s.tensors, N_TENSORS, sample_meta, 3) == 0, "write: %s",
          hd_last_error());

    hd_safetensors *f = NULL;
    CHECK(hd_safetensors_read(path, &f) == 0, "read: %s", hd_last_error());
    if (f) {
        CHECK(hd_safetensors_count(f) == N_TENSORS, "count %d", hd_safetensors_count(f));
        for (int i = 0; i < N_TENSORS; i++) {
            const hd_st_tensor *t = &s.tensors[i];
            int rank = -1;
            int64_t dims[4];
            const float *got = hd_safetensors_find(f, t->name, &rank, dims);
            CHECK(got != NULL, "tensor '%s' not found", t->name);
            CHECK(rank == t->rank, "'%s' rank %d, wrote %d", t->name, rank, t->rank);
            size_t count = 1;
            for (int d = 0; d < t->rank; d++) {
                CHECK(dims[d] == t->dims[d], "'%s' dim %d: %" PRId64 " vs %" PRId64, t->name, d, dims[d],
                      t->dims[d]);
                count *= (size_t)t->dims[d];
            }
            if (got && count)
                CHECK(memcmp(got, t->data, count * sizeof(float)) == 0, "'%s' data not byte-exact", t->name);
        }
        CHECK(hd_safetensors_find(f, "absent", NULL, NULL) == NULL, "absent tensor found");
        for (int i = 0; i < 3; i++) {
            const char *v = hd_safetensors_meta(f, sample_meta[i].key);
            CHECK(v && strcmp(v, sample_meta[i].value) == 0, "meta %s: got '%s'", sample_meta[i].key,
                  v ? v : "(null)");
        }
        CHECK(hd_safetensors_meta(f, "absent") == NULL, "absent metadata found");
        CHECK(hd_safetensors_meta_count(f) == 5, "meta count %d (3 + the two checksums)",
              hd_safetensors_meta_count(f));
        for (int i = 1; i < N_TENSORS; i++)
            CHECK(strcmp(hd_safetensors_name(f, i - 1), hd_safetensors_name(f, i)) < 0, "names not sorted");
        hd_safetensors_free(f);
    }

    /* The bytes themselves: length field, JSON entries with offsets, padding, data, CRC. */
    uint8_t *bytes = NULL;
    size_t size = 0;
    CHECK(hd_read_file(path, &bytes, &size) == 0, "read back bytes: %s", hd_last_error());
    if (!bytes || size < 8) {
        free(bytes);
        free(path);
        return;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | bytes[i];
    CHECK((8 + n) % 8 == 0, "data starts at %" PRIu64 ", not a multiple of 8", 8 + n);
    size_t data_len = sizeof s.storage;
    CHECK(size == 8 + n + data_len, "file size %zu, expected 8 + %" PRIu64 " + %zu", size, n, data_len);
    if (size != 8 + n + data_len) {
        free(bytes);
        free(path);
        return;
    }
    char *header = malloc(n + 1);
    memcpy(header, bytes + 8, n);
    header[n] = '\0';
    printf("  header (%" PRIu64 " bytes): %s\n", n, header);
    CHECK(header[0] == '{', "header starts with '%c'", header[0]);
    size_t end = n;
    while (end > 0 && header[end - 1] == ' ')
        end--;
    CHECK(end > 0 && header[end - 1] == '}' && n - end < 8, "header not '}' + fewer than 8 spaces");
    const char *expected[] = {
        "\"conv1.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}",
        "\"bias \\\"quoted\\\" \\\\ é\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[24,40]}",
        "\"scalar\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[40,44]}",
        "\"four.d\":{\"dtype\":\"F32\",\"shape\":[2,1,3,2],\"data_offsets\":[44,92]}",
        "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[92,92]}",
        ("\"__metadata__\":{\"epoch\":\"3\",\"note\":\"line\\nbreak \\\"q\\\" \\\\ tab\\t "
         "ünïcode\",\"empty\":\"\""), /* one literal over two lines */
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        CHECK(strstr(header, expected[i]) != NULL, "header lacks %s", expected[i]);
    CHECK(memcmp(bytes + 8 + n, s.storage, data_len) == 0, "data section is not the tensors back to back");
    char crc_entry[64];
    snprintf(crc_entry, sizeof crc_entry, "\"hd.data_crc32\":\"%08lx\"",
             crc32(crc32(0L, Z_NULL, 0), bytes + 8 + n, (uInt)data_len));
    CHECK(strstr(header, crc_entry) != NULL, "header lacks %s", crc_entry);
    free(header);
    free(bytes);
    free(path);
}

static void test_damaged_files(const char *dir, uint64_t *rng) {
    sample_set s;
    make_sample(&s, rng);
    char *good = test_path_join(dir, "good.safetensors"), *bad = test_path_join(dir, "bad.safetensors");
    CHECK(hd_safetensors_write(good, s.tensors, N_TENSORS, sample_meta, 3) == 0, "write: %s",
          hd_last_error());
    uint8_t *bytes = NULL;
    size_t size = 0;
    CHECK(hd_read_file(good, &bytes, &size) == 0, "read back: %s", hd_last_error());
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | (bytes ? bytes[i] : 0);
    size_t data_start = (size_t)(8 + n);
    if (!bytes || data_start + 16 > size) {
        CHECK(0, "sample file too small (%zu bytes)", size);
        free(bytes);
        return;
    }

    expect_reject(bad, bytes, 0, "empty file", "empty file");
    expect_reject(bad, bytes, 5, "shorter than the 8-byte header length", "cut inside the length field");
    expect_reject(bad, bytes, 8, "exceeds", "cut after the length field");
    expect_reject(bad, bytes, 8 + (size_t)n / 2, "file is truncated or not safetensors",
                  "cut inside the header");
    expect_reject(bad, bytes, data_start, "file is truncated", "cut at the start of the data");
    expect_reject(bad, bytes, data_start + 10, "file is truncated", "cut inside the data");
    expect_reject(bad, bytes, size - 1, "file is truncated", "last byte cut");
    int every_cut_rejected = 1;
    for (size_t cut = 0; cut < size; cut++) {
        hd_safetensors *f = NULL;
        if (write_bytes(bad, bytes, cut) != 0 || hd_safetensors_read(bad, &f) == 0) {
            every_cut_rejected = 0;
            printf("  cut at %zu accepted\n", cut);
        }
        hd_safetensors_free(f);
    }
    CHECK(every_cut_rejected, "some truncation of the %zu-byte file was accepted", size);

    /* Every single flipped bit in the data section is caught by the checksum. */
    int every_flip_caught = 1;
    for (size_t at = data_start; at < size; at++) {
        bytes[at] ^= (uint8_t)(1u << (at % 8));
        hd_safetensors *f = NULL;
        if (write_bytes(bad, bytes, size) != 0 || hd_safetensors_read(bad, &f) == 0 ||
            !strstr(hd_last_error(), "checksum mismatch: data is corrupted"))
            every_flip_caught = 0;
        hd_safetensors_free(f);
        bytes[at] ^= (uint8_t)(1u << (at % 8));
    }
    CHECK(every_flip_caught, "a flipped data bit was not reported as a checksum mismatch");
    bytes[data_start + 5] ^= 0x40;
    expect_reject(bad, bytes, size, "checksum mismatch: data is corrupted", "flipped byte in data");
    bytes[data_start + 5] ^= 0x40;

    /* A damaged metadata value that keeps the JSON valid ("epoch":"3" -> "4") is caught by
     * the metadata checksum. */
    char *epoch = strstr((char *)bytes + 8, "\"epoch\":\"3\"");
    CHECK(epoch != NULL, "sample header holds \"epoch\":\"3\"");
    if (epoch) {
        epoch[9] = '4';
        expect_reject(bad, bytes, size, "checksum mismatch: metadata is corrupted", "damaged metadata value");
        epoch[9] = '3';
    }

    uint8_t *copy = malloc(size + 64);
    memcpy(copy, bytes, size);
    char *colon = strstr((char *)copy + 8, "\"dtype\":");
    colon[7] = ';';
    expect_reject(bad, copy, size, "invalid JSON", "corrupt JSON (':' -> ';')");
    memcpy(copy, bytes, size);
    char *close = memchr(copy + 8 + n - 8, '}', 8);
    if (!close) /* the padding is at most 7 spaces, so the final '}' is within the last 8 bytes */
        close = (char *)copy + 8 + n - 1;
    *close = ' ';
    expect_reject(bad, copy, size, "invalid JSON", "corrupt JSON (final '}' removed)");
    memcpy(copy, bytes, size);
    /* NOLINTNEXTLINE(bugprone-not-null-terminated-result): overwrites 3 bytes inside the header */
    memcpy(strstr((char *)copy + 8, "F32"), "F16", 3);
    expect_reject(bad, copy, size, "dtype F16; only F32 and I64 are supported", "wrong dtype in sample");
    memcpy(copy, bytes, size);
    uint64_t huge = size;
    for (int i = 0; i < 8; i++)
        copy[i] = (uint8_t)(huge >> (8 * i));
    expect_reject(bad, copy, size, "exceeds", "header length larger than file");
    memset(copy, 0xff, 8);
    expect_reject(bad, copy, size, "exceeds", "header length 2^64-1");
    free(copy);
    free(bytes);

    /* Hand-written headers: each breaks one rule (A_OK: a tensor entry that breaks none). */
#define A_OK "{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}"
    float data[4] = {1, 2, 3, 4};
    unsigned char raw[512];
    struct {
        const char *header, *needle, *what;
        size_t data_len;
    } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[100,108]}}",
         "outside the data section", "offsets out of range", 16},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         "overlap", "overlapping tensors", 16},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "cover only", "trailing bytes",
         16},
        {"{\"a\":{\"dtype\":\"I32\",\"shape\":[4],\"data_offsets\":[0,16]}}", "dtype I32", "wrong dtype", 16},
        {"{\"a\":{\"dtype\":\"I64\",\"shape\":[4],\"data_offsets\":[0,16]}}", "needs 32 bytes",
         "I64 sized as F32", 16},
        {"{\"a\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[4,16]}}",
         "of shape [] needs 8 bytes", "I64 scalar in 4 bytes", 16}, /* a scalar's shape once printed as "]" */
        {"{\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[10,14]},"
         "\"c\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]}}",
         "not a multiple of 4", "F32 at an odd offset", 16},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", "needs 12 bytes",
         "shape vs offsets", 16},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,0]}}", "needs 16 bytes",
         "reversed offsets", 16},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", "non-negative integers",
         "negative dimension", 16},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,4],\"data_offsets\":[0,16]}}", "at most 4", "rank 5",
         16},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4]}}", "exactly dtype, shape and data_offsets",
         "missing field", 16},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16],\"x\":1}}",
         "exactly dtype, shape and data_offsets", "unknown field", 16},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
         "duplicate object key near '\"a\"'", "duplicate tensor", 16},
        {"{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"},\"a\":" A_OK "}", "duplicate object key near '\"k\"'",
         "duplicate metadata key", 16},
        {"{\"__metadata__\":{},\"__metadata__\":{},\"a\":" A_OK "}", "duplicate object key",
         "__metadata__ twice", 16},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,9223372036854775808]}}",
         "too big integer", "offset of 2^63", 16},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,18446744073709551616]}}",
         "too big integer", "offset of 2^64", 16},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,9223372036854775807]}}",
         "needs 16 bytes", "offset of 2^63-1", 16},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4.0],\"data_offsets\":[0,16]}}", "non-negative integers",
         "dimension written as a real", 16},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,1.6e1]}}", "non-negative integers",
         "offset with an exponent", 16},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,016]}}", "invalid JSON", "leading zero",
         16},
        {"{\"__metadata__\":{\"k\":\"a\\u0000b\"},\"a\":" A_OK "}", "\\u0000 is not allowed",
         "NUL in a string", 16},
        {"{\"\\u0000\":" A_OK "}", "NUL byte in object key", "NUL in a name", 16},
        {"{\"\\udc00\":" A_OK "}", "invalid Unicode", "lone low surrogate", 16},
        {"{\"\\ud800x\":" A_OK "}", "invalid Unicode", "high surrogate alone", 16},
        {"{\"a\tb\":" A_OK "}", "control character", "tab inside a name", 16},
        {"{\"a\\x\":" A_OK "}", "invalid escape", "bad escape", 16},
        {"{\"\xc0\xaf\":" A_OK "}", "unable to decode byte", "overlong UTF-8", 16},
        {"{\"\xed\xa0\x80\":" A_OK "}", "unable to decode byte", "UTF-8 surrogate", 16},
        {"{\"__metadata__\":{\"k\":1},\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
         "values must be strings", "non-string metadata", 16},
        {"{\"__metadata__\":{\"hd.data_crc32\":\"xyz\"},\"a\":{\"dtype\":\"F32\",\"shape\":[4],"
         "\"data_offsets\":[0,16]}}",
         "not 8 hex digits", "malformed checksum", 16},
        {"{\"__metadata__\":{\"hd.data_crc32\":\"00000000\"},\"a\":{\"dtype\":\"F32\",\"shape\":[4],"
         "\"data_offsets\":[0,16]}}",
         "checksum mismatch: data is corrupted", "wrong checksum", 16},
        {"[1,2]", "does not start with '{'", "header is an array", 0},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}} x", "invalid JSON",
         "trailing text", 16},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}", "invalid JSON",
         "unclosed object", 16},
        {"{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
         "unable to decode byte 0xff", "bad UTF-8", 16},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = build_raw(raw, cases[i].header, data, cases[i].data_len, 1);
        expect_reject(bad, raw, len, cases[i].needle, cases[i].what);
    }
#undef A_OK
    /* Nesting deeper than the JSON reader allows (jansson's HD_JSON_MAX_DEPTH), closed or not; nesting
     * within it is refused by the rules above (a tensor entry must be an object of three members). */
    enum { DEEP = HD_JSON_MAX_DEPTH + 100 };
    char *deep = malloc(2 * DEEP + 16);
    unsigned char *deep_raw = malloc(2 * DEEP + 40);
    CHECK(deep && deep_raw, "allocation");
    if (deep && deep_raw) {
        static const char prefix[] = "{\"a\":";
        size_t deep_len = sizeof prefix - 1;
        memcpy(deep, prefix, deep_len);
        memset(deep + deep_len, '[', DEEP);
        deep[deep_len + DEEP] = '\0';
        expect_reject(bad, deep_raw, build_raw(deep_raw, deep, NULL, 0, 1), "maximum parsing depth",
                      "deep nesting");
        memset(deep + deep_len + DEEP, ']', DEEP);
        deep[deep_len + 2 * DEEP] = '}';
        deep[deep_len + 2 * DEEP + 1] = '\0';
        expect_reject(bad, deep_raw, build_raw(deep_raw, deep, NULL, 0, 1), "maximum parsing depth",
                      "deep nesting, closed");
        memset(deep + deep_len, '[', 50);
        memset(deep + deep_len + 50, ']', 50);
        deep[deep_len + 100] = '}';
        deep[deep_len + 101] = '\0';
        expect_reject(bad, deep_raw, build_raw(deep_raw, deep, NULL, 0, 1),
                      "must be an object with exactly dtype, shape and data_offsets",
                      "nesting within the limit");
    }
    free(deep);
    free(deep_raw);
    size_t len;

    /* A foreign file (no checksum, header not padded, no metadata) still loads. */
    len = build_raw(raw, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", data, 16, 0);
    CHECK(write_bytes(bad, raw, len) == 0, "write foreign file");
    hd_safetensors *f = NULL;
    CHECK(hd_safetensors_read(bad, &f) == 0, "foreign file refused: %s", hd_last_error());
    if (f) {
        const float *w = hd_safetensors_find(f, "w", NULL, NULL);
        CHECK(w && memcmp(w, data, sizeof data) == 0, "foreign tensor data wrong");
        CHECK(((uintptr_t)w % sizeof(float)) == 0, "foreign tensor data misaligned");
        hd_safetensors_free(f);
    }

    char *missing = test_path_join(dir, "no-such-file.safetensors");
    f = NULL;
    CHECK(hd_safetensors_read(missing, &f) == -1 && strstr(hd_last_error(), "cannot open"), "missing: %s",
          hd_last_error());
    CHECK(hd_safetensors_read(dir, &f) == -1 && strstr(hd_last_error(), "is a directory"), "directory: %s",
          hd_last_error());
    free(missing);

    /* The writer refuses what the reader would refuse. */
    hd_st_tensor twice[2] = {s.tensors[0], s.tensors[0]};
    CHECK(hd_safetensors_write(bad, twice, 2, NULL, 0) == -1 && strstr(hd_last_error(), "given twice"),
          "duplicate names written: %s", hd_last_error());
    hd_st_tensor not_utf8 = s.tensors[0];
    not_utf8.name = "conv\xc0\xaf";
    CHECK(hd_safetensors_write(bad, &not_utf8, 1, NULL, 0) == -1 && strstr(hd_last_error(), "non-UTF-8"),
          "a name that is not UTF-8 written: %s", hd_last_error());
    hd_st_meta bad_value = {"note", "\xed\xa0\x80"};
    CHECK(hd_safetensors_write(bad, s.tensors, 1, &bad_value, 1) == -1 &&
              strstr(hd_last_error(), "not UTF-8"),
          "a metadata value that is not UTF-8 written: %s", hd_last_error());
    /* The JSON reader's own size bound, before any parsing. */
    json_t *small = NULL;
    CHECK(hd_json_load("two bytes", "{}", 2, 1, &small) == -1 && small == NULL &&
              strstr(hd_last_error(), "two bytes: 2 bytes of JSON, more than the 1-byte limit"),
          "size bound: %s", hd_last_error());
    CHECK(hd_json_load("two bytes", "{}", 2, 2, &small) == 0 && json_is_object(small), "{} within its bound");
    json_decref(small);
    hd_st_meta reserved = {HD_ST_CRC_KEY, "00000000"};
    CHECK(hd_safetensors_write(bad, s.tensors, 1, &reserved, 1) == -1 && strstr(hd_last_error(), "reserved"),
          "reserved key written: %s", hd_last_error());
    free(good);
    free(bad);
}

/* ---- kill-safety of the atomic write ---- */

#define BIG_COUNT ((size_t)8 * 1024 * 1024) /* 32 MiB of floats */

/* Generation g's contents: exact small integers, different for every g. */
static void fill_generation(float *big, uint64_t g) {
    for (size_t i = 0; i < BIG_COUNT; i++)
        big[i] = (float)((i * 2654435761u + g * 40503u) & 0xFFFFFFu);
}

static int write_generation(const char *path, float *big, uint64_t g) {
    fill_generation(big, g);
    char gen_text[32];
    snprintf(gen_text, sizeof gen_text, "%" PRIu64, g);
    hd_st_meta meta = {"generation", gen_text};
    hd_st_tensor tensors[2] = {
        {"head", big, 1, HD_ST_F32, {16, 0, 0, 0}},
        {"big", big, 2, HD_ST_F32, {(int64_t)BIG_COUNT / 1024, 1024, 0, 0}},
    };
    return hd_safetensors_write(path, tensors, 2, &meta, 1);
}

/* The file loads, checks and holds exactly one complete generation; returns it or -1. */
static int64_t verify_complete(const char *path) {
    hd_safetensors *f = NULL;
    if (hd_safetensors_read(path, &f) != 0) {
        printf("  file at the final name does not load: %s\n", hd_last_error());
        return -1;
    }
    const char *gen_text = hd_safetensors_meta(f, "generation");
    const float *big = hd_safetensors_find(f, "big", NULL, NULL);
    const float *head = hd_safetensors_find(f, "head", NULL, NULL);
    int64_t g = gen_text ? (int64_t)strtoll(gen_text, NULL, 10) : -1;
    int ok = big && head && g >= 0 && memcmp(head, big, 16 * sizeof(float)) == 0;
    for (size_t i = 0; ok && i < BIG_COUNT; i++)
        ok = big[i] == (float)((i * 2654435761u + (uint64_t)g * 40503u) & 0xFFFFFFu);
    hd_safetensors_free(f);
    return ok ? g : -1;
}

/* Removes the temp files a killed writer leaves; returns how many, or -1 on a stranger. */
static int remove_leftovers(const char *dir, const char *final_name) {
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int removed = 0, stranger = 0;
    size_t final_len = strlen(final_name);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || strcmp(e->d_name, final_name) == 0)
            continue;
        if (strncmp(e->d_name, final_name, final_len) == 0 &&
            strncmp(e->d_name + final_len, ".tmp.", 5) == 0) {
            char *p = test_path_join(dir, e->d_name);
            if (p && unlink(p) == 0)
                removed++;
            free(p);
        } else {
            printf("  unexpected file %s\n", e->d_name);
            stranger = 1;
        }
    }
    closedir(d);
    return stranger ? -1 : removed;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_kill_safety(uint64_t *rng) {
    char *dir = test_make_temp_dir("st-kill");
    char *path = dir ? test_path_join(dir, "big.safetensors") : NULL;
    float *big = malloc(BIG_COUNT * sizeof(float));
    if (!path || !big) {
        CHECK(0, "cannot set up the kill test");
        free(big);
        free(path);
        free(dir);
        return;
    }
    double start = hd_now_seconds();
    CHECK(write_generation(path, big, 0) == 0, "first write: %s", hd_last_error());
    double one_write = hd_now_seconds() - start;
    printf("  one 32 MiB atomic write: %.3f s\n", one_write);
    int64_t last = 0;
    int kills = 0, leftovers = 0, new_versions = 0, all_complete = 1;
    /* At least 4 kills; more while time allows (page faults make big writes slow on small VMs). */
    for (int iter = 0; iter < 8 && (iter < 4 || hd_now_seconds() - start < 4.0); iter++) {
        uint64_t first_gen = (uint64_t)(iter + 1) * 1000;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            for (uint64_t g = first_gen;; g++)
                if (write_generation(path, big, g) != 0)
                    _exit(3);
        }
        CHECK(pid > 0, "fork failed");
        if (pid < 0)
            break;
        /* Kill at a random moment within about two writes; look at the file meanwhile. */
        long window_ms = (long)(2000.0 * one_write) + 20;
        sleep_ms((long)(test_rand_u64(rng) % (uint64_t)window_ms) / 2);
        int64_t during = verify_complete(path);
        sleep_ms((long)(test_rand_u64(rng) % (uint64_t)window_ms) / 2);
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        kills += WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
        CHECK(WIFSIGNALED(status), "writer exited by itself (status %d): a write failed", status);
        int64_t after = verify_complete(path);
        int valid = during >= 0 && after >= 0 && (during == last || during >= (int64_t)first_gen) &&
                    (after == last || after >= (int64_t)first_gen);
        if (!valid)
            all_complete = 0;
        new_versions += after != last;
        int removed = remove_leftovers(dir, "big.safetensors");
        CHECK(removed >= 0, "files other than the checkpoint and its temp files appeared");
        leftovers += removed > 0 ? removed : 0;
        if (after >= 0)
            last = after;
    }
    printf("  %d kills, %d temp files left by killed writers (removed), %d new versions seen\n", kills,
           leftovers, new_versions);
    CHECK(kills >= 3, "only %d kill iterations ran", kills);
    CHECK(all_complete, "after a kill the file was partial or not a version that was written");
    CHECK(remove_leftovers(dir, "big.safetensors") == 0, "temp files remain after cleanup");
    test_remove_tree(dir);
    free(big);
    free(path);
    free(dir);
}

/* An I64 tensor (PyTorch's num_batches_tracked: a scalar, shape []) beside F32 ones: written with dtype
 * "I64" and 8 bytes a value, read back exactly; hd_safetensors_find (floats only) does not return it. */
static void test_i64(const char *dir) {
    char *path = test_path_join(dir, "i64.safetensors");
    const float weights[3] = {1.5f, -2.0f, 0.25f};
    const int64_t count = 9007199254740993LL; /* 2^53 + 1: no float or double holds it */
    const int64_t list[2] = {-7, 123456789012LL};
    hd_st_tensor tensors[3] = {{"bn1.weight", weights, 1, HD_ST_F32, {3, 0, 0, 0}},
                               {"bn1.num_batches_tracked", &count, 0, HD_ST_I64, {0, 0, 0, 0}},
                               {"list", list, 1, HD_ST_I64, {2, 0, 0, 0}}};
    CHECK(hd_safetensors_write(path, tensors, 3, NULL, 0) == 0, "write with I64: %s", hd_last_error());
    uint8_t *bytes = NULL;
    size_t size = 0;
    CHECK(hd_read_file(path, &bytes, &size) == 0 && bytes &&
              strstr((const char *)bytes + 8, "\"dtype\":\"I64\"") &&
              size == 8 + (size_t)(bytes[0] | bytes[1] << 8) + 12 + 8 + 16,
          "I64 in the header, 8 bytes a value (%zu bytes)", size);
    free(bytes);
    hd_safetensors *f = NULL;
    CHECK(hd_safetensors_read(path, &f) == 0, "read with I64: %s", hd_last_error());
    if (f) {
        hd_st_dtype dtype = HD_ST_F32;
        int rank = -1;
        int64_t dims[HD_ST_MAX_RANK], got = 0, got_list[2] = {0, 0};
        const void *p = hd_safetensors_find_any(f, "bn1.num_batches_tracked", &dtype, &rank, dims);
        if (p)
            memcpy(&got, p, sizeof got);
        CHECK(p && dtype == HD_ST_I64 && rank == 0 && got == count, "I64 scalar back: %lld", (long long)got);
        p = hd_safetensors_find_any(f, "list", &dtype, &rank, dims);
        if (p)
            memcpy(got_list, p, sizeof got_list);
        CHECK(p && rank == 1 && dims[0] == 2 && got_list[0] == -7 && got_list[1] == 123456789012LL,
              "I64 list");
        CHECK(hd_safetensors_find(f, "bn1.num_batches_tracked", NULL, NULL) == NULL,
              "find (F32 only) does not hand out I64 data as floats");
        const float *w = hd_safetensors_find(f, "bn1.weight", NULL, NULL);
        CHECK(w && w[0] == 1.5f && w[2] == 0.25f, "F32 beside I64");
        hd_safetensors_free(f);
    }
    free(path);
}

int main(void) {
    uint64_t rng = test_fresh_seed();
    char *dir = test_make_temp_dir("st");
    CHECK(dir != NULL, "cannot make a temp dir");
    if (!dir)
        return test_finish();
    test_round_trip_and_layout(dir, &rng);
    test_i64(dir);
    test_damaged_files(dir, &rng);
    test_remove_tree(dir);
    free(dir);
    test_kill_safety(&rng);
    return test_finish();
}
