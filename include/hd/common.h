/* common.h: error reporting, version and small helpers shared by every host file.
 *
 * Convention: functions that can fail return 0 on success and -1 on failure, after
 * recording a one-line message with hd_fail(). The caller that finally gives up prints
 * hd_last_error(). The message names the file or call and what is wrong, e.g.
 * "data/train-images-idx3-ubyte: bad magic 0x00000802 (expected 0x00000803)". */
#ifndef HD_COMMON_H
#define HD_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define HD_VERSION "0.1.0"

#if defined(__GNUC__)
#define HD_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define HD_PRINTF(fmt_index, first_arg)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Record a failure message (thread-local, up to 1023 bytes) and return -1. Control characters in it
 * (a newline in a file name or spec) are stored as C escapes ("\n", "\x1b"): the message stays one line.
 * Arguments may include hd_last_error() itself. */
int hd_fail(const char *fmt, ...) HD_PRINTF(1, 2);
#ifdef __clang_analyzer__
/* For clang-tidy only: the analyzer cannot see into common.c, so it would otherwise follow
 * `return hd_fail(...)` as if it might return 0 and report garbage reads on failure paths. */
static inline int hd_fail_result_for_analyzer(int result) {
    (void)result;
    return -1;
}
#define hd_fail(...) hd_fail_result_for_analyzer(hd_fail(__VA_ARGS__))
#endif
/* The last message recorded on this thread ("" if none). */
const char *hd_last_error(void);
void hd_clear_error(void);

/* malloc/calloc that record "out of memory (N bytes) at file:line" and return NULL. */
void *hd_malloc_at(size_t bytes, const char *file, int line);
void *hd_calloc_at(size_t count, size_t size, const char *file, int line);
#define hd_malloc(bytes)       hd_malloc_at((bytes), __FILE__, __LINE__)
#define hd_calloc(count, size) hd_calloc_at((count), (size), __FILE__, __LINE__)

/* Monotonic clock in seconds. */
double hd_now_seconds(void);

/* Create a directory and its parents (like mkdir -p). */
int hd_mkdir_p(const char *path);

/* Write a whole file atomically: temp file in the same directory, fsync, rename, fsync dir.
 * A crash at any point leaves either the old file or the new one, never a mix. */
int hd_write_file_atomic(const char *path, const void *data, size_t size);

/* Read a whole file into a malloc'ed buffer. */
int hd_read_file(const char *path, uint8_t **data, size_t *size);
/* The same, refusing ("PATH: file too large (N bytes; at most M)") a file over max_bytes before
 * anything is allocated. */
int hd_read_file_at_most(const char *path, size_t max_bytes, uint8_t **data, size_t *size);

/* Strict numbers for values that come from outside (command line, file metadata, specs): the whole
 * text, nothing before or after, in [lo, hi]; 0, or -1 without recording an error (the caller names
 * the value). */
int hd_parse_integer(const char *text, long long lo, long long hi, long long *value);
int hd_parse_real(const char *text, double lo, double hi, double *value);

/* The shortest decimal ("%g", 1 to 9 digits) that reads back as exactly v: "0.001", not
 * "0.00100000005"; for floats written to files that are parsed again (checkpoints, specs). */
void hd_format_float(char *buf, size_t len, float v);

#ifdef __cplusplus
}
#endif

#endif
