/* common.c: error recording, allocation with messages, clock, directories, atomic files. */
#include "hd/common.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#undef hd_fail /* common.h's model of it for clang-tidy; the function itself is defined here */

#define HD_ERROR_MAX 1024
static _Thread_local char last_error[HD_ERROR_MAX];

/* Copies a message into last_error with control characters written as C escapes ("\n", "\x1b"), so that
 * an error stays one line whatever a file name, a spec or a file's bytes quoted in it hold. */
static void store_one_line(const char *message) {
    size_t used = 0;
    for (const unsigned char *p = (const unsigned char *)message; *p; p++) {
        char escaped[5] = {(char)*p, '\0'};
        if (*p == '\n' || *p == '\r' || *p == '\t')
            snprintf(escaped, sizeof escaped, "\\%c", *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't');
        else if (*p < 0x20 || *p == 0x7f)
            snprintf(escaped, sizeof escaped, "\\x%02x", *p);
        size_t len = strlen(escaped);
        if (used + len >= sizeof last_error)
            break;
        memcpy(last_error + used, escaped, len);
        used += len;
    }
    last_error[used] = '\0';
}

int hd_fail(const char *fmt, ...) {
    char message[HD_ERROR_MAX];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    store_one_line(message);
    return -1;
}

const char *hd_last_error(void) {
    return last_error;
}

void hd_clear_error(void) {
    last_error[0] = '\0';
}

void *hd_malloc_at(size_t bytes, const char *file, int line) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p)
        hd_fail("out of memory allocating %zu bytes at %s:%d", bytes, file, line);
    return p;
}

void *hd_calloc_at(size_t count, size_t size, const char *file, int line) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        hd_fail("out of memory allocating %zu x %zu bytes at %s:%d", count, size, file, line);
    return p;
}

double hd_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int hd_mkdir_p(const char *path) {
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf)
        return hd_fail("%s: bad directory path", path);
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return hd_fail("%s: cannot create directory: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return hd_fail("%s: cannot create directory: %s", buf, strerror(errno));
    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
        return hd_fail("%s: exists and is not a directory", buf);
    return 0;
}

static int write_all(int fd, const void *data, size_t size) {
    const unsigned char *p = data;
    while (size > 0) {
        ssize_t n = write(fd, p, size);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        size -= (size_t)n;
    }
    return 0;
}

int hd_write_file_atomic(const char *path, const void *data, size_t size) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return hd_fail("%s: cannot create: %s", tmp, strerror(errno));
    if (write_all(fd, data, size) != 0 || fsync(fd) != 0) {
        int saved = errno;
        close(fd);
        unlink(tmp);
        return hd_fail("%s: cannot write: %s", tmp, strerror(saved));
    }
    if (close(fd) != 0) {
        unlink(tmp);
        return hd_fail("%s: cannot close: %s", tmp, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        int saved = errno;
        unlink(tmp);
        return hd_fail("%s: cannot rename into place: %s", path, strerror(saved));
    }
    /* Make the rename itself durable. */
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

int hd_read_file(const char *path, uint8_t **data, size_t *size) {
    return hd_read_file_at_most(path, SIZE_MAX - 1, data, size);
}

int hd_read_file_at_most(const char *path, size_t max_bytes, uint8_t **data, size_t *size) {
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return hd_fail("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return hd_fail("%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_bytes) {
        fclose(f);
        return hd_fail("%s: file too large (%lld bytes; at most %zu)", path, (long long)st.st_size,
                       max_bytes);
    }
    size_t len = (size_t)st.st_size;
    uint8_t *buf = hd_malloc(len + 1);
    if (!buf) {
        fclose(f);
        return -1;
    }
    if (len && fread(buf, 1, len, f) != len) {
        fclose(f);
        free(buf);
        return hd_fail("%s: read error", path);
    }
    fclose(f);
    buf[len] = 0;
    *data = buf;
    *size = len;
    return 0;
}

int hd_parse_integer(const char *text, long long lo, long long hi, long long *value) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi)
        return -1;
    *value = v;
    return 0;
}

int hd_parse_real(const char *text, double lo, double hi, double *value) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    /* ERANGE also flags an underflow to a tiny value, which is in range: only an overflow is refused. */
    if ((errno == ERANGE && fabs(v) == HUGE_VAL) || end == text || *end || !(v >= lo && v <= hi))
        return -1;
    *value = v;
    return 0;
}

void hd_format_float(char *buf, size_t len, float v) {
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, len, "%.*g", digits, (double)v);
        if (strtof(buf, NULL) == v)
            return;
    }
}
