/* test_mnist.c: where hd_mnist_load looks (--data dir, then $HD_DATA_DIR, then the cache under
 * $XDG_CACHE_HOME), the file-name layouts it accepts, and its messages when nothing is found, using small
 * fixture IDX sets whose first pixel says which directory they came from. */
#include "check.h"
#include "hd/common.h"
#include "hd/mnist.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { LAYOUT_RAW, LAYOUT_GZ, LAYOUT_DOTTED };

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void write_file(const char *path, const uint8_t *data, size_t size, int gz) {
    if (!gz) {
        CHECK(hd_write_file_atomic(path, data, size) == 0, "write %s: %s", path, hd_last_error());
        return;
    }
    gzFile f = gzopen(path, "wb");
    CHECK(f != NULL, "gzopen %s", path);
    if (f) {
        CHECK(gzwrite(f, data, (unsigned)size) == (int)size, "gzwrite %s", path);
        CHECK(gzclose(f) == Z_OK, "gzclose %s", path);
    }
}

/* One IDX pair of count 2x2 images, every pixel = marker + index, labels index % 10. */
static void write_pair(const char *dir, const char *images_name, const char *labels_name, int count,
                       int marker, int layout) {
    uint8_t images[16 + 4 * 8], labels[8 + 8];
    put_be32(images, 0x00000803);
    put_be32(images + 4, (uint32_t)count);
    put_be32(images + 8, 2);
    put_be32(images + 12, 2);
    put_be32(labels, 0x00000801);
    put_be32(labels + 4, (uint32_t)count);
    for (int i = 0; i < count; i++) {
        memset(images + 16 + 4 * i, marker + i, 4);
        labels[8 + i] = (uint8_t)(i % 10);
    }
    const char *names[2] = {images_name, labels_name};
    const uint8_t *data[2] = {images, labels};
    size_t sizes[2] = {16 + 4 * (size_t)count, 8 + (size_t)count};
    for (int f = 0; f < 2; f++) {
        char name[64], path[4200];
        snprintf(name, sizeof name, "%s", names[f]);
        char *dash = strstr(name, "-idx");
        if (layout == LAYOUT_DOTTED && dash)
            *dash = '.';
        snprintf(path, sizeof path, "%s/%s%s", dir, name, layout == LAYOUT_GZ ? ".gz" : "");
        write_file(path, data[f], sizes[f], layout == LAYOUT_GZ);
    }
}

static void write_set(const char *dir, int marker, int layout) {
    CHECK(hd_mkdir_p(dir) == 0, "mkdir %s: %s", dir, hd_last_error());
    write_pair(dir, HD_MNIST_TRAIN_IMAGES, HD_MNIST_TRAIN_LABELS, 3, marker, layout);
    write_pair(dir, HD_MNIST_TEST_IMAGES, HD_MNIST_TEST_LABELS, 2, marker + 100, layout);
}

/* Loads and checks that the sets came from the directory whose marker is given. */
static void expect_marker(const char *what, const hd_mnist_options *opt, int marker) {
    hd_dataset train, test;
    int rc = hd_mnist_load(opt, &train, &test);
    CHECK(rc == 0, "%s: load failed: %s", what, hd_last_error());
    if (rc != 0)
        return;
    CHECK(train.count == 3 && train.rows == 2 && train.cols == 2, "%s: train %d x %d x %d", what, train.count,
          train.rows, train.cols);
    CHECK(test.count == 2 && test.rows == 2 && test.cols == 2, "%s: test %d x %d x %d", what, test.count,
          test.rows, test.cols);
    if (train.count == 3 && test.count == 2) {
        CHECK(train.images[0] == marker && train.images[11] == marker + 2,
              "%s: train pixels %d, %d (marker %d)", what, train.images[0], train.images[11], marker);
        CHECK(test.images[4] == marker + 101, "%s: test pixel %d (marker %d)", what, test.images[4], marker);
        CHECK(train.labels[2] == 2 && test.labels[1] == 1, "%s: labels", what);
    }
    hd_dataset_free(&train);
    hd_dataset_free(&test);
}

static void expect_failure(const char *what, const hd_mnist_options *opt, const char *word1,
                           const char *word2, const char *word3) {
    hd_dataset train, test;
    int rc = hd_mnist_load(opt, &train, &test);
    const char *msg = hd_last_error();
    CHECK(rc == -1, "%s: must fail", what);
    CHECK(train.images == NULL && test.images == NULL && train.count == 0, "%s: outputs zeroed", what);
    const char *words[3] = {word1, word2, word3};
    for (int i = 0; i < 3; i++)
        CHECK(!words[i] || strstr(msg, words[i]), "%s: message must say \"%s\": \"%s\"", what,
              words[i] ? words[i] : "", msg);
    printf("%-28s -> %s\n", what, msg);
    hd_dataset_free(&train);
    hd_dataset_free(&test);
}

