/* onnx_export.c: a model as an ONNX ModelProto, built from protobuf-c's structs for ONNX's onnx.proto
 * and encoded by protobuf-c (see onnx_export.h for the graph it writes). */
#include "hd/onnx_export.h"
#include "hd/common.h"
#include "hd/shared_math.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef HD_HAVE_ONNX

int hd_onnx_available(void) {
    return 0;
}

int hd_onnx_encode(const hd_model *model, const hd_onnx_options *opt, uint8_t **data, size_t *size) {
    (void)model;
    (void)opt;
    *data = NULL;
    *size = 0;
    return hd_fail("ONNX export: this hd-gpu was built without protobuf-c or ONNX's onnx.proto "
                   "(Debian: libprotobuf-c-dev protobuf-c-compiler python3-onnx)");
}

#else

#include "onnx.pb-c.h"

/* Per layer at most three nodes (a Flatten or Reshape before it, the layer, its Relu) and four
 * initialisers (weight, bias, and a Reshape's shape or a Dropout's ratio; batch norm's scale, bias,
 * running mean and running variance); then the Softmax. */
#define MAX_NODES   (HD_MAX_LAYERS * 3 + 3) /* + Sub and Div of the input normalisation, Softmax */
#define MAX_ATTRS   (MAX_NODES * 5)
#define MAX_INITS   (HD_MAX_LAYERS * 4 + 2) /* + the normalisation's mean and std */
#define MAX_NODE_IN 5
#define NAME_LEN    48
#define DOC_LEN     128
#define SCALARS_LEN 4

typedef struct {
    Onnx__NodeProto node[MAX_NODES];
    Onnx__NodeProto *node_ptr[MAX_NODES];
    char *node_in[MAX_NODES][MAX_NODE_IN];
    char *node_out[MAX_NODES][1];
    char node_name[MAX_NODES][NAME_LEN];
    char node_doc[MAX_NODES][DOC_LEN];
    Onnx__AttributeProto attr[MAX_ATTRS];
    Onnx__AttributeProto *attr_ptr[MAX_ATTRS];
    int64_t attr_ints[MAX_ATTRS][4];
    Onnx__TensorProto init[MAX_INITS];
    Onnx__TensorProto *init_ptr[MAX_INITS];
    int64_t init_dims[MAX_INITS][4];
    int64_t init_i64[MAX_INITS][SCALARS_LEN];
    float init_f32[MAX_INITS][SCALARS_LEN];
    char init_name[MAX_INITS][NAME_LEN];
    int n_node, n_attr, n_init;
    char *current; /* the tensor the next node reads */
    int rank;      /* its rank: 4 (NCHW) or 2 (N x features) */
} builder;

/* protobuf-c's string fields are char *; it only reads them when packing. */
static char *str(const char *s) {
    return (char *)s;
}

static Onnx__NodeProto *add_node(builder *b, const char *op, const char *name, const char *doc) {
    int i = b->n_node++;
    Onnx__NodeProto *n = &b->node[i];
    onnx__node_proto__init(n);
    snprintf(b->node_name[i], NAME_LEN, "%s", name);
    snprintf(b->node_doc[i], DOC_LEN, "%s", doc);
    n->op_type = str(op);
    n->name = b->node_name[i];
    n->doc_string = b->node_doc[i];
    n->input = b->node_in[i];
    n->input[n->n_input++] = b->current;
    n->output = b->node_out[i];
    n->output[n->n_output++] = b->node_name[i]; /* each node's output tensor is named as the node */
    n->attribute = &b->attr_ptr[b->n_attr];     /* a node's attributes are added right after it */
    b->node_ptr[i] = n;
    b->current = b->node_name[i];
    return n;
}

static void add_float(builder *b, Onnx__NodeProto *n, const char *name, float value) {
    int i = b->n_attr++;
    Onnx__AttributeProto *a = &b->attr[i];
    onnx__attribute_proto__init(a);
    a->name = str(name);
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    a->has_f = 1;
    a->f = value;
    b->attr_ptr[i] = a;
    n->n_attribute++;
}

