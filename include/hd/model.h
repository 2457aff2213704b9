/* model.h: a network described by data, built on a backend.
 *
 * The architecture is a spec string (spec.h).
 *
 * All parameters live in one backend allocation (params), in layer order, weight then
 * bias; grads, and the optimizer's two state buffers, have the same layout. So copying,
 * comparing, saving and updating the parameters is one loop over one array.
 *
 * State that is not trained (batch norm's running mean and variance) lives in a second backend
 * allocation, state, in layer order with its own offsets (hd_layer.state_offset, state_count). The
 * optimizer never sees it; the forward pass in training updates it; checkpoints save it. */
#ifndef HD_MODEL_H
#define HD_MODEL_H

#include "hd/backend.h"
#include "hd/spec.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest input channels, height or width hd_model_create accepts. */
#define HD_MODEL_MAX_INPUT_SIDE 4096
/* Most classes a run trains (its labels are IDX bytes, 0..255). */
#define HD_MAX_CLASSES 256

typedef struct {
    hd_layer_spec spec;
    char name[16];                      /* "conv1", "dense2", ...: tensor names in checkpoints */
    int in_c, in_h, in_w;               /* input shape of one image */
    int out_c, out_h, out_w;            /* output shape of one image (dense: out_c = units, h = w = 1) */
    size_t in_size, out_size;           /* floats per image */
    size_t weight_offset, weight_count; /* into model params */
    size_t bias_offset, bias_count;
    int weight_dims[4], weight_rank;  /* shape of the weight tensor */
    int fan_in, fan_out;              /* for Glorot initialisation */
    size_t state_offset, state_count; /* into model state: bn's running mean, then running variance */
    int frozen; /* --freeze: no optimizer step; batch norm uses its running statistics */
    void *plan; /* backend plan (conv, pool) */
    /* conv: its op also runs the max pooling layer after it (the backend's conv2d_maxpool_*), whose own op
     * then does nothing (hd_layer_pooled_by_conv); this layer's out and dout are then NULL (hd_model_fuse).
     */
    int fused_pool;
    float *saved; /* bn: the mean and 1/std of the last forward (2 * channels floats) */
    /* activations, max_batch * out_size (flatten: its input's, an alias; a fused conv: NULL) */
    float *out;
    float *dout; /* gradient of the loss with respect to out */
} hd_layer;

typedef struct {
    hd_backend *be;
    hd_layer_spec specs[HD_MAX_LAYERS];
    hd_layer layers[HD_MAX_LAYERS];
    int n_layers;
    char spec_text[512];
    int in_c, in_h, in_w;
    /* The input convention: pixels in [0, 1], which every path that feeds the model (training batches,
     * evaluation, predict, the ONNX export) maps to (x - input_mean) / input_std before the first layer
     * (--normalize; 0 and 1 otherwise). Recorded in the checkpoint as hd.input_mean, hd.input_std. */
    float input_mean, input_std;
    int classes;
    /* Label smoothing of the training objective (--label-smoothing; 0 when built): hd_model_loss applies
     * it when it computes a gradient (a training step); the loss it reports for evaluation (no gradient)
     * is always the plain cross-entropy, comparable between runs. */
    float label_smoothing;
    /* The classes' names (--class-names), one a line in class order, malloc'ed; NULL: shown as numbers.
     * Recorded in the checkpoint as hd.class_names. */
    char *class_names;
    int max_batch;
    size_t param_count;
    float *params, *grads; /* backend memory, param_count floats each */
    size_t state_count;
    float *state; /* backend memory, state_count floats (NULL when 0): running statistics */
    /* Training steps the model has taken (hd_train_step_run counts them; checkpoints keep them):
     * every bn layer's num_batches_tracked. */
    uint64_t batches_tracked;
    float *input;          /* max_batch * in_c*in_h*in_w */
    int32_t *labels;       /* max_batch */
    float *metrics;        /* [loss_sum, correct] accumulated by softmax_xent */
    hd_step_scalars *step; /* backend memory: this step's dropout counter and step size */
} hd_model;

/* Builds layers, plans and buffers for batches of up to max_batch images; parameters are
 * zero until hd_model_init_weights or a checkpoint fills them. Refused (-1 + hd_fail) when the
 * spec does not fit the input, or any tensor for max_batch images, a layer's weights or all
 * parameters would hold more than INT_MAX values. */
int hd_model_create(hd_model *model, hd_backend *be, const char *spec, int in_c, int in_h, int in_w,
                    int max_batch);
