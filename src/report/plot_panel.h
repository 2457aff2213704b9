/* plot_panel.h: an x-y chart inside a canvas (private to the plot files): frame, grid,
 * ticks, axis labels, lines with markers, dashed markers and a legend that goes to the
 * corner with the fewest data points. Only compiled with cairo (HD_HAVE_CAIRO). */
#ifndef HD_PLOT_PANEL_H
#define HD_PLOT_PANEL_H

#include "plot_common.h"

#ifdef HD_HAVE_CAIRO

typedef struct {
    double left, top, right, bottom; /* plot area in pixels */
    plot_axis x, y;
} plot_panel;

typedef struct {
    const double *x, *y; /* n points; non-finite (or <= 0 on a log axis) breaks the line */
    plot_rgb colour;
    int dashed;
    int steps; /* staircase: each value held from halfway to its neighbours (x in order), from the first
                  point to the last */
} plot_series;

typedef struct {
    const char *label;
    plot_rgb colour;
    int dashed;
} plot_legend_entry;

/* Sets the plot area and the pixel ranges of both axes (fit the axes before or after). */
void plot_panel_place(plot_panel *panel, double left, double top, double right, double bottom);
/* Grid, frame, ticks and tick labels; title above, x_label below, y_label rotated left. */
void plot_panel_draw_frame(cairo_t *cr, const plot_panel *panel, const char *title, const char *x_label,
                           const char *y_label);
/* Line through n points with dot markers (markers only when n <= 60), clipped to the area. */
void plot_panel_draw_series(cairo_t *cr, const plot_panel *panel, const plot_series *series, int n);
/* Dashed vertical line at data x. */
void plot_panel_draw_vline(cairo_t *cr, const plot_panel *panel, double x, plot_rgb colour);
/* A hollow ring around the data point (x, y). */
void plot_panel_ring(cairo_t *cr, const plot_panel *panel, double x, double y, plot_rgb colour);
/* Legend box in whichever corner covers the fewest points of the n_series series. */
void plot_panel_legend(cairo_t *cr, const plot_panel *panel, const plot_series *series, int n_series, int n,
                       const plot_legend_entry *entries, int n_entries);

#endif /* HD_HAVE_CAIRO */

#endif