static void add_ints(builder *b, Onnx__NodeProto *n, const char *name, int count, const int64_t *v) {
    int i = b->n_attr++;
    Onnx__AttributeProto *a = &b->attr[i];
    onnx__attribute_proto__init(a);
    a->name = str(name);
    a->has_type = 1;
    if (count == 1) {
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
        a->has_i = 1;
        a->i = v[0];
    } else {
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
        memcpy(b->attr_ints[i], v, sizeof(int64_t) * (size_t)count);
        a->ints = b->attr_ints[i];
        a->n_ints = (size_t)count;
    }
    b->attr_ptr[i] = a;
    n->n_attribute++;
}

/* An initialiser of float (data != NULL) or, with i64, int64 values; returns its name. */
static char *add_init(builder *b, const char *name, int rank, const int64_t *dims, float *data, size_t count,
                      const int64_t *i64) {
    int i = b->n_init++;
    Onnx__TensorProto *t = &b->init[i];
    onnx__tensor_proto__init(t);
    snprintf(b->init_name[i], NAME_LEN, "%s", name);
    t->name = b->init_name[i];
    if (rank > 0)
        memcpy(b->init_dims[i], dims, sizeof(int64_t) * (size_t)rank);
    t->dims = b->init_dims[i];
    t->n_dims = (size_t)rank;
    t->has_data_type = 1;
    if (i64) {
        t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
        memcpy(b->init_i64[i], i64, sizeof(int64_t) * count);
        t->int64_data = b->init_i64[i];
        t->n_int64_data = count;
    } else {
        t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
        t->float_data = data;
        t->n_float_data = count;
    }
    b->init_ptr[i] = t;
    return b->init_name[i];
}

/* A float scalar (rank 0) initialiser; returns its name. */
static char *add_scalar(builder *b, const char *name, float value) {
    float *data = b->init_f32[b->n_init];
    data[0] = value;
    return add_init(b, name, 0, NULL, data, 1, NULL);
}

/* Weight and bias of a conv or dense layer, inputs 2 and 3 of node n. */
static void add_weights(builder *b, Onnx__NodeProto *n, const hd_layer *l, float *params) {
    int64_t dims[4] = {0, 0, 0, 0};
    char name[NAME_LEN];
    for (int d = 0; d < l->weight_rank; d++)
        dims[d] = l->weight_dims[d];
    snprintf(name, sizeof name, "%s.weight", l->name);
    n->input[n->n_input++] =
        add_init(b, name, l->weight_rank, dims, params + l->weight_offset, l->weight_count, NULL);
    dims[0] = (int64_t)l->bias_count;
    snprintf(name, sizeof name, "%s.bias", l->name);
    n->input[n->n_input++] = add_init(b, name, 1, dims, params + l->bias_offset, l->bias_count, NULL);
}

static void add_relu(builder *b, const hd_layer *l) {
    char name[NAME_LEN];
    snprintf(name, sizeof name, "%s.relu", l->name);
    add_node(b, "Relu", name, "ReLU after the layer's bias");
}

/* A 4-D view [N, C, 1, 1] of a flattened tensor, for a conv or pool after a flatten. */
static void to_rank4(builder *b, const hd_layer *l) {
    if (b->rank == 4)
        return;
    char name[NAME_LEN];
    snprintf(name, sizeof name, "%s.nchw_shape", l->name);
    const int64_t dims[1] = {4}, shape[4] = {0, -1, 1, 1};
    char *shape_name = add_init(b, name, 1, dims, NULL, 4, shape);
    snprintf(name, sizeof name, "%s.nchw", l->name);
    Onnx__NodeProto *n =
        add_node(b, "Reshape", name, "the flat features as [N, C, 1, 1], as hd-gpu holds them");
    n->input[n->n_input++] = shape_name;
    b->rank = 4;
}

/* Batch norm at inference: BatchNormalization over channel axis 1 of [N, C, H, W] or [N, C], with the
 * running statistics (training_mode false). */
static void add_batchnorm(builder *b, const hd_layer *l, float *params, float *state) {
    const int64_t dims[1] = {(int64_t)l->bias_count};
    char name[NAME_LEN];
    Onnx__NodeProto *n = add_node(b, "BatchNormalization", l->name,
                                  "batch norm with the running mean and variance (inference)");
    snprintf(name, sizeof name, "%s.weight", l->name);
    n->input[n->n_input++] = add_init(b, name, 1, dims, params + l->weight_offset, l->weight_count, NULL);
    snprintf(name, sizeof name, "%s.bias", l->name);
    n->input[n->n_input++] = add_init(b, name, 1, dims, params + l->bias_offset, l->bias_count, NULL);
    size_t half = l->state_count / 2;
    snprintf(name, sizeof name, "%s.running_mean", l->name);
    n->input[n->n_input++] = add_init(b, name, 1, dims, state + l->state_offset, half, NULL);
    snprintf(name, sizeof name, "%s.running_var", l->name);
    n->input[n->n_input++] = add_init(b, name, 1, dims, state + l->state_offset + half, half, NULL);
    add_float(b, n, "epsilon", HD_BN_EPS);
    add_float(b, n, "momentum", 1.0f - HD_BN_MOMENTUM); /* ONNX weighs the running value by momentum */
}

