/* checkpoint.c: model and optimizer checkpoints on top of safetensors (see checkpoint.h). */
#include "hd/checkpoint.h"
#include "hd/transfer.h" /* hd_class_names_check */

#include "hd/common.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_LEN 64
/* weight, bias, and their m, v and average; bn's running mean, var, their averages, and count */
#define MAX_TENSORS (13 * HD_MAX_LAYERS)
#define MAX_META    20
/* The weight average's tensors (--ema, optimizer.h): the parameters' and the state's, under their names. */
#define AVERAGE_PREFIX "optimizer.average."

/* One named float tensor of the model: where it lives in the flat parameter array (or, for the
 * running statistics, in the flat state array). */
typedef struct {
    char name[NAME_LEN];
    int rank;
    int64_t dims[HD_ST_MAX_RANK];
    size_t offset, count;
} param_tensor;

/* The model's parameter tensors in layer order, weight then bias. */
static int list_params(const char *path, const hd_model *model, param_tensor *out, int *n_out) {
    int n = 0;
    for (int i = 0; i < model->n_layers; i++) {
        const hd_layer *layer = &model->layers[i];
        if (layer->weight_count > 0) {
            param_tensor *p = &out[n++];
            snprintf(p->name, sizeof p->name, "%s.weight", layer->name);
            p->rank = layer->weight_rank;
            for (int d = 0; d < HD_ST_MAX_RANK; d++)
                p->dims[d] = d < layer->weight_rank ? layer->weight_dims[d] : 0;
            p->offset = layer->weight_offset;
            p->count = layer->weight_count;
        }
        if (layer->bias_count > 0) {
            param_tensor *p = &out[n++];
            snprintf(p->name, sizeof p->name, "%s.bias", layer->name);
            p->rank = 1;
            p->dims[0] = (int64_t)layer->bias_count;
            for (int d = 1; d < HD_ST_MAX_RANK; d++)
                p->dims[d] = 0;
            p->offset = layer->bias_offset;
            p->count = layer->bias_count;
        }
    }
    for (int i = 0; i < n; i++)
        if (out[i].offset > model->param_count || out[i].count > model->param_count - out[i].offset)
            return hd_fail("%s: model tensor '%s' lies outside the %zu parameters", path, out[i].name,
                           model->param_count);
    *n_out = n;
    return 0;
}

/* The state tensors in layer order: each bn layer's running_mean and running_var (PyTorch's names);
 * its num_batches_tracked, an int64 scalar, is named by count_name. */
static int list_state(const char *path, const hd_model *model, param_tensor *out, int *n_out) {
    static const char *const names[2] = {"running_mean", "running_var"};
    int n = 0;
    for (int i = 0; i < model->n_layers; i++) {
        const hd_layer *layer = &model->layers[i];
        for (int half = 0; layer->state_count > 0 && half < 2; half++) {
            param_tensor *p = &out[n++];
            snprintf(p->name, sizeof p->name, "%s.%s", layer->name, names[half]);
            p->rank = 1;
            p->dims[0] = (int64_t)(layer->state_count / 2);
            for (int d = 1; d < HD_ST_MAX_RANK; d++)
                p->dims[d] = 0;
            p->offset = layer->state_offset + (size_t)half * (layer->state_count / 2);
            p->count = layer->state_count / 2;
        }
    }
    for (int i = 0; i < n; i++)
        if (out[i].offset > model->state_count || out[i].count > model->state_count - out[i].offset)
            return hd_fail("%s: model tensor '%s' lies outside the %zu state values", path, out[i].name,
                           model->state_count);
    *n_out = n;
    return 0;
}

/* "<layer>.num_batches_tracked" for a layer with running statistics. */
static void count_name(char *buf, const hd_layer *layer) {
    snprintf(buf, NAME_LEN, "%s.num_batches_tracked", layer->name);
}

/* prefix + name into buf (NAME_LEN bytes); parameter names are short, so this never cuts. */
static void join_name(char *buf, const char *prefix, const char *name) {
    size_t a = strlen(prefix), b = strnlen(name, NAME_LEN - 1 - a);
    memcpy(buf, prefix, a);
    memcpy(buf + a, name, b);
    buf[a + b] = '\0';
}

