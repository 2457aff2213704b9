/* model_load.c: building a model from a checkpoint (see model_load.h). */
#include "model_load.h"
#include "hd/checkpoint.h"
#include "hd/common.h"
#include "hd/safetensors.h"

#include <stdio.h>
#include <string.h>

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

int hd_eval_inputs_load(hd_eval_inputs *in, hd_backend *be, const char *model_path,
                        const hd_mnist_options *data, int max_batch) {
    memset(in, 0, sizeof *in);
    if (hd_model_load_checkpoint(&in->model, be, model_path, max_batch) != 0)
        return -1;
    const hd_dataset *t = &in->test_bytes;
    if (hd_mnist_load(data, NULL, &in->test_bytes) != 0 ||
        hd_float_set_from_bytes(&in->test, t->images, t->labels, t->rows, t->cols, NULL, t->count) != 0) {
        hd_eval_inputs_free(in);
        return -1;
    }
    return 0;
}

void hd_eval_inputs_free(hd_eval_inputs *in) {
    if (in->model.be)
        hd_model_destroy(&in->model);
    hd_dataset_free(&in->test_bytes);
    hd_float_set_free(&in->test);
}