static int add_layer(builder *b, const hd_layer *l, int index, float *params, float *state,
                     const char *source) {
    const hd_layer_spec *s = &l->spec;
    char doc[DOC_LEN];
    if (s->act != HD_ACT_NONE && s->act != HD_ACT_RELU)
        return hd_fail("%s: layer %d (%s): activation %d has no ONNX mapping", source, index + 1, l->name,
                       (int)s->act);
    switch (s->kind) {
    case HD_LAYER_CONV: {
        to_rank4(b, l);
        snprintf(doc, sizeof doc, "conv %d %dx%d, stride %d, zero padding %d%s", s->units, s->kernel,
                 s->kernel, s->stride, s->pad, s->act == HD_ACT_RELU ? ", then ReLU" : "");
        Onnx__NodeProto *n = add_node(b, "Conv", l->name, doc);
        add_weights(b, n, l, params);
        const int64_t k[2] = {s->kernel, s->kernel}, one[2] = {1, 1}, strides[2] = {s->stride, s->stride},
                      pads[4] = {s->pad, s->pad, s->pad, s->pad}, group = 1;
        add_ints(b, n, "kernel_shape", 2, k);
        add_ints(b, n, "strides", 2, strides);
        add_ints(b, n, "dilations", 2, one);
        add_ints(b, n, "pads", 4, pads);
        add_ints(b, n, "group", 1, &group);
        if (s->act == HD_ACT_RELU)
            add_relu(b, l);
        return 0;
    }
    case HD_LAYER_MAXPOOL: {
        to_rank4(b, l);
        snprintf(doc, sizeof doc, "max pooling %dx%d, stride %d, floor", s->pool, s->pool, s->pool);
        Onnx__NodeProto *n = add_node(b, "MaxPool", l->name, doc);
        const int64_t k[2] = {s->pool, s->pool}, pads[4] = {0, 0, 0, 0};
        add_ints(b, n, "kernel_shape", 2, k);
        add_ints(b, n, "strides", 2, k);
        add_ints(b, n, "pads", 4, pads);
        return 0;
    }
    case HD_LAYER_AVGPOOL: {
        to_rank4(b, l);
        snprintf(doc, sizeof doc, "average pooling %dx%d, stride %d, floor", s->pool, s->pool, s->pool);
        Onnx__NodeProto *n = add_node(b, "AveragePool", l->name, doc);
        const int64_t k[2] = {s->pool, s->pool}, pads[4] = {0, 0, 0, 0};
        add_ints(b, n, "kernel_shape", 2, k);
        add_ints(b, n, "strides", 2, k);
        add_ints(b, n, "pads", 4, pads);
        return 0;
    }
    case HD_LAYER_GAP:
        to_rank4(b, l);
        add_node(b, "GlobalAveragePool", l->name, "global average pooling: [N, C, H, W] to [N, C, 1, 1]");
        return 0;
    case HD_LAYER_FLATTEN: {
        const int64_t axis = 1;
        Onnx__NodeProto *n = add_node(b, "Flatten", l->name, "NCHW to [N, C*H*W], in C, H, W order");
        add_ints(b, n, "axis", 1, &axis);
        b->rank = 2;
        return 0;
    }
    case HD_LAYER_DENSE: {
        if (b->rank == 4) { /* dense straight after a layer of 1x1 outputs */
            char name[NAME_LEN];
            const int64_t axis = 1;
            snprintf(name, sizeof name, "%s.flat", l->name);
            Onnx__NodeProto *f = add_node(b, "Flatten", name, "[N, C, 1, 1] to [N, C] for the dense layer");
            add_ints(b, f, "axis", 1, &axis);
            b->rank = 2;
        }
        snprintf(doc, sizeof doc, "dense %d (weights [out, in])%s", s->units,
                 s->act == HD_ACT_RELU ? ", then ReLU" : "");
        Onnx__NodeProto *n = add_node(b, "Gemm", l->name, doc);
        add_weights(b, n, l, params);
        const int64_t trans_b = 1;
        add_ints(b, n, "transB", 1, &trans_b);
        if (s->act == HD_ACT_RELU)
            add_relu(b, l);
        return 0;
    }
    case HD_LAYER_DROPOUT: {
        char name[NAME_LEN];
        snprintf(name, sizeof name, "%s.ratio", l->name);
        int i = b->n_init;
        b->init_f32[i][0] = s->rate;
        char *ratio = add_init(b, name, 0, NULL, b->init_f32[i], 1, NULL);
        snprintf(doc, sizeof doc, "dropout %g: the identity at inference (training_mode false)",
                 (double)s->rate);
        Onnx__NodeProto *n = add_node(b, "Dropout", l->name, doc);
        n->input[n->n_input++] = ratio;
        return 0;
    }
    case HD_LAYER_BATCHNORM:
        add_batchnorm(b, l, params, state);
        return 0;
    case HD_LAYER_RELU:
        add_node(b, "Relu", l->name, "ReLU");
        return 0;
    }
    return hd_fail("%s: layer %d (%s): layer kind %d has no ONNX mapping", source, index + 1, l->name,
                   (int)s->kind);
}

