/* transfer.c: class counts, the output layer that follows them, class names and --init (transfer.h). */
#include "hd/transfer.h"
#include "hd/common.h"
#include "hd/json_io.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int hd_transfer_classes(const hd_dataset *train, const hd_dataset *test, int requested, int *classes) {
    int n = requested;
    if (n <= 0) {
        n = hd_dataset_max_label(train) + 1;
        if (n < 2)
            return hd_fail("%s: the labels hold %d class%s; training needs at least 2",
                           hd_dataset_name(train), n, n == 1 ? "" : "es");
    }
    if (hd_dataset_check_labels(train, n) != 0 || (test && hd_dataset_check_labels(test, n) != 0))
        return -1;
    *classes = n;
    return 0;
}

int hd_transfer_spec(const char *spec, int classes, char *out, size_t len) {
    hd_layer_spec layers[HD_MAX_LAYERS];
    int n = 0;
    if (hd_spec_parse(spec, layers, HD_MAX_LAYERS, &n) != 0)
        return -1;
    if (layers[n - 1].kind != HD_LAYER_DENSE)
        return hd_fail("model spec %s: the last layer must be dense, the output layer whose units follow the "
                       "class count (%d)",
                       spec, classes);
    layers[n - 1].units = classes;
    hd_spec_format(layers, n, out, len);
    return 0;
}

int hd_class_names_check(const char *path, const char *names, int classes) {
    int count = 0;
    const char *line = names;
    while (line && *line) {
        size_t n = strcspn(line, "\n");
        count++;
        if (n == 0 || n > 63)
            return hd_fail("%s: class name %d is %s (1 to 63 bytes a line)", path, count,
                           n ? "too long" : "empty");
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
                return hd_fail("%s: class name %d holds a control character", path, count);
        line = line[n] ? line + n + 1 : NULL;
    }
    if (!hd_json_valid_utf8(names))
        return hd_fail("%s: class names are not UTF-8", path);
    if (count != classes)
        return hd_fail("%s: %d class name%s, but the model has %d classes (one name a line)", path, count,
                       count == 1 ? "" : "s", classes);
    return 0;
}

int hd_class_names_read(const char *path, int classes, char **names) {
    *names = NULL;
    uint8_t *data = NULL;
    size_t size = 0;
    if (hd_read_file_at_most(path, 64 * 1024, &data, &size) != 0)
        return -1;
    char *text = (char *)data;
    if (memchr(text, '\0', size)) {
        free(text);
        return hd_fail("%s: holds a NUL byte (expected one class name a line)", path);
    }
    text[size] = '\0'; /* hd_read_file_at_most leaves room for it */
    size_t end = size;
    while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == '\r'))
        text[--end] = '\0';
    for (char *cr = strchr(text, '\r'); cr; cr = strchr(cr, '\r')) /* CRLF files: drop the CR */
        memmove(cr, cr + 1, strlen(cr));
    if (hd_class_names_check(path, text, classes) != 0) {
        free(text);
        return -1;
    }
    *names = text;
    return 0;
}

/* ---- --init ---- */

static int meta_float(const hd_safetensors *file, const char *path, const char *key, double lo, double hi,
                      float *value) {
    const char *text = hd_safetensors_meta(file, key);
    double v = 0.0;
    if (!text || hd_parse_real(text, lo, hi, &v) != 0)
        return hd_fail("%s: metadata %s is %s%s%s (expected a number in [%g, %g])", path, key,
                       text ? "'" : "", text ? text : "missing", text ? "'" : "", lo, hi);
    *value = (float)v;
    return 0;
}

static hd_init_row *add_row(hd_init_source *src, const char *name) {
    if (src->n_rows == (int)(sizeof src->rows / sizeof src->rows[0]))
        return NULL;
    hd_init_row *row = &src->rows[src->n_rows++];
    memset(row, 0, sizeof *row);
    snprintf(row->name, sizeof row->name, "%s", name);
    return row;
}