void hd_model_destroy(hd_model *model);
/* on = 1 (what hd_model_create does): each conv followed by a max pooling runs the two as one op where the
 * backend has it (hd_backend_ops.conv2d_maxpool_*; the CPU's), the same results bit for bit, and the conv
 * has no out and dout buffers (its output never exists in memory: 22 MB fewer at batch 128 for the default
 * model's conv1; buffers an earlier call allocated are freed); on = 0: every layer runs its own op and
 * writes its out, the buffers allocated now (without hd_model_create's memory check: they are a test's),
 * for a caller that reads every layer's activations (the gradient and GPU-vs-CPU tests). Switch between
 * passes only: a backward must follow a forward run the same way. -1 + hd_fail() when the buffers cannot be
 * allocated (the model is left fused). */
int hd_model_fuse(hd_model *model, int on);
/* Layer i is a max pooling that the conv before it runs in its op (hd_layer.fused_pool): its own op does
 * nothing, and it has no input in memory. */
static inline int hd_layer_pooled_by_conv(const hd_model *model, int i) {
    return i > 0 && model->layers[i - 1].fused_pool;
}
/* The shapes, names and parameter layout of hd_model_create without a backend (nothing allocated, be NULL):
 * what a checkpoint's tensors are matched against before a run starts. */
int hd_model_layout(hd_model *model, const char *spec, int in_c, int in_h, int in_w, int max_batch);
/* Class c's name in `names` (one a line, as hd_model.class_names), or its number when names is NULL or has
 * no line c, into buf; returns buf. */
const char *hd_class_name(const char *names, int c, char *buf, size_t len);

/* 0 when images of channels x rows x cols are what the model takes; otherwise -1 + hd_fail, one line
 * naming `source` (the images file, or what the set is) and both shapes. Every set of images is checked
 * so before it is copied into the model's input buffer, which holds max_batch images of the model's shape. */
int hd_model_check_input(const hd_model *model, const char *source, int channels, int rows, int cols);

/* Glorot-uniform weights (Keras' default), zero biases, from the seed (Philox, so the
 * same on every backend and thread count); batch norm: scale 1, shift 0, running mean 0, running
 * variance 1, and batches_tracked 0. */
int hd_model_init_weights(hd_model *model, uint64_t seed);

/* Queues the scalars of the next training step into model->step (backend memory): the
 * dropout masks' counter, the optimizer's step size (hd_optimizer_next_step_size) and the weight
 * average's share of this step (hd_optimizer.average_weight; 0 without one). */
void hd_model_set_step(hd_model *model, uint64_t step, float step_size, float average_weight);
/* Forward over n images already in model->input. training=1 applies dropout with the
 * mask of (seed, model->step's step) and normalises batch norm with the batch's statistics
 * (updating the running ones) unless the layer is frozen; training=0 uses the running ones. Returns the
 * logits (backend memory, n x classes). */
const float *hd_model_forward(hd_model *model, int n, int training, uint64_t seed);
/* Layer i's part of hd_model_forward (its one op; nothing for a flatten): hd_model_forward is this for
 * i = 0 .. n_layers - 1, so calling it layer by layer runs the same pass (bench --layers times it so). */
void hd_model_forward_layer(hd_model *model, int i, int n, int training, uint64_t seed);
/* Loss on the last forward: adds to model->metrics; with want_grad, also the gradient of
 * the mean loss for hd_model_backward, both then against targets smoothed by model->label_smoothing.
 * Labels must be in model->labels. */
void hd_model_loss(hd_model *model, int n, int want_grad);
/* Backward from the loss gradient into model->grads (written with =). It stops at the lowest trainable
 * layer (hd_model_first_trainable): the layers below it get no gradient work, and their grads are not
 * written (frozen layers' are never read: the optimizer skips them). */
void hd_model_backward(hd_model *model, int n, uint64_t seed);
/* Layer i's part of hd_model_backward: hd_model_backward is this for i = n_layers - 1 down to lowest
 * (hd_model_first_trainable); layer i computes its input gradient only when i > lowest. */
void hd_model_backward_layer(hd_model *model, int i, int lowest, int n, uint64_t seed);
/* The index of the lowest layer with parameters that is not frozen; n_layers when there is none. */
int hd_model_first_trainable(const hd_model *model);

/* Host copies of parameters (param_count floats). */
int hd_model_get_params(const hd_model *model, float *host);
int hd_model_set_params(hd_model *model, const float *host);

/* Host copies of the state that is not trained (state_count floats). */
int hd_model_get_state(const hd_model *model, float *host);
int hd_model_set_state(hd_model *model, const float *host);

/* Forward/backward FLOPs per image (multiply-add = 2), computed from the spec. */
double hd_model_flops_forward(const hd_model *model);
double hd_model_flops_backward(const hd_model *model);
/* Layer i's share of those (the totals above are their sums over the layers). */
double hd_layer_flops_forward(const hd_model *model, int i);
double hd_layer_flops_backward(const hd_model *model, int i);

#ifdef __cplusplus
}
#endif

#endif
