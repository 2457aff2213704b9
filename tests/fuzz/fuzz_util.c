/* fuzz_util.c: the temporary input file and the property checks of fuzz_util.h. */
#include "fuzz_util.h"

#include "hd/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void fuzz_broken(const char *file, int line, const char *fmt, ...) {
    fprintf(stderr, "fuzz property broken at %s:%d: ", file, line);
    va_list args;
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fputc('\n', stderr);
    abort();
}

static char temp_path[64];

static void remove_temp_file(void) {
    if (temp_path[0])
        unlink(temp_path);
}

const char *fuzz_temp_file(const uint8_t *data, size_t size) {
    if (!temp_path[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(temp_path, sizeof temp_path, "%s/hd-fuzz-XXXXXX", dir && strlen(dir) < 40 ? dir : "/tmp");
        int fd = mkstemp(temp_path);
        FUZZ_ASSERT(fd >= 0, "cannot make a temporary file from %s", temp_path);
        close(fd);
        atexit(remove_temp_file);
    }
    FILE *file = fopen(temp_path, "wb");
    FUZZ_ASSERT(file, "cannot open %s", temp_path);
    FUZZ_ASSERT(size == 0 || fwrite(data, 1, size, file) == size, "cannot write %s", temp_path);
    FUZZ_ASSERT(fclose(file) == 0, "cannot close %s", temp_path);
    return temp_path;
}

void fuzz_check_result_at(int rc, const char *prefix, const char *file, int line) {
    if (rc == 0)
        return;
    const char *message = hd_last_error();
    if (rc != -1)
        fuzz_broken(file, line, "returned %d (expected 0 or -1); last error: %s", rc, message);
    if (!message[0])
        fuzz_broken(file, line, "failed without a message");
    if (strncmp(message, prefix, strlen(prefix)) != 0)
        fuzz_broken(file, line, "message does not start with \"%s\": %s", prefix, message);
    if (strchr(message, '\n'))
        fuzz_broken(file, line, "message is more than one line: %s", message);
}
