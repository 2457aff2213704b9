/* report_html.c: RUN_DIR/report.html (hd_report_write_html), one self-contained page
 * linking the four figures, and hd_report_generate, which draws the figures and writes
 * the page from plain arrays; hd_report_inputs_free. */
#include "hd/report.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hd/common.h"
#include "hd/plot.h"

#define REPORT_PATH_MAX 4096

/* A growing text buffer; after an allocation failure it stops growing and says so once. */
typedef struct {
    char *data;
    size_t len, cap;
    int failed;
} html_buf;

static void buf_reserve(html_buf *b, size_t extra) {
    if (b->failed || b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 16384;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *grown = realloc(b->data, cap);
    if (!grown) {
        b->failed = 1;
        return;
    }
    b->data = grown;
    b->cap = cap;
}

static void put(html_buf *b, const char *text) {
    size_t n = strlen(text);
    buf_reserve(b, n);
    if (b->failed)
        return;
    memcpy(b->data + b->len, text, n + 1);
    b->len += n;
}

static void putf(html_buf *b, const char *fmt, ...) HD_PRINTF(2, 3);
static void putf(html_buf *b, const char *fmt, ...) {
    char small[512];
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(small, sizeof small, fmt, args);
    va_end(args);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        put(b, small);
        return;
    }
    buf_reserve(b, (size_t)n);
    if (b->failed)
        return;
    va_start(args, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, args);
    va_end(args);
    b->len += (size_t)n;
}

/* Text with & < > " ' escaped, so any settings value or path is shown as written. */
static void put_escaped(html_buf *b, const char *text) {
    for (const char *p = text; *p; p++) {
        switch (*p) {
        case '&':
            put(b, "&amp;");
            break;
        case '<':
            put(b, "&lt;");
            break;
        case '>':
            put(b, "&gt;");
            break;
        case '"':
            put(b, "&quot;");
            break;
        case '\'':
            put(b, "&#39;");
            break;
        default: {
            char one[2] = {*p, '\0'};
            put(b, one);
        }
        }
    }
}

/* Accuracy in percent: fractions are scaled, values above 1 are taken as percent already. */
static double as_percent(double acc) {
    return acc > 1.0 ? acc : 100.0 * acc;
}

static void put_number(html_buf *b, const char *fmt, double v) {
    if (isfinite(v))
        putf(b, fmt, v);
    else
        put(b, "n/a");
}

/* Readable from phone width up: the page keeps a margin at every width, wide tables scroll
 * inside their own box, long values (the spec, paths) wrap. */
static const char *page_style =
    "*{box-sizing:border-box}"
    "body{font-family:'DejaVu Sans',Arial,sans-serif;margin:0 auto;padding:16px 20px 32px;max-width:1240px;"
    "color:#222;line-height:1.4}"
    "h1{margin:8px 0 4px;font-size:1.6em}h2{margin-top:36px;border-bottom:1px solid #ccc;padding-bottom:4px}"
    ".run{color:#555;font-family:monospace;overflow-wrap:anywhere}"
    ".facts{padding-left:20px}.facts li{margin:2px 0}"
    "img{max-width:100%;height:auto;border:1px solid #ddd}"
    ".scroll{overflow-x:auto;max-width:100%}"
    "table{border-collapse:collapse;margin-top:12px}td,th{border:1px solid #ccc;padding:3px "
    "10px;text-align:right}"
    "th{background:#f2f2f2}td.key,td.name{text-align:left;font-family:monospace}th.name{text-align:left}td."
    "value{text-align:left;"
    "font-family:monospace;white-space:pre-wrap;overflow-wrap:anywhere}tr.best td{background:#fff3c4;"
    "font-weight:bold}tr.total td{font-weight:bold}"
    ".missing{color:#a00}";

