/* test_transfer.c: transfer learning on the CPU backend (src/train/transfer.c, src/model/freeze.c), with
 * fresh random weights and batches each run:
 *  - --freeze WHICH: kinds, numbers and ranges; bad items, numbers past the model, nothing left to train;
 *  - freezing: the gradients of the trainable layers equal those of a full backward pass (bit for bit: the
 *    same ops on the same values); no gradient work below the lowest trainable layer (its grads and the
 *    activations' gradients there keep a sentinel); frozen weights and their Adam/SGD state bit-identical
 *    after training steps while the others move;
 *  - --init: a checkpoint matched by name and shape (loaded, shape differs, fresh, unused); what is loaded
 *    equals the file, what is fresh equals a fresh initialisation; another input shape, nothing matching and
 *    a corrupt file refused with one line naming the file;
 *  - class counts, the output layer and class names;
 *  - end to end through hd_train on a small synthetic IDX-like set: a 10-class run, then a 5-class fine-tune
 *    from it with conv frozen (frozen weights as the source's, a 5-way output, names recorded, --resume keeps
 *    the freeze), and bad inputs refused before anything is written. */
#include "../src/cli/predict.h" /* hd_predict_print: the class names in predict's answers */
#include "check.h"
#include "hd/checkpoint.h"
#include "hd/common.h"
#include "hd/freeze.h"
#include "hd/model.h"
#include "hd/optimizer.h"
#include "hd/run_settings.h"
#include "hd/train_step.h"
#include "hd/trainer.h"
#include "hd/transfer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SPEC     "conv:4:3:relu,maxpool:2,conv:6:3:relu,flatten,dense:16:relu,dropout:0.5,dense:10"
#define BATCH    6
#define HW       12
#define SENTINEL 12345.0f

static uint64_t rng;

static int make_model(hd_model *model, hd_backend *be, const char *spec, uint64_t seed) {
    int ok = hd_model_create(model, be, spec, 1, HW, HW, BATCH) == 0;
    CHECK(ok, "model %s: %s", spec, hd_last_error());
    if (ok)
        hd_model_init_weights(model, seed);
    return ok;
}

static void fill_batch(hd_model *a, hd_model *b) {
    test_fill_uniform(a->input, (size_t)BATCH * HW * HW, 0.0f, 1.0f, &rng);
    for (int i = 0; i < BATCH; i++)
        a->labels[i] = (int32_t)(test_rand_u64(&rng) % 10);
    memcpy(b->input, a->input, (size_t)BATCH * HW * HW * sizeof(float));
    memcpy(b->labels, a->labels, BATCH * sizeof(int32_t));
}

