/* plot_common.h: drawing helpers shared by the plot_*.c files (private to them): a canvas
 * that saves itself as PNG atomically, text placement, colour maps, axis scales with
 * "nice" ticks. Only compiled with cairo (HD_HAVE_CAIRO). */
#ifndef HD_PLOT_COMMON_H
#define HD_PLOT_COMMON_H

#ifdef HD_HAVE_CAIRO

#include <stddef.h>

#include <cairo.h>

#define PLOT_FONT      "DejaVu Sans"
#define PLOT_MAX_TICKS 32

typedef struct {
    double r, g, b;
} plot_rgb;

typedef struct {
    cairo_surface_t *surface;
    cairo_t *cr;
    int width, height;
} plot_canvas;

/* A white canvas of width x height; -1 + hd_fail() naming path. */
int plot_canvas_open(plot_canvas *canvas, int width, int height, const char *path);
/* Encodes the canvas as PNG and writes it to path atomically. */
int plot_canvas_save(plot_canvas *canvas, const char *path);
void plot_canvas_close(plot_canvas *canvas);

void plot_set_rgb(cairo_t *cr, plot_rgb c);
/* Text with its anchor at (x, y): ax = 0 left, 0.5 centre, 1 right; ay = 0 top, 0.5
 * middle, 1 baseline-ish bottom. angle in radians (text rotated about the anchor). */
void plot_text(cairo_t *cr, double x, double y, const char *text, double size, int bold, double ax, double ay,
               double angle);
/* Width of text in the given size. */
double plot_text_width(cairo_t *cr, const char *text, double size, int bold);

/* Diverging blue-white-red for t in [-1, 1]; sequential white-to-dark-blue for t in [0, 1]. */
plot_rgb plot_diverging(double t);
plot_rgb plot_sequential(double t);
/* Relative luminance, to pick black or white text on a coloured cell. */
double plot_luminance(plot_rgb c);

/* A scale from data values [lo, hi] to pixels [px_lo, px_hi] (px_hi may be < px_lo). */
typedef struct {
    double lo, hi;
    int log;
    double px_lo, px_hi;
    double ticks[PLOT_MAX_TICKS];
    int n_ticks;
    int tick_decimals; /* for linear axes */
    int format_g;      /* label ticks with %g instead of fixed decimals */
    int format_sci;    /* label ticks as 2.5e-4, the fewest mantissa digits (wins over format_g) */
} plot_axis;

/* Widens [lo, hi] to nice bounds and computes ticks (linear: about max_ticks steps of
 * 1, 2, 2.5 or 5 x 10^k; log: m x 10^k, as dense as max_ticks labels allow). lo, hi must be
 * finite, and positive for log. */
void plot_axis_fit(plot_axis *axis, double lo, double hi, int log_scale, int max_ticks);
double plot_axis_map(const plot_axis *axis, double v);
/* Tick label for value v in buf. */
void plot_axis_label(const plot_axis *axis, double v, char *buf, size_t len);

#endif /* HD_HAVE_CAIRO */

#endif
