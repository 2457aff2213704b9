/* test_plot.c: the run report from synthetic data (12 epochs of history, a random
 * confusion matrix, random digits and filters): each PNG exists, decodes, has the
 * documented size, is not blank (many colours, the colours its content implies) and has
 * dark text where its labels go, and no title line above its first line (report.html heads
 * each figure); the best-epoch marker and what ended the run change the history figure, and
 * the learning-rate staircase stays within the epochs run; report.html links all four
 * figures, escapes text, fits a phone (viewport, tables that scroll in their own box), says
 * each title once, and shows the date, duration, test loss, what ended training, the layer
 * table and "all" for a limit of 0; bad input is refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hd/backend.h"
#include "hd/common.h"
#include "hd/model.h"
#include "hd/model_summary.h"
#include "hd/plot.h"
#include "hd/report.h"

#ifdef HD_HAVE_CAIRO

#include <cairo.h>

typedef struct {
    int width, height;
    uint32_t *px; /* 0x00RRGGBB */
} image;

static int load_png(const char *path, image *img) {
    img->px = NULL;
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        CHECK(0, "%s: does not decode: %s", path, cairo_status_to_string(cairo_surface_status(s)));
        cairo_surface_destroy(s);
        return -1;
    }
    img->width = cairo_image_surface_get_width(s);
    img->height = cairo_image_surface_get_height(s);
    if (img->width <= 0 || img->height <= 0) {
        CHECK(0, "%s: decodes as %d x %d pixels", path, img->width, img->height);
        cairo_surface_destroy(s);
        return -1;
    }
    cairo_format_t format = cairo_image_surface_get_format(s);
    CHECK(format == CAIRO_FORMAT_RGB24 || format == CAIRO_FORMAT_ARGB32, "%s: decodes as colour (%d)", path,
          (int)format);
    int stride = cairo_image_surface_get_stride(s);
    const unsigned char *data = cairo_image_surface_get_data(s);
    img->px = malloc((size_t)img->width * img->height * sizeof *img->px);
    if (!img->px) {
        cairo_surface_destroy(s);
        return -1;
    }
    for (int y = 0; y < img->height; y++)
        for (int x = 0; x < img->width; x++)
            img->px[y * img->width + x] =
                ((const uint32_t *)(const void *)(data + (size_t)y * stride))[x] & 0xFFFFFF;
    cairo_surface_destroy(s);
    return 0;
}

static int channel(uint32_t p, int shift) {
    return (int)((p >> shift) & 0xFF);
}

/* Pixels in [x0, x1) x [y0, y1) matching a test. */
static int count_where(const image *img, int x0, int y0, int x1, int y1, int (*test)(uint32_t)) {
    int count = 0;
    for (int y = y0 < 0 ? 0 : y0; y < y1 && y < img->height; y++)
        for (int x = x0 < 0 ? 0 : x0; x < x1 && x < img->width; x++)
            count += test(img->px[y * img->width + x]);
    return count;
}

static int is_text_dark(uint32_t p) { /* the labels are drawn in near-black */
    return channel(p, 16) < 90 && channel(p, 8) < 90 && channel(p, 0) < 90;
}
static int is_blue(uint32_t p) {
    return channel(p, 0) > channel(p, 16) + 60;
}
static int is_red(uint32_t p) {
    return channel(p, 16) > channel(p, 0) + 60;
}
static int is_white(uint32_t p) {
    return p == 0xFFFFFF;
}
static int is_green(uint32_t p) { /* the learning-rate line */
    return channel(p, 8) > channel(p, 16) + 60 && channel(p, 8) > channel(p, 0) + 60;
}
static int is_not_white(uint32_t p) {
    return p != 0xFFFFFF;
}

