/* test_onnx_export.c: the ONNX encoder (onnx_export.h), read back with protobuf-c: the graph's header
 * (IR version, opset, producer, doc strings), input and output with the dynamic batch dimension, the
 * nodes and their attributes layer by layer, every initialiser equal bit for bit to the model's
 * parameters; a layer kind or activation without a mapping refused with one line and no file written,
 * as is an output path that cannot be written. ONNX Runtime runs the exported models in
 * tests/onnx_export_test.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "hd/backend.h"
#include "hd/common.h"
#include "hd/model.h"
#include "hd/onnx_export.h"

#ifndef HD_HAVE_ONNX
int main(void) {
    CHECK(!hd_onnx_available(), "no ONNX in this build, yet hd_onnx_available says yes");
    static hd_model model; /* any model: this build encodes none */
    uint8_t *data;
    size_t size;
    CHECK(hd_onnx_encode(&model, NULL, &data, &size) != 0 && strstr(hd_last_error(), "built without"),
          "encode without ONNX: %s", hd_last_error());
    test_skip("built without ONNX export (protobuf-c, onnx.proto)");
    return test_finish();
}
#else

#include "onnx.pb-c.h"

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *name) {
    for (size_t i = 0; i < n->n_attribute; i++)
        if (strcmp(n->attribute[i]->name, name) == 0)
            return n->attribute[i];
    return NULL;
}

static int ints_are(const Onnx__NodeProto *n, const char *name, size_t count, const int64_t *want) {
    const Onnx__AttributeProto *a = attr(n, name);
    if (!a)
        return 0;
    if (count == 1)
        return a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT && a->i == want[0];
    return a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS && a->n_ints == count &&
           memcmp(a->ints, want, count * sizeof(int64_t)) == 0;
}

static const Onnx__TensorProto *init_named(const Onnx__GraphProto *g, const char *name) {
    for (size_t i = 0; i < g->n_initializer; i++)
        if (strcmp(g->initializer[i]->name, name) == 0)
            return g->initializer[i];
    return NULL;
}

static void check_value_info(const Onnx__ValueInfoProto *v, const char *name, int rank, const int64_t *dims) {
    CHECK(strcmp(v->name, name) == 0, "value %s, expected %s", v->name, name);
    CHECK(v->doc_string && *v->doc_string, "%s has no doc string", name);
    const Onnx__TypeProto__Tensor *t = v->type->tensor_type;
    CHECK(v->type->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE &&
              t->elem_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT,
          "%s is not a float tensor", name);
    CHECK(t->shape->n_dim == (size_t)rank, "%s has rank %zu, expected %d", name, t->shape->n_dim, rank);
    for (int d = 0; d < rank && (size_t)d < t->shape->n_dim; d++) {
        const Onnx__TensorShapeProto__Dimension *dim = t->shape->dim[d];
        if (d == 0)
            CHECK(dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
                      strcmp(dim->dim_param, "N") == 0,
                  "%s: dimension 0 is not the dynamic batch N", name);
        else
            CHECK(dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
                      dim->dim_value == dims[d],
                  "%s: dimension %d is not %lld", name, d, (long long)dims[d]);
    }
}