int main(void) {
    char *root = test_make_temp_dir("mnist");
    CHECK(root != NULL, "temp dir");
    if (!root)
        return test_finish();
    char given[4200], env_dir[4200], xdg[4200], cache[4200], buf[4200], empty[4200];
    snprintf(given, sizeof given, "%s/given", root);
    snprintf(env_dir, sizeof env_dir, "%s/env", root);
    snprintf(xdg, sizeof xdg, "%s/xdg", root);
    snprintf(cache, sizeof cache, "%s/xdg/hd-gpu/mnist", root);
    snprintf(empty, sizeof empty, "%s/empty", root);
    CHECK(hd_mkdir_p(empty) == 0, "mkdir empty");

    /* The cache directory. */
    setenv("XDG_CACHE_HOME", xdg, 1);
    CHECK(hd_mnist_cache_dir(buf, sizeof buf) == 0 && strcmp(buf, cache) == 0, "cache dir %s, expected %s",
          buf, cache);
    setenv("HOME", root, 1);
    setenv("XDG_CACHE_HOME", "relative/ignored", 1);
    snprintf(given, sizeof given, "%s/.cache/hd-gpu/mnist", root);
    CHECK(hd_mnist_cache_dir(buf, sizeof buf) == 0 && strcmp(buf, given) == 0, "cache dir %s, expected %s",
          buf, given);
    unsetenv("XDG_CACHE_HOME");
    CHECK(hd_mnist_cache_dir(buf, sizeof buf) == 0 && strcmp(buf, given) == 0, "cache dir %s without XDG",
          buf);
    char tiny[8];
    CHECK(hd_mnist_cache_dir(tiny, sizeof tiny) == -1, "a too-small buffer must fail");
    snprintf(given, sizeof given, "%s/given", root);

    /* Three sets: --data (gzip, like Debian's dataset-fashion-mnist), $HD_DATA_DIR (raw), the cache. */
    write_set(given, 10, LAYOUT_GZ);
    write_set(env_dir, 20, LAYOUT_RAW);
    write_set(cache, 30, LAYOUT_RAW);
    setenv("XDG_CACHE_HOME", xdg, 1);
    setenv("HD_DATA_DIR", env_dir, 1);
    hd_mnist_options opt;
    hd_mnist_options_defaults(&opt);
    CHECK(opt.allow_download == 1 && opt.quiet == 0 && opt.data_dir == NULL, "defaults");
    opt.allow_download = 0;
    opt.quiet = 1;
    opt.data_dir = given;
    expect_marker("--data first", &opt, 10);
    opt.data_dir = NULL;
    expect_marker("then $HD_DATA_DIR", &opt, 20);
    setenv("HD_DATA_DIR", "", 1);
    expect_marker("empty $HD_DATA_DIR ignored", &opt, 30);
    unsetenv("HD_DATA_DIR");
    expect_marker("then the cache", &opt, 30);

    /* A named directory is authoritative: missing files fail, naming it, rather than falling through. */
    opt.data_dir = empty;
    expect_failure("--data without files", &opt, empty, "--data", "fetch-mnist");
    opt.data_dir = NULL;
    setenv("HD_DATA_DIR", empty, 1);
    expect_failure("$HD_DATA_DIR without files", &opt, empty, "$HD_DATA_DIR", HD_MNIST_TRAIN_IMAGES);
    unsetenv("HD_DATA_DIR");

    /* Other layouts: "train-images.idx3-ubyte" names; a partial set names what is missing. */
    char dotted[4200], partial[4200], path[4300];
    snprintf(dotted, sizeof dotted, "%s/dotted", root);
    write_set(dotted, 40, LAYOUT_DOTTED);
    opt.data_dir = dotted;
    expect_marker("dotted names", &opt, 40);
    snprintf(partial, sizeof partial, "%s/partial", root);
    write_set(partial, 50, LAYOUT_RAW);
    snprintf(path, sizeof path, "%s/%s", partial, HD_MNIST_TEST_LABELS);
    CHECK(remove(path) == 0, "remove %s", path);
    opt.data_dir = partial;
    expect_failure("partial set", &opt, "missing " HD_MNIST_TEST_LABELS, partial, NULL);
    /* A damaged file in a named directory: the IDX message comes through. */
    write_pair(partial, HD_MNIST_TEST_IMAGES, HD_MNIST_TEST_LABELS, 2, 50, LAYOUT_RAW);
    snprintf(path, sizeof path, "%s/%s", partial, HD_MNIST_TEST_IMAGES);
    static const uint8_t stub[20] = {0, 0, 8, 3, 0, 0, 0, 9, 0, 0, 0, 2, 0, 0, 0, 2};
    CHECK(hd_write_file_atomic(path, stub, sizeof stub) == 0, "write stub");
    expect_failure("damaged file", &opt, HD_MNIST_TEST_IMAGES, "truncated", "header promises 52 bytes");

    /* A directory where an IDX file should be is said to be one, not reported as missing. */
    char dir_in_place[4200];
    snprintf(dir_in_place, sizeof dir_in_place, "%s/dir-in-place", root);
    write_set(dir_in_place, 60, LAYOUT_RAW);
    snprintf(path, sizeof path, "%s/%s", dir_in_place, HD_MNIST_TEST_IMAGES);
    CHECK(remove(path) == 0 && hd_mkdir_p(path) == 0, "replace %s by a directory", path);
    opt.data_dir = dir_in_place;
    expect_failure("a directory in place of a file", &opt, path, "is a directory, not an IDX file",
                   HD_MNIST_TEST_IMAGES);

    /* Evaluation needs only the test set: a directory with the two t10k files is enough when train is NULL,
     * and a missing training set is then neither looked for nor downloaded. */
    char test_only[4200];
    snprintf(test_only, sizeof test_only, "%s/test-only", root);
    write_set(test_only, 70, LAYOUT_RAW);
    snprintf(path, sizeof path, "%s/%s", test_only, HD_MNIST_TRAIN_IMAGES);
    CHECK(remove(path) == 0, "remove %s", path);
    snprintf(path, sizeof path, "%s/%s", test_only, HD_MNIST_TRAIN_LABELS);
    CHECK(remove(path) == 0, "remove %s", path);
    opt.data_dir = test_only;
    hd_dataset test_set;
    int test_rc = hd_mnist_load(&opt, NULL, &test_set);
    CHECK(test_rc == 0 && test_set.count == 2 && test_set.images[0] == 170,
          "test set alone from %s: rc %d, %d images, first pixel %d (%s)", test_only, test_rc, test_set.count,
          test_rc == 0 ? test_set.images[0] : -1, hd_last_error());
    CHECK(test_rc != 0 || (test_set.source && strstr(test_set.source, HD_MNIST_TEST_IMAGES)),
          "the set knows its file: %s", test_rc == 0 && test_set.source ? test_set.source : "(none)");
    hd_dataset_free(&test_set);
    expect_failure("training set still required to train", &opt, "missing " HD_MNIST_TRAIN_IMAGES, test_only,
                   NULL);
    /* The cache: only the test files present, downloads off: still found. */
    char xdg3[4200], cache3[4300], path3[4400];
    snprintf(xdg3, sizeof xdg3, "%s/xdg3", root);
    snprintf(cache3, sizeof cache3, "%s/hd-gpu/mnist", xdg3);
    write_set(cache3, 80, LAYOUT_RAW);
    for (int f = 0; f < 2; f++) {
        snprintf(path3, sizeof path3, "%s/%s", cache3, f ? HD_MNIST_TRAIN_LABELS : HD_MNIST_TRAIN_IMAGES);
        CHECK(remove(path3) == 0, "remove %s", path3);
    }
    setenv("XDG_CACHE_HOME", xdg3, 1);
    opt.data_dir = NULL;
    test_rc = hd_mnist_load(&opt, NULL, &test_set);
    CHECK(test_rc == 0 && test_set.count == 2 && test_set.images[0] == 180,
          "test set alone from the cache %s: rc %d (%s)", cache3, test_rc, hd_last_error());
    hd_dataset_free(&test_set);

    /* Nothing anywhere, downloads off: the message names the cache and how to fill it. */
    opt.data_dir = NULL;
    char xdg2[4200], cache2[4300];
    snprintf(xdg2, sizeof xdg2, "%s/xdg2", root);
    snprintf(cache2, sizeof cache2, "%s/hd-gpu/mnist", xdg2);
    setenv("XDG_CACHE_HOME", xdg2, 1);
    expect_failure("nothing found", &opt, cache2, "scripts/fetch-mnist", "downloads are off");

    /* Downloads on, but the only mirror refuses connections: fails and leaves the cache empty. */
    static const char *const dead_mirror[1] = {"http://127.0.0.1:1/mnist/"};
    opt.allow_download = 1;
    opt.mirrors = dead_mirror;
    opt.n_mirrors = 1;
    expect_failure("download fails", &opt, HD_MNIST_TRAIN_IMAGES, cache2, "fetch-mnist");
    int left = test_count_entries(cache2);
    CHECK(left <= 0, "%d files left in %s after a failed download", left, cache2);

    CHECK(hd_mnist_sha256(HD_MNIST_TEST_LABELS) &&
              strcmp(hd_mnist_sha256(HD_MNIST_TEST_LABELS),
                     "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2") == 0,
          "t10k labels digest");
    CHECK(hd_mnist_sha256("other") == NULL, "unknown name has no digest");
    int n_default = 0;
    const char *const *mirrors = hd_mnist_default_mirrors(&n_default);
    CHECK(n_default == 3 && strstr(mirrors[0], "ossci-datasets"), "default mirrors (%d)", n_default);

    test_remove_tree(root);
    free(root);
    return test_finish();
}