static int compare_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int distinct_colours(const image *img) {
    size_t n = (size_t)img->width * img->height;
    uint32_t *copy = malloc(n * sizeof *copy);
    if (!copy)
        return 0;
    memcpy(copy, img->px, n * sizeof *copy);
    qsort(copy, n, sizeof *copy, compare_u32);
    int distinct = n > 0;
    for (size_t i = 1; i < n; i++)
        distinct += copy[i] != copy[i - 1];
    free(copy);
    return distinct;
}

/* Decodes path, checks its size and that it is not blank; the caller frees img->px. */
static int check_png(const char *path, int width, int height, image *img) {
    if (load_png(path, img) != 0)
        return -1;
    CHECK(img->width == width && img->height == height, "%s: %dx%d, expected %dx%d", path, img->width,
          img->height, width, height);
    int colours = distinct_colours(img);
    CHECK(colours >= 30, "%s: only %d distinct colours (blank?)", path, colours);
    int whites = count_where(img, 0, 0, img->width, img->height, is_white);
    CHECK(whites < img->width * img->height * 985 / 1000, "%s: %d of %d pixels white", path, whites,
          img->width * img->height);
    /* The first line sits at the top centre of every figure, with no title line above it
     * (report.html heads each figure, so a title here would say it twice). */
    int first_line = count_where(img, img->width / 4, 0, img->width * 3 / 4, 60, is_text_dark);
    CHECK(first_line > 200, "%s: first line has %d dark pixels", path, first_line);
    int above = count_where(img, 0, 0, img->width, 18, is_not_white);
    CHECK(above == 0, "%s: %d pixels drawn above the first line (a title?)", path, above);
    return 0;
}

static void synthetic_history(hd_epoch_metrics *rows, int n, uint64_t *rng) {
    float noise[4];
    for (int i = 0; i < n; i++) {
        test_fill_uniform(noise, 4, -1.0f, 1.0f, rng);
        double t = i;
        rows[i].epoch = i + 1;
        rows[i].train_loss = 0.03 + 0.3 * exp(-t / 2.0) + 0.003 * noise[0];
        rows[i].val_loss =
            0.03 + 0.08 * exp(-t / 2.5) + 0.001 * (t > 7 ? (t - 7) * (t - 7) : 0) + 0.002 * noise[1];
        rows[i].train_acc = 0.992 - 0.08 * exp(-t / 2.0) + 0.001 * noise[2];
        rows[i].val_acc = 0.993 - 0.02 * exp(-t / 2.5) - 0.0004 * (t > 7 ? t - 7 : 0) + 0.0005 * noise[3];
        rows[i].lr = 1e-3 * pow(0.5, i / 4);
        rows[i].seconds = 11.0 + noise[0];
        rows[i].images_per_sec = 5400 + 100 * noise[1];
    }
}

/* A digit-like ring with its label's worth of radius, white on black. */
static void synthetic_digit(uint8_t *img, int label, float jitter) {
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            double d = hypot(x - 14 - jitter, y - 14), r = 4 + label * 0.8;
            img[y * 28 + x] = fabs(d - r) < 1.5 ? 255 : fabs(d - r) < 2.5 ? 100 : 0;
        }
}