/* One tensor of the model (dims of rank `rank`) against the file. */
static int match_tensor(hd_init_source *src, const char *name, int rank, const int64_t *dims, size_t offset,
                        size_t count, int is_state) {
    hd_init_row *row = add_row(src, name);
    if (!row)
        return hd_fail("%s: too many tensors", src->path);
    row->offset = offset;
    row->count = count;
    row->is_state = is_state;
    hd_st_format_shape(rank, dims, row->model_shape, sizeof row->model_shape);
    int file_rank = 0;
    int64_t file_dims[HD_ST_MAX_RANK] = {0};
    const float *data = hd_safetensors_find(src->file, name, &file_rank, file_dims);
    if (!data) {
        row->status = HD_INIT_FRESH;
        snprintf(row->file_shape, sizeof row->file_shape, "-");
        return 0;
    }
    hd_st_format_shape(file_rank, file_dims, row->file_shape, sizeof row->file_shape);
    int64_t want[HD_ST_MAX_RANK] = {0};
    memcpy(want, dims, (size_t)rank * sizeof *dims);
    if (file_rank != rank || memcmp(file_dims, want, sizeof want) != 0) {
        row->status = HD_INIT_SHAPE_DIFFERS;
        return 0;
    }
    int variance = is_state && strstr(name, ".running_var") != NULL;
    for (size_t i = 0; i < count; i++) {
        if (!isfinite(data[i]))
            return hd_fail("%s: tensor '%s' holds %s at index %zu: not a usable model", src->path, name,
                           isnan(data[i]) ? "NaN" : "an infinity", i);
        if (variance && data[i] < 0.0f)
            return hd_fail("%s: tensor '%s' holds a negative variance at index %zu: not a usable model",
                           src->path, name, i);
    }
    row->status = HD_INIT_LOADED;
    src->loaded++;
    return 0;
}

static int is_model_row(const hd_init_source *src, const char *name) {
    for (int i = 0; i < src->n_rows; i++)
        if (strcmp(src->rows[i].name, name) == 0)
            return 1;
    return 0;
}

int hd_init_source_open(hd_init_source *src, const char *path, const hd_model *layout) {
    memset(src, 0, sizeof *src);
    src->path = path;
    if (hd_safetensors_read(path, &src->file) !=
        0) /* checksums, header, lengths: a corrupt file stops here */
        return -1;
    const char *spec = hd_safetensors_meta(src->file, "hd.spec");
    const char *input = hd_safetensors_meta(src->file, "hd.input");
    int rc = -1;
    if (!spec || !input) {
        hd_fail("%s: not an hd-gpu checkpoint (no hd.spec or hd.input metadata)", path);
        goto out;
    }
    char want[48];
    snprintf(want, sizeof want, "%dx%dx%d", layout->in_c, layout->in_h, layout->in_w);
    if (strcmp(input, want) != 0) {
        hd_fail("%s: the model takes %s images, the training images are %s: nothing to start from", path,
                input, want);
        goto out;
    }
    for (int i = 0; i < layout->n_layers; i++) {
        const hd_layer *layer = &layout->layers[i];
        char name[64];
        int64_t dims[4] = {0};
        if (layer->weight_count > 0) {
            for (int d = 0; d < layer->weight_rank; d++)
                dims[d] = layer->weight_dims[d];
            snprintf(name, sizeof name, "%s.weight", layer->name);
            if (match_tensor(src, name, layer->weight_rank, dims, layer->weight_offset, layer->weight_count,
                             0))
                goto out;
        }
        if (layer->bias_count > 0) {
            dims[0] = (int64_t)layer->bias_count;
            snprintf(name, sizeof name, "%s.bias", layer->name);
            if (match_tensor(src, name, 1, dims, layer->bias_offset, layer->bias_count, 0))
                goto out;
        }
        if (layer->state_count > 0) { /* batch norm: running mean, then running variance (model.h) */
            size_t half = layer->state_count / 2;
            dims[0] = (int64_t)half;
            snprintf(name, sizeof name, "%s.running_mean", layer->name);
            if (match_tensor(src, name, 1, dims, layer->state_offset, half, 1))
                goto out;
            snprintf(name, sizeof name, "%s.running_var", layer->name);
            if (match_tensor(src, name, 1, dims, layer->state_offset + half, half, 1))
                goto out;
        }
    }
    for (int i = 0; i < hd_safetensors_count(src->file); i++) {
        const char *name = hd_safetensors_name(src->file, i);
        /* Optimizer state is the source run's own, and so is batch norm's step count (used by PyTorch only
         * for a cumulative average, which our layers do not take): not carried over. */
        const char *tracked = strstr(name, ".num_batches_tracked");
        if (strncmp(name, "optimizer.", 10) == 0 || is_model_row(src, name) ||
            (tracked && tracked[strlen(".num_batches_tracked")] == '\0'))
            continue;
        int rank = 0;
        int64_t dims[HD_ST_MAX_RANK] = {0};
        hd_safetensors_find(src->file, name, &rank, dims);
        hd_init_row *row = add_row(src, name);
        if (!row)
            break;
        row->status = HD_INIT_UNUSED;
        snprintf(row->model_shape, sizeof row->model_shape, "-");
        hd_st_format_shape(rank, dims, row->file_shape, sizeof row->file_shape);
    }
    if (src->loaded == 0) {
        hd_fail("%s: no tensor matches the model %s by name and shape (its spec is %s): nothing to start "
                "from",
                path, layout->spec_text, spec);
        goto out;
    }
    src->input_mean = 0.0f;
    src->input_std = 1.0f;
    if (hd_safetensors_meta(src->file, "hd.input_mean") || hd_safetensors_meta(src->file, "hd.input_std")) {
        if (meta_float(src->file, path, "hd.input_mean", -1.0, 1.0, &src->input_mean) != 0 ||
            meta_float(src->file, path, "hd.input_std", 1e-6, 1.0, &src->input_std) != 0)
            goto out;
        src->has_input_norm = 1;
    }
    rc = 0;
out:
    if (rc != 0)
        hd_init_source_free(src);
    return rc;
}

