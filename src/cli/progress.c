/* progress.c: the live progress bar (see progress.h). */
#include "hd/progress.h"
#include "hd/common.h"

#include <stdio.h>

void hd_progress_begin(hd_progress *p, int enabled, int epoch, int epochs, int steps) {
    p->enabled = enabled;
    p->epoch = epoch;
    p->epochs = epochs;
    p->steps = steps;
    p->start = hd_now_seconds();
    p->last_draw = 0;
}

int hd_progress_due(const hd_progress *p) {
    return p->enabled && hd_now_seconds() - p->last_draw >= 0.125;
}

void hd_progress_draw(hd_progress *p, int step, double loss, double accuracy, double images_per_sec) {
    if (!p->enabled)
        return;
    double now = hd_now_seconds();
    p->last_draw = now;
    enum { WIDTH = 24 };
    char bar[WIDTH + 1];
    int filled = p->steps ? step * WIDTH / p->steps : 0;
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < filled ? '=' : (i == filled ? '>' : ' ');
    bar[WIDTH] = '\0';
    double elapsed = now - p->start;
    double eta = step ? elapsed * (p->steps - step) / step : 0.0;
    fprintf(stderr, "\r\033[Kepoch %d/%d [%s] %d/%d loss %.4f acc %.2f%% %.0f img/s ETA %.0fs", p->epoch,
            p->epochs, bar, step, p->steps, loss, 100.0 * accuracy, images_per_sec, eta);
    fflush(stderr);
}

void hd_progress_end(hd_progress *p) {
    if (p->enabled) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
    }
}
