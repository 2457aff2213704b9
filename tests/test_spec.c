/* test_spec.c: model spec strings (model.h): the canonical form reads back as the same layers (dropout
 * rates in their shortest exact form, bn and relu as bare items), and bad specs are refused with a message
 * naming the item; the model's buffers (batch norm's state included) are what the memory check counts. */
#include "check.h"
#include "hd/backend.h"
#include "hd/common.h"
#include "hd/model.h"

#include <stdio.h>
#include <string.h>

static void check_canonical(const char *text, const char *expected) {
    hd_layer_spec layers[HD_MAX_LAYERS], again[HD_MAX_LAYERS];
    int n = 0, n_again = 0;
    int rc = hd_spec_parse(text, layers, HD_MAX_LAYERS, &n);
    CHECK(rc == 0, "\"%s\" does not parse: %s", text, hd_last_error());
    if (rc != 0)
        return;
    char canonical[1024];
    hd_spec_format(layers, n, canonical, sizeof canonical);
    CHECK(strcmp(canonical, expected) == 0, "\"%s\" formats as \"%s\", expected \"%s\"", text, canonical,
          expected);
    rc = hd_spec_parse(canonical, again, HD_MAX_LAYERS, &n_again);
    CHECK(rc == 0 && n_again == n, "\"%s\" does not parse back: %s", canonical, hd_last_error());
    for (int i = 0; rc == 0 && i < n && i < n_again; i++)
        CHECK(again[i].kind == layers[i].kind && again[i].units == layers[i].units &&
                  again[i].kernel == layers[i].kernel && again[i].stride == layers[i].stride &&
                  again[i].pad == layers[i].pad && again[i].pool == layers[i].pool &&
                  again[i].rate == layers[i].rate && again[i].act == layers[i].act,
              "\"%s\": layer %d differs after the round trip (rate %.9g vs %.9g)", text, i,
              (double)layers[i].rate, (double)again[i].rate);
}

static void check_refused(const char *text, const char *want_phrase) {
    hd_layer_spec layers[HD_MAX_LAYERS];
    int n = 0;
    int rc = hd_spec_parse(text, layers, HD_MAX_LAYERS, &n);
    const char *msg = hd_last_error();
    CHECK(rc == -1 && strstr(msg, want_phrase) && !strchr(msg, '\n'),
          "\"%s\": want a one-line error with '%s', got rc %d '%s'", text, want_phrase, rc, rc ? msg : "");
}

/* Layer `index` of `text` holds these conv values. */
static void check_spec_values(const char *text, int index, int units, int kernel, int stride, int pad,
                              hd_activation act) {
    hd_layer_spec layers[HD_MAX_LAYERS];
    int n = 0;
    int rc = hd_spec_parse(text, layers, HD_MAX_LAYERS, &n);
    CHECK(rc == 0 && n > index, "\"%s\" does not parse: %s", text, hd_last_error());
    if (rc != 0 || n <= index)
        return;
    const hd_layer_spec *l = &layers[index];
    CHECK(l->kind == HD_LAYER_CONV && l->units == units && l->kernel == kernel && l->stride == stride &&
              l->pad == pad && l->act == act,
          "\"%s\" layer %d: conv %d:%d stride %d pad %d act %d, expected %d:%d stride %d pad %d act %d", text,
          index, l->units, l->kernel, l->stride, l->pad, (int)l->act, units, kernel, stride, pad, (int)act);
}

/* The output shape of each layer of `spec` on 1 x side x side inputs: out[i] = {c, h, w}. */
static void check_shapes(hd_backend *be, const char *spec, int side, const int (*want)[3], int n_want) {
    hd_model model;
    int rc = hd_model_create(&model, be, spec, 1, side, side, 2);
    CHECK(rc == 0 && model.n_layers == n_want, "%s on %dx%d: %s", spec, side, side,
          rc ? hd_last_error() : "");
    if (rc != 0)
        return;
    for (int i = 0; i < model.n_layers && i < n_want; i++) {
        const hd_layer *l = &model.layers[i];
        CHECK(l->out_c == want[i][0] && l->out_h == want[i][1] && l->out_w == want[i][2],
              "%s on %dx%d: layer %d (%s) outputs %dx%dx%d, expected %dx%dx%d", spec, side, side, i + 1,
              l->name, l->out_c, l->out_h, l->out_w, want[i][0], want[i][1], want[i][2]);
    }
    hd_model_destroy(&model);
}