/* The default spec, every layer of it, with softmax or not. */
static void check_default_model(hd_model *model, const float *params, int softmax) {
    uint8_t *data;
    size_t size;
    hd_onnx_options opt = {.softmax = softmax, .source = "test.safetensors"};
    if (hd_onnx_encode(model, &opt, &data, &size) != 0) {
        CHECK(0, "encode: %s", hd_last_error());
        return;
    }
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, data);
    free(data);
    if (!m) {
        CHECK(0, "protobuf-c cannot read back what was written (%zu bytes)", size);
        return;
    }
    CHECK(m->ir_version == HD_ONNX_IR_VERSION && m->n_opset_import == 1 &&
              strcmp(m->opset_import[0]->domain, "") == 0 && m->opset_import[0]->version == 13,
          "IR %lld, opset not 13", (long long)m->ir_version);
    CHECK(strcmp(m->producer_name, "hd-gpu") == 0 && strcmp(m->producer_version, HD_VERSION) == 0,
          "producer %s %s", m->producer_name, m->producer_version);
    CHECK(strstr(m->doc_string, "test.safetensors") && strstr(m->doc_string, model->spec_text),
          "model doc string '%s' names neither source nor spec", m->doc_string);
    CHECK(m->n_metadata_props == 1 && strcmp(m->metadata_props[0]->value, model->spec_text) == 0,
          "hd.spec metadata");
    const Onnx__GraphProto *g = m->graph;
    CHECK(g->n_input == 1 && g->n_output == 1, "%zu inputs, %zu outputs", g->n_input, g->n_output);
    const int64_t in_dims[4] = {0, 1, 28, 28}, out_dims[2] = {0, 10};
    const char *out_name = softmax ? "probabilities" : "logits";
    if (g->n_input == 1 && g->n_output == 1) {
        check_value_info(g->input[0], "input", 4, in_dims);
        check_value_info(g->output[0], out_name, 2, out_dims);
    }

    /* conv relu, pool, conv relu, pool, flatten, dense relu, dropout, dense [, softmax] */
    static const char *const ops[] = {"Conv",    "Relu", "MaxPool", "Conv",    "Relu", "MaxPool",
                                      "Flatten", "Gemm", "Relu",    "Dropout", "Gemm", "Softmax"};
    size_t want_nodes = softmax ? 12 : 11;
    CHECK(g->n_node == want_nodes, "%zu nodes, expected %zu", g->n_node, want_nodes);
    for (size_t i = 0; i < g->n_node && i < want_nodes; i++) {
        const Onnx__NodeProto *n = g->node[i];
        CHECK(strcmp(n->op_type, ops[i]) == 0, "node %zu is %s, expected %s", i, n->op_type, ops[i]);
        CHECK(n->name && *n->name && n->doc_string && *n->doc_string, "node %zu has no name or doc string",
              i);
        CHECK(n->n_output == 1, "node %zu: %zu outputs", i, n->n_output);
        /* A chain: each node reads the one before it. */
        const char *prev = i == 0 ? "input" : g->node[i - 1]->output[0];
        CHECK(n->n_input >= 1 && strcmp(n->input[0], prev) == 0, "node %zu reads %s, not %s", i, n->input[0],
              prev);
    }
    if (g->n_node == want_nodes) {
        CHECK(strcmp(g->node[want_nodes - 1]->output[0], out_name) == 0, "last output %s",
              g->node[want_nodes - 1]->output[0]);
        const int64_t k3[2] = {3, 3}, k2[2] = {2, 2}, one[2] = {1, 1}, pads[4] = {0, 0, 0, 0}, i1 = 1;
        CHECK(ints_are(g->node[0], "kernel_shape", 2, k3) && ints_are(g->node[0], "strides", 2, one) &&
                  ints_are(g->node[0], "pads", 4, pads) && ints_are(g->node[0], "group", 1, &i1),
              "conv1's attributes");
        CHECK(ints_are(g->node[2], "kernel_shape", 2, k2) && ints_are(g->node[2], "strides", 2, k2),
              "pool1's attributes");
        CHECK(ints_are(g->node[6], "axis", 1, &i1), "flatten axis 1");
        CHECK(ints_are(g->node[7], "transB", 1, &i1) && ints_are(g->node[10], "transB", 1, &i1),
              "Gemm transB 1");
        CHECK(g->node[9]->n_input == 2 && !attr(g->node[9], "training_mode"), "dropout: ratio, not training");
        if (softmax)
            CHECK(ints_are(g->node[11], "axis", 1, &i1), "softmax axis 1");
    }

    /* Every weight and bias, bit for bit, in the checkpoint's layout and names. */
    size_t floats = 0;
    for (int l = 0; l < model->n_layers; l++) {
        const hd_layer *layer = &model->layers[l];
        if (layer->weight_count == 0)
            continue;
        char name[64];
        snprintf(name, sizeof name, "%s.weight", layer->name);
        const Onnx__TensorProto *w = init_named(g, name);
        snprintf(name, sizeof name, "%s.bias", layer->name);
        const Onnx__TensorProto *b = init_named(g, name);
        if (!w || !b) {
            CHECK(0, "no initialiser for %s", layer->name);
            continue;
        }
        CHECK(w->n_dims == (size_t)layer->weight_rank, "%s.weight rank %zu", layer->name, w->n_dims);
        for (size_t d = 0; d < w->n_dims && d < 4; d++)
            CHECK(w->dims[d] == layer->weight_dims[d], "%s.weight dim %zu: %lld", layer->name, d,
                  (long long)w->dims[d]);
        CHECK(w->n_float_data == layer->weight_count && memcmp(w->float_data, params + layer->weight_offset,
                                                               layer->weight_count * sizeof(float)) == 0,
              "%s.weight differs from the model's", layer->name);
        CHECK(b->n_dims == 1 && b->dims[0] == (int64_t)layer->bias_count &&
                  b->n_float_data == layer->bias_count &&
                  memcmp(b->float_data, params + layer->bias_offset, layer->bias_count * sizeof(float)) == 0,
              "%s.bias differs from the model's", layer->name);
        floats += w->n_float_data + b->n_float_data;
    }
    CHECK(floats == model->param_count, "initialisers hold %zu parameters, the model %zu", floats,
          model->param_count);
    const Onnx__TensorProto *ratio = init_named(g, "dropout1.ratio");
    CHECK(ratio && ratio->n_dims == 0 && ratio->n_float_data == 1 && ratio->float_data[0] == 0.5f,
          "dropout ratio 0.5");
    onnx__model_proto__free_unpacked(m, NULL);
}