/* A float tensor's type [dim0, dims...], dim0 being the batch dimension "N". */
typedef struct {
    Onnx__ValueInfoProto info;
    Onnx__TypeProto type;
    Onnx__TypeProto__Tensor tensor;
    Onnx__TensorShapeProto shape;
    Onnx__TensorShapeProto__Dimension dim[4];
    Onnx__TensorShapeProto__Dimension *dim_ptr[4];
} value_info;

static Onnx__ValueInfoProto *make_value_info(value_info *v, const char *name, const char *doc, int rank,
                                             const int *dims) {
    onnx__value_info_proto__init(&v->info);
    onnx__type_proto__init(&v->type);
    onnx__type_proto__tensor__init(&v->tensor);
    onnx__tensor_shape_proto__init(&v->shape);
    for (int d = 0; d < rank; d++) {
        onnx__tensor_shape_proto__dimension__init(&v->dim[d]);
        if (d == 0) {
            v->dim[d].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            v->dim[d].dim_param = str("N");
        } else {
            v->dim[d].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            v->dim[d].dim_value = dims[d - 1];
        }
        v->dim_ptr[d] = &v->dim[d];
    }
    v->shape.dim = v->dim_ptr;
    v->shape.n_dim = (size_t)rank;
    v->tensor.has_elem_type = 1;
    v->tensor.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    v->tensor.shape = &v->shape;
    v->type.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    v->type.tensor_type = &v->tensor;
    v->info.name = str(name);
    v->info.doc_string = str(doc);
    v->info.type = &v->type;
    return &v->info;
}

int hd_onnx_available(void) {
    return 1;
}