static float *download_copy(const hd_model *model, const float *device, size_t count) {
    float *host = hd_malloc(count * sizeof *host);
    if (host && count)
        model->be->ops->download(model->be, host, device, count * sizeof *host);
    return host;
}

int hd_checkpoint_save(const char *path, const hd_model *model, const hd_optimizer *opt,
                       const hd_st_meta *extra, int n_extra) {
    param_tensor params[2 * HD_MAX_LAYERS], states[2 * HD_MAX_LAYERS];
    int n_params = 0, n_states = 0;
    if (list_params(path, model, params, &n_params) != 0 || list_state(path, model, states, &n_states) != 0)
        return -1;
    if (opt && opt->count != model->param_count)
        return hd_fail("%s: optimizer state has %zu values, the model %zu parameters", path, opt->count,
                       model->param_count);
    if (opt && opt->applied) /* the model holds the average: its live weights are on the host */
        return hd_fail("%s: the weight average is applied; restore the live weights before saving", path);
    if (n_extra < 0 || (n_extra > 0 && !extra))
        return hd_fail("%s: bad extra metadata list", path);

    char names[MAX_TENSORS][NAME_LEN];
    hd_st_tensor tensors[MAX_TENSORS];
    float *sources[4] = {NULL, NULL, NULL, NULL}; /* params, m, v, average (host copies) */
    float *state[2] = {NULL, NULL};               /* the model's, its average */
    const int64_t tracked = (int64_t)model->batches_tracked;
    const char *prefixes[4] = {"", "optimizer.m.", "optimizer.v.", AVERAGE_PREFIX};
    hd_st_meta *meta = hd_calloc((size_t)n_extra + MAX_META, sizeof *meta);
    int rc = -1, n_tensors = 0, n_meta = 0;
    if (!meta)
        return -1;
    sources[0] = hd_malloc(model->param_count * sizeof(float));
    if (!sources[0] || hd_model_get_params(model, sources[0]) != 0)
        goto done;
    if (opt && opt->m && !(sources[1] = download_copy(model, opt->m, opt->count)))
        goto done;
    if (opt && opt->v && !(sources[2] = download_copy(model, opt->v, opt->count)))
        goto done;
    if (opt && opt->average && !(sources[3] = download_copy(model, opt->average, opt->count)))
        goto done;
    for (int s = 0; s < 4; s++) {
        for (int i = 0; sources[s] && i < n_params; i++) {
            hd_st_tensor *t = &tensors[n_tensors];
            join_name(names[n_tensors], prefixes[s], params[i].name);
            t->name = names[n_tensors++];
            t->data = sources[s] + params[i].offset;
            t->rank = params[i].rank;
            memcpy(t->dims, params[i].dims, sizeof t->dims);
            t->dtype = HD_ST_F32;
        }
    }
    if (model->state_count && !(state[0] = download_copy(model, model->state, model->state_count)))
        goto done;
    if (model->state_count && opt && opt->average_state &&
        !(state[1] = download_copy(model, opt->average_state, model->state_count)))
        goto done;
    for (int s = 0; s < 2; s++) {
        for (int i = 0; state[s] && i < n_states; i++) {
            hd_st_tensor *t = &tensors[n_tensors];
            join_name(names[n_tensors], s ? AVERAGE_PREFIX : "", states[i].name);
            t->name = names[n_tensors++];
            t->data = state[s] + states[i].offset;
            t->rank = states[i].rank;
            memcpy(t->dims, states[i].dims, sizeof t->dims);
            t->dtype = HD_ST_F32;
        }
    }
    for (int i = 0; i < model->n_layers; i++) {
        if (!model->layers[i].state_count)
            continue;
        hd_st_tensor *t = &tensors[n_tensors];
        count_name(names[n_tensors], &model->layers[i]);
        *t = (hd_st_tensor){names[n_tensors++], &tracked, 0, HD_ST_I64, {0, 0, 0, 0}}; /* shape [] */
    }

    char input[48], lr[32], t_text[32], beta1[32], beta2[32], eps[32], momentum[32], mean[32], std[32],
        ema[32];
    snprintf(input, sizeof input, "%dx%dx%d", model->in_c, model->in_h, model->in_w);
    meta[n_meta++] = (hd_st_meta){"hd.format_version", HD_CHECKPOINT_FORMAT_VERSION};
    meta[n_meta++] = (hd_st_meta){"hd.spec", model->spec_text};
    meta[n_meta++] = (hd_st_meta){"hd.input", input};
    if (model->input_mean != 0.0f || model->input_std != 1.0f) { /* --normalize; absent: [0, 1] as it is */
        hd_format_float(mean, sizeof mean, model->input_mean);
        hd_format_float(std, sizeof std, model->input_std);
        meta[n_meta++] = (hd_st_meta){"hd.input_mean", mean};
        meta[n_meta++] = (hd_st_meta){"hd.input_std", std};
    }
    if (model->class_names) /* --class-names: one a line */
        meta[n_meta++] = (hd_st_meta){"hd.class_names", model->class_names};
    if (opt) {
        hd_format_float(lr, sizeof lr, opt->lr);
        snprintf(t_text, sizeof t_text, "%" PRIu64, opt->t);
        hd_format_float(beta1, sizeof beta1, opt->beta1);
        hd_format_float(beta2, sizeof beta2, opt->beta2);
        hd_format_float(eps, sizeof eps, opt->eps);
        hd_format_float(momentum, sizeof momentum, opt->momentum);
        meta[n_meta++] = (hd_st_meta){"hd.optimizer", hd_optimizer_name(opt->kind)};
        meta[n_meta++] = (hd_st_meta){"hd.optimizer.lr", lr};
        meta[n_meta++] = (hd_st_meta){"hd.optimizer.t", t_text};
        meta[n_meta++] = (hd_st_meta){"hd.optimizer.beta1", beta1};
        meta[n_meta++] = (hd_st_meta){"hd.optimizer.beta2", beta2};
        meta[n_meta++] = (hd_st_meta){"hd.optimizer.eps", eps};
        meta[n_meta++] = (hd_st_meta){"hd.optimizer.momentum", momentum};
        meta[n_meta++] = (hd_st_meta){"hd.optimizer.nesterov", opt->nesterov ? "1" : "0"};
        if (opt->average) { /* absent: no average */
            snprintf(ema, sizeof ema, "%.17g", opt->ema_decay);
            meta[n_meta++] = (hd_st_meta){"hd.optimizer.ema_decay", ema};
        }
    }
    for (int i = 0; i < n_extra; i++)
        meta[n_meta++] = extra[i];
    rc = hd_safetensors_write(path, tensors, n_tensors, meta, n_meta);
done:
    for (int s = 0; s < 4; s++)
        free(sources[s]);
    free(state[0]);
    free(state[1]);
    free(meta);
    return rc;
}

