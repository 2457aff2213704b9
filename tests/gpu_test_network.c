/* gpu_test_network.c: the whole default network on the GPU against the CPU path.
 *
 * 1. Same weights (hd_model_init_weights with one seed), same fresh random images, labels
 *    and dropout seed on both backends: logits, loss, correct count and every parameter
 *    gradient, at a full batch, at a smaller last batch and at a batch of one.
 * 2. TRAIN_STEPS Adam steps on both from the same start, on the same fresh synthetic batches
 *    (a learnable task: each class is a bright square at its own place, on noise), with
 *    dropout on and a smaller batch every 50th step: the loss curves must agree. The steps run
 *    as the trainer runs them (hd_train_step): on the GPU, replays of recorded CUDA graphs.
 * 3. Part 1's gradient comparison for a network of strided, padded convs, average and global average
 *    pooling, trained with label smoothing 0.1.
 *
 * Kinks: a gradient is discontinuous where a ReLU input or two values in a pooling window
 * are equal. Where the two backends' activations sit within rounding of such a point they
 * take different branches, and comparing gradients there measures nothing. So part 1 first
 * compares the activation patterns (ReLU on/off, pooling arg-max) of the two forward passes
 * and draws new inputs when they differ (a few percent of draws); a backend that keeps
 * differing fails.
 *
 * Tolerances (tests/test_util/tolerances.h): logits and gradients GPU_TOL_RTOL with
 * GPU_TOL_ATOL_SCALE of each tensor's largest magnitude (FP32 sums in different orders, as in
 * gpu_test_layers.c: a few layers deep the relative differences stay around 1e-6); loss sums
 * GPU_TOL_LOSS_RTOL; correct counts exact but for rows whose top two logits nearly tie; loss curves |gpu -
 * cpu| <= GPU_TOL_CURVE_ATOL + GPU_TOL_CURVE_RTOL * cpu at every step. Measured on the CPU while writing this
 * test (two CPU models, same batches, 200 steps): moving a random quarter of one model's weights by an ulp
 * after every step (about what rounding differences do to Adam's updates) left the curves within 3.3e-6 (six
 * seeds); moving half its weights by an ulp once at the start, within 1.4e-3 at loss 0.69 in the worst of
 * four seeds (a kink crossing early on). The curve tolerances are 5x that worst case and still far below what
 * a wrong gradient does to the curve. (A task that plateaus before it drops is chaotic: the drop's timing
 * moves, and the curves part by 0.1; hence this easy task.) */
#include "check.h"
#include "gpu_compare.h"
#include "tolerances.h"
#include "hd/common.h"
#include "hd/model.h"
#include "hd/optimizer.h"
#include "hd/train_step.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DRAWS   6
#define GRAD_BATCH  64
#define TRAIN_BATCH 32
#define TRAIN_STEPS 200

/* Rows of the CPU model's last logits whose two largest values are closer than the logits
 * comparison lets the two backends differ: 2 (GPU_TOL_RTOL + GPU_TOL_ATOL_SCALE) of the
 * batch's largest logit magnitude (each of the two may move by its tolerance). */
static size_t near_tie_rows(const hd_model *cm, int n) {
    const hd_layer *last = &cm->layers[cm->n_layers - 1];
    size_t count = (size_t)n * cm->classes, ties = 0;
    float *logits = gpu_host_copy(cm->be, last->out, count);
    if (!logits)
        return 0;
    double scale = 0.0;
    for (size_t i = 0; i < count; i++)
        scale = fmax(scale, fabs((double)logits[i]));
    for (int r = 0; r < n; r++) {
        const float *row = logits + (size_t)r * cm->classes;
        double top = -INFINITY, second = -INFINITY;
        for (int c = 0; c < cm->classes; c++) {
            if (row[c] > top) {
                second = top;
                top = row[c];
            } else if (row[c] > second) {
                second = row[c];
            }
        }
        ties += top - second <= 2.0 * (GPU_TOL_RTOL + GPU_TOL_ATOL_SCALE) * scale;
    }
    free(logits);
    return ties;
}

