/* replay_main.c: runs a fuzz target over saved inputs, without libFuzzer, so that any compiler (and the
 * CI's sanitizer build) replays the corpus as a test. Arguments: files or directories of inputs. It
 * fails when an input breaks a property (the target aborts) and when it found no input at all. */
#include "fuzz_util.h"

#include "hd/common.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int replay_file(const char *path) {
    uint8_t *data = NULL;
    size_t size = 0;
    if (hd_read_file(path, &data, &size) != 0) {
        fprintf(stderr, "replay: %s\n", hd_last_error());
        return -1;
    }
    hd_clear_error();
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    return 0;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays every regular file in dir, in name order (so a run is repeatable); returns the count. */
static int replay_dir(const char *dir) {
    DIR *handle = opendir(dir);
    if (!handle) {
        fprintf(stderr, "replay: %s: cannot open directory\n", dir);
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    const struct dirent *entry;
    while ((entry = readdir(handle)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown)
                abort();
            names = grown;
        }
        names[n] = strdup(entry->d_name);
        if (!names[n++])
            abort();
    }
    closedir(handle);
    if (n > 1)
        qsort(names, n, sizeof *names, by_name);
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat info;
        if (stat(path, &info) == 0 && S_ISREG(info.st_mode)) {
            if (replay_file(path) != 0)
                count = -1;
            else if (count >= 0)
                count++;
        }
        free(names[i]);
    }
    free(names);
    return count;
}

int main(int argc, char **argv) {
    int total = 0;
    for (int i = 1; i < argc; i++) {
        struct stat info;
        if (stat(argv[i], &info) != 0) {
            fprintf(stderr, "replay: %s: no such file or directory\n", argv[i]);
            return 1;
        }
        int count = S_ISDIR(info.st_mode) ? replay_dir(argv[i]) : (replay_file(argv[i]) == 0 ? 1 : -1);
        if (count < 0)
            return 1;
        total += count;
    }
    if (total == 0) {
        fprintf(stderr, "replay: no inputs found\n");
        return 1;
    }
    printf("replay: %d inputs, every property held\n", total);
    return 0;
}
