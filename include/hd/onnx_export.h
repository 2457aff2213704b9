/* onnx_export.h: a model as a standard ONNX model (opset 13), encoded with protobuf-c from ONNX's
 * own onnx.proto (cmake/onnx.cmake generates the C).
 *
 * The graph takes "input", float [N, C, H, W] (N a dynamic batch dimension, "N"; C x H x W the
 * model's input shape, 1 x 28 x 28 for MNIST) scaled as hd-gpu trains on it: each IDX byte / 255, so
 * 0 is the background and 1 full ink; preprocessing stays outside the model. It returns "logits",
 * float [N, classes], or with softmax "probabilities" (Softmax over axis 1). Layers map one to one:
 *   conv    Conv (kernel KxK, stride 1, no padding; weights OIHW as in the checkpoint) [+ Relu]
 *   maxpool MaxPool (window and stride SIZE, floor)
 *   flatten Flatten (axis 1)
 *   dense   Gemm (transB = 1: weights [out, in] as in the checkpoint) [+ Relu]; a Flatten first
 *           when its input is still [N, C, 1, 1]
 *   dropout Dropout with its ratio, not in training mode: the identity, as hd-gpu at inference
 * The initialisers are the model's parameters, named as in the checkpoint ("conv1.weight"). */
#ifndef HD_ONNX_EXPORT_H
#define HD_ONNX_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "hd/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HD_ONNX_OPSET      13
#define HD_ONNX_IR_VERSION 7 /* the IR version that goes with opset 13 */

typedef struct {
    int softmax;        /* append Softmax: the output is "probabilities" instead of "logits" */
    const char *source; /* where the model came from (a checkpoint's path), for the doc string; may be NULL */
} hd_onnx_options;

/* 1 when this build has ONNX export (protobuf-c and onnx.proto were found), else 0. */
int hd_onnx_available(void);

/* The encoded ModelProto of `model` (its parameters read from the backend), malloc'ed into *data.
 * -1 + hd_fail when a layer has no ONNX mapping or the build has no ONNX export. */
int hd_onnx_encode(const hd_model *model, const hd_onnx_options *opt, uint8_t **data, size_t *size);

/* hd_onnx_encode written atomically to `path` (temp file, fsync, rename): a failure leaves no
 * partial file and any old file at `path` as it was. */
int hd_onnx_export(const hd_model *model, const hd_onnx_options *opt, const char *path);

#ifdef __cplusplus
}
#endif

#endif