/* Number of ReLU units and pooling windows whose branch differs between the two forward
 * passes (arg-max: the first position holding the window's maximum). */
static size_t pattern_differences(const hd_model *a, const hd_model *b, int n) {
    size_t differ = 0;
    for (int l = 0; l < a->n_layers; l++) {
        const hd_layer *la = &a->layers[l], *lb = &b->layers[l];
        size_t count = (size_t)n * la->out_size;
        int relu = la->spec.act == HD_ACT_RELU, pool = la->spec.kind == HD_LAYER_MAXPOOL;
        if (!relu && !pool)
            continue;
        float *oa = gpu_host_copy(a->be, la->out, count), *ob = gpu_host_copy(b->be, lb->out, count);
        float *ia = NULL, *ib = NULL;
        size_t in_count = (size_t)n * la->in_c * la->in_h * la->in_w;
        if (pool) {
            ia = gpu_host_copy(a->be, l ? a->layers[l - 1].out : a->input, in_count);
            ib = gpu_host_copy(b->be, l ? b->layers[l - 1].out : b->input, in_count);
        }
        if (!oa || !ob || (pool && (!ia || !ib))) {
            differ = (size_t)-1;
        } else if (relu) {
            for (size_t i = 0; i < count; i++)
                differ += (oa[i] > 0.0f) != (ob[i] > 0.0f);
        } else {
            int size = la->spec.pool;
            for (size_t w = 0; w < count; w++) {
                size_t plane = w / ((size_t)la->out_h * la->out_w);
                int r = (int)(w % ((size_t)la->out_h * la->out_w)), oy = r / la->out_w, ox = r % la->out_w;
                int which[2] = {-1, -1};
                const float *in[2] = {ia, ib}, *out[2] = {oa, ob};
                for (int k = 0; k < 2; k++)
                    for (int j = 0; j < size * size && which[k] < 0; j++) {
                        size_t idx = (plane * la->in_h + (size_t)(oy * size + j / size)) * la->in_w +
                                     (size_t)(ox * size + j % size);
                        if (in[k][idx] == out[k][w])
                            which[k] = j;
                    }
                differ += which[0] != which[1];
            }
        }
        free(oa);
        free(ob);
        free(ia);
        free(ib);
    }
    return differ;
}

static void fill_batch(float *images, int32_t *labels, int n, int synthetic, uint64_t *rng) {
    test_fill_uniform(images, (size_t)n * 784, 0.0f, synthetic ? 0.3f : 1.0f, rng);
    for (int i = 0; i < n; i++) {
        int label = (int)(test_rand_u64(rng) % 10);
        labels[i] = label;
        if (!synthetic)
            continue;
        int top = 3 + (label / 5) * 13, left = 2 + (label % 5) * 5; /* a 6x4 block per class */
        for (int y = top; y < top + 6; y++)
            for (int x = left; x < left + 4; x++)
                images[(size_t)i * 784 + y * 28 + x] = 1.0f;
    }
}

static void upload_batch(hd_model *model, const float *images, const int32_t *labels, int n) {
    model->be->ops->upload(model->be, model->input, images, (size_t)n * 784 * sizeof(float));
    model->be->ops->upload(model->be, model->labels, labels, (size_t)n * sizeof(int32_t));
}

static void compare_tensors(const char *name, const hd_model *gm, const float *g_dev, const hd_model *cm,
                            const float *c_dev, size_t n) {
    gpu_backend_pair pair = {cm->be, gm->be};
    gpu_compare_tensors(name, &pair, g_dev, c_dev, n, GPU_TOL_RTOL, GPU_TOL_ATOL_SCALE);
}

