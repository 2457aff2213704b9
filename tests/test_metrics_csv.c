/* test_metrics_csv.c: metrics.csv round trip (every field, NaN included, exact at float
 * precision, written in the fewest digits: no float noise), CRLF accepted,
 * and rejection of a bad header, wrong column count, a non-number, a bad or repeated
 * epoch (each naming file:line), and a missing file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hd/common.h"
#include "hd/metrics.h"

/* Same value, NaN equal to NaN. */
static int same(double a, double b) {
    return (isnan(a) && isnan(b)) || a == b;
}

static void row_values(const hd_epoch_metrics *r, double v[7]) {
    v[0] = r->train_loss, v[1] = r->train_acc, v[2] = r->val_loss, v[3] = r->val_acc;
    v[4] = r->lr, v[5] = r->seconds, v[6] = r->images_per_sec;
}

static void test_round_trip(const char *dir, uint64_t *rng) {
    enum { N = 9 };
    hd_epoch_metrics rows[N];
    float r[8];
    for (int i = 0; i < N; i++) {
        test_fill_uniform(r, 8, 0.0f, 1.0f, rng);
        rows[i].epoch = 2 * i + 1;
        rows[i].train_loss = r[0] * 2.3 + 1e-3 / 3.0;
        rows[i].train_acc = 0.9 + r[1] * 0.1;
        rows[i].val_loss = r[2] / 7.0;
        rows[i].val_acc = 0.95 + r[3] / 30.0;
        rows[i].lr = 1e-3 * pow(0.5, i) / 3.0;
        rows[i].seconds = 3.0 + r[5] * 100.0;
        rows[i].images_per_sec = 1e4 + r[6] * 1e5 / 7.0;
    }
    rows[4].val_loss = NAN; /* an epoch without validation must survive the trip */
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    CHECK(hd_metrics_csv_write(path, rows, N) == 0, "write: %s", hd_last_error());

    uint8_t *raw;
    size_t size;
    CHECK(hd_read_file(path, &raw, &size) == 0, "read raw: %s", hd_last_error());
    CHECK(strncmp((char *)raw, HD_METRICS_CSV_HEADER "\n", strlen(HD_METRICS_CSV_HEADER) + 1) == 0,
          "file starts with the header line");
    int lines = 0;
    for (size_t i = 0; i < size; i++)
        lines += raw[i] == '\n';
    CHECK(lines == N + 1, "%d lines written, expected %d", lines, N + 1);
    free(raw);

    hd_epoch_metrics *back = NULL;
    int n = -1;
    CHECK(hd_metrics_csv_read(path, &back, &n) == 0, "read: %s", hd_last_error());
    CHECK(n == N, "read %d rows, wrote %d", n, N);
    /* Each value comes back as the float nearest what was written, exactly. */
    int mismatches = 0;
    for (int i = 0; i < n && i < N; i++) {
        CHECK(back[i].epoch == rows[i].epoch, "row %d epoch %d != %d", i, back[i].epoch, rows[i].epoch);
        double got[7], want[7];
        row_values(&back[i], got);
        row_values(&rows[i], want);
        for (int c = 0; c < 7; c++)
            if (!same(got[c], (double)(float)want[c]) && mismatches++ < 5)
                CHECK(0, "row %d column %d: wrote %.17g, read %.17g, expected %.9g", i, c, want[c], got[c],
                      (double)(float)want[c]);
    }
    CHECK(mismatches == 0, "%d values did not read back as their float", mismatches);

    /* Writing what was read gives the same bytes again (a resumed run rewrites the file). */
    CHECK(hd_read_file(path, &raw, &size) == 0, "read raw: %s", hd_last_error());
    CHECK(hd_metrics_csv_write(path, back, n) == 0, "rewrite: %s", hd_last_error());
    uint8_t *again;
    size_t again_size;
    CHECK(hd_read_file(path, &again, &again_size) == 0, "read raw again: %s", hd_last_error());
    CHECK(again_size == size && memcmp(raw, again, size) == 0, "rewritten file differs (%zu vs %zu bytes)",
          again_size, size);
    free(raw);
    free(again);
    free(back);

    /* An empty history is a header alone and reads back as zero rows. */
    CHECK(hd_metrics_csv_write(path, rows, 0) == 0, "write empty: %s", hd_last_error());
    back = NULL;
    CHECK(hd_metrics_csv_read(path, &back, &n) == 0 && n == 0, "empty history reads as 0 rows (got %d)", n);
    free(back);
}

/* The values training produces (float learning rate, float losses, double timings) are
 * written without float noise: the exact lines are pinned. */
static void test_shortest(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/short.csv", dir);
    hd_epoch_metrics rows[2] = {
        {1, (double)0.3f, (double)0.9125f, (double)(1.0f / 3.0f), 0.95, (double)0.001f, 12.5, 7431.42497},
        {2, 2.302585093, 1.0, NAN, INFINITY, (double)1e-5f, 0.000123456789, 1e30}};
    CHECK(hd_metrics_csv_write(path, rows, 2) == 0, "write: %s", hd_last_error());
    uint8_t *raw;
    size_t size;
    CHECK(hd_read_file(path, &raw, &size) == 0, "read raw: %s", hd_last_error());
    const char *want = HD_METRICS_CSV_HEADER "\n"
                                             "1,0.3,0.9125,0.33333334,0.95,0.001,12.5,7431.425\n"
                                             "2,2.3025851,1,nan,inf,1e-05,0.00012345679,1e+30\n";
    CHECK(size == strlen(want) && memcmp(raw, want, size) == 0, "metrics.csv holds\n%.*s\nexpected\n%s",
          (int)size, (const char *)raw, want);
    free(raw);

    hd_epoch_metrics too_big = {1, 1e39, 0.9, 0.1, 0.9, 1e-3, 1, 1};
    CHECK(hd_metrics_csv_write(path, &too_big, 1) == -1, "a loss of 1e39 (beyond float) is refused");
    CHECK(strstr(hd_last_error(), "beyond float range") != NULL, "message \"%s\" says why", hd_last_error());
}