/* ---- loading ---- */

/* Two specs describe the same network (compared in canonical form when both parse). */
static int same_spec(const char *a, const char *b) {
    if (strcmp(a, b) == 0)
        return 1;
    hd_layer_spec la[HD_MAX_LAYERS], lb[HD_MAX_LAYERS];
    int na = 0, nb = 0;
    if (hd_spec_parse(a, la, HD_MAX_LAYERS, &na) != 0 || hd_spec_parse(b, lb, HD_MAX_LAYERS, &nb) != 0)
        return 0;
    char ca[512], cb[512];
    hd_spec_format(la, na, ca, sizeof ca);
    hd_spec_format(lb, nb, cb, sizeof cb);
    return strcmp(ca, cb) == 0;
}

/* Copies the named tensor into dst after checking it has exactly the expected shape. */
static int copy_tensor(const char *path, const hd_safetensors *file, const char *name, const param_tensor *p,
                       float *dst) {
    int rank = 0;
    int64_t dims[HD_ST_MAX_RANK];
    hd_st_dtype dtype = HD_ST_F32;
    if (!hd_safetensors_find_any(file, name, &dtype, &rank, dims))
        return hd_fail("%s: tensor '%s' is missing", path, name);
    if (dtype != HD_ST_F32)
        return hd_fail("%s: tensor '%s' is %s, the model expects F32", path, name, hd_st_dtype_name(dtype));
    const float *src = hd_safetensors_find(file, name, NULL, NULL);
    if (rank != p->rank || memcmp(dims, p->dims, sizeof dims) != 0) {
        char have[96], want[96];
        hd_st_format_shape(rank, dims, have, sizeof have);
        hd_st_format_shape(p->rank, p->dims, want, sizeof want);
        return hd_fail("%s: tensor '%s' has shape %s, the model expects %s", path, name, have, want);
    }
    /* A checksum only says the bytes are the ones written: weights that are NaN or infinite would load and
     * then turn every output into NaN without a word. */
    for (size_t i = 0; i < p->count; i++)
        if (!isfinite(src[i]))
            return hd_fail("%s: tensor '%s' holds %s at index %zu: not a usable model", path, name,
                           isnan(src[i]) ? "NaN" : "an infinity", i);
    memcpy(dst + p->offset, src, p->count * sizeof *dst);
    return 0;
}

