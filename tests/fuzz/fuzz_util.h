/* fuzz_util.h: what the fuzz targets share.
 *
 * Each tests/fuzz/fuzz_*.c defines LLVMFuzzerTestOneInput, the libFuzzer entry point, and holds the
 * parser it feeds to the properties every input must keep: no crash, no leak, no undefined behaviour
 * (the sanitizers see those), and either a success whose outputs are in range or a failure with one
 * line, naming the file, in hd_last_error(). A broken property aborts, so libFuzzer keeps the input. */
#ifndef HD_FUZZ_UTIL_H
#define HD_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Prints "fuzz property broken at file:line: ..." and aborts. */
void fuzz_broken(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)))
__attribute__((noreturn));
#define FUZZ_ASSERT(cond, ...)                                                                               \
    do {                                                                                                     \
        if (!(cond))                                                                                         \
            fuzz_broken(__FILE__, __LINE__, __VA_ARGS__);                                                    \
    } while (0)

/* Writes the input to this process's temporary file (made once, rewritten for every input) and
 * returns its path, for parsers that read files. */
const char *fuzz_temp_file(const uint8_t *data, size_t size);

/* After a call that returned rc: on failure (-1) hd_last_error() must be one non-empty line that
 * starts with prefix (the file's path). Any other rc than 0 or -1 is broken too. */
#define fuzz_check_result(rc, prefix) fuzz_check_result_at((rc), (prefix), __FILE__, __LINE__)
void fuzz_check_result_at(int rc, const char *prefix, const char *file, int line);

#endif
