/* freeze.h: --freeze WHICH, the layers that training keeps fixed (src/model/freeze.c).
 *
 * WHICH is a comma-separated list of layer kinds, as the spec names them (conv, dense, maxpool, ...), and
 * 1-based layer numbers or ranges (3, 1-4), counting the layers as `hd-gpu summary` lists them below the
 * input row: "conv", "1-3", "conv,6". A frozen layer (hd_layer.frozen) gets no optimizer step, and backward
 * stops at the lowest layer that is not frozen (model.h, optimizer.h). */
#ifndef HD_FREEZE_H
#define HD_FREEZE_H

#include "hd/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest WHICH accepted (it is recorded in checkpoints and settings.txt). */
#define HD_FREEZE_MAX_LEN 256

/* Checks the syntax of WHICH alone (before any model exists): 0, or -1 + hd_fail naming the bad item. */
int hd_freeze_check(const char *which);
/* Marks the layers WHICH names as frozen (and clears the others'). NULL or "" freezes nothing. -1 + hd_fail
 * when an item does not parse, a number is past the model's layers, a kind names no layer of the model, or
 * no layer with parameters would be left to train. */
int hd_freeze_apply(hd_model *model, const char *which);
/* The frozen layers' names, comma separated ("conv1,conv2"), or "none", into buf. */
void hd_freeze_describe(const hd_model *model, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif
