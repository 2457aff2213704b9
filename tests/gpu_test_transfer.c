/* gpu_test_transfer.c: --freeze on the GPU against the CPU (skips with 77 without a GPU).
 *
 * 1. The same weights and fresh random batch on three models: CPU and GPU with the conv layers frozen, and
 *    the GPU without. The frozen models' backward stops at dense1: their gradients of the trainable layers
 *    must equal the CPU's within GPU_TOL_RTOL + GPU_TOL_ATOL_SCALE of the tensor's largest magnitude (FP32
 *    sums in other orders, as gpu_test_network), and the unfrozen GPU model's exactly (the same kernels on
 *    the same values); the frozen layers' gradients and the activation gradients below dense1 keep the
 *    sentinel they were filled with (no work was done there). The trainable layers here are linear (no
 *    ReLU), so no kink of an activation can part the two backends' gradients. The GPU backend is
 *    deterministic (cuDNN's heuristic order): each model plans its convolutions itself, and timed plans
 *    could pick two algorithms for one shape (a few microseconds apart at this size), whose outputs differ
 *    in the last bits; deterministic plans pick the same one for the same shape.
 * 2. Adam steps as the trainer runs them (hd_train_step: on the GPU, replays of recorded CUDA graphs, each
 *    layer range its own optimizer call), with conv1 and dense1 frozen between trainable layers: the frozen
 *    weights are bit-identical afterwards and their Adam state still zero, the trainable ones moved, and
 *    the steps were replayed (the per-range updates record). */
#include "check.h"
#include "gpu_compare.h"
#include "tolerances.h"
#include "hd/common.h"
#include "hd/freeze.h"
#include "hd/model.h"
#include "hd/optimizer.h"
#include "hd/train_step.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPEC     "conv:8:3:relu,maxpool:2,conv:8:3:relu,flatten,dense:32,dropout:0.25,dense:10"
#define HW       16
#define BATCH    24
#define STEPS    12
#define SENTINEL 12345.0f

static uint64_t rng;

static int all_sentinel(hd_backend *be, const float *dev, size_t count) {
    float *host = gpu_host_copy(be, dev, count);
    int ok = host != NULL;
    for (size_t i = 0; ok && i < count; i++)
        ok = host[i] == SENTINEL;
    free(host);
    return ok;
}

static void fill_sentinel(hd_backend *be, float *dev, size_t count) {
    float *host = malloc(count * sizeof *host);
    for (size_t i = 0; i < count; i++)
        host[i] = SENTINEL;
    be->ops->upload(be, dev, host, count * sizeof *host);
    free(host);
}

static void test_frozen_gradients(const gpu_backend_pair *pair) {
    hd_model cpu, gpu, full;
    uint64_t seed = test_rand_u64(&rng), drop_seed = test_rand_u64(&rng);
    int ok = hd_model_create(&cpu, pair->cpu, SPEC, 1, HW, HW, BATCH) == 0 &&
             hd_model_create(&gpu, pair->gpu, SPEC, 1, HW, HW, BATCH) == 0 &&
             hd_model_create(&full, pair->gpu, SPEC, 1, HW, HW, BATCH) == 0;
    CHECK(ok, "models: %s", hd_last_error());
    if (!ok)
        return;
    hd_model_init_weights(&cpu, seed);
    hd_model_init_weights(&gpu, seed);
    hd_model_init_weights(&full, seed);
    CHECK(hd_freeze_apply(&cpu, "conv") == 0 && hd_freeze_apply(&gpu, "conv") == 0, "freeze: %s",
          hd_last_error());
    int lowest = hd_model_first_trainable(&gpu);
    CHECK(lowest == 4, "lowest trainable layer %d, expected dense1 (4)", lowest);
    float *images = malloc((size_t)BATCH * HW * HW * sizeof(float));
    int32_t labels[BATCH];
    test_fill_uniform(images, (size_t)BATCH * HW * HW, 0.0f, 1.0f, &rng);
    for (int i = 0; i < BATCH; i++)
        labels[i] = (int32_t)(test_rand_u64(&rng) % 10);
    hd_model *models[3] = {&cpu, &gpu, &full};
    fill_sentinel(pair->gpu, gpu.grads, gpu.param_count);
    for (int l = 0; l < lowest; l++)
        if (gpu.layers[l].dout && gpu.layers[l].spec.kind != HD_LAYER_FLATTEN)
            fill_sentinel(pair->gpu, gpu.layers[l].dout, (size_t)BATCH * gpu.layers[l].out_size);
    for (int pass = 0; pass < 2; pass++) { /* a full batch, then a smaller one */
        int n = pass ? BATCH - 5 : BATCH;
        for (int k = 0; k < 3; k++) {
            hd_backend *be = models[k]->be;
            be->ops->upload(be, models[k]->input, images, (size_t)n * HW * HW * sizeof(float));
            be->ops->upload(be, models[k]->labels, labels, (size_t)n * sizeof(int32_t));
            hd_model_set_step(models[k], 11 + (uint64_t)pass, 1e-3f, 0.0f);
            hd_model_forward(models[k], n, 1, drop_seed);
            hd_model_loss(models[k], n, 1);
            hd_model_backward(models[k], n, drop_seed);
        }
        for (int l = 0; l < gpu.n_layers; l++) {
            const hd_layer *layer = &gpu.layers[l];
            size_t count = layer->weight_count + layer->bias_count, at = layer->weight_offset;
            if (!count)
                continue;
            char name[64];
            snprintf(name, sizeof name, "batch %d: %s gradients", n, layer->name);
            if (layer->frozen) {
                CHECK(all_sentinel(pair->gpu, gpu.grads + at, count), "%s: written although frozen", name);
                continue;
            }
            gpu_compare_tensors(name, pair, gpu.grads + at, cpu.grads + at, count, GPU_TOL_RTOL,
                                GPU_TOL_ATOL_SCALE);
            float *a = gpu_host_copy(pair->gpu, gpu.grads + at, count),
                  *b = gpu_host_copy(pair->gpu, full.grads + at, count);
            CHECK(a && b && memcmp(a, b, count * sizeof(float)) == 0, "%s differ from a full backward pass",
                  name);
            free(a);
            free(b);
        }
        for (int l = 0; l < lowest; l++)
            if (gpu.layers[l].dout && gpu.layers[l].spec.kind != HD_LAYER_FLATTEN)
                CHECK(all_sentinel(pair->gpu, gpu.layers[l].dout, (size_t)BATCH * gpu.layers[l].out_size),
                      "batch %d: %s's output gradient computed below the lowest trainable layer", n,
                      gpu.layers[l].name);
    }
    free(images);
    hd_model_destroy(&cpu);
    hd_model_destroy(&gpu);
    hd_model_destroy(&full);
}