static void test_freeze_parse(hd_backend *be) {
    hd_model m;
    if (!make_model(&m, be, SPEC, 1))
        return;
    /* Layers: 1 conv1, 2 pool1, 3 conv2, 4 flatten1, 5 dense1, 6 dropout1, 7 dense2. */
    static const struct {
        const char *which;
        const char *frozen;
        int lowest;
    } good[] = {
        {"conv", "conv1,conv2", 4},          {"1-3", "conv1,pool1,conv2", 4}, {"1", "conv1", 2},
        {"conv,5", "conv1,conv2,dense1", 6}, {"1-4,dense", NULL, 0},          {"", "none", 0},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int rc = hd_freeze_apply(&m, good[i].which);
        if (!good[i].frozen) {
            CHECK(rc != 0 && strstr(hd_last_error(), "nothing to train"), "--freeze %s: %s", good[i].which,
                  rc ? hd_last_error() : "accepted");
            for (int l = 0; l < m.n_layers; l++)
                CHECK(!m.layers[l].frozen, "--freeze %s refused but left layer %d frozen", good[i].which,
                      l + 1);
            continue;
        }
        char text[256];
        hd_freeze_describe(&m, text, sizeof text);
        CHECK(rc == 0 && strcmp(text, good[i].frozen) == 0, "--freeze '%s': %s (expected %s; %s)",
              good[i].which, text, good[i].frozen, rc ? hd_last_error() : "");
        CHECK(hd_model_first_trainable(&m) == good[i].lowest, "--freeze '%s': lowest trainable %d, not %d",
              good[i].which, hd_model_first_trainable(&m), good[i].lowest);
    }
    static const struct {
        const char *which, *says;
    } bad[] = {{"cnv", "'cnv' is neither"}, {"0", "'0' is neither"},     {"3-1", "'3-1' is neither"},
               {"1-", "'1-' is neither"},   {"8", "past the model's 7"}, {"2-9", "past the model's 7"},
               {",", "names no layers"},    {"a,conv", "'a' is neither"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = hd_freeze_apply(&m, bad[i].which);
        CHECK(rc != 0 && strstr(hd_last_error(), bad[i].says) && !strchr(hd_last_error(), '\n'),
              "--freeze '%s': %s", bad[i].which, rc ? hd_last_error() : "accepted");
    }
    CHECK(hd_freeze_check("conv,1-3,dense") == 0 && hd_freeze_check("pool") != 0, "hd_freeze_check");
    hd_model_destroy(&m);
    hd_model m2;
    if (make_model(&m2, be, "flatten,dense:8:relu,dense:10", 1)) {
        CHECK(hd_freeze_apply(&m2, "conv") != 0 && strstr(hd_last_error(), "has no conv layer"),
              "freezing a kind the model lacks: %s", hd_last_error());
        hd_model_destroy(&m2);
    }
}

/* A full backward pass against one that stops below the frozen conv layers. */
static void test_frozen_gradients(hd_backend *be) {
    hd_model full, part;
    uint64_t seed = test_rand_u64(&rng), drop_seed = test_rand_u64(&rng);
    if (!make_model(&full, be, SPEC, seed) || !make_model(&part, be, SPEC, seed))
        return;
    CHECK(hd_freeze_apply(&part, "conv") == 0, "freeze conv: %s", hd_last_error());
    fill_batch(&full, &part);
    for (size_t i = 0; i < part.param_count; i++)
        part.grads[i] = SENTINEL;
    /* The gradients of the layers below the lowest trainable one (dense1, layer 5): never written. */
    for (int l = 0; l < 4; l++)
        for (size_t i = 0; part.layers[l].dout && i < (size_t)BATCH * part.layers[l].out_size; i++)
            part.layers[l].dout[i] = SENTINEL;
    hd_model_set_step(&full, 7, 1e-3f, 0.0f);
    hd_model_set_step(&part, 7, 1e-3f, 0.0f);
    for (int pass = 0; pass < 2; pass++) { /* twice: a full batch, then a smaller one */
        int n = pass ? BATCH - 2 : BATCH;
        hd_model *models[2] = {&full, &part};
        for (int k = 0; k < 2; k++) {
            hd_model_forward(models[k], n, 1, drop_seed);
            hd_model_loss(models[k], n, 1);
            hd_model_backward(models[k], n, drop_seed);
        }
        for (int l = 0; l < part.n_layers; l++) {
            const hd_layer *layer = &part.layers[l];
            size_t count = layer->weight_count + layer->bias_count;
            if (!count)
                continue;
            if (!layer->frozen) {
                CHECK(memcmp(part.grads + layer->weight_offset, full.grads + layer->weight_offset,
                             count * sizeof(float)) == 0,
                      "batch %d: %s's gradients differ from a full backward pass", n, layer->name);
            } else {
                int untouched = 1;
                for (size_t i = 0; i < count; i++)
                    untouched &= part.grads[layer->weight_offset + i] == SENTINEL;
                CHECK(untouched, "batch %d: frozen %s (below the lowest trainable layer) got gradients", n,
                      layer->name);
            }
        }
        for (int l = 0; l < 4; l++) {
            int untouched = 1;
            for (size_t i = 0; part.layers[l].dout && i < (size_t)BATCH * part.layers[l].out_size; i++)
                untouched &= part.layers[l].dout[i] == SENTINEL;
            CHECK(untouched,
                  "batch %d: layer %d's output gradient was computed below the lowest trainable layer", n,
                  l + 1);
        }
        double norm = 0.0;
        for (size_t i = part.layers[4].weight_offset; i < part.param_count; i++)
            norm += fabs((double)part.grads[i]);
        CHECK(norm > 1e-6, "batch %d: the trainable gradients are all zero", n);
    }
    hd_model_destroy(&full);
    hd_model_destroy(&part);
}

/* Training steps with dense1 frozen between trainable conv layers and dense2: the frozen weights and their
 * optimizer state do not move, the rest do. */
static void test_frozen_weights(hd_backend *be, hd_optimizer_kind kind) {
    hd_model m;
    if (!make_model(&m, be, SPEC, test_rand_u64(&rng)))
        return;
    int rc = hd_freeze_apply(&m, "1,5");
    CHECK(rc == 0, "freeze conv1, dense1: %s", hd_last_error());
    hd_optimizer opt;
    hd_optimizer_defaults(&opt, kind);
    opt.lr = 0.05f;
    if (hd_optimizer_init(&opt, &m) != 0) {
        CHECK(0, "optimizer: %s", hd_last_error());
        hd_model_destroy(&m);
        return;
    }
    size_t count = m.param_count;
    float *before = malloc(count * sizeof(float));
    memcpy(before, m.params, count * sizeof(float));
    hd_train_step ts;
    hd_train_step_init(&ts, &m, &opt, test_rand_u64(&rng));
    hd_model other;
    if (!make_model(&other, be, SPEC, 1)) {
        free(before);
        return;
    }
    for (int step = 0; step < 8; step++) {
        fill_batch(&m, &other);
        hd_train_step_run(&ts, BATCH, (uint64_t)step);
    }
    const char *name = kind == HD_OPT_ADAM ? "adam" : "sgd";
    for (int l = 0; l < m.n_layers; l++) {
        const hd_layer *layer = &m.layers[l];
        size_t n = layer->weight_count + layer->bias_count, at = layer->weight_offset;
        if (!n)
            continue;
        int same = memcmp(m.params + at, before + at, n * sizeof(float)) == 0;
        if (layer->frozen) {
            int state_zero = 1;
            for (size_t i = 0; i < n; i++)
                state_zero &= opt.m[at + i] == 0.0f && (!opt.v || opt.v[at + i] == 0.0f);
            CHECK(same, "%s: frozen %s changed after 8 steps", name, layer->name);
            CHECK(state_zero, "%s: frozen %s has optimizer state", name, layer->name);
        } else {
            CHECK(!same, "%s: trainable %s did not move", name, layer->name);
        }
    }
    hd_train_step_free(&ts);
    hd_optimizer_free(&opt, &m);
    hd_model_destroy(&m);
    hd_model_destroy(&other);
    free(before);
}

static void test_init_matching(hd_backend *be, const char *dir) {
    hd_model src, dst;
    uint64_t seed = test_rand_u64(&rng);
    if (!make_model(&src, be, SPEC, seed))
        return;
    src.input_mean = 0.25f;
    src.input_std = 0.5f;
    char *path = test_path_join(dir, "src.safetensors");
    CHECK(hd_checkpoint_save(path, &src, NULL, NULL, 0) == 0, "save: %s", hd_last_error());
    /* conv1 as the source's; conv2 with 8 filters (shape differs, and so does dense1's weight after it, but
     * not its bias); dense2 of 12 units (shape differs); a dense3 the source lacks (fresh). */
    const char *spec = "conv:4:3:relu,maxpool:2,conv:8:3:relu,flatten,dense:16:relu,dense:12:relu,dense:5";
    uint64_t fresh_seed = test_rand_u64(&rng);
    if (!make_model(&dst, be, spec, fresh_seed)) {
        free(path);
        return;
    }
    hd_model layout;
    CHECK(hd_model_layout(&layout, spec, 1, HW, HW, BATCH) == 0 && layout.param_count == dst.param_count,
          "layout: %s", hd_last_error());
    hd_init_source init;
    int rc = hd_init_source_open(&init, path, &layout);
    CHECK(rc == 0, "init source: %s", hd_last_error());
    if (rc == 0) {
        static const struct {
            const char *name;
            hd_init_status status;
        } want[] = {{"conv1.weight", HD_INIT_LOADED},         {"conv1.bias", HD_INIT_LOADED},
                    {"conv2.weight", HD_INIT_SHAPE_DIFFERS},  {"conv2.bias", HD_INIT_SHAPE_DIFFERS},
                    {"dense1.weight", HD_INIT_SHAPE_DIFFERS}, {"dense1.bias", HD_INIT_LOADED},
                    {"dense2.weight", HD_INIT_SHAPE_DIFFERS}, {"dense2.bias", HD_INIT_SHAPE_DIFFERS},
                    {"dense3.weight", HD_INIT_FRESH},         {"dense3.bias", HD_INIT_FRESH}};
        CHECK(init.n_rows == 10, "%d rows", init.n_rows);
        for (int i = 0; i < init.n_rows && i < 10; i++)
            CHECK(strcmp(init.rows[i].name, want[i].name) == 0 && init.rows[i].status == want[i].status,
                  "row %d: %s %d, expected %s %d", i, init.rows[i].name, init.rows[i].status, want[i].name,
                  want[i].status);
        CHECK(init.loaded == 3 && init.has_input_norm && init.input_mean == 0.25f && init.input_std == 0.5f,
              "loaded %d, normalisation %g/%g", init.loaded, (double)init.input_mean, (double)init.input_std);
        float *fresh = malloc(dst.param_count * sizeof(float));
        memcpy(fresh, dst.params, dst.param_count * sizeof(float));
        CHECK(hd_init_source_apply(&init, &dst, 1) == 0, "apply: %s", hd_last_error());
        const hd_layer *c1 = &dst.layers[0], *d1 = &dst.layers[4];
        CHECK(memcmp(dst.params, src.params, (c1->weight_count + c1->bias_count) * sizeof(float)) == 0,
              "conv1 is not the source's");
        CHECK(memcmp(dst.params + d1->bias_offset, src.params + src.layers[4].bias_offset,
                     d1->bias_count * sizeof(float)) == 0,
              "dense1.bias is not the source's");
        size_t rest = dst.layers[2].weight_offset;
        CHECK(memcmp(dst.params + rest, fresh + rest, (d1->bias_offset - rest) * sizeof(float)) == 0 &&
                  memcmp(dst.params + d1->bias_offset + d1->bias_count,
                         fresh + d1->bias_offset + d1->bias_count,
                         (dst.param_count - d1->bias_offset - d1->bias_count) * sizeof(float)) == 0,
              "the tensors not loaded are not the fresh ones");
        CHECK(dst.input_mean == 0.25f && dst.input_std == 0.5f, "normalisation not taken");
        free(fresh);
        hd_init_source_free(&init);
    }
    /* A source tensor the model has no name for shows as unused. */
    hd_model small;
    CHECK(hd_model_layout(&small, "conv:4:3:relu,flatten,dense:10", 1, HW, HW, BATCH) == 0, "layout");
    if (hd_init_source_open(&init, path, &small) == 0) {
        int unused = 0;
        for (int i = 0; i < init.n_rows; i++)
            unused += init.rows[i].status == HD_INIT_UNUSED;
        CHECK(init.loaded == 2 && unused == 4, "conv1 loaded (%d), conv2 and dense2 unused (%d of 4)",
              init.loaded, unused);
        hd_init_source_free(&init);
    } else {
        CHECK(0, "small model: %s", hd_last_error());
    }

    /* Refusals: one line naming the file. */
    hd_model other_shape, nothing;
    CHECK(hd_model_layout(&other_shape, SPEC, 1, HW + 2, HW + 2, BATCH) == 0, "layout 14x14");
    rc = hd_init_source_open(&init, path, &other_shape);
    CHECK(rc != 0 && strstr(hd_last_error(), path) && strstr(hd_last_error(), "1x12x12") &&
              strstr(hd_last_error(), "1x14x14"),
          "another input shape: %s", rc ? hd_last_error() : "accepted");
    CHECK(hd_model_layout(&nothing, "conv:3:5:relu,flatten,dense:7", 1, HW, HW, BATCH) == 0, "layout");
    rc = hd_init_source_open(&init, path, &nothing);
    CHECK(rc != 0 && strstr(hd_last_error(), path) && strstr(hd_last_error(), "no tensor matches"),
          "nothing matching: %s", rc ? hd_last_error() : "accepted");
    uint8_t *bytes = NULL;
    size_t size = 0;
    if (hd_read_file(path, &bytes, &size) == 0 && size > 64) {
        bytes[size - 5] ^= 0x40; /* a weight's byte: the data's CRC-32 no longer matches */
        char *bad = test_path_join(dir, "corrupt.safetensors");
        hd_write_file_atomic(bad, bytes, size);
        rc = hd_init_source_open(&init, bad, &layout);
        CHECK(rc != 0 && strstr(hd_last_error(), bad) && !strchr(hd_last_error(), '\n'), "corrupt file: %s",
              rc ? hd_last_error() : "accepted");
        free(bad);
    }
    free(bytes);
    rc = hd_init_source_open(&init, "/nonexistent/x.safetensors", &layout);
    CHECK(rc != 0 && strstr(hd_last_error(), "/nonexistent/x.safetensors"), "missing file: %s",
          hd_last_error());
    free(path);
    hd_model_destroy(&src);
    hd_model_destroy(&dst);
}

/* --init with batch norm: a layer's running statistics come with its scale and shift (into model->state, not
 * the parameters), num_batches_tracked is neither loaded nor reported unused, and a negative running
 * variance is refused naming the file and the tensor. */
static void test_init_batchnorm(hd_backend *be, const char *dir) {
    const char *spec = "conv:4:3,bn,relu,maxpool:2,flatten,dense:10";
    hd_model src, dst;
    if (!make_model(&src, be, spec, test_rand_u64(&rng)))
        return;
    if (!make_model(&dst, be, "conv:4:3,bn,relu,maxpool:2,flatten,dense:6", test_rand_u64(&rng))) {
        hd_model_destroy(&src);
        return;
    }
    float stats[8]; /* running mean of 4 channels, then their (positive) variance */
    test_fill_uniform(stats, 4, -1.0f, 1.0f, &rng);
    test_fill_uniform(stats + 4, 4, 0.5f, 2.0f, &rng);
    hd_model_set_state(&src, stats);
    src.batches_tracked = 7;
    char *path = test_path_join(dir, "bn-src.safetensors");
    CHECK(hd_checkpoint_save(path, &src, NULL, NULL, 0) == 0, "save: %s", hd_last_error());
    hd_init_source init;
    int rc = hd_init_source_open(&init, path, &dst);
    CHECK(rc == 0, "bn init source: %s", hd_last_error());
    if (rc == 0) {
        int mean = -1, var = -1, tracked = 0;
        for (int i = 0; i < init.n_rows; i++) {
            mean = strcmp(init.rows[i].name, "bn1.running_mean") == 0 ? i : mean;
            var = strcmp(init.rows[i].name, "bn1.running_var") == 0 ? i : var;
            tracked += strstr(init.rows[i].name, "num_batches_tracked") != NULL;
        }
        CHECK(mean >= 0 && var >= 0 && init.rows[mean].status == HD_INIT_LOADED &&
                  init.rows[var].status == HD_INIT_LOADED && init.rows[mean].is_state && !tracked,
              "running statistics loaded as state (rows %d, %d), num_batches_tracked not listed (%d)", mean,
              var, tracked);
        /* conv1 (2) + bn1's weight, bias, running mean and variance (4); dense1's shape differs */
        CHECK(init.loaded == 6, "%d tensors loaded, want 6", init.loaded);
        CHECK(hd_init_source_apply(&init, &dst, 0) == 0, "apply: %s", hd_last_error());
        float got[8];
        hd_model_get_state(&dst, got);
        CHECK(memcmp(got, stats, sizeof got) == 0, "the running statistics are not the source's");
        const hd_layer *bn = &dst.layers[1];
        CHECK(memcmp(dst.params + bn->weight_offset, src.params + src.layers[1].weight_offset,
                     (bn->weight_count + bn->bias_count) * sizeof(float)) == 0,
              "bn1's scale and shift are not the source's");
        hd_init_source_free(&init);
    }
    stats[5] = -0.25f;
    hd_model_set_state(&src, stats);
    char *bad = test_path_join(dir, "bn-negative.safetensors");
    CHECK(hd_checkpoint_save(bad, &src, NULL, NULL, 0) == 0, "save: %s", hd_last_error());
    rc = hd_init_source_open(&init, bad, &dst);
    CHECK(rc != 0 && strstr(hd_last_error(), bad) && strstr(hd_last_error(), "bn1.running_var") &&
              strstr(hd_last_error(), "negative variance at index 1"),
          "a negative running variance: %s", rc ? hd_last_error() : "accepted");
    if (rc == 0)
        hd_init_source_free(&init);
    free(bad);
    free(path);
    hd_model_destroy(&src);
    hd_model_destroy(&dst);
}

static void test_classes_and_names(const char *dir) {
    uint8_t images[6 * 4] = {0}, train_labels[6] = {0, 1, 4, 2, 3, 1}, test_labels[3] = {4, 0, 5};
    hd_dataset train = {6, 2, 2, images, train_labels, (char *)"train-images"};
    hd_dataset test = {3, 2, 2, images, test_labels, (char *)"t10k-images"};
    int classes = 0;
    int rc = hd_transfer_classes(&train, &test, 0, &classes);
    CHECK(rc != 0 && strstr(hd_last_error(), "t10k-images") && strstr(hd_last_error(), "image 2 is 5") &&
              strstr(hd_last_error(), "5 classes"),
          "a test label past the training labels' classes: %s", rc ? hd_last_error() : "accepted");
    test_labels[2] = 1;
    CHECK(hd_transfer_classes(&train, &test, 0, &classes) == 0 && classes == 5, "5 classes from labels: %d",
          classes);
    CHECK(hd_transfer_classes(&train, &test, 26, &classes) == 0 && classes == 26, "--num-classes 26: %d",
          classes);
    rc = hd_transfer_classes(&train, &test, 3, &classes);
    CHECK(rc != 0 && strstr(hd_last_error(), "train-images") && strstr(hd_last_error(), "image 2 is 4"),
          "--num-classes 3 below a label: %s", rc ? hd_last_error() : "accepted");
    char spec[512];
    CHECK(hd_transfer_spec(SPEC, 5, spec, sizeof spec) == 0 &&
              strcmp(spec,
                     "conv:4:3:relu,maxpool:2,conv:6:3:relu,flatten,dense:16:relu,dropout:0.5,dense:5") == 0,
          "spec for 5 classes: %s", spec);
    CHECK(hd_transfer_spec("flatten,dense:10,dropout:0.5", 5, spec, sizeof spec) != 0 &&
              strstr(hd_last_error(), "must be dense"),
          "a spec not ending in dense: %s", hd_last_error());

    char *names_path = test_path_join(dir, "names.txt");
    char *names = NULL;
    const char *text = "T-shirt/top\r\nTrouser\nPullover\nDress\nCoat\n\n";
    hd_write_file_atomic(names_path, text, strlen(text));
    CHECK(hd_class_names_read(names_path, 5, &names) == 0 && names &&
              strcmp(names, "T-shirt/top\nTrouser\nPullover\nDress\nCoat") == 0,
          "names: %s", names ? names : hd_last_error());
    free(names);
    rc = hd_class_names_read(names_path, 10, &names);
    CHECK(rc != 0 && strstr(hd_last_error(), names_path) && strstr(hd_last_error(), "5 class names") &&
              strstr(hd_last_error(), "10 classes"),
          "5 names for 10 classes: %s", rc ? hd_last_error() : "accepted");
    hd_write_file_atomic(names_path, "a\n\nc\n", 5);
    rc = hd_class_names_read(names_path, 3, &names);
    CHECK(rc != 0 && strstr(hd_last_error(), "class name 2 is empty"), "an empty name: %s",
          rc ? hd_last_error() : "accepted");
    free(names_path);
}

/* Class names read back from a checkpoint pass the same screen as a --class-names file: a name with a
 * control character (which eval and predict would print) is refused naming the file. */
static void test_checkpoint_names(hd_backend *be, const char *dir) {
    hd_model m, back;
    if (!make_model(&m, be, "conv:4:3:relu,flatten,dense:3", test_rand_u64(&rng)))
        return;
    char *path = test_path_join(dir, "names.safetensors");
    m.class_names = strdup("cat\ndog\nbird");
    CHECK(hd_checkpoint_save(path, &m, NULL, NULL, 0) == 0, "save: %s", hd_last_error());
    CHECK(make_model(&back, be, "conv:4:3:relu,flatten,dense:3", 1) &&
              hd_checkpoint_load(path, &back, NULL, NULL) == 0 && back.class_names &&
              strcmp(back.class_names, "cat\ndog\nbird") == 0,
          "names read back: %s", back.class_names ? back.class_names : hd_last_error());
    free(m.class_names);
    m.class_names = strdup("cat\nd\x1bog\nbird");
    CHECK(hd_checkpoint_save(path, &m, NULL, NULL, 0) == 0, "save: %s", hd_last_error());
    int rc = hd_checkpoint_load(path, &back, NULL, NULL);
    CHECK(rc != 0 && strstr(hd_last_error(), path) && strstr(hd_last_error(), "class name 2 holds a control"),
          "a control character in a checkpoint's name: %s", rc ? hd_last_error() : "accepted");
    free(path);
    hd_model_destroy(&m);
    hd_model_destroy(&back);
}

/* predict's answers name the classes when the model has names: text and JSON. */
static void test_predict_names(void) {
    const float logits[3] = {0.5f, 3.0f, -1.0f};
    hd_predict_format fmt = {.json = 0, .low_confidence = 0.5, .class_names = "Ankle boot\nBag\nCoat"};
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    hd_predict_print(out, &fmt, "x.png", logits, 3);
    fmt.json = 1;
    hd_predict_print(out, &fmt, "x.png", logits, 3);
    fmt.class_names = NULL;
    fmt.json = 0;
    hd_predict_print(out, &fmt, "x.png", logits, 3);
    fclose(out);
    CHECK(text && strstr(text, "x.png: 1 Bag (90.") && strstr(text, ", 0 Ankle boot (7.") &&
              strstr(text, ", 2 Coat (1."),
          "text answer with names: %s", text ? text : "");
    CHECK(text && strstr(text, "\"class\": 1, \"name\": \"Bag\"") && strstr(text, "\"name\": \"Coat\""),
          "JSON answer with names: %s", text ? text : "");
    CHECK(text && strstr(text, "x.png: 1 (90."), "text answer without names: %s", text ? text : "");
    free(text);
}

/* A learnable synthetic set: class c is a bright vertical bar at column band c (of `classes`), on noise. */
static void make_set(hd_dataset *d, int count, int classes, const char *name) {
    d->count = count;
    d->rows = d->cols = HW;
    d->images = malloc((size_t)count * HW * HW);
    d->labels = malloc((size_t)count);
    d->source = strdup(name);
    for (int i = 0; i < count; i++) {
        int c = (int)(test_rand_u64(&rng) % (uint64_t)classes);
        d->labels[i] = (uint8_t)c;
        for (int p = 0; p < HW * HW; p++) {
            int x = p % HW, band = x * classes / HW;
            d->images[(size_t)i * HW * HW + p] =
                (uint8_t)(band == c ? 200 + test_rand_u64(&rng) % 56 : test_rand_u64(&rng) % 60);
        }
    }
}

static hd_train_config tiny_config(const char *run_dir) {
    hd_train_config cfg;
    hd_train_config_defaults(&cfg);
    cfg.run_dir = run_dir;
    cfg.spec = "conv:4:3:relu,maxpool:2,conv:6:3:relu,flatten,dense:16:relu,dense:10";
    cfg.epochs = 2;
    cfg.batch = 32;
    cfg.quiet = 1;
    cfg.report = 0;
    cfg.augment = 0;
    cfg.seed = test_rand_u64(&rng) % 1000000;
    return cfg;
}

static int read_tensor(const char *path, const char *name, float *out, size_t count, int64_t *dim0) {
    hd_safetensors *file = NULL;
    if (hd_safetensors_read(path, &file) != 0)
        return -1;
    int rank = 0;
    int64_t dims[HD_ST_MAX_RANK] = {0};
    const float *data = hd_safetensors_find(file, name, &rank, dims);
    if (data && out)
        memcpy(out, data, count * sizeof(float));
    if (dim0)
        *dim0 = dims[0];
    hd_safetensors_free(file);
    return data ? 0 : -1;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static void test_end_to_end(hd_backend *be, const char *dir) {
    hd_dataset train10 = {0}, test10 = {0}, train5 = {0}, test5 = {0};
    make_set(&train10, 400, 10, "ten/train-images-idx3-ubyte");
    make_set(&test10, 100, 10, "ten/t10k-images-idx3-ubyte");
    make_set(&train5, 300, 5, "five/train-images-idx3-ubyte");
    make_set(&test5, 100, 5, "five/t10k-images-idx3-ubyte");
    train5.labels[0] = 4; /* every class present, whatever the draw */
    char *pre = test_path_join(dir, "pre"), *fine = test_path_join(dir, "fine"),
         *names = test_path_join(dir, "five.txt"), *bad_dir = test_path_join(dir, "bad");
    hd_write_file_atomic(names, "zero\none\ntwo\nthree\nfour\n", 24);
    hd_train_result result;
    hd_train_config cfg = tiny_config(pre);
    int rc = hd_train(be, &cfg, &train10, &test10, &result);
    CHECK(rc == 0, "pretraining: %s", hd_last_error());

    char src_path[4200], best[4200], last[4200];
    snprintf(src_path, sizeof src_path, "%s/best.safetensors", pre);
    snprintf(best, sizeof best, "%s/best.safetensors", fine);
    snprintf(last, sizeof last, "%s/last.safetensors", fine);
    hd_train_config fcfg = tiny_config(fine);
    fcfg.init = src_path;
    fcfg.freeze = "conv";
    fcfg.class_names = names;
    fcfg.lr = 1e-2f;
    fcfg.epochs = 6;
    rc = hd_train(be, &fcfg, &train5, &test5, &result);
    CHECK(rc == 0, "fine-tuning: %s", hd_last_error());
    printf("fine-tuned 5-class test accuracy %.3f\n", result.test_accuracy);
    CHECK(result.test_accuracy > 0.6, "fine-tuned 5-class accuracy %.3f (chance 0.2)", result.test_accuracy);
    /* conv1 (4x1x3x3) and conv2 (6x4x3x3) frozen: bit-identical to the source's in the fine-tuned run. */
    float a[216], b[216];
    int64_t dim0 = 0;
    CHECK(read_tensor(src_path, "conv2.weight", a, 216, NULL) == 0 &&
              read_tensor(best, "conv2.weight", b, 216, NULL) == 0 && memcmp(a, b, sizeof a) == 0,
          "frozen conv2.weight changed in fine-tuning");
    CHECK(read_tensor(src_path, "conv1.bias", a, 4, NULL) == 0 &&
              read_tensor(last, "conv1.bias", b, 4, NULL) == 0 && memcmp(a, b, 4 * sizeof(float)) == 0,
          "frozen conv1.bias changed in fine-tuning");
    CHECK(read_tensor(src_path, "dense1.bias", a, 16, NULL) == 0 &&
              read_tensor(best, "dense1.bias", b, 16, NULL) == 0 && memcmp(a, b, 16 * sizeof(float)) != 0,
          "trainable dense1.bias did not move from the source's");
    CHECK(read_tensor(best, "dense2.bias", NULL, 0, &dim0) == 0 && dim0 == 5, "output layer of %lld units",
          (long long)dim0);
    hd_safetensors *file = NULL;
    if (hd_safetensors_read(last, &file) == 0) {
        const char *f = hd_safetensors_meta(file, "hd.train.freeze"),
                   *n = hd_safetensors_meta(file, "hd.class_names"),
                   *s = hd_safetensors_meta(file, "hd.spec");
        CHECK(f && strcmp(f, "conv") == 0, "hd.train.freeze: %s", f ? f : "(none)");
        CHECK(n && strcmp(n, "zero\none\ntwo\nthree\nfour") == 0, "hd.class_names: %s", n ? n : "(none)");
        CHECK(s && strstr(s, ",dense:5"), "hd.spec: %s", s ? s : "(none)");
        hd_safetensors_free(file);
    }
    char *settings = hd_run_settings_file_read(fine);
    char value[256] = "";
    CHECK(settings && hd_run_settings_file_value(settings, "freeze", value, sizeof value) &&
              strcmp(value, "conv") == 0,
          "settings.txt freeze: %s", value);
    free(settings);
    /* --resume keeps the freeze: one more epoch, the conv weights still the source's. */
    hd_train_config rcfg = tiny_config(fine);
    rcfg.resume = 1;
    rcfg.epochs = 7;
    rcfg.given = hd_run_settings_bit("epochs");
    rc = hd_train(be, &rcfg, &train5, &test5, &result);
    CHECK(rc == 0, "resume: %s", hd_last_error());
    CHECK(read_tensor(src_path, "conv2.weight", a, 216, NULL) == 0 &&
              read_tensor(last, "conv2.weight", b, 216, NULL) == 0 && memcmp(a, b, sizeof a) == 0,
          "the resumed run moved the frozen conv2.weight");
    settings = hd_run_settings_file_read(fine); /* rewritten by the resumed run: still says where it began */
    CHECK(settings && hd_run_settings_file_value(settings, "init", value, sizeof value) &&
              strcmp(value, src_path) == 0,
          "settings.txt after --resume: init '%s', want '%s'", value, src_path);
    free(settings);
    rcfg.given |= hd_run_settings_bit("freeze");
    rcfg.freeze = "dense";
    rcfg.epochs = 8;
    rc = hd_train(be, &rcfg, &train5, &test5, &result);
    CHECK(rc != 0 && strstr(hd_last_error(), "--freeze dense contradicts"), "resume with another freeze: %s",
          rc ? hd_last_error() : "accepted");

    /* Bad inputs: one line, and nothing written (the run directory is not even made). */
    static const char *const says[] = {"1x12x12", "no tensor matches", "outside the model's 4 classes",
                                       "5 class names", "past the model's"};
    for (int k = 0; k < 5; k++) {
        hd_train_config bcfg = tiny_config(bad_dir);
        bcfg.init = src_path;
        hd_dataset tr = train5, te = test5;
        uint8_t *other = NULL;
        if (k == 0) { /* another input shape */
            other = calloc(300 * 14 * 14, 1);
            tr.images = other;
            tr.rows = tr.cols = 14;
            te.count = 0;
        } else if (k == 1) {
            bcfg.spec = "conv:3:5:relu,flatten,dense:10";
        } else if (k == 2) {
            bcfg.num_classes = 4; /* labels 4 exist */
        } else if (k == 3) {
            bcfg.num_classes = 10;
            bcfg.class_names = names;
        } else {
            bcfg.freeze = "2-9";
        }
        rc = hd_train(be, &bcfg, &tr, &te, &result);
        CHECK(rc != 0 && strstr(hd_last_error(), says[k]) && !strchr(hd_last_error(), '\n'),
              "bad input %d: %s", k, rc ? hd_last_error() : "accepted");
        CHECK(!file_exists(bad_dir), "bad input %d: %s was made", k, bad_dir);
        free(other);
    }
    hd_dataset_free(&train10), hd_dataset_free(&test10), hd_dataset_free(&train5), hd_dataset_free(&test5);
    free(pre), free(fine), free(names), free(bad_dir);
}

int main(void) {
    rng = test_fresh_seed();
    hd_cpu_options cpu = {.threads = 2};
    hd_backend *be = hd_cpu_backend_create(&cpu);
    char *dir = test_make_temp_dir("transfer");
    if (!be || !dir) {
        CHECK(0, "CPU backend or temp dir: %s", hd_last_error());
        return test_finish();
    }
    test_freeze_parse(be);
    test_frozen_gradients(be);
    test_frozen_weights(be, HD_OPT_ADAM);
    test_frozen_weights(be, HD_OPT_SGD);
    test_init_matching(be, dir);
    test_init_batchnorm(be, dir);
    test_classes_and_names(dir);
    test_checkpoint_names(be, dir);
    test_predict_names();
    test_end_to_end(be, dir);
    hd_backend_destroy(be);
    test_remove_tree(dir);
    free(dir);
    return test_finish();
}
