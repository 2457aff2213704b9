/* plot_panel.c: one x-y chart inside a canvas (frame, grid, ticks, axis labels, lines with
 * markers, a legend placed in the emptiest corner), used by the history plot. */
#include "plot_panel.h"

#ifdef HD_HAVE_CAIRO

#include <math.h>
#include <stdio.h>

static const plot_rgb frame_colour = {0.25, 0.25, 0.25};
static const plot_rgb grid_colour = {0.89, 0.89, 0.89};
static const plot_rgb text_colour = {0.1, 0.1, 0.1};

void plot_panel_place(plot_panel *panel, double left, double top, double right, double bottom) {
    panel->left = left;
    panel->top = top;
    panel->right = right;
    panel->bottom = bottom;
    panel->x.px_lo = left;
    panel->x.px_hi = right;
    panel->y.px_lo = bottom;
    panel->y.px_hi = top;
}

void plot_panel_draw_frame(cairo_t *cr, const plot_panel *panel, const char *title, const char *x_label,
                           const char *y_label) {
    char label[64];
    cairo_set_line_width(cr, 1.0);
    plot_set_rgb(cr, grid_colour);
    for (int i = 0; i < panel->y.n_ticks; i++) {
        double y = round(plot_axis_map(&panel->y, panel->y.ticks[i])) + 0.5;
        cairo_move_to(cr, panel->left, y);
        cairo_line_to(cr, panel->right, y);
    }
    for (int i = 0; i < panel->x.n_ticks; i++) {
        double x = round(plot_axis_map(&panel->x, panel->x.ticks[i])) + 0.5;
        cairo_move_to(cr, x, panel->top);
        cairo_line_to(cr, x, panel->bottom);
    }
    cairo_stroke(cr);

    plot_set_rgb(cr, frame_colour);
    cairo_rectangle(cr, round(panel->left) + 0.5, round(panel->top) + 0.5, round(panel->right - panel->left),
                    round(panel->bottom - panel->top));
    for (int i = 0; i < panel->y.n_ticks; i++) {
        double y = round(plot_axis_map(&panel->y, panel->y.ticks[i])) + 0.5;
        cairo_move_to(cr, panel->left - 5, y);
        cairo_line_to(cr, panel->left, y);
    }
    for (int i = 0; i < panel->x.n_ticks; i++) {
        double x = round(plot_axis_map(&panel->x, panel->x.ticks[i])) + 0.5;
        cairo_move_to(cr, x, panel->bottom);
        cairo_line_to(cr, x, panel->bottom + 5);
    }
    cairo_stroke(cr);

    plot_set_rgb(cr, text_colour);
    double widest = 0;
    for (int i = 0; i < panel->y.n_ticks; i++) {
        plot_axis_label(&panel->y, panel->y.ticks[i], label, sizeof label);
        double w = plot_text_width(cr, label, 13, 0);
        widest = w > widest ? w : widest;
        plot_text(cr, panel->left - 8, plot_axis_map(&panel->y, panel->y.ticks[i]), label, 13, 0, 1.0, 0.5,
                  0);
    }
    for (int i = 0; i < panel->x.n_ticks; i++) {
        plot_axis_label(&panel->x, panel->x.ticks[i], label, sizeof label);
        plot_text(cr, plot_axis_map(&panel->x, panel->x.ticks[i]), panel->bottom + 9, label, 13, 0, 0.5, 0.0,
                  0);
    }
    double mid_x = 0.5 * (panel->left + panel->right);
    if (title)
        plot_text(cr, mid_x, panel->top - 10, title, 16, 1, 0.5, 1.0, 0);
    if (x_label)
        plot_text(cr, mid_x, panel->bottom + 30, x_label, 14, 0, 0.5, 0.0, 0);
    if (y_label)
        plot_text(cr, panel->left - widest - 18, 0.5 * (panel->top + panel->bottom), y_label, 14, 0, 0.5, 1.0,
                  -M_PI / 2);
}

static int usable(const plot_axis *axis, double v) {
    return isfinite(v) && (!axis->log || v > 0);
}

void plot_panel_draw_series(cairo_t *cr, const plot_panel *panel, const plot_series *series, int n) {
    cairo_save(cr);
    cairo_rectangle(cr, panel->left, panel->top, panel->right - panel->left, panel->bottom - panel->top);
    cairo_clip(cr);
    plot_set_rgb(cr, series->colour);
    cairo_set_line_width(cr, 2.2);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    if (series->dashed) {
        const double dash[] = {7.0, 4.0};
        cairo_set_dash(cr, dash, 2, 0);
    }
    int pen_down = 0;
    for (int i = 0; i < n; i++) {
        if (!usable(&panel->y, series->y[i]) || !isfinite(series->x[i])) {
            pen_down = 0;
            continue;
        }
        double px = plot_axis_map(&panel->x, series->x[i]), py = plot_axis_map(&panel->y, series->y[i]);
        if (series->steps) {
            /* Each value holds from halfway to the previous point to halfway to the next; the
             * first starts and the last ends at its own point, so the line covers the data only. */
            double before = i > 0 ? series->x[i - 1] : series->x[i];
            double after = i + 1 < n ? series->x[i + 1] : series->x[i];
            double x0 = plot_axis_map(&panel->x, 0.5 * (before + series->x[i]));
            double x1 = plot_axis_map(&panel->x, 0.5 * (series->x[i] + after));
            if (pen_down)
                cairo_line_to(cr, x0, py);
            else
                cairo_move_to(cr, x0, py);
            cairo_line_to(cr, x1, py);
        } else if (pen_down) {
            cairo_line_to(cr, px, py);
        } else {
            cairo_move_to(cr, px, py);
        }
        pen_down = 1;
    }
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    if (n <= 60) {
        for (int i = 0; i < n; i++) {
            if (!usable(&panel->y, series->y[i]) || !isfinite(series->x[i]))
                continue;
            double px = plot_axis_map(&panel->x, series->x[i]), py = plot_axis_map(&panel->y, series->y[i]);
            cairo_new_sub_path(cr);
            cairo_arc(cr, px, py, 3.5, 0, 2 * M_PI);
        }
        cairo_fill(cr);
    }
    cairo_restore(cr);
}

