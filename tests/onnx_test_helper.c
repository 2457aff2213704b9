/* onnx_test_helper.c: what tests/onnx_export_test.sh needs from hd-gpu's side.
 *   onnx_test_helper init SPEC SEED OUT.safetensors
 *       a model of SPEC on 1x28x28 images, Glorot weights and random biases in [-0.1, 0.1) from SEED
 *       (so that biases are checked too), saved as a checkpoint
 *   onnx_test_helper logits CHECKPOINT DATA_DIR OUT
 *       hd-gpu's logits (CPU backend, inference) on every image of DATA_DIR's MNIST test set, loaded
 *       and scaled as `hd-gpu eval` does, written as little-endian float32 [count, classes] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hd/backend.h"
#include "hd/checkpoint.h"
#include "hd/common.h"
#include "hd/evaluate.h"
#include "hd/mnist.h"
#include "hd/model.h"
#include "hd/model_load.h"

#define BATCH 500

static int init_model(const char *spec, const char *seed_text, const char *out) {
    long long seed;
    if (hd_parse_integer(seed_text, 0, 1LL << 62, &seed) != 0)
        return hd_fail("bad seed '%s'", seed_text);
    hd_backend *be = hd_cpu_backend_create(&(hd_cpu_options){1});
    if (!be)
        return -1;
    hd_model model;
    int rc = -1;
    if (hd_model_create(&model, be, spec, 1, 28, 28, 1) == 0) {
        float *params = hd_malloc(model.param_count * sizeof(float));
        uint64_t state = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + 1;
        if (params && hd_model_init_weights(&model, (uint64_t)seed) == 0 &&
            hd_model_get_params(&model, params) == 0) {
            for (int i = 0; i < model.n_layers; i++) {
                const hd_layer *l = &model.layers[i];
                for (size_t j = 0; j < l->bias_count; j++) {
                    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
                    params[l->bias_offset + j] =
                        (float)((double)(state >> 40) / (double)(1ULL << 24) * 0.2 - 0.1);
                }
            }
            rc = hd_model_set_params(&model, params) == 0 ? hd_checkpoint_save(out, &model, NULL, NULL, 0)
                                                          : -1;
        }
        free(params);
        hd_model_destroy(&model);
    }
    hd_backend_destroy(be);
    return rc;
}

static int write_logits(const char *checkpoint, const char *data_dir, const char *out) {
    hd_backend *be = hd_cpu_backend_create(&(hd_cpu_options){0});
    if (!be)
        return -1;
    hd_mnist_options data;
    hd_mnist_options_defaults(&data);
    data.data_dir = data_dir;
    data.allow_download = 0;
    data.quiet = 1;
    hd_eval_inputs in;
    if (hd_eval_inputs_load(&in, be, checkpoint, &data, BATCH) != 0) {
        hd_backend_destroy(be);
        return -1;
    }
    const hd_model *m = &in.model;
    size_t image = (size_t)m->in_c * m->in_h * m->in_w, classes = (size_t)m->classes;
    float *logits = hd_malloc((size_t)in.test.count * classes * sizeof(float));
    int rc = -1;
    if (logits) {
        for (int begin = 0; begin < in.test.count; begin += BATCH) {
            int n = in.test.count - begin < BATCH ? in.test.count - begin : BATCH;
            be->ops->upload(be, in.model.input, in.test.images + (size_t)begin * image,
                            sizeof(float) * n * image);
            const float *dev = hd_model_forward(&in.model, n, 0, 0);
            be->ops->download(be, logits + (size_t)begin * classes, dev, sizeof(float) * n * classes);
        }
        rc = hd_write_file_atomic(out, logits, (size_t)in.test.count * classes * sizeof(float));
        if (rc == 0)
            printf("onnx_test_helper: %d images x %zu logits from %s\n", in.test.count, classes, checkpoint);
    }
    free(logits);
    hd_eval_inputs_free(&in);
    hd_backend_destroy(be);
    return rc;
}

int main(int argc, char **argv) {
    int rc;
    if (argc == 5 && strcmp(argv[1], "init") == 0)
        rc = init_model(argv[2], argv[3], argv[4]);
    else if (argc == 5 && strcmp(argv[1], "logits") == 0)
        rc = write_logits(argv[2], argv[3], argv[4]);
    else {
        fprintf(stderr, "usage: onnx_test_helper init SPEC SEED OUT | logits CHECKPOINT DATA_DIR OUT\n");
        return 2;
    }
    if (rc != 0)
        fprintf(stderr, "onnx_test_helper: %s\n", hd_last_error());
    return rc == 0 ? 0 : 1;
}
