/* fuzz_spec.c: model spec strings (model.h). A spec that parses must format to a canonical string
 * that parses back to the same layers and formats to itself, its dropout rates must be in [0, 1) as
 * the floats they are stored in, and its conv strides and paddings within their limits. */
#include "fuzz_util.h"

#include "hd/common.h"
#include "hd/model.h"

#include <stdlib.h>
#include <string.h>

static int same_layer(const hd_layer_spec *a, const hd_layer_spec *b) {
    return a->kind == b->kind && a->units == b->units && a->kernel == b->kernel && a->stride == b->stride &&
           a->pad == b->pad && a->pool == b->pool && a->rate == b->rate && a->act == b->act;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    FUZZ_ASSERT(text, "out of memory");
    memcpy(text, data, size);
    text[size] = '\0';
    hd_layer_spec layers[HD_MAX_LAYERS], again[HD_MAX_LAYERS];
    int n = -1, n_again = -1;
    hd_clear_error();
    int rc = hd_spec_parse(text, layers, HD_MAX_LAYERS, &n);
    fuzz_check_result(rc, "model spec");
    if (rc == 0) {
        FUZZ_ASSERT(n >= 1 && n <= HD_MAX_LAYERS, "%d layers", n);
        for (int i = 0; i < n; i++) {
            FUZZ_ASSERT(layers[i].kind != HD_LAYER_DROPOUT ||
                            (layers[i].rate >= 0.0f && layers[i].rate < 1.0f),
                        "\"%s\": dropout rate %.9g", text, (double)layers[i].rate);
            FUZZ_ASSERT(layers[i].kind != HD_LAYER_CONV ||
                            (layers[i].stride >= 1 && layers[i].stride <= HD_SPEC_MAX_STRIDE &&
                             layers[i].pad >= 0 && layers[i].pad < layers[i].kernel),
                        "\"%s\": conv stride %d, pad %d, kernel %d", text, layers[i].stride, layers[i].pad,
                        layers[i].kernel);
        }
        char canonical[2048], formatted_again[2048];
        hd_spec_format(layers, n, canonical, sizeof canonical);
        rc = hd_spec_parse(canonical, again, HD_MAX_LAYERS, &n_again);
        FUZZ_ASSERT(rc == 0, "canonical form \"%s\" of \"%s\" does not parse: %s", canonical, text,
                    hd_last_error());
        FUZZ_ASSERT(n_again == n, "\"%s\": %d layers, canonical \"%s\": %d", text, n, canonical, n_again);
        for (int i = 0; i < n; i++)
            FUZZ_ASSERT(same_layer(&layers[i], &again[i]), "layer %d differs after \"%s\"", i, canonical);
        hd_spec_format(again, n_again, formatted_again, sizeof formatted_again);
        FUZZ_ASSERT(strcmp(canonical, formatted_again) == 0, "\"%s\" formats as \"%s\"", canonical,
                    formatted_again);
    }
    free(text);
    return 0;
}
