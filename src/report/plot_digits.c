/* plot_digits.c: hd_plot_misclassified, a grid of misclassified digits, each upscaled with
 * nearest-neighbour sampling (cairo pattern filter) and captioned
 * "true T / pred P (confidence)". */
#include "hd/plot.h"

#include "hd/common.h"

#define GRID_COLUMNS 6
#define GRID_MARGIN  20
#define GRID_TOP     84
#define DIGIT_PIXELS 140 /* a digit's longer side is scaled to about this */
#define CAPTION_H    34

/* Layout shared by the size query and the drawing. */
typedef struct {
    int shown, grid_rows, scale, image_w, image_h, cell_w, cell_h, width, height;
} digits_layout;

static digits_layout layout_for(int n, int rows, int cols) {
    digits_layout l;
    l.shown = n < HD_PLOT_MISCLASSIFIED_MAX ? (n > 0 ? n : 0) : HD_PLOT_MISCLASSIFIED_MAX;
    l.grid_rows = l.shown > 0 ? (l.shown + GRID_COLUMNS - 1) / GRID_COLUMNS : 1;
    int longer = rows > cols ? rows : cols;
    l.scale = longer > 0 && longer < DIGIT_PIXELS ? DIGIT_PIXELS / longer : 1;
    l.image_w = cols * l.scale;
    l.image_h = rows * l.scale;
    l.cell_w = l.image_w + 60 > 200 ? l.image_w + 60 : 200;
    l.cell_h = l.image_h + CAPTION_H + 16;
    l.width = 2 * GRID_MARGIN + GRID_COLUMNS * l.cell_w;
    l.height = GRID_TOP + l.grid_rows * l.cell_h + GRID_MARGIN;
    return l;
}

void hd_plot_misclassified_size(int n, int rows, int cols, int *width, int *height) {
    digits_layout l = layout_for(n, rows, cols);
    *width = l.width;
    *height = l.height;
}

#ifdef HD_HAVE_CAIRO

#include <math.h>
#include <stdio.h>

#include "plot_common.h"

/* One digit as a grey cairo image (white on black, as stored). */
static cairo_surface_t *digit_surface(const uint8_t *pixels, int rows, int cols) {
    cairo_surface_t *surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, cols, rows);
    if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS)
        return surface;
    cairo_surface_flush(surface);
    unsigned char *data = cairo_image_surface_get_data(surface);
    int stride = cairo_image_surface_get_stride(surface);
    for (int y = 0; y < rows; y++) {
        uint32_t *line = (uint32_t *)(void *)(data + (size_t)y * stride);
        for (int x = 0; x < cols; x++) {
            uint32_t v = pixels[y * cols + x];
            line[x] = (v << 16) | (v << 8) | v;
        }
    }
    cairo_surface_mark_dirty(surface);
    return surface;
}

/* "true T / pred P (0.87)", the predicted part in red, centred at (cx, y). */
static void draw_caption(cairo_t *cr, double cx, double y, double max_width, int true_label, int predicted,
                         double confidence) {
    char part_true[32], part_pred[32], part_conf[32];
    snprintf(part_true, sizeof part_true, "true %d / ", true_label);
    snprintf(part_pred, sizeof part_pred, "pred %d", predicted);
    if (isfinite(confidence))
        snprintf(part_conf, sizeof part_conf, " (%.2f)", confidence);
    else
        part_conf[0] = '\0';
    double size = 15;
    double w1, w2, w3;
    for (;;) {
        w1 = plot_text_width(cr, part_true, size, 0);
        w2 = plot_text_width(cr, part_pred, size, 1);
        w3 = plot_text_width(cr, part_conf, size, 0);
        if (w1 + w2 + w3 <= max_width || size <= 8)
            break;
        size -= 1;
    }
    double x = cx - (w1 + w2 + w3) / 2;
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    plot_text(cr, x, y, part_true, size, 0, 0.0, 0.0, 0);
    cairo_set_source_rgb(cr, 0.78, 0.1, 0.1);
    plot_text(cr, x + w1, y, part_pred, size, 1, 0.0, 0.0, 0);
    cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
    plot_text(cr, x + w1 + w2, y, part_conf, size, 0, 0.0, 0.0, 0);
}