static void fill_inputs(hd_report_inputs *in, hd_model_summary *summary, hd_epoch_metrics *rows,
                        int *confusion, uint8_t *digits, int *truth, int *pred, float *conf, int n_digits,
                        float *filters, uint64_t *rng) {
    memset(in, 0, sizeof *in);
    synthetic_history(rows, 12, rng);
    in->rows = rows;
    in->n_rows = 12;
    for (int i = 0; i < 12; i++)
        rows[i].seconds = 11.25; /* 135 s in all */
    in->best_epoch = 8;
    in->settings_text = "spec: conv:32:3:relu,...\nepochs: 12\nnote: <b>&\"quoted\"</b>\nbare line\n"
                        "train_limit: 0\ntest_limit: 500\n";
    in->ended_by = HD_ENDED_EARLY_STOPPING;
    in->finished = "2026-12-06 19:36:26 UTC";
    in->test_loss = 0.04125;
    for (int t = 0; t < 10; t++)
        for (int p = 0; p < 10; p++)
            confusion[t * 10 + p] =
                t == p ? 950 + (int)(test_rand_u64(rng) % 50) : (int)(test_rand_u64(rng) % 9);
    in->confusion = confusion;
    in->classes = 10;
    in->test_accuracy = 0.9876;
    float u[1];
    for (int i = 0; i < n_digits; i++) {
        test_fill_uniform(u, 1, -2.0f, 2.0f, rng);
        truth[i] = (int)(test_rand_u64(rng) % 10);
        pred[i] = (truth[i] + 1 + (int)(test_rand_u64(rng) % 9)) % 10;
        conf[i] = 0.4f + 0.5f * (u[0] + 2.0f) / 4.0f;
        synthetic_digit(digits + (size_t)i * 784, truth[i], u[0]);
    }
    in->digits = digits;
    in->digit_rows = in->digit_cols = 28;
    in->digit_true = truth;
    in->digit_predicted = pred;
    in->digit_confidence = conf;
    in->n_digits = n_digits;
    test_fill_uniform(filters, 32 * 9, -0.4f, 0.4f, rng);
    in->filters = filters;
    in->filter_count = 32;
    in->filter_in_c = 1;
    in->filter_k = 3;
    /* The default model's layer table, as the trainer makes it. */
    hd_backend *be = hd_cpu_backend_create(&(hd_cpu_options){1});
    hd_model model;
    if (be && hd_model_create(&model, be, HD_DEFAULT_SPEC, 1, 28, 28, 1) == 0) {
        hd_model_summary_make(&model, summary);
        in->summary = summary;
        hd_model_destroy(&model);
    }
    CHECK(in->summary != NULL, "default model: %s", hd_last_error());
    hd_backend_destroy(be);
}

static void check_report_pngs(const char *dir, int n_digits) {
    char path[4200];
    image img;
    snprintf(path, sizeof path, "%s/history.png", dir);
    if (check_png(path, HD_PLOT_HISTORY_WIDTH, HD_PLOT_HISTORY_HEIGHT, &img) == 0) {
        /* Tick labels left of the loss panel and under it; train blue and validation orange lines. */
        int labels = count_where(&img, 0, 90, 95, 500, is_text_dark);
        int under = count_where(&img, 100, 495, 560, 560, is_text_dark);
        CHECK(labels > 150 && under > 150, "history: %d dark pixels at the y tick labels, %d under the axis",
              labels, under);
        CHECK(count_where(&img, 100, 90, 1160, 500, is_blue) > 300, "history: blue train line drawn");
        CHECK(count_where(&img, 100, 90, 1160, 500, is_red) > 300, "history: orange validation line drawn");
        /* The learning-rate strip (x 100..1160 for epochs 0.6..12.4, y 604..712): its staircase runs
         * from epoch 1 to epoch 12 (dots 3.5 px wide), not into the margins. */
        int x_first = 100 + (int)((1 - 0.6) / 11.8 * 1060), x_last = 100 + (int)((12 - 0.6) / 11.8 * 1060);
        int green = count_where(&img, x_first - 5, 604, x_last + 6, 713, is_green);
        int outside = count_where(&img, 0, 604, x_first - 5, 713, is_green) +
                      count_where(&img, x_last + 6, 604, img.width, 713, is_green);
        CHECK(green > 500 && outside == 0,
              "history: learning-rate line drawn (%d pixels) within epochs 1..12 (%d pixels outside)", green,
              outside);
        free(img.px);
    }
    snprintf(path, sizeof path, "%s/confusion.png", dir);
    if (check_png(path, HD_PLOT_CONFUSION_WIDTH, HD_PLOT_CONFUSION_HEIGHT, &img) == 0) {
        int rows = count_where(&img, 0, 100, 128, 720, is_text_dark);
        int cols = count_where(&img, 130, 722, 750, 800, is_text_dark);
        CHECK(rows > 200 && cols > 200, "confusion: %d dark pixels at the class labels left, %d below", rows,
              cols);
        CHECK(count_where(&img, 130, 100, 750, 720, is_blue) > 10000, "confusion: blue heat map cells");
        free(img.px);
    }
    int w, h;
    hd_plot_misclassified_size(n_digits, 28, 28, &w, &h);
    snprintf(path, sizeof path, "%s/misclassified.png", dir);
    if (check_png(path, w, h, &img) == 0) {
        CHECK(count_where(&img, 0, 80, w, h, is_red) > 500,
              "misclassified: red predicted labels in captions");
        int black = 0;
        for (int i = 0; i < w * h; i++)
            black += img.px[i] == 0;
        CHECK(black > 36 * 140 * 140 / 3, "misclassified: %d black digit-background pixels", black);
        free(img.px);
    }
    hd_plot_filters_size(32, 1, 3, &w, &h);
    snprintf(path, sizeof path, "%s/filters.png", dir);
    if (check_png(path, w, h, &img) == 0) {
        CHECK(count_where(&img, 0, 80, w, h, is_red) > 2000 && count_where(&img, 0, 80, w, h, is_blue) > 2000,
              "filters: both positive (red) and negative (blue) weights shown");
        CHECK(count_where(&img, 0, 180, w, 215, is_text_dark) > 100, "filters: captions under the first row");
        free(img.px);
    }
}

