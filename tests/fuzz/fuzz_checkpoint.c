/* fuzz_checkpoint.c: safetensors files and checkpoints (safetensors.h, checkpoint.h), loaded into a
 * small model on the CPU backend with an Adam optimizer, then with one that keeps a weight average (--ema).
 * A file that reads must hold tensors whose data can all be read; a checkpoint that loads must have put its
 * tensors into the model; one that fails must have changed nothing, parameters and optimizer state (the
 * average too) alike. */
#include "fuzz_util.h"

#include "hd/backend.h"
#include "hd/checkpoint.h"
#include "hd/common.h"
#include "hd/model.h"
#include "hd/optimizer.h"
#include "hd/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The model the seed checkpoints were saved from: 1x8x8 input, 80 parameters. */
#define FUZZ_SPEC "conv:2:3:relu,maxpool:2,flatten,dense:3"

typedef struct {
    hd_backend *be;
    hd_model model;
    hd_optimizer opt;
    hd_optimizer averaging;        /* Adam with --ema 0.99 */
    float *params, *m, *v, *check; /* host copies before a load, and a scratch copy */
    float *average;                /* the averaging optimizer's average before a load */
} fixture;

static fixture *fixture_get(void) {
    static fixture fx;
    static int ready;
    if (ready)
        return &fx;
    hd_cpu_options cpu = {.threads = 1};
    fx.be = hd_cpu_backend_create(&cpu);
    FUZZ_ASSERT(fx.be, "cpu backend: %s", hd_last_error());
    FUZZ_ASSERT(hd_model_create(&fx.model, fx.be, FUZZ_SPEC, 1, 8, 8, 2) == 0, "model: %s", hd_last_error());
    hd_optimizer_defaults(&fx.opt, HD_OPT_ADAM);
    FUZZ_ASSERT(hd_optimizer_init(&fx.opt, &fx.model) == 0, "optimizer: %s", hd_last_error());
    hd_optimizer_defaults(&fx.averaging, HD_OPT_ADAM);
    fx.averaging.ema_decay = 0.99;
    FUZZ_ASSERT(hd_optimizer_init(&fx.averaging, &fx.model) == 0, "optimizer: %s", hd_last_error());
    size_t n = fx.model.param_count;
    fx.average = malloc(n * sizeof(float));
    fx.params = malloc(n * sizeof(float));
    fx.m = malloc(n * sizeof(float));
    fx.v = malloc(n * sizeof(float));
    fx.check = malloc(n * sizeof(float));
    FUZZ_ASSERT(fx.params && fx.m && fx.v && fx.check && fx.average, "out of memory");
    ready = 1;
    return &fx;
}

/* Every tensor found by name, with its data read to the end (ASan sees a short buffer). */
static void check_tensors(const hd_safetensors *file) {
    int count = hd_safetensors_count(file);
    FUZZ_ASSERT(count >= 0, "count %d", count);
    for (int i = 0; i < count; i++) {
        const char *name = hd_safetensors_name(file, i);
        FUZZ_ASSERT(name, "tensor %d has no name", i);
        if (i > 0)
            FUZZ_ASSERT(strcmp(hd_safetensors_name(file, i - 1), name) < 0, "names out of order at %d", i);
        int rank = -1;
        int64_t dims[HD_ST_MAX_RANK];
        const float *values = hd_safetensors_find(file, name, &rank, dims);
        FUZZ_ASSERT(rank >= 0 && rank <= HD_ST_MAX_RANK, "%s: rank %d", name, rank);
        size_t elements = 1;
        for (int d = 0; d < rank; d++) {
            FUZZ_ASSERT(dims[d] >= 0, "%s: dim %d is %lld", name, d, (long long)dims[d]);
            elements *= (size_t)dims[d];
        }
        FUZZ_ASSERT(values || elements == 0, "%s: no data", name);
        volatile float sink = 0.0f;
        for (size_t j = 0; j < elements; j++)
            sink += values[j];
        (void)sink;
    }
}

static void copy_state(fixture *fx, float *params, float *m, float *v) {
    size_t bytes = fx->model.param_count * sizeof(float);
    FUZZ_ASSERT(hd_model_get_params(&fx->model, params) == 0, "get params: %s", hd_last_error());
    fx->be->ops->download(fx->be, m, fx->opt.m, bytes);
    fx->be->ops->download(fx->be, v, fx->opt.v, bytes);
}