static void write_text(const char *path, const char *text) {
    CHECK(hd_write_file_atomic(path, text, strlen(text)) == 0, "write %s: %s", path, hd_last_error());
}

/* The file must be rejected with a message holding "path:line" and the phrase. */
static void expect_rejected(const char *dir, const char *text, int line, const char *phrase) {
    char path[4200], where[4300];
    snprintf(path, sizeof path, "%s/bad.csv", dir);
    write_text(path, text);
    hd_epoch_metrics sentinel;
    hd_epoch_metrics *rows = &sentinel; /* must come back NULL */
    int n = -1;
    int rc = hd_metrics_csv_read(path, &rows, &n);
    snprintf(where, sizeof where, "%s:%d:", path, line);
    CHECK(rc == -1, "malformed file accepted (expected an error at line %d)", line);
    CHECK(rows == NULL && n == 0, "outputs cleared on error");
    CHECK(strstr(hd_last_error(), where) != NULL, "message \"%s\" names %s", hd_last_error(), where);
    CHECK(strstr(hd_last_error(), phrase) != NULL, "message \"%s\" says \"%s\"", hd_last_error(), phrase);
    if (rc == 0)
        free(rows);
}

static void test_malformed(const char *dir) {
    const char *h = HD_METRICS_CSV_HEADER "\n";
    const char *good1 = "1,0.3,0.91,0.2,0.95,0.001,12.5,5000\n";
    const char *good2 = "2,0.1,0.97,0.08,0.98,0.001,12.1,5100\n";
    char text[1024];
    expect_rejected(dir, "epoch,loss\n1,0.3\n", 1, "header");
    expect_rejected(dir, "", 1, "header");
    snprintf(text, sizeof text, "%s%s%s3,0.1,abc,0.08,0.98,0.001,12.1,5100\n", h, good1, good2);
    expect_rejected(dir, text, 4, "train_acc");
    snprintf(text, sizeof text, "%s%s2,0.1,0.97,0.08,0.98,0.001,12.1\n", h, good1);
    expect_rejected(dir, text, 3, "columns");
    snprintf(text, sizeof text, "%s%s%s2,0.1,0.97,0.08,0.98,0.001,12.1,5100,7\n", h, good1, good2);
    expect_rejected(dir, text, 4, "columns");
    snprintf(text, sizeof text, "%s%s%s", h, good2, good1);
    expect_rejected(dir, text, 3, "does not follow");
    snprintf(text, sizeof text, "%s1.5,0.1,0.97,0.08,0.98,0.001,12.1,5100\n", h);
    expect_rejected(dir, text, 2, "epoch");
    snprintf(text, sizeof text, "%s%s2,0.1,0.97,,0.98,0.001,12.1,5100\n", h, good1);
    expect_rejected(dir, text, 3, "val_loss");
    snprintf(text, sizeof text, "%s%s2,0.1,0.97,0.08 x,0.98,0.001,12.1,5100\n", h, good1);
    expect_rejected(dir, text, 3, "val_loss");
    snprintf(text, sizeof text, "%s%s2,0.1,0.97,0.08,0.98,0.001,12.1,1e39\n", h, good1);
    expect_rejected(dir, text, 3, "images_per_sec"); /* beyond float range */

    /* Windows line endings and a missing final newline are fine. */
    char path[4200];
    snprintf(path, sizeof path, "%s/crlf.csv", dir);
    write_text(path, HD_METRICS_CSV_HEADER "\r\n1,0.3,0.91,0.2,0.95,0.001,12.5,5000\r\n"
                                           "2,0.1,0.97,0.08,0.98,0.0005,12.1,5100");
    hd_epoch_metrics *rows = NULL;
    int n = 0;
    CHECK(hd_metrics_csv_read(path, &rows, &n) == 0, "CRLF file: %s", hd_last_error());
    CHECK(n == 2 && rows && rows[1].epoch == 2 && rows[1].lr == (double)0.0005f &&
              rows[1].images_per_sec == 5100,
          "CRLF file read back (%d rows)", n);
    free(rows);
}

static void test_missing(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/no-such-metrics.csv", dir);
    hd_epoch_metrics *rows = NULL;
    int n = 0;
    CHECK(hd_metrics_csv_read(path, &rows, &n) == -1, "missing file is an error");
    CHECK(strstr(hd_last_error(), path) != NULL, "message \"%s\" names the file", hd_last_error());
    snprintf(path, sizeof path, "%s/no-such-dir/metrics.csv", dir);
    hd_epoch_metrics one = {1, 0.1, 0.9, 0.1, 0.9, 1e-3, 1, 1};
    CHECK(hd_metrics_csv_write(path, &one, 1) == -1, "writing into a missing directory is an error");
    CHECK(strstr(hd_last_error(), "no-such-dir") != NULL, "message \"%s\" names the path", hd_last_error());
}

int main(void) {
    uint64_t rng = test_fresh_seed();
    char *dir = test_make_temp_dir("metrics");
    CHECK(dir != NULL, "temp dir");
    if (!dir)
        return test_finish();
    test_round_trip(dir, &rng);
    test_shortest(dir);
    test_malformed(dir);
    test_missing(dir);
    test_remove_tree(dir);
    free(dir);
    return test_finish();
}
