/* test_gradcheck_network.c: the whole network's parameter gradients against central
 * finite differences of its mean softmax cross-entropy loss, dropout included (the mask is
 * a pure function of seed and step, so the loss is a fixed function of the parameters).
 *
 * The check runs on a random sample of parameters of every layer, with the eps and the
 * tolerance of tests/test_util/tolerances.h (NET_GRAD_*, and why). A nudge that crosses a ReLU kink or
 * changes a max-pool arg-max makes the finite difference meaningless for that parameter,
 * so each sample records the network's "pattern" (ReLU on/off bits and pool arg-max
 * positions) at +eps and -eps. A sample out of tolerance whose nudge changed the pattern
 * is replaced by another; one out of tolerance with the pattern unchanged is a failure.
 * (ReLU bits cover both conv/dense's `:relu` and the standalone relu layer.) */
#include "check.h"
#include "tolerances.h"
#include "hd/common.h"
#include "hd/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define EPS  NET_GRAD_EPS
#define ATOL NET_GRAD_ATOL
#define RTOL NET_GRAD_RTOL

/* FNV-1a hash of the active ReLU units and pool arg-max positions of the last forward. */
static uint64_t pattern_hash(const hd_model *model, int n) {
    uint64_t h = 1469598103934665603ull;
    for (int l = 0; l < model->n_layers; l++) {
        const hd_layer *layer = &model->layers[l];
        size_t count = (size_t)n * layer->out_size;
        if (layer->spec.act == HD_ACT_RELU || layer->spec.kind == HD_LAYER_RELU) {
            for (size_t i = 0; i < count; i++)
                h = (h ^ (uint64_t)(layer->out[i] > 0)) * 1099511628211ull;
        } else if (layer->spec.kind == HD_LAYER_MAXPOOL) {
            const float *in = l ? model->layers[l - 1].out : model->input;
            int size = layer->spec.pool;
            for (int p = 0; p < n * layer->out_c; p++)
                for (int oy = 0; oy < layer->out_h; oy++)
                    for (int ox = 0; ox < layer->out_w; ox++) {
                        float v = layer->out[((size_t)p * layer->out_h + oy) * layer->out_w + ox];
                        int which = 0;
                        for (int k = 0; k < size * size; k++)
                            if (in[((size_t)p * layer->in_h + oy * size + k / size) * layer->in_w +
                                   ox * size + k % size] == v) {
                                which = k;
                                break;
                            }
                        h = (h ^ (uint64_t)which) * 1099511628211ull;
                    }
        }
    }
    return h;
}

/* The training objective (want_grad: with label smoothing when the model has it; the gradient it also
 * writes into the last layer's dout is not used). */
static double loss_of(hd_model *model, int n, uint64_t seed, uint64_t *pattern) {
    model->metrics[0] = model->metrics[1] = 0;
    hd_model_forward(model, n, 1, seed);
    hd_model_loss(model, n, 1);
    /* The pattern reads every layer's output, which a conv fused with its max pooling does not write
     * (hd_model_fuse): the same pass again, layer by layer (the same values, bit for bit). The loss and
     * the gradients checked are the fused pass's. */
    CHECK(hd_model_fuse(model, 0) == 0, "unfused: %s", hd_last_error());
    hd_model_forward(model, n, 1, seed);
    *pattern = pattern_hash(model, n);
    CHECK(hd_model_fuse(model, 1) == 0, "fused again: %s", hd_last_error());
    return (double)model->metrics[0] / n;
}

