/* progress.h: the per-epoch progress line: a live bar on a terminal (redrawn in place),
 * nothing between epochs when output is not a terminal (the trainer prints one plain line
 * per epoch either way). */
#ifndef HD_PROGRESS_H
#define HD_PROGRESS_H

typedef struct {
    int enabled;
    int epoch, epochs;
    int steps;
    double start;
    double last_draw;
} hd_progress;

void hd_progress_begin(hd_progress *p, int enabled, int epoch, int epochs, int steps);
/* Redraws at most ~8 times a second; returns 1 if the caller should refresh the figures
 * it shows (i.e. read the loss back from the backend) before calling hd_progress_draw. */
int hd_progress_due(const hd_progress *p);
void hd_progress_draw(hd_progress *p, int step, double loss, double accuracy, double images_per_sec);
void hd_progress_end(hd_progress *p);

#endif
