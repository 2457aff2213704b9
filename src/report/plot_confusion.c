/* plot_confusion.c: hd_plot_confusion, the confusion matrix as a labelled heat map: counts
 * in the cells, colour = share of the true class on a square-root scale (so that a handful
 * of errors among a thousand still shows), per-class accuracy on the right, colour bar. */
#include "hd/plot.h"

#include "hd/common.h"

#ifdef HD_HAVE_CAIRO

#include <math.h>
#include <stdio.h>

#include "plot_common.h"

#define MATRIX_LEFT 130.0
#define MATRIX_TOP  100.0
#define MATRIX_SIZE 620.0
#define ACC_LEFT    (MATRIX_LEFT + MATRIX_SIZE + 20)
#define ACC_WIDTH   100.0
#define BAR_LEFT    (ACC_LEFT + ACC_WIDTH + 40)
#define BAR_WIDTH   24.0

static const plot_rgb ink = {0.1, 0.1, 0.1};

/* Colour position of a share of the true class: square root stretches the small shares. */
static double share_to_scale(double share) {
    return sqrt(share > 0 ? share : 0);
}

static void draw_cells(cairo_t *cr, const int *confusion, int classes, const long *row_totals) {
    double cell = MATRIX_SIZE / classes;
    double font = fmin(18.0, cell * 0.34);
    for (int t = 0; t < classes; t++) {
        for (int p = 0; p < classes; p++) {
            int count = confusion[t * classes + p];
            double share = row_totals[t] > 0 ? (double)count / row_totals[t] : 0;
            plot_rgb colour = plot_sequential(share_to_scale(share));
            double x = MATRIX_LEFT + p * cell, y = MATRIX_TOP + t * cell;
            plot_set_rgb(cr, colour);
            cairo_rectangle(cr, x, y, cell + 0.5, cell + 0.5);
            cairo_fill(cr);
            if (cell < 16)
                continue;
            char text[16];
            snprintf(text, sizeof text, "%d", count);
            double size = font;
            while (size > 7 && plot_text_width(cr, text, size, 0) > cell - 4)
                size -= 1;
            if (count == 0)
                cairo_set_source_rgb(cr, 0.72, 0.72, 0.72);
            else if (plot_luminance(colour) < 0.45)
                cairo_set_source_rgb(cr, 1, 1, 1);
            else
                plot_set_rgb(cr, ink);
            plot_text(cr, x + cell / 2, y + cell / 2, text, size, t == p, 0.5, 0.5, 0);
        }
    }
    /* Thin white lines between cells and a frame around the matrix. */
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_set_line_width(cr, classes <= 30 ? 1.0 : 0.0);
    for (int i = 1; i < classes && classes <= 30; i++) {
        double v = round(MATRIX_LEFT + i * cell) + 0.5, h = round(MATRIX_TOP + i * cell) + 0.5;
        cairo_move_to(cr, v, MATRIX_TOP);
        cairo_line_to(cr, v, MATRIX_TOP + MATRIX_SIZE);
        cairo_move_to(cr, MATRIX_LEFT, h);
        cairo_line_to(cr, MATRIX_LEFT + MATRIX_SIZE, h);
    }
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_set_line_width(cr, 1.0);
    cairo_rectangle(cr, MATRIX_LEFT - 0.5, MATRIX_TOP - 0.5, MATRIX_SIZE + 1, MATRIX_SIZE + 1);
    cairo_stroke(cr);
}

static void draw_class_labels(cairo_t *cr, int classes) {
    double cell = MATRIX_SIZE / classes;
    int every = classes <= 30 ? 1 : (classes + 29) / 30;
    plot_set_rgb(cr, ink);
    for (int c = 0; c < classes; c += every) {
        char text[16];
        snprintf(text, sizeof text, "%d", c);
        double mid = c * cell + cell / 2;
        plot_text(cr, MATRIX_LEFT + mid, MATRIX_TOP + MATRIX_SIZE + 8, text, 16, 0, 0.5, 0.0, 0);
        plot_text(cr, MATRIX_LEFT - 10, MATRIX_TOP + mid, text, 16, 0, 1.0, 0.5, 0);
    }
    plot_text(cr, MATRIX_LEFT + MATRIX_SIZE / 2, MATRIX_TOP + MATRIX_SIZE + 38, "predicted", 16, 1, 0.5, 0.0,
              0);
    plot_text(cr, MATRIX_LEFT - 52, MATRIX_TOP + MATRIX_SIZE / 2, "true", 16, 1, 0.5, 1.0, -M_PI / 2);
}

