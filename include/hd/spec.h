/* spec.h: a network's architecture as a string, parsed into layer specs and printed back (src/model/spec.c).
 *
 * A spec is a short string, one layer per comma-separated item:
 *   conv:FILTERS:KERNEL[:sSTRIDE][:same|valid|pPAD][:relu]
 *                                2-D convolution; options in that order. sSTRIDE: stride (default 1);
 *                                same: symmetric zero padding (KERNEL-1)/2, odd kernels only, as
 *                                PyTorch's Conv2d(padding=(k-1)/2); valid: no padding (the default, as
 *                                Keras); pPAD: PAD < KERNEL zeros on every side. Output side
 *                                floor((in + 2 pad - KERNEL) / stride) + 1.
 *   maxpool:SIZE                 max pooling, window and stride SIZE
 *   avgpool:SIZE                 average pooling, window and stride SIZE, no padding, floor
 *   gap                          global average pooling: (c, h, w) -> (c, 1, 1); dense may follow it
 *   flatten                      (n, c, h, w) -> (n, c*h*w); no data movement in NCHW
 *   dense:UNITS[:relu]           fully connected
 *   dropout:RATE                 inverted dropout, active in training only
 *   bn                           batch normalisation over channels: BatchNorm2d after a (c, h, w)
 *                                input, BatchNorm1d after a flat one (c, 1, 1); PyTorch's eps 1e-5 and
 *                                momentum 0.1, learnable scale (init 1) and shift (init 0); batch
 *                                statistics in training, running statistics in evaluation
 *   relu                         a standalone ReLU (for conv -> bn -> relu orders)
 * The last layer's units are the classes; softmax cross-entropy is the loss. The default
 * (HD_DEFAULT_SPEC) is the classic Keras MNIST CNN:
 *   1@28x28 -> conv 32@26x26 -> pool 32@13x13 -> conv 64@11x11 -> pool 64@5x5
 *           -> flatten 1600 -> dense 128 -> dropout 0.5 -> dense 10
 */
#ifndef HD_SPEC_H
#define HD_SPEC_H

#include "hd/backend.h" /* hd_activation */

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HD_DEFAULT_SPEC                                                                                      \
    "conv:32:3:relu,maxpool:2,conv:64:3:relu,maxpool:2,flatten,dense:128:relu,dropout:0.5,dense:10"
#define HD_MAX_LAYERS 32

typedef enum {
    HD_LAYER_CONV,
    HD_LAYER_MAXPOOL,
    HD_LAYER_FLATTEN,
    HD_LAYER_DENSE,
    HD_LAYER_DROPOUT,
    HD_LAYER_AVGPOOL,
    HD_LAYER_GAP,
    HD_LAYER_BATCHNORM,
    HD_LAYER_RELU
} hd_layer_kind;

/* Limits of the conv options (a spec from elsewhere is checked against them). */
#define HD_SPEC_MAX_KERNEL 15
#define HD_SPEC_MAX_STRIDE 64 /* pPAD: 0 <= PAD < KERNEL */

typedef struct {
    hd_layer_kind kind;
    int units;  /* conv filters or dense units */
    int kernel; /* conv kernel size */
    int stride; /* conv stride (1 unless sSTRIDE) */
    int pad;    /* conv zero padding on every side (same: (kernel-1)/2) */
    int pool;   /* pooling window */
    float rate; /* dropout rate */
    hd_activation act;
} hd_layer_spec;

/* Parse a spec string; -1 + hd_fail() naming the bad item. */
int hd_spec_parse(const char *text, hd_layer_spec *layers, int max_layers, int *n_layers);
/* Write the canonical spec string (as parsed back by hd_spec_parse). */
void hd_spec_format(const hd_layer_spec *layers, int n_layers, char *buf, size_t buf_len);

#ifdef __cplusplus
}
#endif

#endif
