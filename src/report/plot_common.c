/* plot_common.c: the canvas, text, colour maps and axis scales shared by the plot files. */
#include "plot_common.h"
#include "hd/plot.h"

#ifdef HD_HAVE_CAIRO
#include <dlfcn.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hd/common.h"

int plot_canvas_open(plot_canvas *canvas, int width, int height, const char *path) {
    memset(canvas, 0, sizeof *canvas);
    canvas->surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
    if (cairo_surface_status(canvas->surface) != CAIRO_STATUS_SUCCESS) {
        hd_fail("%s: cannot create a %dx%d canvas: %s", path, width, height,
                cairo_status_to_string(cairo_surface_status(canvas->surface)));
        cairo_surface_destroy(canvas->surface);
        canvas->surface = NULL;
        return -1;
    }
    canvas->cr = cairo_create(canvas->surface);
    if (cairo_status(canvas->cr) != CAIRO_STATUS_SUCCESS) {
        hd_fail("%s: cannot create a cairo context: %s", path,
                cairo_status_to_string(cairo_status(canvas->cr)));
        plot_canvas_close(canvas);
        return -1;
    }
    canvas->width = width;
    canvas->height = height;
    cairo_set_source_rgb(canvas->cr, 1, 1, 1);
    cairo_paint(canvas->cr);
    return 0;
}

typedef struct {
    unsigned char *data;
    size_t size, capacity;
} png_buffer;

static cairo_status_t png_buffer_append(void *closure, const unsigned char *data, unsigned int length) {
    png_buffer *buf = closure;
    if (buf->size + length > buf->capacity) {
        size_t capacity = buf->capacity ? buf->capacity : 65536;
        while (capacity < buf->size + length)
            capacity *= 2;
        unsigned char *grown = realloc(buf->data, capacity);
        if (!grown)
            return CAIRO_STATUS_NO_MEMORY;
        buf->data = grown;
        buf->capacity = capacity;
    }
    memcpy(buf->data + buf->size, data, length);
    buf->size += length;
    return CAIRO_STATUS_SUCCESS;
}

int plot_canvas_save(plot_canvas *canvas, const char *path) {
    cairo_status_t status = cairo_status(canvas->cr);
    if (status != CAIRO_STATUS_SUCCESS)
        return hd_fail("%s: drawing failed: %s", path, cairo_status_to_string(status));
    cairo_surface_flush(canvas->surface);
    png_buffer buf = {0};
    status = cairo_surface_write_to_png_stream(canvas->surface, png_buffer_append, &buf);
    if (status != CAIRO_STATUS_SUCCESS) {
        free(buf.data);
        return hd_fail("%s: cannot encode PNG: %s", path, cairo_status_to_string(status));
    }
    int rc = hd_write_file_atomic(path, buf.data, buf.size);
    free(buf.data);
    return rc;
}

void plot_canvas_close(plot_canvas *canvas) {
    if (canvas->cr)
        cairo_destroy(canvas->cr);
    if (canvas->surface)
        cairo_surface_destroy(canvas->surface);
    canvas->cr = NULL;
    canvas->surface = NULL;
}

void plot_set_rgb(cairo_t *cr, plot_rgb c) {
    cairo_set_source_rgb(cr, c.r, c.g, c.b);
}

