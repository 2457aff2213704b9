/* plot_history.c: hd_plot_history, the training history figure: loss and accuracy per
 * epoch (train and validation) side by side, the learning rate in a strip below, a dashed
 * line at the epoch whose weights were kept, and a first line saying what ended the run. */
#include "hd/plot.h"

#include "hd/common.h"

#ifdef HD_HAVE_CAIRO

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "plot_panel.h"

static const plot_rgb train_colour = {0.122, 0.467, 0.706};
static const plot_rgb val_colour = {0.890, 0.420, 0.000};
static const plot_rgb lr_colour = {0.173, 0.627, 0.173};
static const plot_rgb best_colour = {0.35, 0.35, 0.35};

/* Columns of the metrics as doubles, accuracy in percent. */
typedef struct {
    double *epoch, *train_loss, *val_loss, *train_acc, *val_acc, *lr;
} history_columns;

static void columns_free(history_columns *c) {
    free(c->epoch);
    free(c->train_loss);
    free(c->val_loss);
    free(c->train_acc);
    free(c->val_acc);
    free(c->lr);
}

static int columns_fill(history_columns *c, const hd_epoch_metrics *rows, int n) {
    double *all[6];
    for (int k = 0; k < 6; k++)
        all[k] = hd_malloc((size_t)n * sizeof(double));
    c->epoch = all[0], c->train_loss = all[1], c->val_loss = all[2];
    c->train_acc = all[3], c->val_acc = all[4], c->lr = all[5];
    for (int k = 0; k < 6; k++)
        if (!all[k])
            return -1;
    int already_percent = 0;
    for (int i = 0; i < n; i++)
        if ((isfinite(rows[i].train_acc) && rows[i].train_acc > 1.0 + 1e-9) ||
            (isfinite(rows[i].val_acc) && rows[i].val_acc > 1.0 + 1e-9))
            already_percent = 1;
    double scale = already_percent ? 1.0 : 100.0;
    for (int i = 0; i < n; i++) {
        c->epoch[i] = rows[i].epoch;
        c->train_loss[i] = rows[i].train_loss;
        c->val_loss[i] = rows[i].val_loss;
        c->train_acc[i] = rows[i].train_acc * scale;
        c->val_acc[i] = rows[i].val_acc * scale;
        c->lr[i] = rows[i].lr;
    }
    return 0;
}

/* Smallest and largest finite (and, if positive_only, positive) values of two columns. */
static int value_range(const double *a, const double *b, int n, int positive_only, double *lo, double *hi) {
    int found = 0;
    for (int i = 0; i < n; i++) {
        const double v[2] = {a[i], b ? b[i] : NAN};
        for (int k = 0; k < 2; k++) {
            if (!isfinite(v[k]) || (positive_only && v[k] <= 0))
                continue;
            *lo = found && *lo < v[k] ? *lo : v[k];
            *hi = found && *hi > v[k] ? *hi : v[k];
            found = 1;
        }
    }
    if (!found) {
        *lo = positive_only ? 0.1 : 0.0;
        *hi = 1.0;
    }
    return found;
}

/* Epoch axis: integer ticks spaced 1, 2, 5, 10, ... and half an epoch of air each side. */
static void fit_epoch_axis(plot_axis *axis, double first, double last) {
    double span = last - first;
    double pad = fmax(0.4, 0.02 * span);
    static const int mantissas[3] = {1, 2, 5};
    int step = 1;
    for (int i = 0; span / step > 12 && i < 26; i++)
        step = mantissas[(i + 1) % 3] * (int)pow(10.0, (i + 1) / 3);
    axis->log = 0;
    axis->format_g = 0;
    axis->tick_decimals = 0;
    axis->lo = first - pad;
    axis->hi = last + pad;
    axis->n_ticks = 0;
    long start = step == 1 ? (long)ceil(first) : (long)ceil(first / step) * step;
    for (long v = start; v <= last + 1e-9 && axis->n_ticks < PLOT_MAX_TICKS; v += step)
        axis->ticks[axis->n_ticks++] = (double)v;
}