/* The message tree for `model`, its parameters in `params`, into b and the structs below; packed. */
static int encode(builder *b, const hd_model *model, const hd_onnx_options *opt, float *params, float *state,
                  uint8_t **data, size_t *size) {
    const char *source = opt->source ? opt->source : "model";
    const char *out_name = opt->softmax ? "probabilities" : "logits";
    b->current = str("input");
    b->rank = 4;
    if (model->input_mean != 0.0f || model->input_std != 1.0f) {
        /* --normalize: the exported model takes [0, 1] pixels, as the unnormalised one does */
        Onnx__NodeProto *sub =
            add_node(b, "Sub", "input_minus_mean", "pixels minus the training images' mean");
        sub->input[sub->n_input++] = add_scalar(b, "input_mean", model->input_mean);
        Onnx__NodeProto *div = add_node(b, "Div", "input_normalized", "over the training images' std");
        div->input[div->n_input++] = add_scalar(b, "input_std", model->input_std);
    }
    for (int i = 0; i < model->n_layers; i++)
        if (add_layer(b, &model->layers[i], i, params, state, source) != 0)
            return -1;
    if (opt->softmax) {
        Onnx__NodeProto *n = add_node(b, "Softmax", "softmax", "probabilities of the classes");
        const int64_t axis = 1;
        add_ints(b, n, "axis", 1, &axis);
    }
    if (b->n_node == 0 || b->rank != 2)
        return hd_fail("%s: the model's output is not [N, classes] (no layers, or no dense layer last)",
                       source);
    b->node[b->n_node - 1].output[0] = str(out_name);

    char input_doc[256], output_doc[256], model_doc[1024], graph_doc[640];
    snprintf(input_doc, sizeof input_doc,
             "images, float [N, %d, %d, %d], each pixel its IDX byte / 255 (0 background, 1 full ink), "
             "as hd-gpu trains on them",
             model->in_c, model->in_h, model->in_w);
    snprintf(output_doc, sizeof output_doc, "%s of the %d classes, float [N, %d]",
             opt->softmax ? "probabilities (softmax)" : "logits (before softmax)", model->classes,
             model->classes);
    snprintf(graph_doc, sizeof graph_doc, "hd-gpu model %s", model->spec_text);
    snprintf(model_doc, sizeof model_doc, "exported by hd-gpu %s from %s; spec %s; input %dx%dx%d",
             HD_VERSION, source, model->spec_text, model->in_c, model->in_h, model->in_w);
    value_info in, out;
    const int in_dims[3] = {model->in_c, model->in_h, model->in_w}, out_dims[1] = {model->classes};
    Onnx__ValueInfoProto *in_ptr = make_value_info(&in, "input", input_doc, 4, in_dims);
    Onnx__ValueInfoProto *out_ptr = make_value_info(&out, out_name, output_doc, 2, out_dims);

    Onnx__GraphProto graph = ONNX__GRAPH_PROTO__INIT;
    graph.name = str("hd_gpu");
    graph.doc_string = graph_doc;
    graph.node = b->node_ptr;
    graph.n_node = (size_t)b->n_node;
    graph.initializer = b->init_ptr;
    graph.n_initializer = (size_t)b->n_init;
    graph.input = &in_ptr;
    graph.n_input = 1;
    graph.output = &out_ptr;
    graph.n_output = 1;

    Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT, *opset_ptr = &opset;
    opset.domain = str("");
    opset.has_version = 1;
    opset.version = HD_ONNX_OPSET;
    Onnx__StringStringEntryProto spec = ONNX__STRING_STRING_ENTRY_PROTO__INIT, *spec_ptr = &spec;
    spec.key = str("hd.spec");
    spec.value = str(model->spec_text);

    Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
    m.has_ir_version = 1;
    m.ir_version = HD_ONNX_IR_VERSION;
    m.opset_import = &opset_ptr;
    m.n_opset_import = 1;
    m.producer_name = str("hd-gpu");
    m.producer_version = str(HD_VERSION);
    m.domain = str("hd-gpu");
    m.has_model_version = 1;
    m.model_version = 1;
    m.doc_string = model_doc;
    m.graph = &graph;
    m.metadata_props = &spec_ptr;
    m.n_metadata_props = 1;

    size_t n = onnx__model_proto__get_packed_size(&m);
    /* protobuf's own limit for one message (2 GiB); past it readers refuse the file. */
    if (n > (size_t)INT32_MAX)
        return hd_fail("%s: the model is too large for one ONNX file (%zu bytes; protobuf's limit is 2 GiB)",
                       source, n);
    *data = hd_malloc(n ? n : 1);
    if (!*data)
        return -1;
    *size = onnx__model_proto__pack(&m, *data);
    return 0;
}

int hd_onnx_encode(const hd_model *model, const hd_onnx_options *opt, uint8_t **data, size_t *size) {
    *data = NULL;
    *size = 0;
    hd_onnx_options defaults = {0, NULL};
    if (!opt)
        opt = &defaults;
    float *params = hd_malloc((model->param_count ? model->param_count : 1) * sizeof(float));
    float *state = hd_malloc((model->state_count ? model->state_count : 1) * sizeof(float));
    builder *b = hd_calloc(1, sizeof *b);
    int rc = -1;
    if (params && state && b && hd_model_get_params(model, params) == 0 &&
        hd_model_get_state(model, state) == 0)
        rc = encode(b, model, opt, params, state, data, size);
    free(b);
    free(state);
    free(params);
    return rc;
}

#endif

int hd_onnx_export(const hd_model *model, const hd_onnx_options *opt, const char *path) {
    uint8_t *data;
    size_t size;
    if (hd_onnx_encode(model, opt, &data, &size) != 0)
        return -1;
    int rc = hd_write_file_atomic(path, data, size);
    free(data);
    return rc;
}
