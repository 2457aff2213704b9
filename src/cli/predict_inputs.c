/* predict_inputs.c: the images `hd-gpu predict` is given (see predict.h). */
#include "predict.h"
#include "hd/common.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static int is_image_name(const char *name) {
    static const char *const extensions[] = {".png", ".jpg", ".jpeg", ".bmp", ".gif"};
    const char *dot = strrchr(name, '.');
    if (!dot || name[0] == '.')
        return 0;
    for (size_t i = 0; i < sizeof extensions / sizeof extensions[0]; i++)
        if (strcasecmp(dot, extensions[i]) == 0)
            return 1;
    return 0;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int push(hd_predict_inputs *in, size_t *capacity, char *name) {
    if (!name)
        return -1;
    if ((size_t)in->count == *capacity) {
        size_t grown = *capacity ? 2 * *capacity : 16;
        char **names = grown <= (size_t)1 << 24 ? realloc(in->names, grown * sizeof *names) : NULL;
        if (!names) {
            free(name);
            return hd_fail("too many images (%d)", in->count);
        }
        in->names = names;
        *capacity = grown;
    }
    in->names[in->count++] = name;
    return 0;
}

static char *copy_of(const char *text) {
    size_t len = strlen(text) + 1;
    char *copy = hd_malloc(len);
    if (copy)
        memcpy(copy, text, len);
    return copy;
}

/* The directory's image files, sorted by name, appended. */
static int list_directory(hd_predict_inputs *in, size_t *capacity, const char *dir) {
    DIR *d = opendir(dir);
    if (!d)
        return hd_fail("%s: cannot read the directory", dir);
    int first = in->count, rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d)) != NULL;) {
        if (!is_image_name(e->d_name))
            continue;
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *path = hd_malloc(len);
        if (path)
            snprintf(path, len, "%s/%s", dir, e->d_name);
        rc = push(in, capacity, path);
    }
    closedir(d);
    if (rc == 0 && in->count == first)
        rc = hd_fail("%s: no images in the directory (.png, .jpg, .jpeg, .bmp, .gif)", dir);
    if (rc == 0)
        qsort(in->names + first, (size_t)(in->count - first), sizeof *in->names, by_name);
    return rc;
}

int hd_predict_inputs_list(hd_predict_inputs *in, char *const *operands, int n_operands) {
    memset(in, 0, sizeof *in);
    size_t capacity = 0;
    for (int i = 0; i < n_operands; i++) {
        struct stat st;
        int rc = stat(operands[i], &st) == 0 && S_ISDIR(st.st_mode)
                     ? list_directory(in, &capacity, operands[i])
                     : push(in, &capacity, copy_of(operands[i]));
        if (rc != 0) {
            hd_predict_inputs_free(in);
            return -1;
        }
    }
    return 0;
}

void hd_predict_inputs_free(hd_predict_inputs *in) {
    for (int i = 0; i < in->count; i++)
        free(in->names[i]);
    free(in->names);
    memset(in, 0, sizeof *in);
}

/* stdin into a temporary file (hd_digit_image_load reads regular files, size checked first). */
static int load_stdin(float pixels[HD_DIGIT_PIXELS]) {
    const char *tmpdir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/hd-gpu-stdin-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        return hd_fail("-: cannot make a temporary file for stdin in %s",
                       tmpdir && *tmpdir ? tmpdir : "/tmp");
    unsigned char buf[65536];
    size_t total = 0;
    int rc = 0;
    for (size_t n; rc == 0 && (n = fread(buf, 1, sizeof buf, stdin)) > 0;) {
        total += n;
        if (total > HD_DIGIT_MAX_FILE_BYTES)
            rc = hd_fail("-: stdin holds over %d bytes, more than an image may", HD_DIGIT_MAX_FILE_BYTES);
        else if (write(fd, buf, n) != (ssize_t)n)
            rc = hd_fail("%s: cannot write stdin's image", path);
    }
    if (rc == 0 && ferror(stdin))
        rc = hd_fail("-: cannot read stdin");
    close(fd);
    if (rc == 0 && hd_digit_image_load(path, pixels) != 0) {
        /* name stdin, not the temporary file, in the message */
        const char *why = hd_last_error();
        size_t skip = strncmp(why, path, strlen(path)) == 0 ? strlen(path) : 0;
        char message[1024];
        snprintf(message, sizeof message, "-%s", why + skip);
        rc = hd_fail("%s", message);
    }
    unlink(path);
    return rc;
}

int hd_predict_load_image(const char *name, float pixels[HD_DIGIT_PIXELS]) {
    return strcmp(name, "-") == 0 ? load_stdin(pixels) : hd_digit_image_load(name, pixels);
}