/* Every tensor in the file is a model parameter or optimizer state for one, or a layer's state. */
static int check_no_stray_tensors(const char *path, const hd_safetensors *file, const hd_model *model,
                                  const param_tensor *params, int n_params, const param_tensor *states,
                                  int n_states) {
    for (int i = 0; i < hd_safetensors_count(file); i++) {
        const char *name = hd_safetensors_name(file, i);
        const char *base = name;
        int averaged = strncmp(name, AVERAGE_PREFIX, strlen(AVERAGE_PREFIX)) == 0;
        if (strncmp(name, "optimizer.m.", 12) == 0 || strncmp(name, "optimizer.v.", 12) == 0)
            base = name + 12;
        else if (averaged)
            base = name + strlen(AVERAGE_PREFIX);
        int known = 0;
        for (int j = 0; j < n_params && !known; j++)
            known = strcmp(base, params[j].name) == 0;
        for (int j = 0; j < n_states && !known; j++)
            known = strcmp(averaged ? base : name, states[j].name) == 0;
        for (int j = 0; j < model->n_layers && !known; j++) {
            char counter[NAME_LEN];
            count_name(counter, &model->layers[j]);
            known = model->layers[j].state_count > 0 && strcmp(name, counter) == 0;
        }
        if (!known)
            return hd_fail("%s: tensor '%s' is not part of the model (spec %s)", path, name,
                           hd_safetensors_meta(file, "hd.spec"));
    }
    return 0;
}

static int meta_number(const char *path, const hd_safetensors *file, const char *key, double *value) {
    const char *text = hd_safetensors_meta(file, key);
    if (!text)
        return hd_fail("%s: metadata %s is missing", path, key);
    if (hd_parse_real(text, -DBL_MAX, DBL_MAX, value) != 0)
        return hd_fail("%s: metadata %s is '%s', not a number", path, key, text);
    return 0;
}

/* The input normalisation (hd.input_mean, hd.input_std; both or neither) into the model. */
static int read_input_meta(const char *path, const hd_safetensors *file, hd_model *model) {
    int has_mean = hd_safetensors_meta(file, "hd.input_mean") != NULL,
        has_std = hd_safetensors_meta(file, "hd.input_std") != NULL;
    if (!has_mean && !has_std) {
        model->input_mean = 0.0f;
        model->input_std = 1.0f;
        return 0;
    }
    double mean = 0.0, std = 0.0;
    if (meta_number(path, file, "hd.input_mean", &mean) != 0 ||
        meta_number(path, file, "hd.input_std", &std) != 0)
        return -1;
    if (!(mean >= -1.0 && mean <= 1.0))
        return hd_fail("%s: metadata hd.input_mean is %g, outside [-1, 1] (pixels are in [0, 1])", path,
                       mean);
    if (!(std >= 1e-6 && std <= 1.0))
        return hd_fail("%s: metadata hd.input_std is %g, outside [1e-6, 1] (pixels are in [0, 1])", path,
                       std);
    model->input_mean = (float)mean;
    model->input_std = (float)std;
    return 0;
}