/* Refusals: nothing written, the directory as it was; one line naming what is wrong. */
/* --normalize: Sub and Div before the first layer, with the model's mean and std, so that the exported
 * model takes [0, 1] pixels. */
static void check_normalized(hd_model *model) {
    model->input_mean = 0.1307f;
    model->input_std = 0.3081f;
    uint8_t *data;
    size_t size;
    int encoded = hd_onnx_encode(model, NULL, &data, &size);
    model->input_mean = 0.0f;
    model->input_std = 1.0f;
    if (encoded != 0) {
        CHECK(0, "encode: %s", hd_last_error());
        return;
    }
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, data);
    free(data);
    CHECK(m && m->graph && m->graph->n_node > 3, "read back");
    if (!m || !m->graph || m->graph->n_node <= 3)
        return;
    Onnx__NodeProto **n = m->graph->node;
    CHECK(strcmp(n[0]->op_type, "Sub") == 0 && n[0]->n_input == 2 && strcmp(n[0]->input[0], "input") == 0 &&
              strcmp(n[0]->input[1], "input_mean") == 0,
          "first node %s(%s, ...), want Sub(input, input_mean)", n[0]->op_type, n[0]->input[0]);
    CHECK(strcmp(n[1]->op_type, "Div") == 0 && n[1]->n_input == 2 &&
              strcmp(n[1]->input[0], n[0]->output[0]) == 0 && strcmp(n[1]->input[1], "input_std") == 0,
          "second node %s, want Div(Sub's output, input_std)", n[1]->op_type);
    CHECK(strcmp(n[2]->op_type, "Conv") == 0 && strcmp(n[2]->input[0], n[1]->output[0]) == 0,
          "the first layer %s reads %s, want Conv of Div's output", n[2]->op_type, n[2]->input[0]);
    const Onnx__TensorProto *mean = init_named(m->graph, "input_mean"),
                            *std = init_named(m->graph, "input_std");
    CHECK(mean && std && mean->n_dims == 0 && std->n_dims == 0 && mean->n_float_data == 1 &&
              std->n_float_data == 1 && mean->float_data[0] == 0.1307f && std->float_data[0] == 0.3081f,
          "scalar initialisers input_mean %g, input_std %g",
          mean && mean->n_float_data ? mean->float_data[0] : -1.0,
          std && std->n_float_data ? std->float_data[0] : -1.0);
    onnx__model_proto__free_unpacked(m, NULL);
}

/* Batch norm after a conv (rank 4) and after a dense layer (rank 2), standalone relu: BatchNormalization with
 * the layer's scale, bias, running mean and running variance (bit for bit the model's state), epsilon 1e-5,
 * no training mode; Relu. */