static void compare_gradients(hd_model *cm, hd_model *gm, int n, uint64_t *rng) {
    float *images = malloc((size_t)n * 784 * sizeof(float));
    int32_t *labels = malloc((size_t)n * sizeof(int32_t));
    CHECK(images && labels, "malloc");
    int draw = 0;
    uint64_t seed = 0, step = 0;
    for (; images && labels && draw < MAX_DRAWS; draw++) {
        fill_batch(images, labels, n, 0, rng);
        seed = test_rand_u64(rng);
        step = test_rand_u64(rng) % 10000;
        hd_model *models[2] = {cm, gm};
        for (int k = 0; k < 2; k++) {
            upload_batch(models[k], images, labels, n);
            hd_model_set_step(models[k], step, 0.0f, 0.0f);
            hd_model_forward(models[k], n, 1, seed);
        }
        size_t differ = pattern_differences(cm, gm, n);
        if (differ == 0)
            break;
        printf("n=%d draw %d: %zu ReLU units or pooling windows took different branches; drawing again\n", n,
               draw, differ);
    }
    CHECK(draw < MAX_DRAWS, "n=%d: activation patterns differed in all %d draws", n, MAX_DRAWS);
    if (draw >= MAX_DRAWS || !images || !labels) {
        free(images);
        free(labels);
        return;
    }
    char name[96];
    const hd_layer *last = &cm->layers[cm->n_layers - 1];
    snprintf(name, sizeof name, "n=%d logits", n);
    compare_tensors(name, gm, gm->layers[gm->n_layers - 1].out, cm, last->out, (size_t)n * cm->classes);

    hd_model *models[2] = {cm, gm};
    float metrics[2][2];
    for (int k = 0; k < 2; k++) {
        models[k]->be->ops->zero(models[k]->be, models[k]->metrics, 2 * sizeof(float));
        hd_model_loss(models[k], n, 1);
        hd_model_backward(models[k], n, seed);
        models[k]->be->ops->download(models[k]->be, metrics[k], models[k]->metrics, sizeof metrics[k]);
    }
    printf("n=%d: loss sum cpu %.9g gpu %.9g, correct cpu %.0f gpu %.0f\n", n, (double)metrics[0][0],
           (double)metrics[1][0], (double)metrics[0][1], (double)metrics[1][1]);
    CHECK(fabs((double)metrics[1][0] - metrics[0][0]) <= GPU_TOL_LOSS_RTOL * fabs((double)metrics[0][0]),
          "n=%d: loss sum %.9g vs %.9g", n, (double)metrics[1][0], (double)metrics[0][0]);
    /* A row whose two largest logits are nearly equal may rank them either way on the two
     * backends (logits agree to rounding); every other row must be judged alike. */
    size_t near_ties = near_tie_rows(cm, n);
    CHECK(fabs((double)metrics[1][1] - metrics[0][1]) <= (double)near_ties,
          "n=%d: correct %.0f vs %.0f (%zu rows with near-tied top logits)", n, (double)metrics[1][1],
          (double)metrics[0][1], near_ties);
    for (int l = 0; l < cm->n_layers; l++) {
        const hd_layer *layer = &cm->layers[l];
        if (!layer->weight_count)
            continue;
        snprintf(name, sizeof name, "n=%d %s dweight", n, layer->name);
        compare_tensors(name, gm, gm->grads + layer->weight_offset, cm, cm->grads + layer->weight_offset,
                        layer->weight_count);
        snprintf(name, sizeof name, "n=%d %s dbias", n, layer->name);
        compare_tensors(name, gm, gm->grads + layer->bias_offset, cm, cm->grads + layer->bias_offset,
                        layer->bias_count);
    }
    free(images);
    free(labels);
}