static void select_font(cairo_t *cr, double size, int bold) {
    cairo_select_font_face(cr, PLOT_FONT, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

double plot_text_width(cairo_t *cr, const char *text, double size, int bold) {
    cairo_text_extents_t ext;
    select_font(cr, size, bold);
    cairo_text_extents(cr, text, &ext);
    return ext.x_advance;
}

void plot_text(cairo_t *cr, double x, double y, const char *text, double size, int bold, double ax, double ay,
               double angle) {
    /* Vertical placement uses the cap height (about 0.73 em in DejaVu Sans) rather than
     * each string's own extents, so labels in a row share one baseline. */
    const double cap_height = 0.73 * size;
    double width = plot_text_width(cr, text, size, bold);
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, angle);
    cairo_move_to(cr, -ax * width, cap_height * (1.0 - ay));
    cairo_show_text(cr, text);
    cairo_restore(cr);
}

static plot_rgb mix(plot_rgb a, plot_rgb b, double t) {
    plot_rgb c = {a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t};
    return c;
}

/* Piecewise-linear colour map through n evenly spaced anchors, t in [0, 1]. */
static plot_rgb colour_ramp(const plot_rgb *anchors, int n, double t) {
    if (!(t > 0))
        return anchors[0];
    if (t >= 1)
        return anchors[n - 1];
    double pos = t * (n - 1);
    int i = (int)pos;
    return mix(anchors[i], anchors[i + 1], pos - i);
}

plot_rgb plot_diverging(double t) {
    /* ColorBrewer RdBu, reversed: negative blue, zero near-white, positive red. */
    static const plot_rgb anchors[] = {
        {0.020, 0.188, 0.380}, {0.129, 0.400, 0.675}, {0.573, 0.773, 0.871}, {0.969, 0.969, 0.969},
        {0.957, 0.647, 0.510}, {0.698, 0.094, 0.169}, {0.404, 0.000, 0.122},
    };
    return colour_ramp(anchors, 7, (t + 1.0) * 0.5);
}

plot_rgb plot_sequential(double t) {
    /* ColorBrewer Blues. */
    static const plot_rgb anchors[] = {
        {0.969, 0.984, 1.000}, {0.776, 0.859, 0.937}, {0.420, 0.682, 0.839},
        {0.129, 0.443, 0.710}, {0.031, 0.188, 0.420},
    };
    return colour_ramp(anchors, 5, t);
}

double plot_luminance(plot_rgb c) {
    return 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b;
}

static double nice_step(double range, int max_ticks) {
    double raw = range / (max_ticks > 1 ? max_ticks : 1);
    double magnitude = pow(10.0, floor(log10(raw)));
    double f = raw / magnitude;
    double nice = f <= 1.0 ? 1.0 : f <= 2.0 ? 2.0 : f <= 2.5 ? 2.5 : f <= 5.0 ? 5.0 : 10.0;
    return nice * magnitude;
}

static void fit_linear(plot_axis *axis, double lo, double hi, int max_ticks) {
    if (hi - lo < 1e-12 * fmax(1.0, fabs(hi))) {
        double pad = fabs(lo) > 0 ? 0.05 * fabs(lo) : 1.0;
        lo -= pad;
        hi += pad;
    }
    double step = nice_step(hi - lo, max_ticks);
    axis->lo = floor(lo / step + 1e-9) * step;
    axis->hi = ceil(hi / step - 1e-9) * step;
    axis->n_ticks = 0;
    for (int i = 0; axis->n_ticks < PLOT_MAX_TICKS; i++) {
        double v = axis->lo + i * step;
        if (v > axis->hi + 1e-9 * step)
            break;
        axis->ticks[axis->n_ticks++] = fabs(v) < 1e-12 * step ? 0.0 : v;
    }
    /* Enough decimals that neighbouring ticks differ: 2.5 x 10^k needs one more. */
    int decimals = (int)ceil(-log10(step) - 1e-9);
    double scaled = step * pow(10.0, decimals);
    if (fabs(scaled - round(scaled)) > 1e-6)
        decimals++;
    axis->tick_decimals = decimals > 0 ? decimals : 0;
}

static void fit_log(plot_axis *axis, double lo, double hi, int max_ticks) {
    /* Bounds a little beyond the data (not whole decades, which would waste most of a short
     * strip); ticks at the densest of m x 10^k for m in {1,2,3,5,7}, {1,2,5}, {1} that
     * gives at most max_ticks labels, or every few decades when even {1} is too many. */
    axis->lo = lo / 1.25;
    axis->hi = hi * 1.25;
    int first_exp = (int)floor(log10(axis->lo)), last_exp = (int)ceil(log10(axis->hi));
    int decades = last_exp - first_exp + 1;
    int decade_step = max_ticks > 0 && decades > max_ticks ? (decades + max_ticks - 1) / max_ticks : 1;
    static const double tiers[3][5] = {{1, 2, 3, 5, 7}, {1, 2, 5}, {1}};
    static const int tier_sizes[3] = {5, 3, 1};
    for (int tier = 0; tier < 3; tier++) {
        axis->n_ticks = 0;
        for (int e = first_exp; e <= last_exp; e += tier == 2 ? decade_step : 1)
            for (int m = 0; m < tier_sizes[tier]; m++) {
                double v = tiers[tier][m] * pow(10.0, e);
                if (v >= axis->lo * (1 - 1e-9) && v <= axis->hi * (1 + 1e-9) &&
                    axis->n_ticks < PLOT_MAX_TICKS)
                    axis->ticks[axis->n_ticks++] = v;
            }
        if (axis->n_ticks <= max_ticks)
            break;
    }
    axis->tick_decimals = 0;
}

void plot_axis_fit(plot_axis *axis, double lo, double hi, int log_scale, int max_ticks) {
    axis->log = log_scale;
    if (log_scale)
        fit_log(axis, lo, hi, max_ticks);
    else
        fit_linear(axis, lo, hi, max_ticks);
}

double plot_axis_map(const plot_axis *axis, double v) {
    double t = axis->log ? (log10(v) - log10(axis->lo)) / (log10(axis->hi) - log10(axis->lo))
                         : (v - axis->lo) / (axis->hi - axis->lo);
    return axis->px_lo + t * (axis->px_hi - axis->px_lo);
}

void plot_axis_label(const plot_axis *axis, double v, char *buf, size_t len) {
    if (axis->format_sci && v != 0 && isfinite(v)) {
        int e = (int)floor(log10(fabs(v)));
        double mantissa = v / pow(10.0, e);
        if (fabs(mantissa) >= 10 - 5e-4) { /* 9.9996e-4 rounds to 10e-4: say 1e-3 */
            mantissa /= 10;
            e++;
        }
        snprintf(buf, len, "%.3ge%d", mantissa, e);
    } else if (axis->log || axis->format_g)
        snprintf(buf, len, "%g", v);
    else
        snprintf(buf, len, "%.*f", axis->tick_decimals, v);
}

#endif /* HD_HAVE_CAIRO */

#ifdef HD_HAVE_CAIRO
void hd_plot_release_caches(void) {
    cairo_debug_reset_static_data();
    /* fontconfig is cairo's dependency, not ours: look it up at run time. */
    void (*fc_fini)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "FcFini");
    if (fc_fini)
        fc_fini();
}
#else
void hd_plot_release_caches(void) {}
#endif