/* Returns hd_checkpoint_load's result. */
static int load_into_model(fixture *fx, const char *path) {
    copy_state(fx, fx->params, fx->m, fx->v);
    hd_safetensors *file = NULL;
    hd_clear_error();
    int rc = hd_checkpoint_load(path, &fx->model, &fx->opt, &file);
    fuzz_check_result(rc, path);
    size_t n = fx->model.param_count;
    if (rc != 0) {
        FUZZ_ASSERT(file == NULL, "failed load returned its file");
        float *after = fx->check;
        FUZZ_ASSERT(hd_model_get_params(&fx->model, after) == 0, "get params: %s", hd_last_error());
        FUZZ_ASSERT(memcmp(after, fx->params, n * sizeof(float)) == 0, "failed load changed the parameters");
        fx->be->ops->download(fx->be, after, fx->opt.m, n * sizeof(float));
        FUZZ_ASSERT(memcmp(after, fx->m, n * sizeof(float)) == 0, "failed load changed Adam's m");
        fx->be->ops->download(fx->be, after, fx->opt.v, n * sizeof(float));
        FUZZ_ASSERT(memcmp(after, fx->v, n * sizeof(float)) == 0, "failed load changed Adam's v");
        return rc;
    }
    FUZZ_ASSERT(file, "load returned no file");
    /* Every parameter slot, and Adam's m and v, must hold the file's tensor of that name. */
    copy_state(fx, fx->check, fx->m, fx->v);
    const float *buffers[3] = {fx->check, fx->m, fx->v};
    static const char *const prefixes[3] = {"", "optimizer.m.", "optimizer.v."};
    for (int i = 0; i < fx->model.n_layers; i++) {
        const hd_layer *layer = &fx->model.layers[i];
        if (layer->weight_count == 0)
            continue;
        for (int b = 0; b < 3; b++)
            for (int part = 0; part < 2; part++) {
                char name[96];
                snprintf(name, sizeof name, "%s%s.%s", prefixes[b], layer->name, part ? "bias" : "weight");
                const float *values = hd_safetensors_find(file, name, NULL, NULL);
                size_t offset = part ? layer->bias_offset : layer->weight_offset;
                size_t count = part ? layer->bias_count : layer->weight_count;
                FUZZ_ASSERT(values, "loaded without %s", name);
                FUZZ_ASSERT(memcmp(values, buffers[b] + offset, count * sizeof(float)) == 0,
                            "%s differs from what was loaded", name);
            }
    }
    hd_safetensors_free(file);
    return rc;
}

/* The same file into the optimizer with an average: a failed load changes neither the parameters nor the
 * average; one that loads put optimizer.average.<name> into the average. */
static void load_into_averaging(fixture *fx, const char *path) {
    size_t n = fx->model.param_count, bytes = n * sizeof(float);
    FUZZ_ASSERT(hd_model_get_params(&fx->model, fx->params) == 0, "get params: %s", hd_last_error());
    fx->be->ops->download(fx->be, fx->average, fx->averaging.average, bytes);
    hd_safetensors *file = NULL;
    hd_clear_error();
    int rc = hd_checkpoint_load(path, &fx->model, &fx->averaging, &file);
    fuzz_check_result(rc, path);
    if (rc != 0) {
        FUZZ_ASSERT(hd_model_get_params(&fx->model, fx->check) == 0, "get params: %s", hd_last_error());
        FUZZ_ASSERT(memcmp(fx->check, fx->params, bytes) == 0, "failed load changed the parameters");
        fx->be->ops->download(fx->be, fx->check, fx->averaging.average, bytes);
        FUZZ_ASSERT(memcmp(fx->check, fx->average, bytes) == 0, "failed load changed the average");
        return;
    }
    FUZZ_ASSERT(file && fx->averaging.ema_decay > 0.0 && fx->averaging.ema_decay < 1.0, "loaded decay %g",
                fx->averaging.ema_decay);
    fx->be->ops->download(fx->be, fx->check, fx->averaging.average, bytes);
    for (int i = 0; i < fx->model.n_layers; i++) {
        const hd_layer *layer = &fx->model.layers[i];
        for (int part = 0; layer->weight_count > 0 && part < 2; part++) {
            char name[96];
            snprintf(name, sizeof name, "optimizer.average.%s.%s", layer->name, part ? "bias" : "weight");
            const float *values = hd_safetensors_find(file, name, NULL, NULL);
            size_t offset = part ? layer->bias_offset : layer->weight_offset;
            size_t count = part ? layer->bias_count : layer->weight_count;
            FUZZ_ASSERT(values, "loaded without %s", name);
            FUZZ_ASSERT(memcmp(values, fx->check + offset, count * sizeof(float)) == 0,
                        "%s differs from what was loaded", name);
        }
    }
    hd_safetensors_free(file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fixture *fx = fixture_get();
    const char *path = fuzz_temp_file(data, size);

    hd_safetensors *file = (hd_safetensors *)1;
    hd_clear_error();
    int rc = hd_safetensors_read(path, &file);
    fuzz_check_result(rc, path);
    if (rc == 0) {
        check_tensors(file);
        hd_safetensors_free(file);
    }

    char spec[512];
    hd_clear_error();
    int spec_rc = hd_checkpoint_read_spec(path, spec, sizeof spec);
    fuzz_check_result(spec_rc, path);
    int load_rc = load_into_model(fx, path);
    FUZZ_ASSERT(spec_rc == 0 || load_rc != 0, "loaded a checkpoint whose spec cannot be read");
    load_into_averaging(fx, path);
    return 0;
}