static void draw_loss_panel(cairo_t *cr, plot_panel *panel, const history_columns *c, int n, int best_row) {
    double lo = 0, hi = 1;
    value_range(c->train_loss, c->val_loss, n, 0, &lo, &hi);
    double pos_lo = 0, pos_hi = 1;
    int log_scale = value_range(c->train_loss, c->val_loss, n, 1, &pos_lo, &pos_hi) && lo > 0 && hi / lo > 10;
    if (log_scale)
        plot_axis_fit(&panel->y, lo, hi, 1, 8);
    else
        plot_axis_fit(&panel->y, lo < 0 ? lo : 0, hi + 0.03 * (hi - fmin(lo, 0)), 0, 6);
    plot_panel_draw_frame(cr, panel, "Loss", "epoch",
                          log_scale ? "cross-entropy (log scale)" : "cross-entropy");
    plot_series series[2] = {{c->epoch, c->train_loss, train_colour, 0, 0},
                             {c->epoch, c->val_loss, val_colour, 0, 0}};
    plot_panel_draw_series(cr, panel, &series[0], n);
    plot_panel_draw_series(cr, panel, &series[1], n);
    if (best_row >= 0) {
        plot_panel_draw_vline(cr, panel, c->epoch[best_row], best_colour);
        plot_panel_ring(cr, panel, c->epoch[best_row], c->val_loss[best_row], best_colour);
    }
}

static void draw_accuracy_panel(cairo_t *cr, plot_panel *panel, const history_columns *c, int n,
                                int best_row) {
    double lo = 0, hi = 1;
    value_range(c->train_acc, c->val_acc, n, 0, &lo, &hi);
    /* A little air so that points on a round value do not sit on the frame. */
    plot_axis_fit(&panel->y, lo - 0.03 * (hi - lo), hi + 0.03 * (hi - lo), 0, 6);
    if (hi <= 100.0 && panel->y.hi > 100.0)
        panel->y.hi = 100.0;
    plot_panel_draw_frame(cr, panel, "Accuracy", "epoch", "accuracy (%)");
    plot_series series[2] = {{c->epoch, c->train_acc, train_colour, 0, 0},
                             {c->epoch, c->val_acc, val_colour, 0, 0}};
    plot_panel_draw_series(cr, panel, &series[0], n);
    plot_panel_draw_series(cr, panel, &series[1], n);
    if (best_row >= 0) {
        plot_panel_draw_vline(cr, panel, c->epoch[best_row], best_colour);
        plot_panel_ring(cr, panel, c->epoch[best_row], c->val_acc[best_row], best_colour);
    }
}

static int compare_descending(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* On a log axis, ticks at the learning rates the run used: reductions by one factor are
 * evenly spaced there. At most max_ticks of them: every rate, or every second, third, ...
 * from the highest down, so the spacing stays even. Leaves the axis' ticks alone when the
 * rates are too many. */
static void lr_ticks(plot_axis *axis, const double *lr, int n, int max_ticks) {
    double used[64];
    int count = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(lr[i]) || lr[i] <= 0)
            continue;
        int seen = 0;
        for (int k = 0; k < count && !seen; k++)
            seen = fabs(used[k] - lr[i]) <= 1e-9 * used[k];
        if (seen)
            continue;
        if (count == (int)(sizeof used / sizeof used[0]))
            return;
        used[count++] = lr[i];
    }
    if (count < 2)
        return;
    qsort(used, (size_t)count, sizeof used[0], compare_descending);
    int every = (count + max_ticks - 1) / max_ticks;
    double chosen[64];
    int n_chosen = 0;
    for (int k = 0; k < count && n_chosen < max_ticks; k += every)
        chosen[n_chosen++] = used[k];
    /* The rates a per-batch schedule (one-cycle, cosine) ended its epochs on are no ladder of reductions:
     * two close ones on a long log axis would print their labels over each other (less than a seventh of
     * the axis apart). Then the axis keeps its own ticks. */
    double span = log(used[0] / used[count - 1]);
    for (int k = 1; k < n_chosen; k++)
        if (log(chosen[k - 1] / chosen[k]) < span / 7.0)
            return;
    axis->n_ticks = 0;
    for (int k = 0; k < n_chosen; k++)
        axis->ticks[axis->n_ticks++] = chosen[k];
    axis->format_sci = 1;
}

static void draw_lr_panel(cairo_t *cr, plot_panel *panel, const history_columns *c, int n, int best_row) {
    double lo = 0, hi = 1;
    int any = value_range(c->lr, NULL, n, 1, &lo, &hi);
    int log_scale = any && hi / lo > 3.0;
    if (log_scale) {
        plot_axis_fit(&panel->y, lo, hi, 1, 4);
        lr_ticks(&panel->y, c->lr, n, 5);
    } else {
        plot_axis_fit(&panel->y, 0, hi * 1.15, 0, 3);
        panel->y.format_g = 1;
    }
    plot_panel_draw_frame(cr, panel, log_scale ? "Learning rate (log scale)" : "Learning rate", "epoch",
                          "rate");
    plot_series series = {c->epoch, c->lr, lr_colour, 0, 1};
    plot_panel_draw_series(cr, panel, &series, n);
    if (best_row >= 0)
        plot_panel_draw_vline(cr, panel, c->epoch[best_row], best_colour);
}

