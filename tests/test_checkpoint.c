/* test_checkpoint.c: model + optimizer checkpoints on the CPU backend: bit-identical
 * parameters, optimizer state and predictions after a round trip; refusal (with the model
 * left untouched) of a different spec, truncated or corrupted files, misshapen, missing or
 * stray tensors, and optimizer state that is absent or of another kind. Batch norm: the
 * running statistics and num_batches_tracked round-trip exactly, and a checkpoint whose state
 * tensors are missing, of the wrong dtype or shape, or out of range is refused. */
#include "check.h"
#include "hd/checkpoint.h"
#include "hd/common.h"
#include "hd/model_load.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH      6
#define SMALL_SPEC "conv:4:3:relu,maxpool:2,flatten,dense:10"

typedef struct {
    hd_backend *be;
    char *dir;
    uint64_t rng;
} fixture;

static float *download(const hd_model *model, const float *device, size_t count) {
    float *host = malloc(count * sizeof *host);
    if (host)
        model->be->ops->download(model->be, host, device, count * sizeof *host);
    return host;
}

static float *host_params(const hd_model *model) {
    float *host = malloc(model->param_count * sizeof *host);
    if (host && hd_model_get_params(model, host) != 0) {
        free(host);
        return NULL;
    }
    return host;
}

/* Eval-mode logits for the given images (BATCH x 28 x 28), as a host copy. */
static float *predict(hd_model *model, const float *images) {
    model->be->ops->upload(model->be, model->input, images, (size_t)BATCH * 28 * 28 * sizeof(float));
    const float *logits = hd_model_forward(model, BATCH, 0, 0);
    return download(model, logits, (size_t)BATCH * (size_t)model->classes);
}

static int same_bits(const float *a, const float *b, size_t n) {
    return a && b && memcmp(a, b, n * sizeof *a) == 0;
}

/* Random m and v (v positive, as Adam's is), a step count and non-default hyperparameters. */
static void fill_adam_state(hd_model *model, hd_optimizer *opt, uint64_t *rng) {
    size_t n = model->param_count;
    float *tmp = malloc(n * sizeof *tmp);
    test_fill_uniform(tmp, n, -0.01f, 0.01f, rng);
    model->be->ops->upload(model->be, opt->m, tmp, n * sizeof *tmp);
    test_fill_uniform(tmp, n, 0.0f, 1e-4f, rng);
    model->be->ops->upload(model->be, opt->v, tmp, n * sizeof *tmp);
    free(tmp);
    opt->t = 1234;
    opt->lr = 3.3e-4f;
    opt->beta1 = 0.85f;
    opt->eps = 1.5e-8f;
}

/* Expects loading path into model (and opt) to fail with needle in the message and to leave
 * the model's parameters as they were. */
