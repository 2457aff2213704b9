/* model_summary.h: a Keras-like summary of a model: one row per layer (name and type, the
 * output shape of one image, parameters) after a row for the input, and the total.
 *
 * hd_model_summary_make writes every cell's text once, from a built hd_model (so shapes and
 * counts are the ones the model runs with); the trainer's start and `hd-gpu summary` print
 * it (hd_model_summary_print) and report.html lays the same cells out as a table. */
#ifndef HD_MODEL_SUMMARY_H
#define HD_MODEL_SUMMARY_H

#include <stddef.h>
#include <stdio.h>

#include "hd/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char layer[48];  /* "conv1 (Conv2D 3x3, ReLU)", "input" */
    char shape[48];  /* one image's output, channels x height x width: "32x26x26"; flat: "1600" */
    char params[32]; /* "18,496" */
    size_t param_count;
} hd_summary_row;

typedef struct {
    char spec[512]; /* the canonical spec */
    hd_summary_row rows[HD_MAX_LAYERS + 1];
    int n_rows;          /* the input row and one per layer */
    size_t total_params; /* == the model's param_count */
    char total[64];      /* "225,034 (879.0 KiB as float32)" */
} hd_model_summary;

/* Column titles, shared by the text and HTML tables. */
#define HD_SUMMARY_LAYER_TITLE  "Layer (type)"
#define HD_SUMMARY_SHAPE_TITLE  "Output shape"
#define HD_SUMMARY_PARAMS_TITLE "Params"

void hd_model_summary_make(const hd_model *model, hd_model_summary *summary);
/* The table as text, columns sized to their contents, parameters right-aligned:
 *   Model: conv:32:3:relu,...
 *   Layer (type)              Output shape  Params
 *   ------------------------  ------------  ------
 *   input                     1x28x28            0
 *   conv1 (Conv2D 3x3, ReLU)  32x26x26         320
 *   ...
 *   Total params: 225,034 (879.0 KiB as float32) */
void hd_model_summary_print(FILE *out, const hd_model_summary *summary);
/* n with commas between groups of three digits ("1,199,882") into buf. */
void hd_format_count(size_t n, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif
