/* metrics_csv.c: RUN_DIR/metrics.csv, one line per epoch under HD_METRICS_CSV_HEADER:
 * hd_metrics_csv_write (whole file, atomically) and hd_metrics_csv_read (strict: header,
 * column count and every number checked, errors name file:line). Numbers are kept at float
 * precision, each written in the fewest digits that read back to the same float. */
#include "hd/metrics.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hd/common.h"

#define METRICS_COLUMNS  8
#define METRICS_LINE_MAX 512 /* a written line is under 200 characters */

/* Writes v rounded to float in the fewest significant digits (6 to 9) that strtof reads back
 * to the same float: 0.001f is "0.001", not "0.00100000005". NaN and infinities as "nan", "inf". */
static int format_float(char *buf, size_t len, double v) {
    if (!isfinite(v))
        return snprintf(buf, len, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
    if (fabs(v) > FLT_MAX)
        return -1;
    float f = (float)v;
    for (int digits = 6; digits < 9; digits++) {
        int n = snprintf(buf, len, "%.*g", digits, (double)f);
        if (n > 0 && (size_t)n < len && strtof(buf, NULL) == f)
            return n;
    }
    return snprintf(buf, len, "%.9g", (double)f); /* 9 digits always round-trip a float */
}

int hd_metrics_csv_write(const char *path, const hd_epoch_metrics *rows, int n) {
    if (n < 0 || (n > 0 && !rows))
        return hd_fail("%s: bad metrics rows (n = %d)", path, n);
    size_t capacity = sizeof HD_METRICS_CSV_HEADER + 1 + (size_t)n * METRICS_LINE_MAX;
    char *text = hd_malloc(capacity);
    if (!text)
        return -1;
    size_t used = (size_t)snprintf(text, capacity, "%s\n", HD_METRICS_CSV_HEADER);
    for (int i = 0; i < n; i++) {
        const hd_epoch_metrics *r = &rows[i];
        const double values[METRICS_COLUMNS - 1] = {r->train_loss, r->train_acc, r->val_loss,      r->val_acc,
                                                    r->lr,         r->seconds,   r->images_per_sec};
        char line[METRICS_LINE_MAX];
        size_t len = (size_t)snprintf(line, sizeof line, "%d", r->epoch);
        for (int c = 0; c < METRICS_COLUMNS - 1; c++) {
            char number[32];
            if (format_float(number, sizeof number, values[c]) < 0) {
                free(text);
                return hd_fail("%s: epoch %d: %g is beyond float range", path, r->epoch, values[c]);
            }
            len += (size_t)snprintf(line + len, sizeof line - len, ",%s", number);
        }
        /* 7 numbers of at most 15 characters and an int: far below both limits. */
        memcpy(text + used, line, len);
        used += len;
        text[used++] = '\n';
    }
    int rc = hd_write_file_atomic(path, text, used);
    free(text);
    return rc;
}

/* Parses one field as a float (the whole field, nothing else), widened to double, so that
 * what hd_metrics_csv_write wrote reads back to the same value; NaN and infinities allowed,
 * "" and finite values beyond float range not. */
static int parse_number(const char *field, double *value) {
    char *end;
    errno = 0;
    float f = strtof(field, &end);
    *value = f;
    /* ERANGE with a finite result is underflow to a tiny float, which is what was written. */
    return end != field && *end == '\0' && !(errno == ERANGE && isinf(f)) ? 0 : -1;
}

/* Splits line (modified in place) at commas into at most max fields; returns the count. */
static int split_fields(char *line, char **fields, int max) {
    int count = 0;
    char *p = line;
    for (;;) {
        if (count < max)
            fields[count] = p;
        count++;
        char *comma = strchr(p, ',');
        if (!comma)
            break;
        *comma = '\0';
        p = comma + 1;
    }
    return count;
}

static int parse_row(const char *path, int line_no, char *line, hd_epoch_metrics *row) {
    static const char *names[METRICS_COLUMNS] = {"epoch",   "train_loss", "train_acc", "val_loss",
                                                 "val_acc", "lr",         "seconds",   "images_per_sec"};
    char *fields[METRICS_COLUMNS];
    int count = split_fields(line, fields, METRICS_COLUMNS);
    if (count != METRICS_COLUMNS)
        return hd_fail("%s:%d: expected %d columns, found %d", path, line_no, METRICS_COLUMNS, count);
    double values[METRICS_COLUMNS];
    for (int c = 0; c < METRICS_COLUMNS; c++)
        if (parse_number(fields[c], &values[c]) != 0)
            return hd_fail("%s:%d: column %s: not a number: \"%s\"", path, line_no, names[c], fields[c]);
    if (!(values[0] >= 1 && values[0] <= 1e9 && values[0] == floor(values[0])))
        return hd_fail("%s:%d: column epoch: not a positive whole number: \"%s\"", path, line_no, fields[0]);
    row->epoch = (int)values[0];
    row->train_loss = values[1];
    row->train_acc = values[2];
    row->val_loss = values[3];
    row->val_acc = values[4];
    row->lr = values[5];
    row->seconds = values[6];
    row->images_per_sec = values[7];
    return 0;
}

/* Next line of text starting at *pos (modified: '\n' and a '\r' before it become '\0');
 * NULL at the end. */
static char *next_line(char *text, size_t size, size_t *pos) {
    if (*pos >= size)
        return NULL;
    char *line = text + *pos;
    char *newline = memchr(line, '\n', size - *pos);
    size_t len = newline ? (size_t)(newline - line) : size - *pos;
    *pos += len + (newline ? 1 : 0);
    line[len] = '\0';
    if (len > 0 && line[len - 1] == '\r')
        line[len - 1] = '\0';
    return line;
}

int hd_metrics_csv_read(const char *path, hd_epoch_metrics **rows_out, int *n_out) {
    *rows_out = NULL;
    *n_out = 0;
    uint8_t *data;
    size_t size;
    if (hd_read_file(path, &data, &size) != 0)
        return -1;
    char *text = (char *)data;
    if (memchr(text, '\0', size)) {
        free(data);
        return hd_fail("%s: contains a NUL byte; not a metrics CSV", path);
    }
    size_t max_rows = 1;
    for (size_t i = 0; i < size; i++)
        max_rows += text[i] == '\n';
    hd_epoch_metrics *rows = hd_calloc(max_rows, sizeof *rows);
    if (!rows) {
        free(data);
        return -1;
    }
    size_t pos = 0;
    char *line = next_line(text, size, &pos);
    int line_no = 1, n = 0, rc = 0;
    if (!line || strcmp(line, HD_METRICS_CSV_HEADER) != 0) {
        rc = hd_fail("%s:1: expected the header \"%s\"", path, HD_METRICS_CSV_HEADER);
    } else {
        while ((line = next_line(text, size, &pos)) != NULL) {
            line_no++;
            if (line[0] == '\0')
                continue; /* blank lines (a trailing newline) carry nothing */
            if (parse_row(path, line_no, line, &rows[n]) != 0) {
                rc = -1;
                break;
            }
            if (n > 0 && rows[n].epoch <= rows[n - 1].epoch) {
                rc = hd_fail("%s:%d: epoch %d does not follow epoch %d", path, line_no, rows[n].epoch,
                             rows[n - 1].epoch);
                break;
            }
            n++;
        }
    }
    free(data);
    if (rc != 0) {
        free(rows);
        return -1;
    }
    *rows_out = rows;
    *n_out = n;
    return 0;
}