static void draw_class_accuracy(cairo_t *cr, const int *confusion, int classes, const long *row_totals) {
    double cell = MATRIX_SIZE / classes;
    double font = fmin(15.0, fmax(8.0, cell * 0.4));
    plot_set_rgb(cr, ink);
    plot_text(cr, ACC_LEFT + ACC_WIDTH / 2, MATRIX_TOP - 26, "per-class", 14, 1, 0.5, 1.0, 0);
    plot_text(cr, ACC_LEFT + ACC_WIDTH / 2, MATRIX_TOP - 8, "accuracy", 14, 1, 0.5, 1.0, 0);
    if (cell < 10)
        return;
    for (int t = 0; t < classes; t++) {
        char text[32];
        if (row_totals[t] > 0)
            snprintf(text, sizeof text, "%.1f%%", 100.0 * confusion[t * classes + t] / row_totals[t]);
        else
            snprintf(text, sizeof text, "n/a");
        plot_text(cr, ACC_LEFT + ACC_WIDTH / 2, MATRIX_TOP + t * cell + cell / 2, text, font, 0, 0.5, 0.5, 0);
    }
}

static void draw_colour_bar(cairo_t *cr) {
    static const double shares[] = {0.0, 0.01, 0.05, 0.25, 0.5, 1.0};
    static const char *labels[] = {"0%", "1%", "5%", "25%", "50%", "100%"};
    const double bottom = MATRIX_TOP + MATRIX_SIZE;
    cairo_pattern_t *ramp = cairo_pattern_create_linear(0, bottom, 0, MATRIX_TOP);
    for (int i = 0; i <= 20; i++) {
        plot_rgb c = plot_sequential(i / 20.0);
        cairo_pattern_add_color_stop_rgb(ramp, i / 20.0, c.r, c.g, c.b);
    }
    cairo_rectangle(cr, BAR_LEFT, MATRIX_TOP, BAR_WIDTH, MATRIX_SIZE);
    cairo_set_source(cr, ramp);
    cairo_fill(cr);
    cairo_pattern_destroy(ramp);
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_set_line_width(cr, 1.0);
    cairo_rectangle(cr, BAR_LEFT - 0.5, MATRIX_TOP - 0.5, BAR_WIDTH + 1, MATRIX_SIZE + 1);
    for (int i = 0; i < 6; i++) {
        double y = round(bottom - share_to_scale(shares[i]) * MATRIX_SIZE) + 0.5;
        cairo_move_to(cr, BAR_LEFT + BAR_WIDTH, y);
        cairo_line_to(cr, BAR_LEFT + BAR_WIDTH + 5, y);
    }
    cairo_stroke(cr);
    plot_set_rgb(cr, ink);
    for (int i = 0; i < 6; i++)
        plot_text(cr, BAR_LEFT + BAR_WIDTH + 9, bottom - share_to_scale(shares[i]) * MATRIX_SIZE, labels[i],
                  13, 0, 0.0, 0.5, 0);
    plot_text(cr, BAR_LEFT + BAR_WIDTH + 72, MATRIX_TOP + MATRIX_SIZE / 2,
              "share of the true class (square-root scale)", 14, 0, 0.5, 0.0, -M_PI / 2);
}

int hd_plot_confusion(const char *png_path, const int *confusion, int classes, const char *title) {
    if (!confusion || classes < 1 || classes > 1000)
        return hd_fail("%s: bad confusion matrix (%d classes)", png_path, classes);
    long row_totals[1000];
    long total = 0, correct = 0;
    for (int t = 0; t < classes; t++) {
        row_totals[t] = 0;
        for (int p = 0; p < classes; p++) {
            if (confusion[t * classes + p] < 0)
                return hd_fail("%s: negative count in the confusion matrix (true %d, predicted %d)", png_path,
                               t, p);
            row_totals[t] += confusion[t * classes + p];
        }
        total += row_totals[t];
        correct += confusion[t * classes + t];
    }
    plot_canvas canvas;
    if (plot_canvas_open(&canvas, HD_PLOT_CONFUSION_WIDTH, HD_PLOT_CONFUSION_HEIGHT, png_path) != 0)
        return -1;
    cairo_t *cr = canvas.cr;
    char subtitle[160];
    if (total > 0)
        snprintf(subtitle, sizeof subtitle, "%ld images, %ld correct: accuracy %.2f%%", total, correct,
                 100.0 * correct / total);
    else
        snprintf(subtitle, sizeof subtitle, "no images counted");
    plot_set_rgb(cr, ink);
    if (title) {
        plot_text(cr, MATRIX_LEFT + MATRIX_SIZE / 2, 14, title, 22, 1, 0.5, 0.0, 0);
        plot_text(cr, MATRIX_LEFT + MATRIX_SIZE / 2, 46, subtitle, 14, 0, 0.5, 0.0, 0);
    } else {
        plot_text(cr, MATRIX_LEFT + MATRIX_SIZE / 2, 24, subtitle, 16, 0, 0.5, 0.0, 0);
    }
    draw_cells(cr, confusion, classes, row_totals);
    draw_class_labels(cr, classes);
    draw_class_accuracy(cr, confusion, classes, row_totals);
    draw_colour_bar(cr);
    int rc = plot_canvas_save(&canvas, png_path);
    plot_canvas_close(&canvas);
    return rc;
}

#else

int hd_plot_confusion(const char *png_path, const int *confusion, int classes, const char *title) {
    return hd_fail("%s: built without cairo", png_path);
}

#endif /* HD_HAVE_CAIRO */
