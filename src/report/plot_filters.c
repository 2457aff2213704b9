/* plot_filters.c: hd_plot_filters, first-layer convolution filters as a grid of small heat
 * maps (one square per weight, diverging blue-white-red, each filter scaled symmetrically
 * to its own largest |w|, which is printed under it), with a colour key. */
#include "hd/plot.h"

#include "hd/common.h"

#define FILTER_MARGIN      40
#define FILTER_TOP         88
#define FILTER_TILE        96 /* a k x k tile is about this many pixels across */
#define FILTER_GAP_X       24
#define FILTER_CHANNEL_GAP 4
#define FILTER_CAPTION_H   30
#define FILTER_KEY_H       80
#define FILTER_ROW_TILES   8 /* tiles per grid row, at least one filter */

typedef struct {
    int shown, channels, cell, tile, block_w, per_row, grid_rows, width, height;
} filters_layout;

static filters_layout layout_for(int count, int in_c, int k) {
    filters_layout l;
    l.shown = count < HD_PLOT_FILTERS_MAX ? (count > 0 ? count : 0) : HD_PLOT_FILTERS_MAX;
    l.channels = in_c < HD_PLOT_FILTER_CHANNELS_MAX ? (in_c > 0 ? in_c : 1) : HD_PLOT_FILTER_CHANNELS_MAX;
    l.cell = k > 0 && FILTER_TILE / k > 4 ? FILTER_TILE / k : 4;
    l.tile = l.cell * (k > 0 ? k : 1);
    l.block_w = l.channels * l.tile + (l.channels - 1) * FILTER_CHANNEL_GAP;
    l.per_row = FILTER_ROW_TILES / l.channels > 1 ? FILTER_ROW_TILES / l.channels : 1;
    l.grid_rows = l.shown > 0 ? (l.shown + l.per_row - 1) / l.per_row : 1;
    int grid_w = l.per_row * l.block_w + (l.per_row - 1) * FILTER_GAP_X;
    l.width = 2 * FILTER_MARGIN + (grid_w > 640 ? grid_w : 640);
    l.height = FILTER_TOP + l.grid_rows * (l.tile + FILTER_CAPTION_H) + FILTER_KEY_H;
    return l;
}

void hd_plot_filters_size(int count, int in_c, int k, int *width, int *height) {
    filters_layout l = layout_for(count, in_c, k);
    *width = l.width;
    *height = l.height;
}

#ifdef HD_HAVE_CAIRO

#include <math.h>
#include <stdio.h>

#include "plot_common.h"

/* Draws one filter's tiles at (x, y); returns the largest |w| it was scaled by. */
static double draw_filter(cairo_t *cr, const filters_layout *l, double x, double y, const float *w, int in_c,
                          int k) {
    size_t filter_size = (size_t)in_c * k * k;
    double largest = 0;
    for (size_t i = 0; i < filter_size; i++)
        if (isfinite(w[i]) && fabsf(w[i]) > largest)
            largest = fabsf(w[i]);
    for (int c = 0; c < l->channels; c++) {
        double tx = x + c * (l->tile + FILTER_CHANNEL_GAP);
        for (int r = 0; r < k; r++)
            for (int q = 0; q < k; q++) {
                double v = w[(size_t)c * k * k + r * k + q];
                plot_set_rgb(cr, plot_diverging(largest > 0 && isfinite(v) ? v / largest : 0));
                cairo_rectangle(cr, tx + q * l->cell, y + r * l->cell, l->cell, l->cell);
                cairo_fill(cr);
            }
        cairo_set_source_rgb(cr, 0.55, 0.55, 0.55);
        cairo_set_line_width(cr, 1.0);
        cairo_rectangle(cr, tx - 0.5, y - 0.5, l->tile + 1, l->tile + 1);
        cairo_stroke(cr);
    }
    return largest;
}

/* Decimals for every caption: three significant digits of the largest |w| shown, so that
 * the captions line up (0.150 beside 0.171, not 0.15 beside 0.171). */
static int caption_decimals(const float *w, size_t n) {
    double largest = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(w[i]) && fabsf(w[i]) > largest)
            largest = fabsf(w[i]);
    if (largest <= 0)
        return 3;
    int decimals = 2 - (int)floor(log10(largest));
    return decimals < 0 ? 0 : decimals > 8 ? 8 : decimals;
}