static void check_html(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/report.html", dir);
    uint8_t *html;
    size_t size;
    if (hd_read_file(path, &html, &size) != 0) {
        CHECK(0, "report.html: %s", hd_last_error());
        return;
    }
    const char *text = (const char *)html;
    const char *figures[] = {"src=\"history.png\"", "src=\"confusion.png\"", "src=\"misclassified.png\"",
                             "src=\"filters.png\""};
    for (int i = 0; i < 4; i++)
        CHECK(strstr(text, figures[i]) != NULL, "report.html links %s", figures[i]);
    CHECK(strstr(text, "&lt;b&gt;&amp;&quot;quoted&quot;&lt;/b&gt;") != NULL,
          "settings text is HTML-escaped");
    CHECK(strstr(text, "<b>&\"quoted") == NULL, "raw settings text does not leak into the page");
    CHECK(strstr(text, "98.76%") != NULL, "test accuracy shown");
    CHECK(strstr(text, "class=\"best\"><td>8 (kept)") != NULL, "best epoch row marked");
    CHECK(strstr(text, "not generated") == NULL, "no figure reported missing");

    /* Phone width: the viewport follows the device, the body keeps a margin, and every table
     * scrolls inside its own box instead of widening the page. */
    CHECK(strstr(text, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">") != NULL,
          "viewport meta present");
    const char *body_rule = strstr(text, "body{");
    CHECK(body_rule && strstr(body_rule, "padding:") &&
              strstr(body_rule, "padding:") < strchr(body_rule, '}'),
          "the body has padding (text off the left edge)");
    int tables = 0, boxed = 0;
    for (const char *p = text; (p = strstr(p, "<table")) != NULL; p++)
        tables++;
    for (const char *p = text; (p = strstr(p, "<div class=\"scroll\"><table")) != NULL; p++)
        boxed++;
    CHECK(tables == 4 && boxed == tables, "%d tables, %d in a scrolling box (want 4 and 4)", tables, boxed);

    /* Each title once: as a heading, never again (the figures carry none). */
    const char *titles[] = {"Training history",
                            "Test set: confusion matrix",
                            "Misclassified test digits",
                            "First-layer convolution filters",
                            "Model",
                            "Settings"};
    for (int i = 0; i < 6; i++) {
        char heading[128];
        snprintf(heading, sizeof heading, "<h2>%s</h2>", titles[i]);
        int count = 0;
        for (const char *p = text; (p = strstr(p, titles[i])) != NULL; p++)
            count++;
        CHECK(strstr(text, heading) != NULL && count == 1, "\"%s\": heading present, said %d times (want 1)",
              titles[i], count);
    }

    /* The facts: test loss, what ended training, when, and how long. */
    CHECK(strstr(text, "test loss <b>0.0413</b>") != NULL, "test loss shown");
    CHECK(strstr(text, "ended by <b>early stopping</b>") != NULL, "what ended training shown");
    CHECK(strstr(text, "finished <b>2026-12-06 19:36:26 UTC</b>") != NULL, "date shown");
    CHECK(strstr(text, "training took <b>2 min 15 s</b> over 12 epochs") != NULL, "duration shown");
    /* The layer table of the default model. */
    CHECK(strstr(text, "<table class=\"layers\">") != NULL, "layer table present");
    CHECK(strstr(text, "<td class=\"name\">conv1 (Conv2D 3x3, ReLU)</td><td class=\"name\">32x26x26</td>"
                       "<td>320</td>") != NULL,
          "layer table: conv1 row");
    CHECK(strstr(text, "<td class=\"name\">dense1 (Dense, ReLU)</td><td class=\"name\">128</td>"
                       "<td>204,928</td>") != NULL,
          "layer table: dense1 row");
    CHECK(strstr(text, "Total params</td><td>225,034 (879.0 KiB as float32)</td>") != NULL,
          "layer table: total");
    /* A limit of 0 reads "all"; another limit as it is. */
    CHECK(strstr(text, "<td class=\"key\">train_limit</td><td class=\"value\">all</td>") != NULL,
          "train_limit 0 shown as all");
    CHECK(strstr(text, "<td class=\"key\">test_limit</td><td class=\"value\">500</td>") != NULL,
          "test_limit 500 shown as 500");
    free(html);
}