static void compare_training(hd_model *cm, hd_model *gm, int steps, uint64_t *rng) {
    hd_model *models[2] = {cm, gm};
    hd_optimizer opt[2];
    hd_train_step runner[2];
    uint64_t seed = test_rand_u64(rng);
    int opt_ok = 1;
    for (int k = 0; k < 2; k++) {
        hd_optimizer_defaults(&opt[k], HD_OPT_ADAM);
        int ok = hd_optimizer_init(&opt[k], models[k]) == 0;
        CHECK(ok, "optimizer on %s: %s", models[k]->be->name, hd_last_error());
        opt_ok &= ok;
        hd_train_step_init(&runner[k], models[k], &opt[k], seed);
    }
    if (!opt_ok) {
        for (int k = 0; k < 2; k++) {
            hd_train_step_free(&runner[k]);
            hd_optimizer_free(&opt[k], models[k]);
        }
        return;
    }
    float *images = malloc((size_t)TRAIN_BATCH * 784 * sizeof(float));
    int32_t *labels = malloc(TRAIN_BATCH * sizeof(int32_t));
    double worst = 0.0, first_cpu = 0.0, last_cpu = 0.0;
    int worst_step = -1, bad_steps = 0;
    CHECK(images && labels, "malloc");
    for (int step = 0; images && labels && step < steps; step++) {
        int n = step % 50 == 49 ? TRAIN_BATCH - 11 : TRAIN_BATCH;
        fill_batch(images, labels, n, 1, rng);
        float loss[2];
        for (int k = 0; k < 2; k++) {
            hd_model *m = models[k];
            upload_batch(m, images, labels, n);
            m->be->ops->zero(m->be, m->metrics, 2 * sizeof(float));
            hd_train_step_run(&runner[k], n, (uint64_t)step);
            float metrics[2];
            m->be->ops->download(m->be, metrics, m->metrics, sizeof metrics);
            loss[k] = metrics[0] / (float)n;
        }
        double diff = fabs((double)loss[1] - loss[0]);
        if (isnan(diff))
            diff = INFINITY; /* a NaN loss on either side is a step out of tolerance */
        if (diff > GPU_TOL_CURVE_ATOL + GPU_TOL_CURVE_RTOL * fabs((double)loss[0]))
            bad_steps++;
        if (diff > worst) {
            worst = diff;
            worst_step = step;
        }
        if (step < 10)
            first_cpu += loss[0] / 10.0;
        if (step >= steps - 10)
            last_cpu += loss[0] / 10.0;
        if (step % 20 == 0 || step == steps - 1)
            printf("step %3d n=%d: loss cpu %.6f gpu %.6f\n", step, n, (double)loss[0], (double)loss[1]);
    }
    printf("loss curves: largest difference %.3g at step %d; mean loss first 10 steps %.4f, last 10 %.4f\n",
           worst, worst_step, first_cpu, last_cpu);
    CHECK(bad_steps == 0,
          "loss curves differ beyond %.0e + %.0e * loss at %d of %d steps (worst %.3g at step %d)",
          GPU_TOL_CURVE_ATOL, GPU_TOL_CURVE_RTOL, bad_steps, steps, worst, worst_step);
    CHECK(steps < 100 || last_cpu < 0.5 * first_cpu,
          "the synthetic task was not learned (loss %.4f -> %.4f): the curves compare "
          "nothing",
          first_cpu, last_cpu);
    /* The GPU's steps after the first on each batch size (a warm-up, op by op) were replays of
     * recorded CUDA graphs: the curves above hold the graph path against the CPU. */
    int small = 0;
    for (int step = 0; step < steps; step++)
        small += step % 50 == 49;
    int sizes = 1 + (small > 0), want_recordings = (steps - small >= 2) + (small >= 2);
    printf("gpu steps: %llu replayed from %d recordings\n", (unsigned long long)runner[1].replays,
           runner[1].recordings_made);
    const char *sync_env = getenv("HD_GPU_SYNC"); /* syncing after every op: nothing is recorded */
    if (!sync_env || atoi(sync_env) <= 0)
        CHECK(runner[1].replays == (uint64_t)(steps - sizes) && runner[1].recordings_made == want_recordings,
              "the GPU replayed %llu of %d steps from %d recordings (expected %d, from %d)",
              (unsigned long long)runner[1].replays, steps, runner[1].recordings_made, steps - sizes,
              want_recordings);
    CHECK(runner[0].replays == 0, "the CPU backend replayed %llu steps",
          (unsigned long long)runner[0].replays);
    for (int k = 0; k < 2; k++) {
        hd_train_step_free(&runner[k]);
        hd_optimizer_free(&opt[k], models[k]);
    }
    free(images);
    free(labels);
}