/* Shapes whose tensors would overflow the int indices of BLAS, cuDNN and the kernels are refused by
 * hd_model_create before anything is allocated; ordinary ones build. */
static void check_model(hd_backend *be, const char *spec, int c, int h, int w, int batch, const char *want) {
    hd_model model;
    hd_clear_error();
    int rc = hd_model_create(&model, be, spec, c, h, w, batch);
    if (!want) {
        CHECK(rc == 0, "%s on %dx%dx%d, batch %d: %s", spec, c, h, w, batch, hd_last_error());
    } else {
        CHECK(rc != 0 && strstr(hd_last_error(), want),
              "%s on %dx%dx%d, batch %d: want an error with '%s', got rc %d '%s'", spec, c, h, w, batch, want,
              rc, rc ? hd_last_error() : "");
        if (rc != 0)
            printf("  refused as expected: %s\n", hd_last_error());
    }
    if (rc == 0)
        hd_model_destroy(&model);
}

/* A backend that says it has memory_limit bytes and counts the floats alloc hands out. */
static const hd_backend_ops *counted_ops;
static size_t counted_floats, memory_limit;

static float *counting_alloc(hd_backend *be, size_t count) {
    counted_floats += count;
    return counted_ops->alloc(be, count);
}

static size_t limited_memory_bytes(hd_backend *be) {
    (void)be;
    return memory_limit;
}

static void limit_memory(hd_backend *be, hd_backend_ops *fake, size_t limit) {
    *fake = *be->ops;
    fake->alloc = counting_alloc;
    fake->memory_bytes = limited_memory_bytes;
    counted_ops = be->ops;
    memory_limit = limit;
    be->ops = fake;
}

/* A model whose buffers exceed the backend's memory is refused before any allocation (the CPU
 * backend's would be OOM-killed on an overcommitting system); the same model in less fits. The
 * backend is the CPU one, told it has 64 MiB. */
static void check_memory_limit(hd_backend *be) {
    CHECK(be->ops->memory_bytes && be->ops->memory_bytes(be) >= ((size_t)64 << 20),
          "the CPU backend reports its memory (%zu bytes)",
          be->ops->memory_bytes ? be->ops->memory_bytes(be) : 0);
    const hd_backend_ops *real = be->ops;
    hd_backend_ops small;
    limit_memory(be, &small, (size_t)64 << 20);
    /* The default model's buffers: 225034 parameters and their gradients, and an image's 784 inputs and
     * 2 x 7274 activation values (the CPU runs each conv with its pooling as one op, without the conv's
     * 2 x 29376: hd_model_fuse): 9.2 MiB for 128 images, 236 MiB for 4000. */
    check_model(be, HD_DEFAULT_SPEC, 1, 28, 28, 128, NULL);
    check_model(be, HD_DEFAULT_SPEC, 1, 28, 28, 4000,
                "its buffers need 0.2 GiB, more than the 0.1 GiB of memory this process may use");
    be->ops = real;
}

/* The memory check counts exactly what hd_model_create allocates from the backend: a limit of that
 * many bytes lets the model be built, one byte less refuses it. */
static void check_memory_counts_allocations(hd_backend *be, const char *spec, int c, int h, int w,
                                            int batch) {
    const hd_backend_ops *real = be->ops;
    hd_backend_ops counting;
    limit_memory(be, &counting, SIZE_MAX / 2);
    hd_model model;
    counted_floats = 0;
    int built = hd_model_create(&model, be, spec, c, h, w, batch) == 0;
    CHECK(built, "%s, batch %d: %s", spec, batch, hd_last_error());
    size_t bytes = counted_floats * sizeof(float);
    if (built) {
        hd_model_destroy(&model);
        memory_limit = bytes;
        built = hd_model_create(&model, be, spec, c, h, w, batch) == 0;
        CHECK(built, "%s, batch %d, in the %zu bytes it allocates: %s", spec, batch, bytes, hd_last_error());
        if (built)
            hd_model_destroy(&model);
        memory_limit = bytes - 1;
        int rc = hd_model_create(&model, be, spec, c, h, w, batch);
        CHECK(rc != 0 && strstr(hd_last_error(), "its buffers need"),
              "%s, batch %d, in %zu bytes: rc %d '%s'", spec, batch, bytes - 1, rc,
              rc ? hd_last_error() : "built");
        if (rc == 0)
            hd_model_destroy(&model);
    }
    be->ops = real;
}

