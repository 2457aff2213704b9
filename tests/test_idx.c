/* test_idx.c: the IDX reader on small fixture files written to a temp dir: good raw and .gz sets load
 * with exact values; each kind of damage is refused with a one-line message naming the file and the
 * problem; and, if present, the real MNIST files load with their known per-class label counts. */
#include "check.h"
#include "hd/common.h"
#include "hd/idx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static char temp_dir[4096];

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static const char *fixture_path(const char *name) {
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s", temp_dir, name);
    return path;
}

/* Writes bytes as NAME (raw) in the temp dir; returns the path (valid until the next call). */
static const char *write_raw(const char *name, const void *data, size_t size) {
    const char *path = fixture_path(name);
    CHECK(hd_write_file_atomic(path, data, size) == 0, "write %s: %s", name, hd_last_error());
    return path;
}

static const char *write_gz(const char *name, const void *data, size_t size) {
    const char *path = fixture_path(name);
    gzFile gz = gzopen(path, "wb");
    CHECK(gz != NULL, "gzopen %s", path);
    if (gz) {
        CHECK(size == 0 || gzwrite(gz, data, (unsigned)size) == (int)size, "gzwrite %s", path);
        CHECK(gzclose(gz) == Z_OK, "gzclose %s", path);
    }
    return path;
}

/* An images file: header (magic, count, rows, cols) then count*rows*cols pixels p(i) = (7*i + 3) % 256;
 * body_bytes overrides how many pixel bytes follow (to make it short or long). */
static uint8_t *make_images(uint32_t magic, uint32_t count, uint32_t rows, uint32_t cols, size_t body_bytes,
                            size_t *size) {
    *size = 16 + body_bytes;
    uint8_t *buf = malloc(*size);
    if (!buf)
        return NULL;
    put_be32(buf, magic);
    put_be32(buf + 4, count);
    put_be32(buf + 8, rows);
    put_be32(buf + 12, cols);
    for (size_t i = 0; i < body_bytes; i++)
        buf[16 + i] = (uint8_t)((7 * i + 3) % 256);
    return buf;
}

static uint8_t *make_labels(uint32_t magic, uint32_t count, const uint8_t *values, size_t n, size_t *size) {
    *size = 8 + n;
    uint8_t *buf = malloc(*size);
    if (!buf)
        return NULL;
    put_be32(buf, magic);
    put_be32(buf + 4, count);
    memcpy(buf + 8, values, n);
    return buf;
}

/* The load must fail, leave *out zeroed, and say each of the words (and name the file). */
static void expect_failure(const char *what, const char *images, const char *labels, const char *file_word,
                           const char *word1, const char *word2) {
    hd_dataset d;
    hd_clear_error();
    int rc = hd_dataset_load_idx(images, labels, &d);
    const char *msg = hd_last_error();
    CHECK(rc == -1, "%s: load must fail", what);
    CHECK(d.images == NULL && d.labels == NULL && d.count == 0, "%s: output not zeroed", what);
    CHECK(strstr(msg, file_word) != NULL, "%s: message must name %s: \"%s\"", what, file_word, msg);
    CHECK(strstr(msg, word1) != NULL, "%s: message must say \"%s\": \"%s\"", what, word1, msg);
    CHECK(!word2 || strstr(msg, word2) != NULL, "%s: message must say \"%s\": \"%s\"", what, word2, msg);
    CHECK(strchr(msg, '\n') == NULL, "%s: message must be one line: \"%s\"", what, msg);
    printf("%-34s -> %s\n", what, msg);
    hd_dataset_free(&d);
}

static void check_good_set(const char *what, const char *images, const char *labels) {
    hd_dataset d;
    int rc = hd_dataset_load_idx(images, labels, &d);
    CHECK(rc == 0, "%s: load failed: %s", what, hd_last_error());
    if (rc != 0)
        return;
    CHECK(d.count == 3 && d.rows == 2 && d.cols == 5, "%s: shape %d x %d x %d", what, d.count, d.rows,
          d.cols);
    int wrong = 0;
    for (size_t i = 0; i < 30; i++)
        wrong += d.images[i] != (uint8_t)((7 * i + 3) % 256);
    CHECK(wrong == 0, "%s: %d pixels differ", what, wrong);
    CHECK(d.labels[0] == 3 && d.labels[1] == 0 && d.labels[2] == 9, "%s: labels %d %d %d", what, d.labels[0],
          d.labels[1], d.labels[2]);
    hd_dataset_free(&d);
    CHECK(d.images == NULL && d.count == 0, "%s: free zeroes", what);
}

