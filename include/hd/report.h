/* report.h: a run's report: the four figures of plot.h and RUN_DIR/report.html, made from
 * plain arrays (hd_report_generate), by the trainer at the end of a run and by
 * `hd-gpu report RUN_DIR`, which gets the arrays by evaluating the run's best checkpoint
 * (hd_run_evaluate_for_report, report_eval.h). */
#ifndef HD_REPORT_H
#define HD_REPORT_H

#include <stdint.h>

#include "hd/metrics.h"
#include "hd/model_summary.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Lines of RUN_DIR/results.txt the report reads back ("key: value"): what ended training
 * (HD_ENDED_*) and when the run finished (UTC, "2026-12-06 19:36:26 UTC"). */
#define HD_RESULTS_ENDED_BY      "ended_by"
#define HD_RESULTS_FINISHED      "finished"
#define HD_ENDED_EPOCH_CAP       "the epoch cap"
#define HD_ENDED_EARLY_STOPPING  "early stopping"
#define HD_ENDED_TARGET_ACCURACY "the target test accuracy (--time-to-accuracy)"

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

    double test_accuracy;      /* fraction in [0, 1]; negative if not evaluated */
    double test_loss;          /* mean cross-entropy on the test set (shown with test_accuracy) */
    char *ended_by;            /* what ended training (HD_ENDED_*, or a note); NULL: not recorded */
    char *finished;            /* when the run finished, as results.txt has it; NULL: not recorded */
    hd_model_summary *summary; /* the model's layer table; NULL: left out */
    int *confusion;            /* classes x classes test counts, row = true, column = predicted */
    int classes;
    char *class_names; /* one a line (--class-names), malloc'ed; NULL: classes shown as numbers */

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

/* Fills in->ended_by and in->finished from RUN_DIR/results.txt (the trainer writes it when a
 * run ends normally). Without results.txt, ended_by says the run did not finish (interrupted,
 * diverged or still running). A line missing from it leaves its field NULL. 0, or -1 +
 * hd_fail() when the file exists but cannot be read. */
int hd_report_read_results(const char *run_dir, hd_report_inputs *in);

/* Writes RUN_DIR/report.html (readable from phone width up): test accuracy and loss, what
 * ended training, when and how long it ran, per-class accuracy, the metrics table (best
 * epoch marked), the model's layer table, the settings, and relative links to the four PNGs
 * (a PNG that is not in run_dir is named as missing). Each section's title appears once:
 * as its heading (the PNGs carry no title of their own). All text is HTML-escaped.
 * test_accuracy < 0: not shown; any array may be NULL. */
int hd_report_write_html(const char *run_dir, const hd_report_inputs *in);

/* Writes the four PNGs (those whose data is present) and report.html into run_dir. It
 * tries every part even after one fails (so a build without cairo still gets its HTML)
 * and then returns -1 with the first failure's message, or 0. */
int hd_report_generate(const char *run_dir, const hd_report_inputs *in);

#ifdef __cplusplus
}
#endif

#endif