static void test_frozen_steps(const gpu_backend_pair *pair) {
    hd_model m;
    if (hd_model_create(&m, pair->gpu, SPEC, 1, HW, HW, BATCH) != 0) {
        CHECK(0, "model: %s", hd_last_error());
        return;
    }
    hd_model_init_weights(&m, test_rand_u64(&rng));
    CHECK(hd_freeze_apply(&m, "1,5") == 0, "freeze conv1, dense1: %s", hd_last_error());
    hd_optimizer opt;
    hd_optimizer_defaults(&opt, HD_OPT_ADAM);
    opt.lr = 0.01f;
    if (hd_optimizer_init(&opt, &m) != 0) {
        CHECK(0, "optimizer: %s", hd_last_error());
        hd_model_destroy(&m);
        return;
    }
    size_t count = m.param_count;
    float *before = gpu_host_copy(pair->gpu, m.params, count);
    float *images = malloc((size_t)BATCH * HW * HW * sizeof(float));
    int32_t labels[BATCH];
    hd_train_step ts;
    hd_train_step_init(&ts, &m, &opt, test_rand_u64(&rng));
    int records = ts.recording_on; /* off only without record ops (HD_GPU_SYNC=1, --no-graph) */
    for (int step = 0; step < STEPS; step++) {
        test_fill_uniform(images, (size_t)BATCH * HW * HW, 0.0f, 1.0f, &rng);
        for (int i = 0; i < BATCH; i++)
            labels[i] = (int32_t)(test_rand_u64(&rng) % 10);
        pair->gpu->ops->upload(pair->gpu, m.input, images, sizeof(float) * BATCH * HW * HW);
        pair->gpu->ops->upload(pair->gpu, m.labels, labels, sizeof labels);
        hd_train_step_run(&ts, BATCH, (uint64_t)step);
    }
    float *after = gpu_host_copy(pair->gpu, m.params, count), *mom = gpu_host_copy(pair->gpu, opt.m, count),
          *var = gpu_host_copy(pair->gpu, opt.v, count);
    CHECK(!records || (ts.recording_on && ts.replays >= STEPS - 2),
          "%llu of %llu steps replayed (recording %s)", (unsigned long long)ts.replays,
          (unsigned long long)ts.steps_run, ts.recording_on ? "on" : "turned off");
    for (int l = 0; before && after && mom && var && l < m.n_layers; l++) {
        const hd_layer *layer = &m.layers[l];
        size_t n = layer->weight_count + layer->bias_count, at = layer->weight_offset;
        if (!n)
            continue;
        int same = memcmp(before + at, after + at, n * sizeof(float)) == 0;
        if (layer->frozen) {
            int zero = 1;
            for (size_t i = 0; i < n; i++)
                zero &= mom[at + i] == 0.0f && var[at + i] == 0.0f;
            CHECK(same, "frozen %s changed in %d GPU steps", layer->name, STEPS);
            CHECK(zero, "frozen %s has Adam state", layer->name);
        } else {
            CHECK(!same, "trainable %s did not move", layer->name);
        }
    }
    free(before), free(after), free(mom), free(var), free(images);
    hd_train_step_free(&ts);
    hd_optimizer_free(&opt, &m);
    hd_model_destroy(&m);
}

int main(void) {
    gpu_backend_pair pair;
    hd_gpu_options options = {.device = 0, .deterministic = 1}; /* the same algorithms in both GPU models */
    if (!gpu_pair_open(&pair, &options))
        return test_finish();
    rng = test_fresh_seed();
    test_frozen_gradients(&pair);
    test_frozen_steps(&pair);
    gpu_pair_close(&pair);
    return test_finish();
}