static void draw_key(cairo_t *cr, const filters_layout *l) {
    const double key_w = 320, key_h = 16;
    double x = (l->width - key_w) / 2, y = l->height - FILTER_KEY_H + 22;
    cairo_pattern_t *ramp = cairo_pattern_create_linear(x, 0, x + key_w, 0);
    for (int i = 0; i <= 20; i++) {
        plot_rgb c = plot_diverging(-1.0 + i / 10.0);
        cairo_pattern_add_color_stop_rgb(ramp, i / 20.0, c.r, c.g, c.b);
    }
    cairo_rectangle(cr, x, y, key_w, key_h);
    cairo_set_source(cr, ramp);
    cairo_fill(cr);
    cairo_pattern_destroy(ramp);
    cairo_set_source_rgb(cr, 0.4, 0.4, 0.4);
    cairo_set_line_width(cr, 1.0);
    cairo_rectangle(cr, round(x) - 0.5, round(y) - 0.5, key_w + 1, key_h + 1);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    plot_text(cr, x - 10, y + key_h / 2, "-max |w|", 13, 0, 1.0, 0.5, 0);
    plot_text(cr, x + key_w + 10, y + key_h / 2, "+max |w|", 13, 0, 0.0, 0.5, 0);
    plot_text(cr, x + key_w / 2, y + key_h + 8, "0", 13, 0, 0.5, 0.0, 0);
    plot_text(cr, l->width / 2.0, y + key_h + 28,
              "each filter is scaled to its own largest |w| (the number under it)", 13, 0, 0.5, 0.0, 0);
}

int hd_plot_filters(const char *png_path, const float *weights, int count, int in_c, int k) {
    if (!weights || count < 1 || in_c < 1 || k < 1 || k > 64)
        return hd_fail("%s: bad filter weights (%d x %d x %d x %d)", png_path, count, in_c, k, k);
    filters_layout l = layout_for(count, in_c, k);
    plot_canvas canvas;
    if (plot_canvas_open(&canvas, l.width, l.height, png_path) != 0)
        return -1;
    cairo_t *cr = canvas.cr;
    char subtitle[200];
    int len = snprintf(subtitle, sizeof subtitle,
                       "first convolution layer: %d filter%s, %d input channel%s, %dx%d kernel", count,
                       count == 1 ? "" : "s", in_c, in_c == 1 ? "" : "s", k, k);
    if (count > l.shown || in_c > l.channels)
        snprintf(subtitle + len, sizeof subtitle - (size_t)len, " (showing %d filters, %d channels each)",
                 l.shown, l.channels);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    plot_text(cr, l.width / 2.0, 24, subtitle, 16, 0, 0.5, 0.0, 0);

    int grid_w = l.per_row * l.block_w + (l.per_row - 1) * FILTER_GAP_X;
    int left = (l.width - grid_w) / 2;
    size_t filter_size = (size_t)in_c * k * k;
    int decimals = caption_decimals(weights, (size_t)l.shown * filter_size);
    for (int f = 0; f < l.shown; f++) {
        int x = left + (f % l.per_row) * (l.block_w + FILTER_GAP_X);
        int y = FILTER_TOP + (f / l.per_row) * (l.tile + FILTER_CAPTION_H);
        const float *w = weights + (size_t)f * filter_size;
        double largest = draw_filter(cr, &l, x, y, w, in_c, k);
        char caption[48];
        snprintf(caption, sizeof caption, "#%d  \xc2\xb1%.*f", f, decimals, largest);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        plot_text(cr, x + l.block_w / 2.0, y + l.tile + 7, caption, 12, 0, 0.5, 0.0, 0);
    }
    draw_key(cr, &l);
    int rc = plot_canvas_save(&canvas, png_path);
    plot_canvas_close(&canvas);
    return rc;
}

#else

int hd_plot_filters(const char *png_path, const float *weights, int count, int in_c, int k) {
    return hd_fail("%s: built without cairo", png_path);
}

#endif /* HD_HAVE_CAIRO */
