/* fuzz_metrics_csv.c: RUN_DIR/metrics.csv, which `hd-gpu report` and --resume read back (metrics.h), and
 * the history plot drawn from it (plot.h). Rows that read must write and read back to exactly the same
 * values (they are floats, written in digits that read back to the same float), and the plot must draw them
 * or fail in one line, whatever they hold (NaN, infinities, 3e38, negative losses). */
#include "fuzz_util.h"

#include "hd/common.h"
#include "hd/metrics.h"
#include "hd/plot.h"
#include "hd/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Exactly the same value (NaN as NaN). */
static int close_enough(double a, double b) {
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return a == b;
}

static void check_same(const hd_epoch_metrics *a, const hd_epoch_metrics *b, int i) {
    const double x[7] = {a->train_loss, a->train_acc, a->val_loss,      a->val_acc,
                         a->lr,         a->seconds,   a->images_per_sec};
    const double y[7] = {b->train_loss, b->train_acc, b->val_loss,      b->val_acc,
                         b->lr,         b->seconds,   b->images_per_sec};
    FUZZ_ASSERT(a->epoch == b->epoch, "row %d: epoch %d read back as %d", i, a->epoch, b->epoch);
    for (int k = 0; k < 7; k++)
        FUZZ_ASSERT(close_enough(x[k], y[k]), "row %d column %d: %.17g read back as %.17g", i, k + 1, x[k],
                    y[k]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int registered;
    if (!registered) /* cairo's and fontconfig's caches, released at exit so that LeakSanitizer sees none */
        registered = atexit(hd_plot_release_caches) == 0;
    const char *path = fuzz_temp_file(data, size);
    hd_epoch_metrics *rows = (hd_epoch_metrics *)1;
    int n = -1;
    hd_clear_error();
    int rc = hd_metrics_csv_read(path, &rows, &n);
    fuzz_check_result(rc, path);
    if (rc != 0) {
        FUZZ_ASSERT(rows == NULL && n == 0, "failure left outputs set");
        return 0;
    }
    FUZZ_ASSERT(n >= 0 && (n == 0 || rows), "%d rows", n);

    char again[128];
    snprintf(again, sizeof again, "%s.again.csv", path);
    FUZZ_ASSERT(hd_metrics_csv_write(again, rows, n) == 0, "write back: %s", hd_last_error());
    hd_epoch_metrics *back = NULL;
    int n_back = 0;
    FUZZ_ASSERT(hd_metrics_csv_read(again, &back, &n_back) == 0, "read back: %s", hd_last_error());
    FUZZ_ASSERT(n_back == n, "%d rows read back as %d", n, n_back);
    for (int i = 0; i < n; i++)
        check_same(&rows[i], &back[i], i);
    free(back);
    unlink(again);

    char png[128];
    snprintf(png, sizeof png, "%s.png", path);
    hd_clear_error();
    rc = hd_plot_history(png, rows, n, n > 0 ? rows[0].epoch : 0, n % 2 ? HD_ENDED_EPOCH_CAP : NULL);
    fuzz_check_result(rc, png);
    unlink(png);
    free(rows);
    return 0;
}