int main(void) {
    check_canonical(HD_DEFAULT_SPEC, HD_DEFAULT_SPEC);
    check_canonical("conv:8:5,maxpool:3,flatten,dense:10", "conv:8:5,maxpool:3,flatten,dense:10");
    /* %g's six digits used to turn 0.2111111 into 0.211111: a checkpoint then rebuilt another model. */
    check_canonical("dropout:0.2111111,dense:10", "dropout:0.2111111,dense:10");
    check_canonical("dropout:0.25000,dropout:1e-3,dropout:0,dense:10",
                    "dropout:0.25,dropout:0.001,dropout:0,dense:10");
    check_canonical("dropout:0.9999999,dense:10", "dropout:0.9999999,dense:10");
    /* Batch norm and the standalone relu (issue 18): bare items, printed as given. */
    check_canonical("conv:8:3,bn,relu,maxpool:2,flatten,dense:16,bn,relu,dense:10",
                    "conv:8:3,bn,relu,maxpool:2,flatten,dense:16,bn,relu,dense:10");
    check_refused("bn:0.1,dense:10", "bad layer 'bn:0.1'");
    check_refused("relu:2,dense:10", "bad layer 'relu:2'");
    check_refused("conv:8:3,bn", "the last layer must be dense");

    /* Conv stride and padding: s1 and p0 (valid) are omitted, a pad of (k-1)/2 for an odd k prints as
     * same, any other as pN. */
    check_canonical("conv:32:5:s2:same:relu,dense:10", "conv:32:5:s2:same:relu,dense:10");
    check_canonical("conv:32:3:s1:valid:relu,dense:10", "conv:32:3:relu,dense:10");
    check_canonical("conv:8:3:p1,conv:8:5:p1,conv:8:4:p2:linear,dense:10",
                    "conv:8:3:same,conv:8:5:p1,conv:8:4:p2,dense:10");
    check_canonical("conv:8:1:same,conv:8:7:s3:p0,dense:10", "conv:8:1,conv:8:7:s3,dense:10");
    check_canonical("avgpool:2,gap,dense:10", "avgpool:2,gap,dense:10");
    check_spec_values("conv:16:5:s2:same:relu,dense:10", 0, 16, 5, 2, 2, HD_ACT_RELU);
    check_spec_values("conv:16:5:p4,dense:10", 0, 16, 5, 1, 4, HD_ACT_NONE);
    check_spec_values("conv:16:3,dense:10", 0, 16, 3, 1, 0, HD_ACT_NONE);
    check_refused("conv:8:4:same,dense:10",
                  "bad layer 'conv:8:4:same': same padding needs an odd kernel"); /* even kernel */
    check_refused("conv:8:3:s0,dense:10", "bad layer 'conv:8:3:s0': the stride sSTRIDE must be 1..64");
    check_refused("conv:8:3:s65,dense:10", "bad layer 'conv:8:3:s65'");
    check_refused("conv:8:3:p3,dense:10",
                  "bad layer 'conv:8:3:p3': the padding pPAD must be 0..KERNEL-1"); /* pad >= kernel */
    check_refused("conv:8:3:p-1,dense:10", "bad layer 'conv:8:3:p-1'");
    check_refused("conv:8:3:relu:s2,dense:10",
                  "bad layer 'conv:8:3:relu:s2': conv options are"); /* out of order */
    check_refused("conv:8:3:same:s2,dense:10", "bad layer 'conv:8:3:same:s2'");
    check_refused("conv:8:3:s2:s2,dense:10", "bad layer 'conv:8:3:s2:s2'");
    check_refused("conv:8:3:same:valid,dense:10", "bad layer 'conv:8:3:same:valid'");
    check_refused("conv:8:3:s,dense:10", "bad layer 'conv:8:3:s'");
    check_refused("avgpool:0,dense:10", "bad layer 'avgpool:0'");
    check_refused("gap:2,dense:10", "bad layer 'gap:2'");

    check_refused("dropout:0.99999999,dense:10", "bad layer 'dropout:0.99999999'"); /* 1.0f as a float */
    check_refused("dropout:1,dense:10", "bad layer 'dropout:1'");
    check_refused("dropout:nan,dense:10", "bad layer 'dropout:nan'");
    check_refused("conv:32:3:tanh,dense:10", "bad layer 'conv:32:3:tanh'");
    check_refused("conv\n:3,dense:10", "bad layer 'conv\\n:3'");
    check_refused("conv:32:3:relu", "the last layer must be dense");
    check_refused("", "model spec");

    hd_cpu_options cpu = {.threads = 1};
    hd_backend *be = hd_cpu_backend_create(&cpu);
    CHECK(be != NULL, "cpu backend: %s", hd_last_error());
    if (be) {
        check_model(be, HD_DEFAULT_SPEC, 1, 28, 28, 128, NULL);
        check_memory_counts_allocations(be, HD_DEFAULT_SPEC, 1, 28, 28, 128);
        check_memory_counts_allocations(be, "conv:8:5,maxpool:3,flatten,dropout:0.5,dense:10", 3, 20, 17, 3);
        /* bn's running statistics (model->state) and saved batch statistics count too. */
        check_memory_counts_allocations(be, "conv:8:3,bn,relu,maxpool:2,flatten,dense:16,bn,relu,dense:10", 1,
                                        28, 28, 32);
        check_model(be, "flatten,dense:10", 4096, 4096, 4096, 1, "model input 4096x4096x4096");
        check_model(be, "flatten,dense:10", 1, 28, 5000, 1, "each side must be 1..4096");
        check_model(be, "flatten,dense:10", 0, 28, 28, 1, "model input 0x28x28");
        check_model(be, "conv:4096:1,flatten,dense:10", 1, 4096, 4096, 1, "layer 1: its output");
        check_model(be, "flatten,dense:1048576,dense:10", 1, 64, 64, 1, "layer 2: 4294967296 weights");
        check_model(be, HD_DEFAULT_SPEC, 1, 28, 28, 100000, "layer 1: its output, 21632 values an image");
        check_memory_limit(be);
        /* PyTorch's floor((in + 2 pad - k) / stride) + 1; names per kind. */
        static const int strided[][3] = {{8, 14, 14}, {8, 7, 7},  {16, 4, 4}, {16, 3, 3},
                                         {16, 1, 1},  {16, 1, 1}, {10, 1, 1}};
        check_shapes(be,
                     "conv:8:5:s2:same:relu,avgpool:2,conv:16:3:s2:same,conv:16:4:p1,gap,flatten,dense:10",
                     28, strided, 7);
        static const int odd[][3] = {{4, 14, 14}, {4, 13, 13}, {4, 6, 6}, {4, 1, 1}, {10, 1, 1}};
        check_shapes(be, "conv:4:3:s2:same,conv:4:2,conv:4:3:s2,gap,dense:10", 27, odd, 5);
        check_model(be, "conv:4:7:s2,dense:10", 1, 6, 6, 1, "layer 1: 7x7 kernel does not fit a 6x6 input");
        check_model(be, "conv:4:7:p1,dense:10", 1, 4, 4, 1, "layer 1: 7x7 kernel does not fit a 4x4 input");
        check_model(be, "conv:4:7:p2,gap,dense:10", 1, 4, 4, 1, NULL); /* 4 + 4 - 7 + 1 = 2 */
        check_model(be, "avgpool:5,dense:10", 1, 4, 4, 1, "layer 1: avgpool 5 larger than its 4x4 input");
        check_model(be, "conv:4:3,dense:10", 1, 8, 8, 1, "dense needs a flat input");
        hd_model names;
        if (hd_model_create(&names, be, "conv:4:3,avgpool:2,conv:4:3,gap,flatten,dense:10", 1, 14, 14, 1) ==
            0) {
            static const char *const want[] = {"conv1", "avgpool1", "conv2", "gap1", "flatten1", "dense1"};
            for (int i = 0; i < 6; i++)
                CHECK(strcmp(names.layers[i].name, want[i]) == 0, "layer %d named %s, expected %s", i + 1,
                      names.layers[i].name, want[i]);
            hd_model_destroy(&names);
        } else {
            CHECK(0, "naming model: %s", hd_last_error());
        }
    }
    hd_backend_destroy(be);
    return test_finish();
}
