/* report.h: a run's report: the four figures of plot.h and RUN_DIR/report.html, made from
 * plain arrays (hd_report_generate), by the trainer at the end of a run and by
 * `hd-gpu report RUN_DIR`, which gets the arrays by evaluating the run's best checkpoint
 * (hd_run_evaluate_for_report). */
#ifndef HD_REPORT_H
#define HD_REPORT_H

#include <stdint.h>

#include "hd/metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

/* File names inside the run directory. */
#define HD_REPORT_HTML          "report.html"
#define HD_REPORT_HISTORY_PNG   "history.png"
#define HD_REPORT_CONFUSION_PNG "confusion.png"
#define HD_REPORT_DIGITS_PNG    "misclassified.png"
#define HD_REPORT_FILTERS_PNG   "filters.png"

/* Everything the report shows. An array that is NULL (or a count of 0) leaves its part
 * out: no figure, and the page says it is missing. hd_report_inputs_free frees every
 * array, so a filled struct must hold only malloc'ed arrays (or NULL). */
typedef struct {
    hd_epoch_metrics *rows; /* training history, n_rows epochs in order */
    int n_rows;
    int best_epoch;      /* the epoch whose weights were kept (best.safetensors); 0 if unknown */
    char *settings_text; /* the run's settings, "key: value" per line */

    double test_accuracy; /* fraction in [0, 1]; negative if not evaluated */
    int *confusion;       /* classes x classes test counts, row = true, column = predicted */
    int classes;

    uint8_t *digits; /* n_digits misclassified test images, digit_rows x digit_cols bytes each */
    int digit_rows, digit_cols;
    int *digit_true;         /* their true labels */
    int *digit_predicted;    /* the predicted labels */
    float *digit_confidence; /* the predicted class's probability (may be NULL) */
    int n_digits;            /* misclassified images held (the plot shows at most 36) */

    float *filters; /* first convolution layer's weights, (filter_count, filter_in_c, filter_k, filter_k) */
    int filter_count, filter_in_c, filter_k;
} hd_report_inputs;

void hd_report_inputs_free(hd_report_inputs *in);

/* Implemented by the trainer side (src/run_eval.c), called by `hd-gpu report RUN_DIR`.
 * Loads RUN_DIR/best.safetensors into the model the run describes, evaluates it on the
 * MNIST test set on the device ("auto", "cpu" or a GPU index), and fills *out with:
 * best_epoch, settings_text (RUN_DIR/settings.txt), test_accuracy, confusion and classes,
 * the misclassified test digits (all of them, or at least the first 36, in test-set order,
 * with true label, prediction and its probability) and the first conv layer's weights.
 * It leaves rows / n_rows alone (the caller reads RUN_DIR/metrics.csv). Every array is
 * malloc'ed (free with hd_report_inputs_free). 0, or -1 + hd_fail() on error. */
int hd_run_evaluate_for_report(const char *run_dir, const char *device, hd_report_inputs *out);

/* Writes RUN_DIR/report.html: test accuracy, per-class accuracy, the metrics table (best
 * epoch marked), the settings, and relative links to the four PNGs (a PNG that is not in
 * run_dir is named as missing). All text is HTML-escaped. test_accuracy < 0: not shown;
 * confusion may be NULL. */
int hd_report_write_html(const char *run_dir, const hd_epoch_metrics *rows, int n, int best_epoch,
                         const char *settings_text, double test_accuracy, const int *confusion, int classes);

/* Writes the four PNGs (those whose data is present) and report.html into run_dir. It
 * tries every part even after one fails (so a build without cairo still gets its HTML)
 * and then returns -1 with the first failure's message, or 0. */
int hd_report_generate(const char *run_dir, const hd_report_inputs *in);

#ifdef __cplusplus
}
#endif

#endif
