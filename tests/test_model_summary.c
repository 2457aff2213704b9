/* test_model_summary.c: the layer table (model_summary.h) of the default model, checked against
 * the built hd_model (shapes, per-layer and total parameters) and against counts worked out by
 * hand; the printed text line by line; thousands separators. */
#include "check.h"
#include "hd/backend.h"
#include "hd/common.h"
#include "hd/model.h"
#include "hd/model_summary.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_count_format(void) {
    static const struct {
        size_t n;
        const char *text;
    } cases[] = {{0, "0"},
                 {7, "7"},
                 {999, "999"},
                 {1000, "1,000"},
                 {225034, "225,034"},
                 {1199882, "1,199,882"},
                 {123456789, "123,456,789"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[32];
        hd_format_count(cases[i].n, buf, sizeof buf);
        CHECK(strcmp(buf, cases[i].text) == 0, "%zu formats as \"%s\", expected \"%s\"", cases[i].n, buf,
              cases[i].text);
    }
    char small[4];
    hd_format_count(1234567, small, sizeof small);
    CHECK(strlen(small) < sizeof small, "a short buffer stays terminated (\"%s\")", small);
}

/* The default spec on 1x28x28, worked out by hand: conv 32 3x3 on 1 channel = 32*1*9 + 32 = 320;
 * conv 64 3x3 on 32 = 64*32*9 + 64 = 18,496; dense 128 on 64*5*5 = 1600: 128*1600 + 128 = 204,928;
 * dense 10 on 128: 10*128 + 10 = 1,290. Total 225,034. */
static void test_default_model(hd_backend *be) {
    static const struct {
        const char *layer, *shape, *params;
        size_t count;
    } want[] = {{"input", "1x28x28", "0", 0},
                {"conv1 (Conv2D 3x3, ReLU)", "32x26x26", "320", 320},
                {"pool1 (MaxPool 2x2)", "32x13x13", "0", 0},
                {"conv2 (Conv2D 3x3, ReLU)", "64x11x11", "18,496", 18496},
                {"pool2 (MaxPool 2x2)", "64x5x5", "0", 0},
                {"flatten1 (Flatten)", "1600", "0", 0},
                {"dense1 (Dense, ReLU)", "128", "204,928", 204928},
                {"dropout1 (Dropout 0.5)", "128", "0", 0},
                {"dense2 (Dense)", "10", "1,290", 1290}};
    const int n_want = (int)(sizeof want / sizeof want[0]);
    hd_model model;
    int rc = hd_model_create(&model, be, HD_DEFAULT_SPEC, 1, 28, 28, 1);
    CHECK(rc == 0, "default model: %s", hd_last_error());
    if (rc != 0)
        return;
    hd_model_summary s;
    hd_model_summary_make(&model, &s);
    CHECK(s.n_rows == model.n_layers + 1 && s.n_rows == n_want, "%d rows for %d layers (want %d)", s.n_rows,
          model.n_layers, n_want);
    CHECK(s.total_params == model.param_count && s.total_params == 225034,
          "total %zu, model param_count %zu, by hand 225034", s.total_params, model.param_count);
    CHECK(strcmp(s.total, "225,034 (879.0 KiB as float32)") == 0, "total text \"%s\"", s.total);
    CHECK(strcmp(s.spec, model.spec_text) == 0, "spec \"%s\"", s.spec);
    for (int i = 0; i < s.n_rows && i < n_want; i++) {
        const hd_summary_row *r = &s.rows[i];
        CHECK(strcmp(r->layer, want[i].layer) == 0 && strcmp(r->shape, want[i].shape) == 0 &&
                  strcmp(r->params, want[i].params) == 0 && r->param_count == want[i].count,
              "row %d: \"%s\" \"%s\" \"%s\" (%zu), want \"%s\" \"%s\" \"%s\"", i, r->layer, r->shape,
              r->params, r->param_count, want[i].layer, want[i].shape, want[i].params);
        if (i == 0)
            continue;
        /* The same numbers as the model the trainer runs. */
        const hd_layer *l = &model.layers[i - 1];
        char shape[48];
        if (l->out_h == 1 && l->out_w == 1)
            snprintf(shape, sizeof shape, "%d", l->out_c);
        else
            snprintf(shape, sizeof shape, "%dx%dx%d", l->out_c, l->out_h, l->out_w);
        CHECK(strcmp(r->shape, shape) == 0 && r->param_count == l->weight_count + l->bias_count,
              "row %d (%s) disagrees with the model: shape %s, %zu + %zu parameters", i, r->layer, shape,
              l->weight_count, l->bias_count);
    }

    /* The printed table, line by line. */
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    CHECK(out != NULL, "open_memstream");
    if (out) {
        hd_model_summary_print(out, &s);
        fclose(out);
        static const char model_line[] = "Model: " HD_DEFAULT_SPEC "\n";
        const char *lines[] = {
            model_line,
            "Layer (type)              Output shape   Params\n",
            "------------------------  ------------  -------\n",
            "input                     1x28x28             0\n",
            "conv1 (Conv2D 3x3, ReLU)  32x26x26          320\n",
            "conv2 (Conv2D 3x3, ReLU)  64x11x11       18,496\n",
            "dense1 (Dense, ReLU)      128           204,928\n",
            "dense2 (Dense)            10              1,290\n",
            "Total params: 225,034 (879.0 KiB as float32)\n",
        };
        for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
            CHECK(strstr(text, lines[i]) != NULL, "printed table lacks the line \"%.*s\":\n%s",
                  (int)strlen(lines[i]) - 1, lines[i], text);
        int n_lines = 0;
        for (size_t i = 0; i < size; i++)
            n_lines += text[i] == '\n';
        CHECK(n_lines == 3 + n_want + 1, "%d lines printed, want %d", n_lines, 3 + n_want + 1);
        free(text);
    }
    hd_model_destroy(&model);
}