static void check_batchnorm(hd_backend *be, uint64_t *rng) {
    hd_model model;
    if (hd_model_create(&model, be, "conv:4:3,bn,relu,maxpool:2,flatten,dense:8,bn,relu,dense:10", 1, 28, 28,
                        1) != 0) {
        CHECK(0, "bn model: %s", hd_last_error());
        return;
    }
    float *params = malloc(model.param_count * sizeof(float)),
          *state = malloc(model.state_count * sizeof(float));
    test_fill_uniform(params, model.param_count, -1.0f, 1.0f, rng);
    test_fill_uniform(state, model.state_count, 0.1f, 2.0f, rng); /* variances positive */
    hd_model_set_params(&model, params);
    hd_model_set_state(&model, state);
    uint8_t *data;
    size_t size;
    Onnx__ModelProto *m = NULL;
    if (hd_onnx_encode(&model, NULL, &data, &size) == 0) {
        m = onnx__model_proto__unpack(NULL, size, data);
        free(data);
    }
    CHECK(m != NULL, "encode and read back: %s", hd_last_error());
    static const char *const ops[] = {"Conv", "BatchNormalization", "Relu", "MaxPool", "Flatten",
                                      "Gemm", "BatchNormalization", "Relu", "Gemm"};
    const Onnx__GraphProto *g = m ? m->graph : NULL;
    CHECK(g && g->n_node == 9, "%zu nodes, expected 9", g ? g->n_node : 0);
    for (size_t i = 0; g && i < g->n_node && i < 9; i++)
        CHECK(strcmp(g->node[i]->op_type, ops[i]) == 0, "node %zu is %s, expected %s", i, g->node[i]->op_type,
              ops[i]);
    for (int b = 0; g && g->n_node == 9 && b < 2; b++) {
        const Onnx__NodeProto *n = g->node[b ? 6 : 1];
        const hd_layer *l = &model.layers[b ? 6 : 1];
        static const char *const inputs[4] = {"weight", "bias", "running_mean", "running_var"};
        CHECK(n->n_input == 5 && strcmp(n->name, l->name) == 0, "%s: %zu inputs", l->name, n->n_input);
        const Onnx__AttributeProto *eps = attr(n, "epsilon");
        CHECK(eps && eps->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT && eps->f == 1e-5f &&
                  !attr(n, "training_mode"),
              "%s: epsilon 1e-5, inference", l->name);
        for (int k = 0; k < 4 && n->n_input == 5; k++) {
            char name[64];
            snprintf(name, sizeof name, "%s.%s", l->name, inputs[k]);
            const Onnx__TensorProto *t = init_named(g, name);
            const float *want = k == 0   ? params + l->weight_offset
                                : k == 1 ? params + l->bias_offset
                                         : state + l->state_offset + (size_t)(k - 2) * (l->state_count / 2);
            CHECK(t && strcmp(n->input[k + 1], name) == 0 && t->n_dims == 1 && t->dims[0] == l->in_c &&
                      t->n_float_data == (size_t)l->in_c &&
                      memcmp(t->float_data, want, (size_t)l->in_c * sizeof(float)) == 0,
                  "%s: input %d is the initialiser %s, [%d], bit for bit", l->name, k + 1, name, l->in_c);
        }
    }
    if (m)
        onnx__model_proto__free_unpacked(m, NULL);
    free(params);
    free(state);
    hd_model_destroy(&model);
}

static void check_refused(hd_model *model, const char *dir, const char *path, const char *want) {
    hd_clear_error();
    hd_onnx_options opt = {.softmax = 0, .source = "test.safetensors"};
    CHECK(hd_onnx_export(model, &opt, path) != 0, "export to %s succeeded, expected '%s'", path, want);
    CHECK(strstr(hd_last_error(), want) != NULL && !strchr(hd_last_error(), '\n'),
          "message '%s', expected '%s'", hd_last_error(), want);
    CHECK(test_count_entries(dir) == 0, "a refused export left %d files in %s", test_count_entries(dir), dir);
}

int main(void) {
    uint64_t seed = test_fresh_seed();
    CHECK(hd_onnx_available(), "built with ONNX, yet hd_onnx_available says no");
    hd_backend *be = hd_cpu_backend_create(&(hd_cpu_options){1});
    hd_model model;
    if (!be || hd_model_create(&model, be, HD_DEFAULT_SPEC, 1, 28, 28, 1) != 0) {
        CHECK(0, "model: %s", hd_last_error());
        return test_finish();
    }
    float *params = malloc(model.param_count * sizeof(float));
    uint64_t state = seed;
    test_fill_uniform(params, model.param_count, -1.0f, 1.0f, &state); /* biases not zero */
    hd_model_set_params(&model, params);
    check_default_model(&model, params, 0);
    check_default_model(&model, params, 1);
    check_normalized(&model);
    check_batchnorm(be, &state);

    char *dir = test_make_temp_dir("onnx");
    char *path = test_path_join(dir, "model.onnx");
    char *missing = test_path_join(dir, "no-such-dir/model.onnx");
    check_refused(&model, dir, missing, "No such file or directory");
    model.layers[3].spec.act = (hd_activation)7;
    check_refused(&model, dir, path, "test.safetensors: layer 4 (pool2): activation 7 has no ONNX mapping");
    model.layers[3].spec.act = HD_ACT_NONE;
    model.layers[2].spec.kind = (hd_layer_kind)42;
    check_refused(&model, dir, path, "test.safetensors: layer 3 (conv2): layer kind 42 has no ONNX mapping");
    model.layers[2].spec.kind = HD_LAYER_CONV;
    /* And once the model is whole again, the same path is written. */
    CHECK(hd_onnx_export(&model, NULL, path) == 0, "export: %s", hd_last_error());
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size > (off_t)(model.param_count * sizeof(float)) &&
              test_count_entries(dir) == 1,
          "%s not written whole", path);

    test_remove_tree(dir);
    free(dir);
    free(path);
    free(missing);
    free(params);
    hd_model_destroy(&model);
    hd_backend_destroy(be);
    return test_finish();
}
#endif