static void test_report(const char *dir, uint64_t *rng) {
    enum { DIGITS = 40 };
    hd_epoch_metrics rows[12];
    int confusion[100], truth[DIGITS], pred[DIGITS];
    float conf[DIGITS], filters[32 * 9];
    static uint8_t digits[DIGITS * 784];
    hd_report_inputs in;
    hd_model_summary summary;
    fill_inputs(&in, &summary, rows, confusion, digits, truth, pred, conf, DIGITS, filters, rng);
    CHECK(hd_report_generate(dir, &in) == 0, "hd_report_generate: %s", hd_last_error());
    check_report_pngs(dir, DIGITS);
    check_html(dir);
}

static int images_differ(const char *a, const char *b) {
    image x, y;
    if (load_png(a, &x) != 0)
        return 0;
    if (load_png(b, &y) != 0) {
        free(x.px);
        return 0;
    }
    int differ = 0;
    for (int i = 0; x.width == y.width && x.height == y.height && i < x.width * x.height; i++)
        differ += x.px[i] != y.px[i];
    free(x.px);
    free(y.px);
    return differ;
}

static void test_edges(const char *dir, uint64_t *rng) {
    char a[4200], b[4200];
    hd_epoch_metrics rows[12];
    synthetic_history(rows, 12, rng);
    snprintf(a, sizeof a, "%s/best.png", dir);
    snprintf(b, sizeof b, "%s/nobest.png", dir);
    CHECK(hd_plot_history(a, rows, 12, 5, NULL) == 0 && hd_plot_history(b, rows, 12, 0, NULL) == 0,
          "history: %s", hd_last_error());
    CHECK(images_differ(a, b) > 200, "the best-epoch marker shows (%d pixels differ)", images_differ(a, b));
    CHECK(hd_plot_history(b, rows, 12, 5, HD_ENDED_EPOCH_CAP) == 0, "history: %s", hd_last_error());
    CHECK(images_differ(a, b) > 200, "what ended the run is said (%d pixels differ)", images_differ(a, b));
    image img;
    snprintf(a, sizeof a, "%s/one.png", dir);
    CHECK(hd_plot_history(a, rows, 1, 1, HD_ENDED_EPOCH_CAP) == 0, "history of one epoch: %s",
          hd_last_error());
    if (check_png(a, HD_PLOT_HISTORY_WIDTH, HD_PLOT_HISTORY_HEIGHT, &img) == 0)
        free(img.px);
    CHECK(hd_plot_history(a, rows, 0, 0, NULL) == -1 && strstr(hd_last_error(), "no epochs"),
          "empty history refused");

    int w, h;
    hd_plot_misclassified_size(0, 28, 28, &w, &h);
    snprintf(a, sizeof a, "%s/none.png", dir);
    CHECK(hd_plot_misclassified(a, NULL, 28, 28, NULL, NULL, NULL, 0) == 0, "no digits: %s", hd_last_error());
    if (load_png(a, &img) == 0) {
        CHECK(img.width == w && img.height == h, "no-digits figure %dx%d, expected %dx%d", img.width,
              img.height, w, h);
        CHECK(count_where(&img, 0, 60, w, h, is_text_dark) > 200, "no-digits figure says so");
        free(img.px);
    }
    float filters[16 * 3 * 25];
    test_fill_uniform(filters, 16 * 3 * 25, -1.0f, 1.0f, rng);
    hd_plot_filters_size(16, 3, 5, &w, &h);
    snprintf(a, sizeof a, "%s/rgb_filters.png", dir);
    CHECK(hd_plot_filters(a, filters, 16, 3, 5) == 0, "3-channel filters: %s", hd_last_error());
    if (check_png(a, w, h, &img) == 0)
        free(img.px);

    int confusion[4] = {5, 1, -2, 7};
    CHECK(hd_plot_confusion(a, confusion, 2, NULL) == -1 && strstr(hd_last_error(), "negative"),
          "negative count refused");
    CHECK(hd_plot_history("/nonexistent-dir/h.png", rows, 12, 3, NULL) == -1 &&
              strstr(hd_last_error(), "/nonexistent-dir/h.png"),
          "unwritable path refused, message names it: %s", hd_last_error());
}

