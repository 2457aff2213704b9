/* model_load.c: building a model from a checkpoint (see model_load.h). */
#include "model_load.h"
#include "hd/checkpoint.h"
#include "hd/common.h"
#include "hd/safetensors.h"

#include <stdio.h>

int hd_model_load_checkpoint(hd_model *model, hd_backend *be, const char *path, int max_batch) {
    char spec[1024];
    if (hd_checkpoint_read_spec(path, spec, sizeof spec) != 0)
        return -1;
    hd_safetensors *file = NULL;
    if (hd_safetensors_read(path, &file) != 0)
        return -1;
    const char *input = hd_safetensors_meta(file, "hd.input");
    int c = 0, h = 0, w = 0;
    int ok = input && sscanf(input, "%dx%dx%d", &c, &h, &w) == 3 && c > 0 && h > 0 && w > 0;
    hd_safetensors_free(file);
    if (!ok)
        return hd_fail("%s: missing or bad hd.input metadata", path);
    if (hd_model_create(model, be, spec, c, h, w, max_batch) != 0)
        return -1;
    if (hd_checkpoint_load(path, model, NULL, NULL) != 0) {
        hd_model_destroy(model);
        return -1;
    }
    return 0;
}