static void check_network(hd_backend *be, const char *spec, int in_c, int hw, int n, int samples_per_layer,
                          float smoothing, uint64_t *rng) {
    hd_model model;
    CHECK(hd_model_create(&model, be, spec, in_c, hw, hw, n) == 0, "create %s: %s", spec, hd_last_error());
    model.label_smoothing = smoothing;
    uint64_t seed = test_rand_u64(rng);
    hd_model_init_weights(&model, seed);
    /* Larger biases than zero so units are not all on a kink at the start. */
    for (int l = 0; l < model.n_layers; l++)
        for (size_t j = 0; j < model.layers[l].bias_count; j++)
            model.params[model.layers[l].bias_offset + j] =
                0.01f * (float)((int)(test_rand_u64(rng) % 21) - 10);
    test_fill_uniform(model.input, (size_t)n * in_c * hw * hw, 0, 1, rng);
    for (int i = 0; i < n; i++)
        model.labels[i] = (int32_t)(test_rand_u64(rng) % (uint64_t)model.classes);

    model.metrics[0] = model.metrics[1] = 0;
    hd_model_set_step(&model, 3, 0.0f, 0.0f); /* the dropout masks of step 3 throughout */
    hd_model_forward(&model, n, 1, seed);
    if (smoothing > 0.0f) {
        /* Evaluation (no gradient) reports the plain cross-entropy, the same bits as without smoothing;
         * the training objective is another. */
        hd_model_loss(&model, n, 0);
        float plain = model.metrics[0];
        model.label_smoothing = 0.0f;
        hd_model_loss(&model, n, 1);
        float unsmoothed = model.metrics[0] - plain;
        model.label_smoothing = smoothing;
        hd_model_loss(&model, n, 1);
        float smoothed = model.metrics[0] - plain - unsmoothed;
        CHECK(plain == unsmoothed && smoothed != plain,
              "%s: evaluation loss %.9g, unsmoothed training loss %.9g, smoothed %.9g", spec, plain,
              unsmoothed, smoothed);
        printf("%s, smoothing %g: loss sum %.6g plain, %.6g smoothed\n", spec, (double)smoothing, plain,
               smoothed);
        model.metrics[0] = model.metrics[1] = 0;
    }
    hd_model_loss(&model, n, 1);
    hd_model_backward(&model, n, seed);

    int checked = 0, missed = 0, at_kink = 0;
    double worst = 0;
    for (int l = 0; l < model.n_layers; l++) {
        const hd_layer *layer = &model.layers[l];
        size_t count = layer->weight_count + layer->bias_count;
        if (!count)
            continue;
        /* The first draws are among the layer's biases, until one has been checked (a redraw
         * draws a random bias again, not the same one, which would cross the same kink); a bias
         * moves a whole channel, so all of them can sit at one kink: after 4 tries, any
         * parameter. */
        int bias_checked = layer->bias_count == 0;
        for (int k = 0, tries = 0; k < samples_per_layer && tries < 20 * samples_per_layer; k++, tries++) {
            int draw_bias = !bias_checked && tries < 4;
            size_t idx = draw_bias ? layer->bias_offset + test_rand_u64(rng) % layer->bias_count
                                   : layer->weight_offset + test_rand_u64(rng) % count;
            float saved = model.params[idx];
            model.params[idx] = saved + EPS;
            uint64_t pattern_plus, pattern_minus;
            double plus = loss_of(&model, n, seed, &pattern_plus);
            model.params[idx] = saved - EPS;
            double minus = loss_of(&model, n, seed, &pattern_minus);
            model.params[idx] = saved;
            double numeric = (plus - minus) / (2.0 * EPS), analytic = model.grads[idx];
            double err = fabs(numeric - analytic), allowed = ATOL + RTOL * fabs(numeric);
            if (err > allowed && pattern_plus != pattern_minus) {
                at_kink++;
                k--; /* the nudge crossed a kink: not a valid finite difference, draw another */
                continue;
            }
            checked++;
            bias_checked |= draw_bias;
            if (err > worst)
                worst = err;
            if (err > allowed) {
                missed++;
                printf("  %s param %zu: analytic %.6g numeric %.6g\n", layer->name,
                       idx - layer->weight_offset, analytic, numeric);
            }
        }
    }
    printf(
        "%s: %d parameters checked, %d out of tolerance, %d nudges crossed a kink (redrawn), worst abs error "
        "%.3g\n",
        spec, checked, missed, at_kink, worst);
    CHECK(checked >= samples_per_layer * 3, "%s: enough parameters checked (%d)", spec, checked);
    CHECK(missed == 0, "%s: %d of %d gradients out of tolerance", spec, missed, checked);
    hd_model_destroy(&model);
}

int main(void) {
    uint64_t rng = test_fresh_seed();
    hd_cpu_options options = {2};
    hd_backend *be = hd_cpu_backend_create(&options);
    /* The default MNIST network on 28x28 inputs, dropout active. */
    check_network(be, HD_DEFAULT_SPEC, 1, 28, 1, 30, 0.0f, &rng);
    /* A small network with two input channels, a 5x5 kernel and SGD-free plain layers. */
    check_network(be, "conv:3:5,maxpool:2,flatten,dense:7:relu,dropout:0.3,dense:4", 2, 12, 3, 30, 0.0f,
                  &rng);
    /* Label smoothing: the gradient of the smoothed objective. */
    check_network(be, "conv:3:5,maxpool:2,flatten,dense:7:relu,dropout:0.3,dense:4", 2, 12, 3, 20, 0.2f,
                  &rng);
    /* Stride and padding, average and global average pooling, dense straight after gap. */
    check_network(be, "conv:4:5:s2:same:relu,avgpool:2,conv:6:3:p1:relu,conv:6:4:s2,gap,dense:5", 1, 16, 3,
                  20, 0.0f, &rng);
    /* Batch norm after a conv (BatchNorm2d) and after a dense layer (BatchNorm1d), each followed by a
     * standalone relu: batch statistics over 4 images, so each image's loss depends on the others. */
    check_network(be, "conv:4:3,bn,relu,maxpool:2,flatten,dense:8,bn,relu,dense:4", 1, 10, 4, 30, 0.0f, &rng);
    hd_backend_destroy(be);
    return test_finish();
}