static int draw_digit(cairo_t *cr, const digits_layout *l, int i, const uint8_t *pixels, int rows, int cols) {
    double x = GRID_MARGIN + (i % GRID_COLUMNS) * l->cell_w + (l->cell_w - l->image_w) / 2.0;
    double y = GRID_TOP + (i / GRID_COLUMNS) * l->cell_h;
    cairo_surface_t *digit = digit_surface(pixels, rows, cols);
    if (cairo_surface_status(digit) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(digit);
        return -1;
    }
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_scale(cr, l->scale, l->scale);
    cairo_set_source_surface(cr, digit, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
    cairo_rectangle(cr, 0, 0, cols, rows);
    cairo_fill(cr);
    cairo_restore(cr);
    cairo_surface_destroy(digit);
    cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
    cairo_set_line_width(cr, 1.0);
    cairo_rectangle(cr, x - 0.5, y - 0.5, l->image_w + 1, l->image_h + 1);
    cairo_stroke(cr);
    return 0;
}

int hd_plot_misclassified(const char *png_path, const uint8_t *images, int rows, int cols,
                          const int *true_labels, const int *predicted, const float *confidence, int n) {
    if (n < 0 || rows < 1 || cols < 1 || rows > 1024 || cols > 1024)
        return hd_fail("%s: bad digit images (%d of %dx%d)", png_path, n, rows, cols);
    if (n > 0 && (!images || !true_labels || !predicted))
        return hd_fail("%s: missing images or labels for %d digits", png_path, n);
    digits_layout l = layout_for(n, rows, cols);
    plot_canvas canvas;
    if (plot_canvas_open(&canvas, l.width, l.height, png_path) != 0)
        return -1;
    cairo_t *cr = canvas.cr;
    char subtitle[160];
    if (n > l.shown)
        snprintf(subtitle, sizeof subtitle,
                 "misclassified: the first %d of %d; caption: true label / predicted (confidence)", l.shown,
                 n);
    else if (n > 0)
        snprintf(subtitle, sizeof subtitle,
                 "%d misclassified digit%s; caption: true label / predicted (confidence)", n,
                 n == 1 ? "" : "s");
    else
        snprintf(subtitle, sizeof subtitle, "no misclassified digits");
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    plot_text(cr, l.width / 2.0, 24, subtitle, 16, 0, 0.5, 0.0, 0);
    if (n == 0)
        plot_text(cr, l.width / 2.0, GRID_TOP + l.cell_h / 2.0,
                  "none: every test digit was classified correctly", 16, 0, 0.5, 0.5, 0);
    int rc = 0;
    size_t digit_bytes = (size_t)rows * cols;
    for (int i = 0; i < l.shown && rc == 0; i++) {
        if (draw_digit(cr, &l, i, images + i * digit_bytes, rows, cols) != 0) {
            rc = hd_fail("%s: cannot make an image for digit %d", png_path, i);
            break;
        }
        double cx = GRID_MARGIN + (i % GRID_COLUMNS) * l.cell_w + l.cell_w / 2.0;
        double cy = GRID_TOP + (i / GRID_COLUMNS) * l.cell_h + l.image_h + 10;
        draw_caption(cr, cx, cy, l.cell_w - 8, true_labels[i], predicted[i],
                     confidence ? confidence[i] : NAN);
    }
    if (rc == 0)
        rc = plot_canvas_save(&canvas, png_path);
    plot_canvas_close(&canvas);
    return rc;
}

#else

int hd_plot_misclassified(const char *png_path, const uint8_t *images, int rows, int cols,
                          const int *true_labels, const int *predicted, const float *confidence, int n) {
    return hd_fail("%s: built without cairo", png_path);
}

#endif /* HD_HAVE_CAIRO */
