/* model_summary.c: hd_model_summary_make (the cells of a model's layer table, from the built
 * model) and hd_model_summary_print (that table as text). */
#include "hd/model_summary.h"

#include <string.h>

void hd_format_count(size_t n, char *buf, size_t len) {
    char digits[32];
    int nd = snprintf(digits, sizeof digits, "%zu", n);
    size_t k = 0;
    for (int i = 0; i < nd && k + 2 < len; i++) {
        if (i > 0 && (nd - i) % 3 == 0)
            buf[k++] = ',';
        buf[k++] = digits[i];
    }
    if (len > 0)
        buf[k < len ? k : len - 1] = '\0';
}

static void shape_text(int c, int h, int w, char *buf, size_t len) {
    if (h == 1 && w == 1)
        snprintf(buf, len, "%d", c);
    else
        snprintf(buf, len, "%dx%dx%d", c, h, w);
}

static void layer_text(const hd_layer *layer, char *buf, size_t len) {
    const hd_layer_spec *s = &layer->spec;
    const char *relu = s->act == HD_ACT_RELU ? ", ReLU" : "";
    switch (s->kind) {
    case HD_LAYER_CONV: {
        char options[48] = "";
        if (s->stride > 1 && s->pad > 0)
            snprintf(options, sizeof options, " s%d p%d", s->stride, s->pad);
        else if (s->stride > 1)
            snprintf(options, sizeof options, " s%d", s->stride);
        else if (s->pad > 0)
            snprintf(options, sizeof options, " p%d", s->pad);
        snprintf(buf, len, "%s (Conv2D %dx%d%s%s)", layer->name, s->kernel, s->kernel, options, relu);
        break;
    }
    case HD_LAYER_MAXPOOL:
        snprintf(buf, len, "%s (MaxPool %dx%d)", layer->name, s->pool, s->pool);
        break;
    case HD_LAYER_AVGPOOL:
        snprintf(buf, len, "%s (AvgPool %dx%d)", layer->name, s->pool, s->pool);
        break;
    case HD_LAYER_GAP:
        snprintf(buf, len, "%s (GlobalAvgPool)", layer->name);
        break;
    case HD_LAYER_FLATTEN:
        snprintf(buf, len, "%s (Flatten)", layer->name);
        break;
    case HD_LAYER_DENSE:
        snprintf(buf, len, "%s (Dense%s)", layer->name, relu);
        break;
    case HD_LAYER_DROPOUT:
        snprintf(buf, len, "%s (Dropout %g)", layer->name, (double)s->rate);
        break;
    case HD_LAYER_BATCHNORM: /* parameters: scale and shift, as PyTorch counts; running statistics not */
        snprintf(buf, len, "%s (BatchNorm)", layer->name);
        break;
    case HD_LAYER_RELU:
        snprintf(buf, len, "%s (ReLU)", layer->name);
        break;
    }
}

void hd_model_summary_make(const hd_model *model, hd_model_summary *summary) {
    memset(summary, 0, sizeof *summary);
    snprintf(summary->spec, sizeof summary->spec, "%s", model->spec_text);
    hd_summary_row *row = &summary->rows[0];
    snprintf(row->layer, sizeof row->layer, "input");
    shape_text(model->in_c, model->in_h, model->in_w, row->shape, sizeof row->shape);
    hd_format_count(0, row->params, sizeof row->params);
    for (int i = 0; i < model->n_layers; i++) {
        const hd_layer *layer = &model->layers[i];
        row = &summary->rows[i + 1];
        layer_text(layer, row->layer, sizeof row->layer);
        shape_text(layer->out_c, layer->out_h, layer->out_w, row->shape, sizeof row->shape);
        row->param_count = layer->weight_count + layer->bias_count;
        hd_format_count(row->param_count, row->params, sizeof row->params);
        summary->total_params += row->param_count;
    }
    summary->n_rows = model->n_layers + 1;
    char count[32];
    hd_format_count(summary->total_params, count, sizeof count);
    double bytes = 4.0 * (double)summary->total_params;
    if (bytes < 1024 * 1024)
        snprintf(summary->total, sizeof summary->total, "%s (%.1f KiB as float32)", count, bytes / 1024);
    else
        snprintf(summary->total, sizeof summary->total, "%s (%.1f MiB as float32)", count,
                 bytes / (1024 * 1024));
}

static void print_rule(FILE *out, int width) {
    for (int i = 0; i < width; i++)
        fputc('-', out);
}

void hd_model_summary_print(FILE *out, const hd_model_summary *summary) {
    int w_layer = (int)strlen(HD_SUMMARY_LAYER_TITLE), w_shape = (int)strlen(HD_SUMMARY_SHAPE_TITLE),
        w_params = (int)strlen(HD_SUMMARY_PARAMS_TITLE);
    for (int i = 0; i < summary->n_rows; i++) {
        const hd_summary_row *row = &summary->rows[i];
        w_layer = (int)strlen(row->layer) > w_layer ? (int)strlen(row->layer) : w_layer;
        w_shape = (int)strlen(row->shape) > w_shape ? (int)strlen(row->shape) : w_shape;
        w_params = (int)strlen(row->params) > w_params ? (int)strlen(row->params) : w_params;
    }
    fprintf(out, "Model: %s\n", summary->spec);
    fprintf(out, "%-*s  %-*s  %*s\n", w_layer, HD_SUMMARY_LAYER_TITLE, w_shape, HD_SUMMARY_SHAPE_TITLE,
            w_params, HD_SUMMARY_PARAMS_TITLE);
    print_rule(out, w_layer);
    fputs("  ", out);
    print_rule(out, w_shape);
    fputs("  ", out);
    print_rule(out, w_params);
    fputc('\n', out);
    for (int i = 0; i < summary->n_rows; i++) {
        const hd_summary_row *row = &summary->rows[i];
        fprintf(out, "%-*s  %-*s  %*s\n", w_layer, row->layer, w_shape, row->shape, w_params, row->params);
    }
    fprintf(out, "Total params: %s\n", summary->total);
}
