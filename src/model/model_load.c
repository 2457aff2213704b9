/* model_load.c: building a model from a checkpoint (see model_load.h). */
#include "hd/model_load.h"
#include "hd/checkpoint.h"
#include "hd/common.h"
#include "hd/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "CxHxW" (as "1x28x28"), each a whole number in 1..HD_MODEL_MAX_INPUT_SIDE, nothing else. */
static int parse_input_shape(const char *text, int *c, int *h, int *w) {
    int *dims[3] = {c, h, w};
    const char *p = text;
    for (int i = 0; i < 3; i++) {
        char field[16];
        size_t len = i < 2 ? strcspn(p, "x") : strlen(p);
        long long v;
        if (len == 0 || len >= sizeof field || (i < 2 && p[len] != 'x') || !(*p >= '0' && *p <= '9'))
            return -1;
        memcpy(field, p, len);
        field[len] = '\0';
        if (hd_parse_integer(field, 1, HD_MODEL_MAX_INPUT_SIDE, &v) != 0)
            return -1;
        *dims[i] = (int)v;
        p += len + (i < 2);
    }
    return 0;
}

int hd_model_load_checkpoint(hd_model *model, hd_backend *be, const char *path, int max_batch) {
    /* The spec and input shape first, to build the model; hd_checkpoint_load then checks the whole file
     * against it. */
    hd_safetensors *file = NULL;
    if (hd_safetensors_read(path, &file) != 0)
        return -1;
    char spec[1024], input[64];
    int spec_rc = hd_checkpoint_spec_of(file, path, spec, sizeof spec);
    const char *text = hd_safetensors_meta(file, "hd.input");
    int too_long = text && strlen(text) >= sizeof input; /* cut, it could read as another shape */
    snprintf(input, sizeof input, "%s", text ? text : "");
    hd_safetensors_free(file);
    if (spec_rc != 0)
        return -1;
    int c = 0, h = 0, w = 0;
    if (too_long || parse_input_shape(input, &c, &h, &w) != 0)
        return hd_fail("%s: missing or bad hd.input metadata '%s' (expected CxHxW, each 1..%d)", path, input,
                       HD_MODEL_MAX_INPUT_SIDE);
    /* The spec is the file's: a bad layer in it is the file's fault, so the message names the file. */
    if (hd_model_create(model, be, spec, c, h, w, max_batch) != 0)
        return hd_fail("%s: %s", path, hd_last_error());
    if (hd_checkpoint_load(path, model, NULL, NULL) != 0) {
        hd_model_destroy(model);
        return -1;
    }
    return 0;
}