void hd_init_source_print(const hd_init_source *src, FILE *out) {
    static const char *const words[] = {"loaded", "fresh", "shape differs (fresh)", "unused"};
    int width = 6;
    for (int i = 0; i < src->n_rows; i++)
        width = (int)strlen(src->rows[i].name) > width ? (int)strlen(src->rows[i].name) : width;
    fprintf(out, "init from %s: %d of the model's tensors loaded\n", src->path, src->loaded);
    fprintf(out, "  %-*s  %-16s  %-16s  %s\n", width, "tensor", "model", "init file", "");
    for (int i = 0; i < src->n_rows; i++) {
        const hd_init_row *r = &src->rows[i];
        fprintf(out, "  %-*s  %-16s  %-16s  %s\n", width, r->name, r->model_shape, r->file_shape,
                words[r->status]);
    }
}

int hd_init_source_apply(const hd_init_source *src, hd_model *model, int take_norm) {
    float *host = hd_malloc(model->param_count * sizeof *host);
    if (!host)
        return -1;
    float *state = model->state_count ? hd_malloc(model->state_count * sizeof *state) : NULL;
    if (model->state_count && !state) {
        free(host);
        return -1;
    }
    hd_model_get_params(model, host);
    if (state)
        hd_model_get_state(model, state);
    for (int i = 0; i < src->n_rows; i++) {
        const hd_init_row *r = &src->rows[i];
        if (r->status != HD_INIT_LOADED)
            continue;
        int rank = 0;
        int64_t dims[HD_ST_MAX_RANK];
        const float *data = hd_safetensors_find(src->file, r->name, &rank, dims);
        float *dst = r->is_state ? state : host;
        size_t size = r->is_state ? model->state_count : model->param_count;
        if (!data || !dst || r->offset + r->count > size) {
            free(host);
            free(state);
            return hd_fail("%s: tensor '%s' no longer fits the model", src->path, r->name);
        }
        memcpy(dst + r->offset, data, r->count * sizeof *dst);
    }
    int rc = hd_model_set_params(model, host);
    if (rc == 0 && state)
        rc = hd_model_set_state(model, state);
    free(host);
    free(state);
    if (rc == 0 && take_norm && src->has_input_norm) {
        model->input_mean = src->input_mean;
        model->input_std = src->input_std;
    }
    return rc;
}

void hd_init_source_free(hd_init_source *src) {
    hd_safetensors_free(src->file);
    src->file = NULL;
}