/* Batch norm and relu, by hand: conv 8 3x3 on 1 channel = 80; bn1 on 8 channels: gamma and beta = 16 (PyTorch
 * counts them as parameters; the running mean and variance are buffers, not counted); dense 16 on 8*13*13 =
 * 1352: 16*1352 + 16 = 21,648; bn2 on 16 = 32; dense 10 on 16 = 170. Total 21,946. */
static void test_batchnorm_model(hd_backend *be) {
    static const struct {
        const char *layer, *params;
    } want[] = {{"input", "0"},
                {"conv1 (Conv2D 3x3)", "80"},
                {"bn1 (BatchNorm)", "16"},
                {"relu1 (ReLU)", "0"},
                {"pool1 (MaxPool 2x2)", "0"},
                {"flatten1 (Flatten)", "0"},
                {"dense1 (Dense)", "21,648"},
                {"bn2 (BatchNorm)", "32"},
                {"relu2 (ReLU)", "0"},
                {"dense2 (Dense)", "170"}};
    hd_model model;
    int rc = hd_model_create(&model, be, "conv:8:3,bn,relu,maxpool:2,flatten,dense:16,bn,relu,dense:10", 1,
                             28, 28, 1);
    CHECK(rc == 0, "bn model: %s", hd_last_error());
    if (rc != 0)
        return;
    hd_model_summary s;
    hd_model_summary_make(&model, &s);
    CHECK(s.n_rows == 10 && s.total_params == 21946 && model.state_count == 2 * 8 + 2 * 16,
          "%d rows, %zu parameters (want 21946), %zu running statistics (want 48)", s.n_rows, s.total_params,
          model.state_count);
    for (int i = 0; i < s.n_rows && i < 10; i++)
        CHECK(strcmp(s.rows[i].layer, want[i].layer) == 0 && strcmp(s.rows[i].params, want[i].params) == 0,
              "row %d: \"%s\" %s, want \"%s\" %s", i, s.rows[i].layer, s.rows[i].params, want[i].layer,
              want[i].params);
    CHECK(strcmp(s.rows[2].shape, "8x26x26") == 0 && strcmp(s.rows[7].shape, "16") == 0,
          "bn keeps its input's shape");
    /* FLOPs: the convolutions' and dense layers' multiply-adds, plus bn's 7 a value forward, 9 backward. */
    double gemm = 2.0 * (72.0 * 26 * 26 + 16.0 * 1352 + 10.0 * 16), bn_values = 8.0 * 26 * 26 + 16;
    CHECK(hd_model_flops_forward(&model) == gemm + 7 * bn_values, "forward FLOPs %.0f, want %.0f",
          hd_model_flops_forward(&model), gemm + 7 * bn_values);
    CHECK(hd_model_flops_backward(&model) == gemm + (gemm - 2.0 * 72 * 26 * 26) + 9 * bn_values,
          "backward FLOPs %.0f (weight gradients, input gradients but the first layer's, bn)",
          hd_model_flops_backward(&model));
    hd_model_destroy(&model);
}

/* Strides, padding and the new pooling kinds, by hand on 1x28x28: conv 8 5x5 stride 2 same (pad 2) ->
 * 8x14x14, 8*25 + 8 = 208; avgpool 2 -> 8x7x7; conv 16 4x4 pad 1 -> 16x6x6, 16*8*16 + 16 = 2,064;
 * gap -> 16; dense 10: 170. */
static void test_strided_model(hd_backend *be) {
    static const struct {
        const char *layer, *shape;
        size_t count;
    } want[] = {{"conv1 (Conv2D 5x5 s2 p2, ReLU)", "8x14x14", 208},
                {"avgpool1 (AvgPool 2x2)", "8x7x7", 0},
                {"conv2 (Conv2D 4x4 p1)", "16x6x6", 2064},
                {"gap1 (GlobalAvgPool)", "16", 0},
                {"dense1 (Dense)", "10", 170}};
    hd_model model;
    int rc = hd_model_create(&model, be, "conv:8:5:s2:same:relu,avgpool:2,conv:16:4:p1,gap,dense:10", 1, 28,
                             28, 1);
    CHECK(rc == 0, "strided model: %s", hd_last_error());
    if (rc != 0)
        return;
    hd_model_summary s;
    hd_model_summary_make(&model, &s);
    CHECK(s.n_rows == 6 && s.total_params == 2442, "%d rows, %zu parameters (want 6, 2442)", s.n_rows,
          s.total_params);
    for (int i = 1; i < s.n_rows && i <= 5; i++)
        CHECK(strcmp(s.rows[i].layer, want[i - 1].layer) == 0 &&
                  strcmp(s.rows[i].shape, want[i - 1].shape) == 0 &&
                  s.rows[i].param_count == want[i - 1].count,
              "row %d: \"%s\" \"%s\" (%zu), want \"%s\" \"%s\" (%zu)", i, s.rows[i].layer, s.rows[i].shape,
              s.rows[i].param_count, want[i - 1].layer, want[i - 1].shape, want[i - 1].count);
    hd_model_destroy(&model);
}

int main(void) {
    hd_backend *be = hd_cpu_backend_create(&(hd_cpu_options){1});
    CHECK(be != NULL, "cpu backend: %s", hd_last_error());
    test_count_format();
    if (be) {
        test_default_model(be);
        test_batchnorm_model(be);
        test_strided_model(be);
    }
    hd_backend_destroy(be);
    return test_finish();
}
