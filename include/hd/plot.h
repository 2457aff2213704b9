/* plot.h: the PNG figures of a run (training history, confusion matrix, misclassified
 * digits, first-layer filters), drawn with cairo from plain arrays.
 *
 * Every function writes one PNG atomically and returns 0, or -1 + hd_fail() naming the
 * file. In a build without cairo (HD_HAVE_CAIRO unset) each fails with
 * "PATH: built without cairo". Accuracies are fractions in [0, 1] (shown as percent);
 * values above 1 are taken as percent already. Non-finite values are left out of lines. */
#ifndef HD_PLOT_H
#define HD_PLOT_H

#include <stdint.h>

#include "hd/metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Canvas sizes in pixels, so callers and tests know what each PNG measures. */
#define HD_PLOT_HISTORY_WIDTH       1200
#define HD_PLOT_HISTORY_HEIGHT      800
#define HD_PLOT_CONFUSION_WIDTH     1060
#define HD_PLOT_CONFUSION_HEIGHT    820
#define HD_PLOT_MISCLASSIFIED_MAX   36 /* digits drawn at most; the rest are left out */
#define HD_PLOT_FILTERS_MAX         64 /* filters drawn at most */
#define HD_PLOT_FILTER_CHANNELS_MAX 8  /* input channels drawn per filter at most */

/* Loss (train, validation) and accuracy (train, validation) per epoch side by side, the
 * learning rate below (a staircase over the epochs run; log scale, ticked at the rates used,
 * when it varies by more than 3x), and a dashed line at best_epoch (the epoch whose weights
 * were kept; <= 0 draws none). The first line says how many epochs ran, what ended them
 * (ended_by, e.g. HD_ENDED_EPOCH_CAP; NULL: not said) and which was kept. rows are in epoch
 * order. */
int hd_plot_history(const char *png_path, const hd_epoch_metrics *rows, int n, int best_epoch,
                    const char *ended_by);

/* Heat map of confusion (classes x classes, row = true class, column = predicted), with
 * the count in each cell, colour = share of the true class, per-class accuracy on the
 * right. title may be NULL (no title line, as in the report). */
int hd_plot_confusion(const char *png_path, const int *confusion, int classes, const char *title);

/* Grid of up to HD_PLOT_MISCLASSIFIED_MAX digits (images: n x rows x cols bytes, 0..255,
 * white digit on black as in MNIST) captioned "true T / pred P (confidence)". n may be 0
 * (the figure says so). confidence may be NULL. */
int hd_plot_misclassified(const char *png_path, const uint8_t *images, int rows, int cols,
                          const int *true_labels, const int *predicted, const float *confidence, int n);
/* The size hd_plot_misclassified gives its PNG. */
void hd_plot_misclassified_size(int n, int rows, int cols, int *width, int *height);

/* First-layer convolution filters, weights laid out (count, in_c, k, k), as a grid of small
 * heat maps: diverging colours, each filter scaled symmetrically to its own largest |w|,
 * printed under it with the same number of decimals for every filter. */
int hd_plot_filters(const char *png_path, const float *weights, int count, int in_c, int k);
/* The size hd_plot_filters gives its PNG. */
void hd_plot_filters_size(int count, int in_c, int k, int *width, int *height);

/* Frees cairo's and fontconfig's process-wide caches (they would read as leaks under the
 * sanitizers). Call once at exit, after the last plot; a no-op without cairo. */
void hd_plot_release_caches(void);

#ifdef __cplusplus
}
#endif

#endif