static void expect_load_fails(const char *path, hd_model *model, hd_optimizer *opt, const char *needle,
                              const char *what) {
    float *before = host_params(model);
    hd_clear_error();
    int rc = hd_checkpoint_load(path, model, opt, NULL);
    const char *msg = hd_last_error();
    CHECK(rc == -1, "%s: load succeeded", what);
    CHECK(strstr(msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, msg, needle);
    CHECK(strncmp(msg, path, strlen(path)) == 0, "%s: message does not name the file: %s", what, msg);
    printf("  refused %-28s %s\n", what, msg + strlen(path));
    float *after = host_params(model);
    CHECK(same_bits(before, after, model->param_count), "%s: failed load changed the parameters", what);
    free(before);
    free(after);
}

static void test_round_trip(fixture *fx) {
    hd_model a, b;
    hd_optimizer opt_a, opt_b;
    CHECK(hd_model_create(&a, fx->be, HD_DEFAULT_SPEC, 1, 28, 28, BATCH) == 0, "create: %s", hd_last_error());
    CHECK(hd_model_create(&b, fx->be, HD_DEFAULT_SPEC, 1, 28, 28, BATCH) == 0, "create: %s", hd_last_error());
    CHECK(hd_model_init_weights(&a, 11) == 0 && hd_model_init_weights(&b, 22) == 0, "init: %s",
          hd_last_error());
    hd_optimizer_defaults(&opt_a, HD_OPT_ADAM);
    hd_optimizer_defaults(&opt_b, HD_OPT_ADAM);
    CHECK(hd_optimizer_init(&opt_a, &a) == 0 && hd_optimizer_init(&opt_b, &b) == 0, "optimizer init: %s",
          hd_last_error());
    fill_adam_state(&a, &opt_a, &fx->rng);

    float images[BATCH * 28 * 28];
    test_fill_uniform(images, BATCH * 28 * 28, 0.0f, 1.0f, &fx->rng);
    float *logits_a = predict(&a, images);
    float *logits_b_before = predict(&b, images);
    size_t n_logits = (size_t)BATCH * (size_t)a.classes;
    CHECK(!same_bits(logits_a, logits_b_before, n_logits), "differently seeded models predict the same");

    char *path = test_path_join(fx->dir, "model.safetensors");
    hd_st_meta extra[] = {{"epoch", "5"}, {"best_val_loss", "0.0312"}, {"seed", "42"}};
    CHECK(hd_checkpoint_save(path, &a, &opt_a, extra, 3) == 0, "save: %s", hd_last_error());

    char spec[512];
    CHECK(hd_checkpoint_read_spec(path, spec, sizeof spec) == 0 && strcmp(spec, a.spec_text) == 0,
          "read_spec: got '%s' (%s)", spec, hd_last_error());

    hd_safetensors *file = NULL;
    CHECK(hd_checkpoint_load(path, &b, &opt_b, &file) == 0, "load: %s", hd_last_error());
    float *pa = host_params(&a), *pb = host_params(&b);
    CHECK(same_bits(pa, pb, a.param_count), "parameters differ after the round trip");
    float *ma = download(&a, opt_a.m, a.param_count), *mb = download(&b, opt_b.m, b.param_count);
    float *va = download(&a, opt_a.v, a.param_count), *vb = download(&b, opt_b.v, b.param_count);
    CHECK(same_bits(ma, mb, a.param_count), "Adam m differs after the round trip");
    CHECK(same_bits(va, vb, a.param_count), "Adam v differs after the round trip");
    CHECK(opt_b.t == 1234 && opt_b.lr == opt_a.lr && opt_b.beta1 == opt_a.beta1 &&
              opt_b.beta2 == opt_a.beta2 && opt_b.eps == opt_a.eps && opt_b.kind == HD_OPT_ADAM,
          "optimizer scalars: t %llu lr %g beta1 %g eps %g", (unsigned long long)opt_b.t, (double)opt_b.lr,
          (double)opt_b.beta1, (double)opt_b.eps);
    float *logits_b = predict(&b, images);
    CHECK(same_bits(logits_a, logits_b, n_logits), "predictions differ after the round trip");
    if (file) {
        for (int i = 0; i < 3; i++) {
            const char *v = hd_safetensors_meta(file, extra[i].key);
            CHECK(v && strcmp(v, extra[i].value) == 0, "extra %s: '%s'", extra[i].key, v ? v : "(null)");
        }
        CHECK(hd_safetensors_meta(file, "hd.input") &&
                  strcmp(hd_safetensors_meta(file, "hd.input"), "1x28x28") == 0,
              "hd.input");
        int rank = 0;
        int64_t dims[4];
        char name[40];
        snprintf(name, sizeof name, "%s.weight", a.layers[0].name);
        CHECK(hd_safetensors_find(file, name, &rank, dims) && rank == 4 && dims[0] == 32 && dims[1] == 1 &&
                  dims[2] == 3 && dims[3] == 3,
              "%s: rank %d, expected (32, 1, 3, 3)", name, rank);
        snprintf(name, sizeof name, "optimizer.v.%s.bias", a.layers[a.n_layers - 1].name);
        CHECK(hd_safetensors_find(file, name, &rank, dims) && rank == 1 && dims[0] == 10, "%s missing", name);
        hd_safetensors_free(file);
    }

    /* Without an optimizer: parameters only; such a file cannot resume training. */
    hd_model c;
    CHECK(hd_model_create(&c, fx->be, HD_DEFAULT_SPEC, 1, 28, 28, BATCH) == 0, "create: %s", hd_last_error());
    CHECK(hd_checkpoint_load(path, &c, NULL, NULL) == 0, "load without optimizer: %s", hd_last_error());
    float *pc = host_params(&c);
    CHECK(same_bits(pa, pc, a.param_count), "parameters differ (loaded without optimizer)");
    char *weights_only = test_path_join(fx->dir, "weights.safetensors");
    CHECK(hd_checkpoint_save(weights_only, &a, NULL, NULL, 0) == 0, "save weights only: %s", hd_last_error());
    hd_model_init_weights(&c, 33);
    expect_load_fails(weights_only, &c, &opt_b, "no optimizer state", "optimizer state absent");
    hd_optimizer sgd;
    hd_optimizer_defaults(&sgd, HD_OPT_SGD);
    CHECK(hd_optimizer_init(&sgd, &c) == 0, "sgd init: %s", hd_last_error());
    expect_load_fails(path, &c, &sgd, "checkpoint optimizer is adam, but sgd was requested",
                      "optimizer kind");
    hd_st_meta clash = {"hd.spec", "x"};
    CHECK(hd_checkpoint_save(weights_only, &a, NULL, &clash, 1) == -1 &&
              strstr(hd_last_error(), "given twice"),
          "extra key clashing with hd.spec accepted: %s", hd_last_error());

    hd_optimizer_free(&sgd, &c);
    hd_model_destroy(&c);
    free(pc);
    free(weights_only);
    free(pa);
    free(pb);
    free(ma);
    free(mb);
    free(va);
    free(vb);
    free(logits_a);
    free(logits_b);
    free(logits_b_before);
    free(path);
    hd_optimizer_free(&opt_a, &a);
    hd_optimizer_free(&opt_b, &b);
    hd_model_destroy(&a);
    hd_model_destroy(&b);
}

/* Writes the model's parameters as a checkpoint by hand, optionally without the last tensor,
 * with the first reshaped, or with a tensor the model does not have. */
static int write_edited(const char *path, const hd_model *model, const float *params, int drop_last,
                        int reshape_first, int add_stray) {
    char names[2 * HD_MAX_LAYERS + 1][40];
    hd_st_tensor tensors[2 * HD_MAX_LAYERS + 1];
    int n = 0;
    for (int i = 0; i < model->n_layers; i++) {
        const hd_layer *l = &model->layers[i];
        if (l->weight_count == 0)
            continue;
        snprintf(names[n], sizeof names[n], "%s.weight", l->name);
        tensors[n] =
            (hd_st_tensor){names[n], params + l->weight_offset, l->weight_rank, HD_ST_F32, {0, 0, 0, 0}};
        for (int d = 0; d < l->weight_rank; d++)
            tensors[n].dims[d] = l->weight_dims[d];
        n++;
        snprintf(names[n], sizeof names[n], "%s.bias", l->name);
        tensors[n] = (hd_st_tensor){
            names[n], params + l->bias_offset, 1, HD_ST_F32, {(int64_t)l->bias_count, 0, 0, 0}};
        n++;
    }
    if (reshape_first) { /* same element count, different shape */
        tensors[0].rank = 2;
        tensors[0].dims[0] = (int64_t)model->layers[0].weight_count;
        tensors[0].dims[1] = 1;
    }
    if (add_stray)
        tensors[n++] = (hd_st_tensor){"extra.weight", params, 1, HD_ST_F32, {4, 0, 0, 0}};
    hd_st_meta meta[] = {{"hd.format_version", HD_CHECKPOINT_FORMAT_VERSION},
                         {"hd.spec", model->spec_text},
                         {"hd.input", "1x28x28"}};
    return hd_safetensors_write(path, tensors, n - drop_last, meta, 3);
}

static void test_refusals(fixture *fx) {
    hd_model a, other;
    CHECK(hd_model_create(&a, fx->be, SMALL_SPEC, 1, 28, 28, BATCH) == 0, "create: %s", hd_last_error());
    CHECK(hd_model_create(&other, fx->be, "conv:8:3:relu,maxpool:2,flatten,dense:10", 1, 28, 28, BATCH) == 0,
          "create: %s", hd_last_error());
    hd_model_init_weights(&a, 5);
    hd_model_init_weights(&other, 6);
    char *path = test_path_join(fx->dir, "small.safetensors"),
         *bad = test_path_join(fx->dir, "bad.safetensors");
    CHECK(hd_checkpoint_save(path, &a, NULL, NULL, 0) == 0, "save: %s", hd_last_error());

    char expected[1200];
    snprintf(expected, sizeof expected, "model spec mismatch: checkpoint has %s, model is %s", a.spec_text,
             other.spec_text);
    expect_load_fails(path, &other, NULL, expected, "different spec");

    uint8_t *bytes = NULL;
    size_t size = 0;
    CHECK(hd_read_file(path, &bytes, &size) == 0, "read: %s", hd_last_error());
    hd_model b;
    CHECK(hd_model_create(&b, fx->be, SMALL_SPEC, 1, 28, 28, BATCH) == 0, "create: %s", hd_last_error());
    hd_model_init_weights(&b, 7);
    if (bytes && size > 64) {
        CHECK(hd_write_file_atomic(bad, bytes, size - 100) == 0, "write");
        expect_load_fails(bad, &b, NULL, "file is truncated", "truncated data");
        CHECK(hd_write_file_atomic(bad, bytes, 20) == 0, "write");
        expect_load_fails(bad, &b, NULL, "exceeds", "truncated header");
        bytes[size - 7] ^= 0x10;
        CHECK(hd_write_file_atomic(bad, bytes, size) == 0, "write");
        expect_load_fails(bad, &b, NULL, "checksum mismatch: data is corrupted", "corrupted byte");
        char spec[512];
        CHECK(hd_checkpoint_read_spec(bad, spec, sizeof spec) == -1, "read_spec accepted a corrupted file");
    }
    free(bytes);

    float *params = host_params(&a);
    CHECK(write_edited(bad, &a, params, 1, 0, 0) == 0, "write: %s", hd_last_error());
    expect_load_fails(bad, &b, NULL, "is missing", "missing tensor");
    CHECK(write_edited(bad, &a, params, 0, 1, 0) == 0, "write: %s", hd_last_error());
    expect_load_fails(bad, &b, NULL, "the model expects [4, 1, 3, 3]", "misshapen tensor");
    CHECK(write_edited(bad, &a, params, 0, 0, 1) == 0, "write: %s", hd_last_error());
    expect_load_fails(bad, &b, NULL, "'extra.weight' is not part of the model", "stray tensor");
    CHECK(write_edited(bad, &a, params, 0, 0, 0) == 0, "write: %s", hd_last_error());
    CHECK(hd_checkpoint_load(bad, &b, NULL, NULL) == 0, "unedited hand-written checkpoint refused: %s",
          hd_last_error());
    hd_st_tensor lone = {"x", params, 1, HD_ST_F32, {4, 0, 0, 0}};
    CHECK(hd_safetensors_write(bad, &lone, 1, NULL, 0) == 0, "write: %s", hd_last_error());
    expect_load_fails(bad, &b, NULL, "not an hd-gpu checkpoint", "plain safetensors file");

    free(params);
    free(path);
    free(bad);
    hd_model_destroy(&a);
    hd_model_destroy(&b);
    hd_model_destroy(&other);
}

/* Rewrites the bn model's checkpoint at `from` into `to` with tensor `name` dropped (data NULL) or
 * replaced by (data, dtype, rank, dim0). */
/* The tensors of a file read, as written (up to 64), into out; their count. */
static int file_tensors(const hd_safetensors *f, hd_st_tensor *out) {
    int n = 0;
    for (int i = 0; i < hd_safetensors_count(f) && n < 64; i++, n++) {
        out[n].name = hd_safetensors_name(f, i);
        out[n].data = hd_safetensors_find_any(f, out[n].name, &out[n].dtype, &out[n].rank, out[n].dims);
    }
    return n;
}

static int rewrite(const char *from, const char *to, const char *name, const void *data, hd_st_dtype dtype,
                   int rank, int64_t dim0) {
    hd_safetensors *f = NULL;
    if (hd_safetensors_read(from, &f) != 0)
        return -1;
    hd_st_tensor tensors[64];
    int n = file_tensors(f, tensors);
    for (int i = 0; i < n; i++) {
        if (strcmp(tensors[i].name, name) != 0)
            continue;
        if (data)
            tensors[i] = (hd_st_tensor){tensors[i].name, data, rank, dtype, {dim0, 0, 0, 0}};
        else
            tensors[i--] = tensors[--n]; /* dropped (the writer sorts by name) */
    }
    hd_st_meta meta[] = {{"hd.format_version", HD_CHECKPOINT_FORMAT_VERSION},
                         {"hd.spec", hd_safetensors_meta(f, "hd.spec")},
                         {"hd.input", hd_safetensors_meta(f, "hd.input")}};
    int rc = hd_safetensors_write(to, tensors, n, meta, 3);
    hd_safetensors_free(f);
    return rc;
}

static void test_batchnorm(fixture *fx) {
    const char *spec = "conv:4:3,bn,relu,maxpool:2,flatten,dense:8,bn,relu,dense:10";
    hd_model a, b;
    CHECK(hd_model_create(&a, fx->be, spec, 1, 28, 28, BATCH) == 0, "bn model: %s", hd_last_error());
    CHECK(hd_model_create(&b, fx->be, spec, 1, 28, 28, BATCH) == 0, "bn model: %s", hd_last_error());
    hd_model_init_weights(&a, 5);
    float images[BATCH * 28 * 28];
    test_fill_uniform(images, BATCH * 28 * 28, 0.0f, 1.0f, &fx->rng);
    a.be->ops->upload(a.be, a.input, images, sizeof images);
    hd_model_set_step(&a, 0, 0.0f, 0.0f);
    for (int i = 0; i < 3; i++) /* three training forwards: running statistics away from 0 and 1 */
        hd_model_forward(&a, BATCH, 1, 1);
    a.batches_tracked = 9007199254740993ull; /* 2^53 + 1: only an integer type keeps it */
    char *path = test_path_join(fx->dir, "bn.safetensors"),
         *bad = test_path_join(fx->dir, "bn-bad.safetensors");
    CHECK(hd_checkpoint_save(path, &a, NULL, NULL, 0) == 0, "save bn: %s", hd_last_error());
    CHECK(hd_checkpoint_load(path, &b, NULL, NULL) == 0, "load bn: %s", hd_last_error());
    float *sa = malloc(a.state_count * 4), *sb = malloc(a.state_count * 4);
    hd_model_get_state(&a, sa);
    hd_model_get_state(&b, sb);
    CHECK(same_bits(sa, sb, a.state_count), "running statistics round-trip bit for bit");
    CHECK(sa[0] != 0.0f && sa[a.state_count - 1] != 1.0f, "the saved statistics had moved");
    CHECK(b.batches_tracked == a.batches_tracked, "num_batches_tracked %llu back as %llu",
          (unsigned long long)a.batches_tracked, (unsigned long long)b.batches_tracked);
    float *pa = predict(&a, images), *pb = predict(&b, images);
    CHECK(same_bits(pa, pb, (size_t)BATCH * 10), "eval predictions (running statistics) identical");
    free(pa), free(pb);

    const float f_count = 3.0f, neg_var[8] = {1, 1, 1, -0.5f, 1, 1, 1, 1}, nan_mean[4] = {0, NAN, 0, 0};
    const int64_t negative = -1, other = 4, two[2] = {1, 1};
    struct {
        const char *name;
        const void *data;
        hd_st_dtype dtype;
        int rank;
        int64_t dim0;
        const char *needle;
    } cases[] = {
        {"bn1.running_var", NULL, HD_ST_F32, 1, 4, "tensor 'bn1.running_var' is missing"},
        {"bn2.num_batches_tracked", NULL, HD_ST_I64, 0, 0, "tensor 'bn2.num_batches_tracked' is missing"},
        {"bn1.num_batches_tracked", &f_count, HD_ST_F32, 0, 0, "must be an I64 scalar"},
        {"bn1.num_batches_tracked", two, HD_ST_I64, 1, 2, "must be an I64 scalar"},
        {"bn1.num_batches_tracked", &negative, HD_ST_I64, 0, 0, "not a step count"},
        {"bn2.num_batches_tracked", &other, HD_ST_I64, 0, 0, "an earlier layer's is 9007199254740993"},
        {"bn2.running_var", neg_var, HD_ST_F32, 1, 8, "negative variance at index 3"},
        {"bn1.running_mean", nan_mean, HD_ST_F32, 1, 4, "holds NaN at index 1"},
        {"bn1.running_mean", neg_var, HD_ST_F32, 1, 8, "has shape [8], the model expects [4]"},
        {"bn1.weight", two, HD_ST_I64, 1, 2, "is I64, the model expects F32"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(rewrite(path, bad, cases[i].name, cases[i].data, cases[i].dtype, cases[i].rank,
                      cases[i].dim0) == 0,
              "rewrite: %s", hd_last_error());
        hd_model_set_state(&b, sa);
        expect_load_fails(bad, &b, NULL, cases[i].needle, cases[i].needle);
        hd_model_get_state(&b, sb);
        CHECK(same_bits(sa, sb, a.state_count), "%s: a refused load left the running statistics",
              cases[i].needle);
    }
    free(sa), free(sb), free(path), free(bad);
    hd_model_destroy(&a);
    hd_model_destroy(&b);
}

/* A copy of `from` (a checkpoint with optimizer state) with every tensor and the metadata a load reads, but
 * hd.optimizer.ema_decay. */
static int without_decay(const char *from, const char *to) {
    hd_safetensors *f = NULL;
    if (hd_safetensors_read(from, &f) != 0)
        return -1;
    hd_st_tensor tensors[64];
    int n = file_tensors(f, tensors);
    static const char *const keys[] = {"hd.format_version",
                                       "hd.spec",
                                       "hd.input",
                                       "hd.optimizer",
                                       "hd.optimizer.lr",
                                       "hd.optimizer.t",
                                       "hd.optimizer.beta1",
                                       "hd.optimizer.beta2",
                                       "hd.optimizer.eps",
                                       "hd.optimizer.momentum",
                                       "hd.optimizer.nesterov"};
    hd_st_meta meta[11];
    for (int i = 0; i < 11; i++)
        meta[i] = (hd_st_meta){keys[i], hd_safetensors_meta(f, keys[i])};
    int rc = hd_safetensors_write(to, tensors, n, meta, 11);
    hd_safetensors_free(f);
    return rc;
}

/* The weight average (--ema) travels with the optimizer's state: "optimizer.average.<name>" for every
 * parameter and running statistic, the decay as hd.optimizer.ema_decay. A load with an optimizer restores
 * it bit for bit; a load without one ignores it; an optimizer with or without an average refuses a file
 * that has the other. */
static void test_weight_average(fixture *fx) {
    const char *spec = "conv:4:3,bn,relu,maxpool:2,flatten,dense:8,bn,relu,dense:10";
    hd_model a, b;
    CHECK(hd_model_create(&a, fx->be, spec, 1, 28, 28, BATCH) == 0 &&
              hd_model_create(&b, fx->be, spec, 1, 28, 28, BATCH) == 0,
          "bn model: %s", hd_last_error());
    hd_model_init_weights(&a, 5);
    hd_optimizer opt_a, opt_b, plain;
    hd_optimizer_defaults(&opt_a, HD_OPT_ADAM);
    hd_optimizer_defaults(&opt_b, HD_OPT_ADAM);
    hd_optimizer_defaults(&plain, HD_OPT_ADAM);
    opt_a.ema_decay = 0.9990000000000001; /* 17 significant digits must survive */
    opt_b.ema_decay = 0.5;
    CHECK(hd_optimizer_init(&opt_a, &a) == 0 && hd_optimizer_init(&opt_b, &b) == 0 &&
              hd_optimizer_init(&plain, &b) == 0,
          "optimizer init: %s", hd_last_error());
    float *avg = malloc(a.param_count * sizeof *avg), *avg_state = malloc(a.state_count * sizeof *avg_state);
    test_fill_uniform(avg, a.param_count, -1.0f, 1.0f, &fx->rng);
    test_fill_uniform(avg_state, a.state_count, 0.5f, 2.0f, &fx->rng);
    a.be->ops->upload(a.be, opt_a.average, avg, a.param_count * sizeof *avg);
    a.be->ops->upload(a.be, opt_a.average_state, avg_state, a.state_count * sizeof *avg_state);
    char *path = test_path_join(fx->dir, "ema.safetensors"),
         *no_ema = test_path_join(fx->dir, "no-ema.safetensors");
    CHECK(hd_checkpoint_save(path, &a, &opt_a, NULL, 0) == 0, "save: %s", hd_last_error());
    CHECK(hd_checkpoint_load(path, &b, &opt_b, NULL) == 0, "load: %s", hd_last_error());
    float *got = download(&b, opt_b.average, b.param_count),
          *got_state = download(&b, opt_b.average_state, b.state_count);
    CHECK(same_bits(avg, got, a.param_count) && same_bits(avg_state, got_state, a.state_count),
          "the average differs after the round trip");
    CHECK(opt_b.ema_decay == opt_a.ema_decay, "decay %.17g back as %.17g", opt_a.ema_decay, opt_b.ema_decay);
    float *pa = host_params(&a), *pb = host_params(&b);
    CHECK(same_bits(pa, pb, a.param_count), "the live weights differ after the round trip");
    hd_safetensors *file = NULL;
    CHECK(hd_safetensors_read(path, &file) == 0, "read: %s", hd_last_error());
    if (file) {
        int rank = 0;
        int64_t dims[4];
        CHECK(hd_safetensors_find(file, "optimizer.average.conv1.weight", &rank, dims) && rank == 4 &&
                  hd_safetensors_find(file, "optimizer.average.bn2.running_var", &rank, dims) && dims[0] == 8,
              "the average's tensors are not in the file under their names");
        hd_safetensors_free(file);
    }
    /* Model only (eval, predict, serve on last.safetensors): the average is not the model's; ignored. */
    hd_model_init_weights(&b, 9);
    CHECK(hd_checkpoint_load(path, &b, NULL, NULL) == 0, "load without optimizer: %s", hd_last_error());
    free(pb);
    pb = host_params(&b);
    CHECK(same_bits(pa, pb, a.param_count), "model-only load: not the live weights");
    expect_load_fails(path, &b, &plain, "holds a weight average (--ema 0.999", "average, none asked");
    CHECK(hd_checkpoint_save(no_ema, &a, &plain, NULL, 0) == 0, "save plain: %s", hd_last_error());
    expect_load_fails(no_ema, &b, &opt_b, "holds no weight average, which --ema 0.999",
                      "no average, one asked");
    /* Average tensors without the decay that says there is an average: refused, not ignored. */
    CHECK(without_decay(path, no_ema) == 0, "rewrite: %s", hd_last_error());
    expect_load_fails(no_ema, &b, &plain, "is a weight average, but there is no hd.optimizer.ema_decay",
                      "average without its decay");
    /* An applied average: the model holds it, so saving or loading the optimizer's state is refused. */
    CHECK(hd_optimizer_average_apply(&opt_a, &a) == 0, "apply: %s", hd_last_error());
    CHECK(hd_checkpoint_save(no_ema, &a, &opt_a, NULL, 0) != 0 && strstr(hd_last_error(), "restore the live"),
          "saving with the average applied: %s", hd_last_error());
    CHECK(hd_optimizer_average_restore(&opt_a, &a) == 0, "restore: %s", hd_last_error());
    free(got), free(got_state), free(pa), free(pb), free(avg), free(avg_state), free(path), free(no_ema);
    hd_optimizer_free(&opt_a, &a);
    hd_optimizer_free(&opt_b, &b);
    hd_optimizer_free(&plain, &b);
    hd_model_destroy(&a);
    hd_model_destroy(&b);
}

/* Strides, padding, average and global average pooling: the spec is stored in its canonical form, the
 * model rebuilt from it (hd_model_load_checkpoint) predicts the same bits, and only layers with tensors
 * have them (conv1, conv2, dense1: no avgpool or gap tensors). */
static void test_strided_round_trip(fixture *fx) {
    const char *spec = "conv:6:5:s2:p2:relu,avgpool:2,conv:8:4:p1:relu,gap,dense:10";
    hd_model a, b;
    CHECK(hd_model_create(&a, fx->be, spec, 1, 28, 28, BATCH) == 0, "create %s: %s", spec, hd_last_error());
    CHECK(hd_model_init_weights(&a, 7) == 0, "init: %s", hd_last_error());
    CHECK(strcmp(a.spec_text, "conv:6:5:s2:same:relu,avgpool:2,conv:8:4:p1:relu,gap,dense:10") == 0,
          "canonical spec %s", a.spec_text);
    char *path = test_path_join(fx->dir, "strided.safetensors");
    CHECK(hd_checkpoint_save(path, &a, NULL, NULL, 0) == 0, "save: %s", hd_last_error());
    int loaded = hd_model_load_checkpoint(&b, fx->be, path, BATCH) == 0;
    CHECK(loaded && strcmp(b.spec_text, a.spec_text) == 0, "load: %s",
          loaded ? b.spec_text : hd_last_error());
    if (loaded) {
        float images[BATCH * 28 * 28];
        test_fill_uniform(images, BATCH * 28 * 28, 0.0f, 1.0f, &fx->rng);
        float *la = predict(&a, images), *lb = predict(&b, images);
        CHECK(same_bits(la, lb, (size_t)BATCH * 10), "predictions differ after the round trip");
        free(la);
        free(lb);
        hd_model_destroy(&b);
    }
    hd_safetensors *file = NULL;
    CHECK(hd_safetensors_read(path, &file) == 0, "read: %s", hd_last_error());
    if (file) {
        static const char *const names[] = {"conv1.weight",  "conv1.bias",  "conv2.weight",    "conv2.bias",
                                            "dense1.weight", "dense1.bias", "avgpool1.weight", "gap1.weight"};
        for (int i = 0; i < 8; i++) {
            int rank = 0;
            int64_t dims[4];
            int found = hd_safetensors_find(file, names[i], &rank, dims) != NULL;
            CHECK(found == (i < 6), "%s %s", names[i], found ? "present" : "missing");
        }
        int rank = 0;
        int64_t dims[4];
        CHECK(hd_safetensors_find(file, "conv2.weight", &rank, dims) && rank == 4 && dims[0] == 8 &&
                  dims[1] == 6 && dims[2] == 4 && dims[3] == 4,
              "conv2.weight: rank %d, expected (8, 6, 4, 4)", rank);
        hd_safetensors_free(file);
    }
    free(path);
    hd_model_destroy(&a);
}

int main(void) {
    fixture fx = {0};
    fx.rng = test_fresh_seed();
    hd_cpu_options cpu = {.threads = 2};
    fx.be = hd_cpu_backend_create(&cpu);
    fx.dir = test_make_temp_dir("ckpt");
    CHECK(fx.be != NULL, "cpu backend: %s", hd_last_error());
    CHECK(fx.dir != NULL, "temp dir");
    if (fx.be && fx.dir) {
        test_round_trip(&fx);
        test_refusals(&fx);
        test_batchnorm(&fx);
        test_strided_round_trip(&fx);
        test_weight_average(&fx);
    }
    test_remove_tree(fx.dir);
    free(fx.dir);
    hd_backend_destroy(fx.be);
    return test_finish();
}