/* The classes' names (hd.class_names, one a line; absent: none) into the model, when there is one per
 * class. */
static int read_class_names(const char *path, const hd_safetensors *file, hd_model *model) {
    const char *names = hd_safetensors_meta(file, "hd.class_names");
    free(model->class_names);
    model->class_names = NULL;
    if (!names)
        return 0;
    /* The same screen as a --class-names file: 1..63 bytes a name, UTF-8, no control characters, one per
     * class (serve, predict and the report print them, into 64-byte buffers). */
    if (hd_class_names_check(path, names, model->classes) != 0)
        return -1;
    model->class_names = strdup(names);
    return model->class_names ? 0 : hd_fail("out of memory");
}

/* The optimizer's hyperparameters and step count from the metadata, into `state`. */
static int read_optimizer_meta(const char *path, const hd_safetensors *file, hd_optimizer *state) {
    const char *kind = hd_safetensors_meta(file, "hd.optimizer");
    if (!kind)
        return hd_fail("%s: checkpoint has no optimizer state, which resuming training needs", path);
    if (strcmp(kind, hd_optimizer_name(state->kind)) != 0)
        return hd_fail("%s: checkpoint optimizer is %s, but %s was requested", path, kind,
                       hd_optimizer_name(state->kind));
    double lr, t, beta1, beta2, eps, momentum, nesterov;
    if (meta_number(path, file, "hd.optimizer.lr", &lr) != 0 ||
        meta_number(path, file, "hd.optimizer.t", &t) != 0 ||
        meta_number(path, file, "hd.optimizer.beta1", &beta1) != 0 ||
        meta_number(path, file, "hd.optimizer.beta2", &beta2) != 0 ||
        meta_number(path, file, "hd.optimizer.eps", &eps) != 0 ||
        meta_number(path, file, "hd.optimizer.momentum", &momentum) != 0 ||
        meta_number(path, file, "hd.optimizer.nesterov", &nesterov) != 0)
        return -1;
    if (t < 0 || t != floor(t) || t > 9.0e15)
        return hd_fail("%s: metadata hd.optimizer.t is %g, not a step count", path, t);
    state->lr = (float)lr;
    state->t = (uint64_t)t;
    state->beta1 = (float)beta1;
    state->beta2 = (float)beta2;
    state->eps = (float)eps;
    state->momentum = (float)momentum;
    state->nesterov = nesterov != 0;
    /* The weight average: its decay when the run keeps one (absent: none). */
    double ema = 0.0;
    if (hd_safetensors_meta(file, "hd.optimizer.ema_decay") &&
        meta_number(path, file, "hd.optimizer.ema_decay", &ema) != 0)
        return -1;
    if (!(ema >= 0.0 && ema < 1.0))
        return hd_fail("%s: metadata hd.optimizer.ema_decay is %g, not a decay in [0, 1)", path, ema);
    if ((ema > 0.0) != (state->average != NULL))
        return ema > 0.0 ? hd_fail("%s: checkpoint holds a weight average (--ema %g); this run keeps none",
                                   path, ema)
                         : hd_fail("%s: checkpoint holds no weight average, which --ema %g needs", path,
                                   state->ema_decay);
    state->ema_decay = ema;
    return 0;
}

/* Every bn layer's num_batches_tracked: an I64 scalar, not negative, the same in every layer (each sees
 * every training step); into *tracked (0 when the model has no such layer). */