int main(void) {
    uint64_t rng = test_fresh_seed();
    char *dir = test_make_temp_dir("plot");
    CHECK(dir != NULL, "temp dir");
    if (!dir)
        return test_finish();
    test_report(dir, &rng);
    test_edges(dir, &rng);
    if (getenv("HD_PLOT_KEEP"))
        printf("figures kept in %s\n", dir);
    else
        test_remove_tree(dir);
    free(dir);
    hd_plot_release_caches();
    return test_finish();
}

#else /* no cairo: every plot refuses, and the HTML page is still written */

int main(void) {
    char *dir = test_make_temp_dir("plot");
    CHECK(dir != NULL, "temp dir");
    if (!dir)
        return test_finish();
    hd_epoch_metrics row = {1, 0.3, 0.9, 0.2, 0.95, 1e-3, 10, 5000};
    hd_report_inputs in;
    memset(&in, 0, sizeof in);
    in.rows = &row;
    in.n_rows = 1;
    in.best_epoch = 1;
    in.test_accuracy = -1;
    CHECK(hd_report_generate(dir, &in) == -1 && strstr(hd_last_error(), "built without cairo"),
          "plots refuse without cairo: %s", hd_last_error());
    char path[4200];
    snprintf(path, sizeof path, "%s/report.html", dir);
    uint8_t *html;
    size_t size;
    int read = hd_read_file(path, &html, &size);
    CHECK(read == 0, "report.html written anyway");
    if (read == 0)
        free(html);
    test_remove_tree(dir);
    free(dir);
    test_skip("built without cairo: figures not drawn");
    return test_finish();
}

#endif