static void check_real_mnist(const char *dir) {
    static const int train_counts[10] = {5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949};
    static const int test_counts[10] = {980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009};
    const char *sets[2][2] = {{"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
                              {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}};
    for (int s = 0; s < 2; s++) {
        char images[4200], labels[4200];
        snprintf(images, sizeof images, "%s/%s", dir, sets[s][0]);
        snprintf(labels, sizeof labels, "%s/%s", dir, sets[s][1]);
        hd_dataset d;
        int rc = hd_dataset_load_idx(images, labels, &d);
        CHECK(rc == 0, "real MNIST %s: %s", sets[s][0], hd_last_error());
        if (rc != 0)
            continue;
        int expected_count = s == 0 ? 60000 : 10000;
        CHECK(d.count == expected_count && d.rows == 28 && d.cols == 28, "%s: %d x %d x %d", sets[s][0],
              d.count, d.rows, d.cols);
        int per_class[10] = {0};
        for (int i = 0; i < d.count; i++)
            per_class[d.labels[i]]++;
        for (int c = 0; c < 10; c++) {
            int want = s == 0 ? train_counts[c] : test_counts[c];
            CHECK(per_class[c] == want, "%s: class %d has %d labels, expected %d", sets[s][1], c,
                  per_class[c], want);
        }
        hd_dataset_free(&d);
    }
}

int main(void) {
    char *dir = test_make_temp_dir("idx");
    CHECK(dir != NULL, "temp dir");
    if (!dir)
        return test_finish();
    snprintf(temp_dir, sizeof temp_dir, "%s", dir);

    static const uint8_t good_labels[3] = {3, 0, 9};
    size_t size;
    uint8_t *images = make_images(HD_IDX_IMAGES_MAGIC, 3, 2, 5, 30, &size);
    uint8_t *labels = make_labels(HD_IDX_LABELS_MAGIC, 3, good_labels, 3, &size);
    CHECK(images && labels, "fixture allocation");
    if (!images || !labels) {
        free(images);
        free(labels);
        return test_finish();
    }
    char good_images[4200], good_labels_path[4200], gz_images[4200], gz_labels[4200];
    snprintf(good_images, sizeof good_images, "%s", write_raw("good-images", images, 16 + 30));
    snprintf(good_labels_path, sizeof good_labels_path, "%s", write_raw("good-labels", labels, 8 + 3));
    snprintf(gz_images, sizeof gz_images, "%s", write_gz("good-images.gz", images, 16 + 30));
    snprintf(gz_labels, sizeof gz_labels, "%s", write_gz("good-labels.gz", labels, 8 + 3));
    check_good_set("raw set", good_images, good_labels_path);
    check_good_set("gzip set", gz_images, gz_labels);
    check_good_set("gzip images, raw labels", gz_images, good_labels_path);

    /* Length: short, long, empty, shorter than the header; raw and decompressed. */
    expect_failure("truncated", write_raw("short-images", images, 16 + 12), good_labels_path, "short-images",
                   "truncated", "header promises 46 bytes, file has 28");
    static const uint8_t four_labels[4] = {3, 0, 9, 1};
    uint8_t *long_labels = make_labels(HD_IDX_LABELS_MAGIC, 3, four_labels, 4, &size);
    expect_failure("trailing extra bytes", good_images, write_raw("long-labels", long_labels, size),
                   "long-labels", "trailing data", "header promises 11 bytes, file has 12");
    free(long_labels);
    expect_failure("truncated labels", good_images, write_raw("short-labels", labels, 8 + 2), "short-labels",
                   "truncated", "header promises 11 bytes, file has 10");
    uint8_t *long_images = make_images(HD_IDX_IMAGES_MAGIC, 3, 2, 5, 31, &size);
    expect_failure("trailing byte", write_raw("long-images", long_images, 16 + 31), good_labels_path,
                   "long-images", "trailing data", "header promises 46 bytes, file has 47");
    expect_failure("gzip trailing byte", write_gz("long-images.gz", long_images, 16 + 31), good_labels_path,
                   "long-images.gz", "trailing data", "decompressed file has 47");
    expect_failure("gzip truncated content", write_gz("short-images.gz", images, 16 + 29), good_labels_path,
                   "short-images.gz", "truncated", "decompressed file has 45");
    expect_failure("empty file", write_raw("empty-images", "", 0), good_labels_path, "empty-images", "empty",
                   NULL);
    expect_failure("empty gzip", write_gz("empty-images.gz", "", 0), good_labels_path, "empty-images.gz",
                   "empty", NULL);
    expect_failure("shorter than header", write_raw("stub-images", images, 10), good_labels_path,
                   "stub-images", "truncated", "shorter than the 16-byte IDX header");
    expect_failure("missing file", fixture_path("no-such-file"), good_labels_path, "no-such-file",
                   "cannot open", NULL);

    /* Header contents. */
    uint8_t *bad = make_images(0x00000801, 3, 2, 5, 30, &size);
    expect_failure("wrong magic (labels magic)", write_raw("magic-images", bad, size), good_labels_path,
                   "magic-images", "bad magic 0x00000801", "expected 0x00000803");
    free(bad);
    bad = make_images(0x00000d03, 3, 2, 5, 30, &size); /* float data, not unsigned bytes */
    expect_failure("wrong data type", write_raw("float-images", bad, size), good_labels_path, "float-images",
                   "bad magic 0x00000d03", NULL);
    free(bad);
    expect_failure("labels with images magic", good_images, good_images, "good-images",
                   "bad magic 0x00000803", "expected 0x00000801");
    const struct {
        uint32_t count, rows, cols;
        const char *word;
    } absurd[] = {
        {0, 2, 5, "count 0"},
        {20000000, 28, 28, "count 20000000"},
        {3, 0, 5, "rows 0"},
        {3, 2, 5000, "cols 5000"},
        {10000000, 4096, 4096, "over the"},
        {0xffffffffu, 0xffffffffu, 0xffffffffu, "count 4294967295"},
    };
    for (size_t i = 0; i < sizeof absurd / sizeof absurd[0]; i++) {
        bad = make_images(HD_IDX_IMAGES_MAGIC, absurd[i].count, absurd[i].rows, absurd[i].cols, 30, &size);
        expect_failure("absurd dimensions", write_raw("huge-images", bad, size), good_labels_path,
                       "huge-images", "absurd dimensions", absurd[i].word);
        free(bad);
    }
    /* A tiny .gz whose header promises 1.5 GB: refused as truncated after reading what is there. */
    bad = make_images(HD_IDX_IMAGES_MAGIC, 2000000, 28, 28, 30, &size);
    expect_failure("gzip promising 1.5 GB", write_gz("promise-images.gz", bad, size), good_labels_path,
                   "promise-images.gz", "truncated",
                   "header promises 1568000016 bytes, decompressed file has 46");
    free(bad);

    /* Labels. */
    /* Any byte is a label (a 26-class set has labels up to 25); the class count is checked against the
     * model's (hd_dataset_check_labels). */
    static const uint8_t wide[3] = {1, 25, 255};
    bad = make_labels(HD_IDX_LABELS_MAGIC, 3, wide, 3, &size);
    {
        hd_dataset d = {0};
        int rc = hd_dataset_load_idx(good_images, write_raw("wide-labels", bad, size), &d);
        CHECK(rc == 0 && d.labels[1] == 25 && d.labels[2] == 255, "labels up to 255: rc %d (%s)", rc,
              hd_last_error());
        CHECK(hd_dataset_max_label(&d) == 255, "max label %d", hd_dataset_max_label(&d));
        CHECK(hd_dataset_check_labels(&d, 256) == 0, "256 classes hold label 255");
        CHECK(hd_dataset_check_labels(&d, 26) != 0 && strstr(hd_last_error(), "good-images") &&
                  strstr(hd_last_error(), "image 2 is 255") && strstr(hd_last_error(), "26 classes"),
              "label 255 of 26 classes: %s", hd_last_error());
        hd_dataset_free(&d);
    }
    free(bad);
    static const uint8_t two_labels[2] = {1, 2};
    bad = make_labels(HD_IDX_LABELS_MAGIC, 2, two_labels, 2, &size);
    expect_failure("count mismatch", good_images, write_raw("two-labels", bad, size), "good-images",
                   "count mismatch", "3 images but 2 labels");
    free(bad);

    /* Damaged gzip: a flipped CRC in the trailer, a flipped byte in the middle, a cut-off stream. */
    uint8_t *gz = NULL;
    size_t gz_size = 0;
    CHECK(hd_read_file(gz_images, &gz, &gz_size) == 0 && gz_size > 30, "read back %s", gz_images);
    if (gz && gz_size > 30) {
        gz[gz_size - 8] ^= 0x55; /* CRC-32 is the 8 bytes before the end, with the length */
        expect_failure("bad gzip (CRC)", write_raw("crc-images.gz", gz, gz_size), good_labels_path,
                       "crc-images.gz", "gzip", NULL);
        gz[gz_size - 8] ^= 0x55;
        gz[gz_size / 2] ^= 0xff;
        expect_failure("bad gzip (corrupt stream)", write_raw("corrupt-images.gz", gz, gz_size),
                       good_labels_path, "corrupt-images.gz", "gzip", NULL);
        gz[gz_size / 2] ^= 0xff;
        expect_failure("truncated .gz", write_raw("cut-images.gz", gz, gz_size / 2), good_labels_path,
                       "cut-images.gz", "gzip", NULL);
        expect_failure("gzip header only", write_raw("head-images.gz", gz, 12), good_labels_path,
                       "head-images.gz", "gzip", NULL);
    }
    free(gz);

    /* A gzip bomb: 3 images promised, 24 MiB of zeros delivered; refused without holding it all. */
    size_t bomb_size = 24u << 20;
    uint8_t *bomb = calloc(1, bomb_size);
    CHECK(bomb != NULL, "bomb allocation");
    if (bomb) {
        memcpy(bomb, images, 16);
        expect_failure("gzip bomb", write_gz("bomb-images.gz", bomb, bomb_size), good_labels_path,
                       "bomb-images.gz", "trailing data", "more than");
        free(bomb);
    }

    const char *mnist = test_mnist_dir();
    if (mnist)
        check_real_mnist(mnist);
    else
        printf("real MNIST not present (HD_TEST_DATA_DIR): skipping its checks\n");

    free(long_images);
    free(images);
    free(labels);
    test_remove_tree(dir);
    free(dir);
    return test_finish();
}