static int read_batches_tracked(const char *path, const hd_safetensors *file, const hd_model *model,
                                uint64_t *tracked) {
    int seen = 0;
    *tracked = 0;
    for (int i = 0; i < model->n_layers; i++) {
        if (!model->layers[i].state_count)
            continue;
        char name[NAME_LEN];
        count_name(name, &model->layers[i]);
        hd_st_dtype dtype = HD_ST_F32;
        int rank = -1;
        const void *data = hd_safetensors_find_any(file, name, &dtype, &rank, NULL);
        if (!data)
            return hd_fail("%s: tensor '%s' is missing", path, name);
        if (dtype != HD_ST_I64 || rank != 0)
            return hd_fail("%s: tensor '%s' must be an I64 scalar (shape []), as PyTorch saves it", path,
                           name);
        int64_t value;
        memcpy(&value, data, sizeof value);
        if (value < 0)
            return hd_fail("%s: tensor '%s' is %" PRId64 ", not a step count", path, name, value);
        if (seen && (uint64_t)value != *tracked)
            return hd_fail("%s: tensor '%s' is %" PRId64 ", but an earlier layer's is %" PRIu64
                           " (every layer sees every step)",
                           path, name, value, *tracked);
        *tracked = (uint64_t)value;
        seen = 1;
    }
    return 0;
}

/* The state tensors named prefix + their names into *out (allocated here), running variances checked. */
static int gather_state(const char *path, const hd_safetensors *file, const hd_model *model,
                        const char *prefix, const param_tensor *states, int n_states, float **out) {
    if (!(*out = hd_malloc(model->state_count * sizeof(float))))
        return -1;
    for (int i = 0; i < n_states; i++) {
        char name[NAME_LEN];
        join_name(name, prefix, states[i].name);
        if (copy_tensor(path, file, name, &states[i], *out) != 0)
            return -1;
        /* A running variance below zero would make 1 / sqrt(var + eps) NaN. */
        for (size_t j = 0; strstr(states[i].name, ".running_var") && j < states[i].count; j++)
            if ((*out)[states[i].offset + j] < 0.0f)
                return hd_fail("%s: tensor '%s' holds a negative variance at index %zu", path, name, j);
    }
    return 0;
}

/* Reads and checks everything into host buffers (params, m, v, average; the model's state and its
 * average) and `state`, changing nothing. */
static int gather(const char *path, const hd_safetensors *file, const hd_model *model,
                  const hd_optimizer *opt, float *host[4], float *host_state[2], uint64_t *tracked,
                  hd_optimizer *state) {
    const char *version = hd_safetensors_meta(file, "hd.format_version");
    const char *spec = hd_safetensors_meta(file, "hd.spec");
    const char *input = hd_safetensors_meta(file, "hd.input");
    if (!version || !spec || !input)
        return hd_fail("%s: not an hd-gpu checkpoint (no hd.format_version, hd.spec or hd.input metadata)",
                       path);
    if (strcmp(version, HD_CHECKPOINT_FORMAT_VERSION) != 0)
        return hd_fail("%s: checkpoint format version %s; this build reads version %s", path, version,
                       HD_CHECKPOINT_FORMAT_VERSION);
    if (!same_spec(spec, model->spec_text))
        return hd_fail("%s: model spec mismatch: checkpoint has %s, model is %s", path, spec,
                       model->spec_text);
    char model_input[48];
    snprintf(model_input, sizeof model_input, "%dx%dx%d", model->in_c, model->in_h, model->in_w);
    if (strcmp(input, model_input) != 0)
        return hd_fail("%s: input shape mismatch: checkpoint has %s, model is %s", path, input, model_input);
    param_tensor params[2 * HD_MAX_LAYERS], states[2 * HD_MAX_LAYERS];
    int n_params = 0, n_states = 0;
    if (list_params(path, model, params, &n_params) != 0 || list_state(path, model, states, &n_states) != 0)
        return -1;
    if (check_no_stray_tensors(path, file, model, params, n_params, states, n_states) != 0)
        return -1;
    if (model->state_count && gather_state(path, file, model, "", states, n_states, &host_state[0]) != 0)
        return -1;
    if (read_batches_tracked(path, file, model, tracked) != 0)
        return -1;
    if (opt) {
        if (opt->count != model->param_count || !opt->m)
            return hd_fail("%s: the optimizer is not set up for this model (hd_optimizer_init)", path);
        *state = *opt;
        if (read_optimizer_meta(path, file, state) != 0)
            return -1;
    }
    /* Average tensors with no decay to say the optimizer keeps one: a file edited or written by another tool.
     */
    for (int i = 0; opt && !state->average && i < hd_safetensors_count(file); i++)
        if (strncmp(hd_safetensors_name(file, i), AVERAGE_PREFIX, strlen(AVERAGE_PREFIX)) == 0)
            return hd_fail("%s: tensor '%s' is a weight average, but there is no hd.optimizer.ema_decay",
                           path, hd_safetensors_name(file, i));
    if (opt && opt->average_state && model->state_count &&
        gather_state(path, file, model, AVERAGE_PREFIX, states, n_states, &host_state[1]) != 0)
        return -1;
    const char *prefixes[4] = {"", "optimizer.m.", "optimizer.v.", AVERAGE_PREFIX};
    const float *wanted[4] = {model->params, opt ? opt->m : NULL, opt ? opt->v : NULL,
                              opt ? opt->average : NULL};
    for (int s = 0; s < 4; s++) {
        if (!wanted[s])
            continue;
        if (!(host[s] = hd_malloc(model->param_count * sizeof(float))))
            return -1;
        for (int i = 0; i < n_params; i++) {
            char name[NAME_LEN];
            join_name(name, prefixes[s], params[i].name);
            if (copy_tensor(path, file, name, &params[i], host[s]) != 0)
                return -1;
        }
    }
    return 0;
}