static void put_figure(html_buf *b, const char *run_dir, const char *file, const char *alt) {
    char path[REPORT_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", run_dir, file);
    if (access(path, R_OK) == 0) {
        put(b, "<p><a href=\"");
        put_escaped(b, file);
        put(b, "\"><img src=\"");
        put_escaped(b, file);
        put(b, "\" alt=\"");
        put_escaped(b, alt);
        put(b, "\"></a></p>\n");
    } else {
        put(b, "<p class=\"missing\">");
        put_escaped(b, file);
        put(b, " was not generated.</p>\n");
    }
}

static void put_metrics_table(html_buf *b, const hd_epoch_metrics *rows, int n, int best_epoch) {
    put(b, "<div class=\"scroll\"><table class=\"metrics\">\n<tr><th>epoch</th><th>train loss</th><th>train "
           "acc.</th><th>val. "
           "loss</th>"
           "<th>val. acc.</th><th>learning rate</th><th>seconds</th><th>images/s</th></tr>\n");
    for (int i = 0; i < n; i++) {
        const hd_epoch_metrics *r = &rows[i];
        putf(b, "<tr%s><td>%d%s</td><td>", r->epoch == best_epoch ? " class=\"best\"" : "", r->epoch,
             r->epoch == best_epoch ? " (kept)" : "");
        put_number(b, "%.4f", r->train_loss);
        put(b, "</td><td>");
        put_number(b, "%.2f%%", as_percent(r->train_acc));
        put(b, "</td><td>");
        put_number(b, "%.4f", r->val_loss);
        put(b, "</td><td>");
        put_number(b, "%.2f%%", as_percent(r->val_acc));
        put(b, "</td><td>");
        put_number(b, "%.3g", r->lr);
        put(b, "</td><td>");
        put_number(b, "%.1f", r->seconds);
        put(b, "</td><td>");
        put_number(b, "%.0f", r->images_per_sec);
        put(b, "</td></tr>\n");
    }
    put(b, "</table></div>\n");
}

/* Class c as the tables show it: its number, and its name when there are names. */
static void put_class(html_buf *b, const char *names, int c) {
    char name[64];
    putf(b, "%d", c);
    if (names) {
        put(b, " ");
        put_escaped(b, hd_class_name(names, c, name, sizeof name));
    }
}

static void put_class_table(html_buf *b, const int *confusion, int classes, const char *names) {
    put(b, "<div class=\"scroll\"><table class=\"classes\">\n<tr><th>class</th><th>test "
           "images</th><th>correct</th><th>accuracy</th>"
           "<th>most often taken for</th></tr>\n");
    for (int t = 0; t < classes; t++) {
        long total = 0;
        int worst = -1;
        for (int p = 0; p < classes; p++) {
            total += confusion[t * classes + p];
            if (p != t && confusion[t * classes + p] > 0 &&
                (worst < 0 || confusion[t * classes + p] > confusion[t * classes + worst]))
                worst = p;
        }
        int correct = confusion[t * classes + t];
        put(b, "<tr><td>");
        put_class(b, names, t);
        putf(b, "</td><td>%ld</td><td>%d</td><td>", total, correct);
        if (total > 0)
            putf(b, "%.2f%%", 100.0 * correct / total);
        else
            put(b, "n/a");
        if (worst >= 0) {
            put(b, "</td><td>");
            put_class(b, names, worst);
            putf(b, " (%d times)</td></tr>\n", confusion[t * classes + worst]);
        } else
            put(b, "</td><td>-</td></tr>\n");
    }
    put(b, "</table></div>\n");
}

static void put_settings(html_buf *b, const char *settings_text) {
    if (!settings_text || !*settings_text) {
        put(b, "<p class=\"missing\">No settings recorded.</p>\n");
        return;
    }
    put(b, "<div class=\"scroll\"><table class=\"settings\">\n");
    const char *line = settings_text;
    while (*line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char text[2048];
        snprintf(text, sizeof text, "%.*s", (int)(len < sizeof text ? len : sizeof text - 1), line);
        size_t tlen = strlen(text);
        if (tlen > 0 && text[tlen - 1] == '\r')
            text[tlen - 1] = '\0';
        char *colon = strchr(text, ':');
        if (text[0] == '\0') {
            /* blank line: nothing to show */
        } else if (colon) {
            *colon = '\0';
            const char *value = colon + 1;
            while (*value == ' ' || *value == '\t')
                value++;
            /* A limit of 0 means no limit: every image was used. */
            int all = (strcmp(text, "train_limit") == 0 || strcmp(text, "test_limit") == 0) &&
                      strcmp(value, "0") == 0;
            put(b, "<tr><td class=\"key\">");
            put_escaped(b, text);
            put(b, "</td><td class=\"value\">");
            put_escaped(b, all ? "all" : value);
            put(b, "</td></tr>\n");
        } else {
            put(b, "<tr><td class=\"value\" colspan=\"2\">");
            put_escaped(b, text);
            put(b, "</td></tr>\n");
        }
        line = end ? end + 1 : line + len;
    }
    put(b, "</table></div>\n");
}

/* "45.2 s", "2 min 13 s", "1 h 05 min". */
static void format_duration(double seconds, char *buf, size_t len) {
    if (seconds < 60)
        snprintf(buf, len, "%.1f s", seconds);
    else if (seconds < 3600)
        snprintf(buf, len, "%d min %02d s", (int)(seconds / 60), (int)fmod(seconds, 60));
    else
        snprintf(buf, len, "%d h %02d min", (int)(seconds / 3600), (int)fmod(seconds / 60, 60));
}

static void put_facts(html_buf *b, const hd_report_inputs *in) {
    double test_accuracy = in->test_accuracy;
    if (test_accuracy < 0 && in->confusion) {
        long total = 0, correct = 0;
        for (int t = 0; t < in->classes; t++)
            for (int p = 0; p < in->classes; p++) {
                total += in->confusion[t * in->classes + p];
                correct += t == p ? in->confusion[t * in->classes + p] : 0;
            }
        test_accuracy = total > 0 ? (double)correct / total : -1;
    }
    put(b, "<ul class=\"facts\">\n<li>");
    if (test_accuracy >= 0) {
        putf(b, "test accuracy <b>%.2f%%</b>", as_percent(test_accuracy));
        if (in->test_accuracy >= 0 && isfinite(in->test_loss))
            putf(b, ", test loss <b>%.4f</b>", in->test_loss);
    } else {
        put(b, "test set: not evaluated");
    }
    put(b, "</li>\n");
    for (int i = 0; i < in->n_rows; i++)
        if (in->rows[i].epoch == in->best_epoch) {
            putf(b, "<li>kept epoch <b>%d</b> of %d (lowest validation loss), its validation accuracy <b>",
                 in->best_epoch, in->n_rows);
            put_number(b, "%.2f%%", as_percent(in->rows[i].val_acc));
            put(b, "</b></li>\n");
        }
    put(b, "<li>training ended by <b>");
    put_escaped(b, in->ended_by ? in->ended_by : "(not recorded)");
    put(b, "</b></li>\n");
    double seconds = 0;
    for (int i = 0; i < in->n_rows; i++)
        seconds += isfinite(in->rows[i].seconds) ? in->rows[i].seconds : 0;
    char duration[64];
    format_duration(seconds, duration, sizeof duration);
    put(b, "<li>finished <b>");
    put_escaped(b, in->finished ? in->finished : "(not recorded)");
    putf(b, "</b>; training took <b>%s</b> over %d epoch%s</li>\n</ul>\n", duration, in->n_rows,
         in->n_rows == 1 ? "" : "s");
}

static void put_layer_table(html_buf *b, const hd_model_summary *s) {
    if (!s) {
        put(b, "<p class=\"missing\">The model's layers are not known.</p>\n");
        return;
    }
    put(b, "<p class=\"run\">");
    put_escaped(b, s->spec);
    put(b,
        "</p>\n<div class=\"scroll\"><table class=\"layers\">\n<tr><th class=\"name\">" HD_SUMMARY_LAYER_TITLE
        "</th><th class=\"name\">" HD_SUMMARY_SHAPE_TITLE "</th><th>" HD_SUMMARY_PARAMS_TITLE "</th></tr>\n");
    for (int i = 0; i < s->n_rows; i++) {
        put(b, "<tr><td class=\"name\">");
        put_escaped(b, s->rows[i].layer);
        put(b, "</td><td class=\"name\">");
        put_escaped(b, s->rows[i].shape);
        put(b, "</td><td>");
        put_escaped(b, s->rows[i].params);
        put(b, "</td></tr>\n");
    }
    put(b, "<tr class=\"total\"><td class=\"name\" colspan=\"2\">Total params</td><td>");
    put_escaped(b, s->total);
    put(b, "</td></tr>\n</table></div>\n");
}

int hd_report_write_html(const char *run_dir, const hd_report_inputs *in) {
    char path[REPORT_PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", run_dir, HD_REPORT_HTML) >= sizeof path)
        return hd_fail("%s: run directory path too long", run_dir);
    if (in->n_rows < 0 || (in->n_rows > 0 && !in->rows) ||
        (in->confusion && (in->classes < 1 || in->classes > 1000)))
        return hd_fail("%s: bad report data (%d epochs, %d classes)", path, in->n_rows, in->classes);
    html_buf b = {0};
    put(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            "<title>hd-gpu report: ");
    put_escaped(&b, run_dir);
    putf(&b,
         "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>hd-gpu training report</h1>\n<p class=\"run\">",
         page_style);
    put_escaped(&b, run_dir);
    put(&b, "</p>\n");
    put_facts(&b, in);

    put(&b, "<h2>Training history</h2>\n");
    put_figure(&b, run_dir, HD_REPORT_HISTORY_PNG, "loss, accuracy and learning rate per epoch");
    if (in->n_rows > 0)
        put_metrics_table(&b, in->rows, in->n_rows, in->best_epoch);
    put(&b, "<h2>Test set: confusion matrix</h2>\n");
    put_figure(&b, run_dir, HD_REPORT_CONFUSION_PNG, "confusion matrix of the test set");
    if (in->confusion)
        put_class_table(&b, in->confusion, in->classes, in->class_names);
    put(&b, "<h2>Misclassified test digits</h2>\n");
    put_figure(&b, run_dir, HD_REPORT_DIGITS_PNG, "misclassified test digits with true and predicted labels");
    put(&b, "<h2>First-layer convolution filters</h2>\n");
    put_figure(&b, run_dir, HD_REPORT_FILTERS_PNG, "first-layer convolution filters");
    put(&b, "<h2>Model</h2>\n");
    put_layer_table(&b, in->summary);
    put(&b, "<h2>Settings</h2>\n");
    put_settings(&b, in->settings_text);
    put(&b, "<p class=\"run\">hd-gpu " HD_VERSION "</p>\n</body>\n</html>\n");

    if (b.failed) {
        free(b.data);
        return hd_fail("%s: out of memory building the page", path);
    }
    int rc = hd_write_file_atomic(path, b.data, b.len);
    free(b.data);
    return rc;
}

/* Keeps the first failure's message while later parts run (they may overwrite it). */
static void note_failure(char *first, size_t len) {
    if (!first[0])
        snprintf(first, len, "%s", hd_last_error());
}

int hd_report_generate(const char *run_dir, const hd_report_inputs *in) {
    char path[REPORT_PATH_MAX], first_error[1024] = "";
    if (hd_mkdir_p(run_dir) != 0)
        return -1;
    if (in->rows && in->n_rows > 0) {
        snprintf(path, sizeof path, "%s/%s", run_dir, HD_REPORT_HISTORY_PNG);
        if (hd_plot_history(path, in->rows, in->n_rows, in->best_epoch, in->ended_by) != 0)
            note_failure(first_error, sizeof first_error);
    }
    if (in->confusion && in->classes > 0) {
        snprintf(path, sizeof path, "%s/%s", run_dir, HD_REPORT_CONFUSION_PNG);
        if (hd_plot_confusion(path, in->confusion, in->classes, NULL) != 0)
            note_failure(first_error, sizeof first_error);
    }
    if (in->confusion && in->digit_rows > 0 && in->digit_cols > 0) {
        /* With the test set evaluated, no misclassified digit is a result worth a figure. */
        snprintf(path, sizeof path, "%s/%s", run_dir, HD_REPORT_DIGITS_PNG);
        if (hd_plot_misclassified(path, in->digits, in->digit_rows, in->digit_cols, in->digit_true,
                                  in->digit_predicted, in->digit_confidence, in->n_digits) != 0)
            note_failure(first_error, sizeof first_error);
    }
    if (in->filters && in->filter_count > 0) {
        snprintf(path, sizeof path, "%s/%s", run_dir, HD_REPORT_FILTERS_PNG);
        if (hd_plot_filters(path, in->filters, in->filter_count, in->filter_in_c, in->filter_k) != 0)
            note_failure(first_error, sizeof first_error);
    }
    if (hd_report_write_html(run_dir, in) != 0)
        note_failure(first_error, sizeof first_error);
    if (first_error[0])
        return hd_fail("%s", first_error);
    return 0;
}

void hd_report_inputs_free(hd_report_inputs *in) {
    free(in->rows);
    free(in->settings_text);
    free(in->confusion);
    free(in->digits);
    free(in->digit_true);
    free(in->digit_predicted);
    free(in->digit_confidence);
    free(in->filters);
    free(in->ended_by);
    free(in->finished);
    free(in->summary);
    free(in->class_names);
    memset(in, 0, sizeof *in);
}