void plot_panel_draw_vline(cairo_t *cr, const plot_panel *panel, double x, plot_rgb colour) {
    double px = round(plot_axis_map(&panel->x, x)) + 0.5;
    const double dash[] = {6.0, 4.0};
    cairo_save(cr);
    plot_set_rgb(cr, colour);
    cairo_set_line_width(cr, 1.6);
    cairo_set_dash(cr, dash, 2, 0);
    cairo_move_to(cr, px, panel->top);
    cairo_line_to(cr, px, panel->bottom);
    cairo_stroke(cr);
    cairo_restore(cr);
}

void plot_panel_ring(cairo_t *cr, const plot_panel *panel, double x, double y, plot_rgb colour) {
    if (!usable(&panel->y, y))
        return;
    cairo_save(cr);
    plot_set_rgb(cr, colour);
    cairo_set_line_width(cr, 2.0);
    cairo_arc(cr, plot_axis_map(&panel->x, x), plot_axis_map(&panel->y, y), 7.5, 0, 2 * M_PI);
    cairo_stroke(cr);
    cairo_restore(cr);
}

/* How many points along the series' lines fall inside the rectangle. */
static int points_inside(const plot_panel *panel, const plot_series *series, int n_series, int n, double x0,
                         double y0, double x1, double y1) {
    int count = 0;
    for (int s = 0; s < n_series; s++) {
        for (int i = 0; i + 1 < n || (n == 1 && i == 0); i++) {
            int j = n == 1 ? 0 : i + 1;
            if (!usable(&panel->y, series[s].y[i]) || !usable(&panel->y, series[s].y[j]))
                continue;
            double ax = plot_axis_map(&panel->x, series[s].x[i]),
                   ay = plot_axis_map(&panel->y, series[s].y[i]);
            double bx = plot_axis_map(&panel->x, series[s].x[j]),
                   by = plot_axis_map(&panel->y, series[s].y[j]);
            for (int k = 0; k <= 16; k++) {
                double px = ax + (bx - ax) * k / 16.0, py = ay + (by - ay) * k / 16.0;
                count += px >= x0 && px <= x1 && py >= y0 && py <= y1;
            }
            if (n == 1)
                break;
        }
    }
    return count;
}

void plot_panel_legend(cairo_t *cr, const plot_panel *panel, const plot_series *series, int n_series, int n,
                       const plot_legend_entry *entries, int n_entries) {
    const double font = 13, row = 21, pad = 10, swatch = 28;
    double text_width = 0;
    for (int i = 0; i < n_entries; i++) {
        double w = plot_text_width(cr, entries[i].label, font, 0);
        text_width = w > text_width ? w : text_width;
    }
    double box_w = pad + swatch + 8 + text_width + pad, box_h = 2 * pad + n_entries * row - 6;
    double best_x = 0, best_y = 0;
    int best_count = -1;
    for (int corner = 0; corner < 4; corner++) {
        double x = corner & 1 ? panel->right - 10 - box_w : panel->left + 10;
        double y = corner & 2 ? panel->bottom - 10 - box_h : panel->top + 10;
        int count = points_inside(panel, series, n_series, n, x, y, x + box_w, y + box_h);
        if (best_count < 0 || count < best_count) {
            best_count = count;
            best_x = x;
            best_y = y;
        }
    }
    cairo_save(cr);
    cairo_rectangle(cr, round(best_x) + 0.5, round(best_y) + 0.5, round(box_w), round(box_h));
    cairo_set_source_rgba(cr, 1, 1, 1, 0.92);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.7, 0.7, 0.7);
    cairo_set_line_width(cr, 1.0);
    cairo_stroke(cr);
    for (int i = 0; i < n_entries; i++) {
        double cy = best_y + pad + row * i + 7;
        plot_set_rgb(cr, entries[i].colour);
        cairo_set_line_width(cr, entries[i].dashed ? 1.6 : 2.2);
        if (entries[i].dashed) {
            const double dash[] = {6.0, 4.0};
            cairo_set_dash(cr, dash, 2, 0);
        }
        cairo_move_to(cr, best_x + pad, cy);
        cairo_line_to(cr, best_x + pad + swatch, cy);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        plot_set_rgb(cr, text_colour);
        plot_text(cr, best_x + pad + swatch + 8, cy, entries[i].label, font, 0, 0.0, 0.5, 0);
    }
    cairo_restore(cr);
}

#endif /* HD_HAVE_CAIRO */
