/* metrics.h: one row per epoch of training history, as written to RUN_DIR/metrics.csv. */
#ifndef HD_METRICS_H
#define HD_METRICS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int epoch; /* 1-based */
    double train_loss, train_acc;
    double val_loss, val_acc;
    double lr;             /* learning rate used in this epoch */
    double seconds;        /* wall time of the epoch (training + validation) */
    double images_per_sec; /* training images per second */
} hd_epoch_metrics;

#define HD_METRICS_CSV_HEADER "epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds,images_per_sec"

/* Rewrites the whole file atomically with these rows (header first). Every value is kept at
 * float precision (the precision training computes in), written in the fewest digits that
 * read back to the same float (0.001f as "0.001"); a finite value beyond float range is an
 * error. So reading gives each value rounded to float, exactly, and writing what was read
 * gives the same file again. */
int hd_metrics_csv_write(const char *path, const hd_epoch_metrics *rows, int n);
/* Reads a metrics.csv; *rows is malloc'ed. Values are parsed as floats (widened to double).
 * -1 + hd_fail() naming the file and line. */
int hd_metrics_csv_read(const char *path, hd_epoch_metrics **rows, int *n);

#ifdef __cplusplus
}
#endif

#endif