/* The first line: how many epochs ran, what ended them, which was kept. */
static void history_headline(char *buf, size_t len, const history_columns *c, int n, int best_epoch,
                             int best_row, const char *ended_by) {
    int used = snprintf(buf, len, "%d epoch%s", n, n == 1 ? "" : "s");
    if (ended_by && *ended_by && used >= 0 && (size_t)used < len)
        used += snprintf(buf + used, len - (size_t)used, ", ended by %s", ended_by);
    if (best_row >= 0 && used >= 0 && (size_t)used < len) {
        if (isfinite(c->val_loss[best_row]))
            snprintf(buf + used, len - (size_t)used, "; kept epoch %d: validation loss %.4f, accuracy %.2f%%",
                     best_epoch, c->val_loss[best_row], c->val_acc[best_row]);
        else
            snprintf(buf + used, len - (size_t)used, "; no validation split: kept the last epoch, %d",
                     best_epoch);
    }
}

static void draw_history(cairo_t *cr, const history_columns *c, int n, int best_epoch, int best_row,
                         const char *ended_by) {
    char title[256], best_label[64];
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    history_headline(title, sizeof title, c, n, best_epoch, best_row, ended_by);
    plot_text(cr, 600, 24, title, 16, 0, 0.5, 0.0, 0);

    plot_panel loss = {0}, acc = {0}, lr = {0};
    plot_panel_place(&loss, 100, 96, 560, 490);
    plot_panel_place(&acc, 700, 96, 1160, 490);
    plot_panel_place(&lr, 100, 604, 1160, 712);
    fit_epoch_axis(&loss.x, c->epoch[0], c->epoch[n - 1]);
    fit_epoch_axis(&acc.x, c->epoch[0], c->epoch[n - 1]);
    fit_epoch_axis(&lr.x, c->epoch[0], c->epoch[n - 1]);
    draw_loss_panel(cr, &loss, c, n, best_row);
    draw_accuracy_panel(cr, &acc, c, n, best_row);
    draw_lr_panel(cr, &lr, c, n, best_row);

    snprintf(best_label, sizeof best_label, "kept: epoch %d", best_epoch);
    /* A run without a validation split has no validation series (NaN rows): no legend entry for it. */
    int has_val = 0;
    for (int i = 0; i < n; i++)
        has_val |= isfinite(c->val_loss[i]) || isfinite(c->val_acc[i]);
    plot_legend_entry entries[3] = {{"train", train_colour, 0}, {"validation", val_colour, 0}};
    int n_entries = 1 + has_val;
    if (best_row >= 0)
        entries[n_entries++] = (plot_legend_entry){best_label, best_colour, 1};
    plot_series loss_series[2] = {{c->epoch, c->train_loss, train_colour, 0, 0},
                                  {c->epoch, c->val_loss, val_colour, 0, 0}};
    plot_series acc_series[2] = {{c->epoch, c->train_acc, train_colour, 0, 0},
                                 {c->epoch, c->val_acc, val_colour, 0, 0}};
    plot_panel_legend(cr, &loss, loss_series, 2, n, entries, n_entries);
    plot_panel_legend(cr, &acc, acc_series, 2, n, entries, n_entries);
}

int hd_plot_history(const char *png_path, const hd_epoch_metrics *rows, int n, int best_epoch,
                    const char *ended_by) {
    if (!rows || n <= 0)
        return hd_fail("%s: no epochs to plot", png_path);
    for (int i = 1; i < n; i++)
        if (rows[i].epoch <= rows[i - 1].epoch)
            return hd_fail("%s: epochs out of order (%d after %d)", png_path, rows[i].epoch,
                           rows[i - 1].epoch);
    int best_row = -1;
    for (int i = 0; i < n && best_epoch > 0; i++)
        if (rows[i].epoch == best_epoch)
            best_row = i;
    history_columns columns = {0};
    if (columns_fill(&columns, rows, n) != 0) {
        columns_free(&columns);
        return -1;
    }
    plot_canvas canvas;
    if (plot_canvas_open(&canvas, HD_PLOT_HISTORY_WIDTH, HD_PLOT_HISTORY_HEIGHT, png_path) != 0) {
        columns_free(&columns);
        return -1;
    }
    draw_history(canvas.cr, &columns, n, best_epoch, best_row, ended_by);
    int rc = plot_canvas_save(&canvas, png_path);
    plot_canvas_close(&canvas);
    columns_free(&columns);
    return rc;
}

#else

int hd_plot_history(const char *png_path, const hd_epoch_metrics *rows, int n, int best_epoch,
                    const char *ended_by) {
    return hd_fail("%s: built without cairo", png_path);
}

#endif /* HD_HAVE_CAIRO */