int hd_checkpoint_load(const char *path, hd_model *model, hd_optimizer *opt, hd_safetensors **file_out) {
    if (file_out)
        *file_out = NULL;
    hd_safetensors *file = NULL;
    if (hd_safetensors_read(path, &file) != 0)
        return -1;
    float *host[4] = {NULL, NULL, NULL, NULL}; /* params, m, v, average */
    float *host_state[2] = {NULL, NULL};       /* the model's state, its average */
    uint64_t tracked = 0;
    hd_optimizer state;
    memset(&state, 0, sizeof state);
    if (opt && opt->applied) {
        hd_safetensors_free(file);
        return hd_fail("%s: the weight average is applied; restore the live weights before loading", path);
    }
    int rc = gather(path, file, model, opt, host, host_state, &tracked, &state);
    if (rc == 0)
        rc = read_input_meta(path, file, model);
    if (rc == 0)
        rc = read_class_names(path, file, model);
    if (rc == 0)
        rc = hd_model_set_params(model, host[0]);
    if (rc == 0)
        rc = hd_model_set_state(model, host_state[0]);
    if (rc == 0)
        model->batches_tracked = tracked;
    if (rc == 0 && opt) {
        hd_backend *be = model->be;
        size_t bytes = model->param_count * sizeof(float);
        float *into[4] = {NULL, opt->m, opt->v, opt->average};
        for (int s = 1; s < 4; s++)
            if (host[s] && into[s] && bytes)
                be->ops->upload(be, into[s], host[s], bytes);
        if (host_state[1] && opt->average_state)
            be->ops->upload(be, opt->average_state, host_state[1], model->state_count * sizeof(float));
        *opt = state;
    }
    for (int s = 0; s < 4; s++)
        free(host[s]);
    free(host_state[0]);
    free(host_state[1]);
    if (rc == 0 && file_out)
        *file_out = file;
    else
        hd_safetensors_free(file);
    return rc;
}

int hd_checkpoint_spec_of(const hd_safetensors *file, const char *path, char *spec, size_t spec_len) {
    const char *stored = hd_safetensors_meta(file, "hd.spec");
    if (!stored)
        return hd_fail("%s: not an hd-gpu checkpoint (no hd.spec metadata)", path);
    if (strlen(stored) >= spec_len)
        return hd_fail("%s: hd.spec is longer than %zu characters", path, spec_len);
    memcpy(spec, stored, strlen(stored) + 1);
    return 0;
}

int hd_checkpoint_read_spec(const char *path, char *spec, size_t spec_len) {
    hd_safetensors *file = NULL;
    if (hd_safetensors_read(path, &file) != 0)
        return -1;
    int rc = hd_checkpoint_spec_of(file, path, spec, spec_len);
    hd_safetensors_free(file);
    return rc;
}