int main(void) {
    uint64_t rng = test_fresh_seed();
    gpu_backend_pair pair;
    if (!gpu_pair_open(&pair, NULL))
        return test_finish();
    hd_backend *cpu = pair.cpu, *gpu = pair.gpu;

    hd_model cm, gm;
    int ok = hd_model_create(&cm, cpu, HD_DEFAULT_SPEC, 1, 28, 28, GRAD_BATCH) == 0;
    ok = ok && hd_model_create(&gm, gpu, HD_DEFAULT_SPEC, 1, 28, 28, GRAD_BATCH) == 0;
    CHECK(ok, "model: %s", hd_last_error());
    if (!ok)
        return test_finish();
    /* The comparisons read every layer's output: the CPU's conv + max pooling fused op writes no conv
     * output (the same results as the two ops, bit for bit: test_cpu_layers). */
    CHECK(hd_model_fuse(&cm, 0) == 0, "unfused: %s", hd_last_error());
    uint64_t init_seed = test_rand_u64(&rng);
    hd_model_init_weights(&cm, init_seed);
    hd_model_init_weights(&gm, init_seed);
    float *pc = malloc(cm.param_count * sizeof(float)), *pg = malloc(gm.param_count * sizeof(float));
    CHECK(pc && pg && cm.param_count == gm.param_count, "params");
    if (pc && pg) {
        hd_model_get_params(&cm, pc);
        hd_model_get_params(&gm, pg);
        CHECK(memcmp(pc, pg, cm.param_count * sizeof(float)) == 0,
              "the same seed gave different initial weights");
    }

    compare_gradients(&cm, &gm, GRAD_BATCH, &rng);
    compare_gradients(&cm, &gm, GRAD_BATCH - 23, &rng); /* the last, smaller batch */
    compare_gradients(&cm, &gm, 1, &rng);
    /* HD_TEST_TRAIN_STEPS shortens part 2 (bench/gpu-check does under compute-sanitizer). */
    const char *steps_env = getenv("HD_TEST_TRAIN_STEPS");
    int steps = steps_env && atoi(steps_env) >= 10 ? atoi(steps_env) : TRAIN_STEPS;
    compare_training(&cm, &gm, steps, &rng);

    /* Strided and padded convs, average and global average pooling, dense after gap, label smoothing:
     * the same gradients on both backends. */
    const char *const strided = "conv:16:5:s2:same:relu,avgpool:2,conv:32:3:s2:same:relu,gap,dense:10";
    hd_model cs, gs;
    int built = hd_model_create(&cs, cpu, strided, 1, 28, 28, GRAD_BATCH) == 0;
    built = built && hd_model_create(&gs, gpu, strided, 1, 28, 28, GRAD_BATCH) == 0;
    CHECK(built, "model %s: %s", strided, hd_last_error());
    if (built) {
        hd_model_init_weights(&cs, init_seed);
        hd_model_init_weights(&gs, init_seed);
        cs.label_smoothing = gs.label_smoothing = 0.1f;
        compare_gradients(&cs, &gs, GRAD_BATCH, &rng);
        compare_gradients(&cs, &gs, 3, &rng);
        hd_model_destroy(&gs);
        hd_model_destroy(&cs);
    }

    free(pc);
    free(pg);
    hd_model_destroy(&gm);
    hd_model_destroy(&cm);
    gpu_pair_close(&pair);
    return test_finish();
}
