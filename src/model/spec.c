/* spec.c: parsing and printing the layer spec strings described in spec.h. */
#include "hd/spec.h"
#include "hd/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_int(const char *text, int lo, int hi, int *value) {
    long long v;
    if (hd_parse_integer(text, lo, hi, &v) != 0)
        return -1;
    *value = (int)v;
    return 0;
}

static int parse_activation(const char *text, hd_activation *act) {
    if (!text) {
        *act = HD_ACT_NONE;
        return 0;
    }
    if (strcmp(text, "relu") == 0) {
        *act = HD_ACT_RELU;
        return 0;
    }
    if (strcmp(text, "linear") == 0) {
        *act = HD_ACT_NONE;
        return 0;
    }
    return -1;
}

/* The conv options after FILTERS:KERNEL, in their order: [sSTRIDE] [same|valid|pPAD] [relu|linear]. On a
 * bad option, *why says what is wrong with it. */
_Static_assert(HD_SPEC_MAX_STRIDE == 64, "the stride's message says 1..64");
static int parse_conv_options(char **fields, int count, hd_layer_spec *layer, const char **why) {
    int i = 0;
    layer->stride = 1;
    if (i < count && fields[i][0] == 's' && fields[i][1] != '\0' && strcmp(fields[i], "same") != 0) {
        if (parse_int(fields[i] + 1, 1, HD_SPEC_MAX_STRIDE, &layer->stride) != 0)
            return *why = "the stride sSTRIDE must be 1..64", -1;
        i++;
    }
    if (i < count && strcmp(fields[i], "same") == 0) {
        if (layer->kernel % 2 == 0) /* (k-1)/2 on both sides keeps the size only for odd k */
            return *why = "same padding needs an odd kernel (use pPAD)", -1;
        layer->pad = (layer->kernel - 1) / 2;
        i++;
    } else if (i < count && strcmp(fields[i], "valid") == 0) {
        i++;
    } else if (i < count && fields[i][0] == 'p') {
        /* Under KERNEL: a wider padding only adds outputs that see nothing but zeros. */
        if (parse_int(fields[i] + 1, 0, layer->kernel - 1, &layer->pad) != 0)
            return *why = "the padding pPAD must be 0..KERNEL-1", -1;
        i++;
    }
    if (i < count && parse_activation(fields[i++], &layer->act) != 0)
        return *why = "conv options are [:sSTRIDE][:same|valid|pPAD][:relu], in that order", -1;
    if (i != count)
        return *why = "conv options are [:sSTRIDE][:same|valid|pPAD][:relu], in that order", -1;
    return 0;
}

/* Parses one item such as "conv:32:3:relu" (fields split on ':'). */
static int parse_item(char *item, hd_layer_spec *layer, const char **why) {
    char *fields[6] = {0};
    int count = 0;
    for (char *save = NULL, *tok = strtok_r(item, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
        if (count == 6)
            return -1;
        fields[count++] = tok;
    }
    if (count == 0)
        return -1;
    memset(layer, 0, sizeof *layer);
    const char *kind = fields[0];
    if (strcmp(kind, "conv") == 0 && count >= 3) {
        layer->kind = HD_LAYER_CONV;
        return (parse_int(fields[1], 1, 4096, &layer->units) ||
                parse_int(fields[2], 1, HD_SPEC_MAX_KERNEL, &layer->kernel) ||
                parse_conv_options(fields + 3, count - 3, layer, why))
                   ? -1
                   : 0;
    }
    if (strcmp(kind, "dense") == 0 && (count == 2 || count == 3)) {
        layer->kind = HD_LAYER_DENSE;
        return (parse_int(fields[1], 1, 1 << 20, &layer->units) ||
                parse_activation(count == 3 ? fields[2] : NULL, &layer->act))
                   ? -1
                   : 0;
    }
    if (strcmp(kind, "maxpool") == 0 && count == 2) {
        layer->kind = HD_LAYER_MAXPOOL;
        return parse_int(fields[1], 1, 64, &layer->pool);
    }
    if (strcmp(kind, "avgpool") == 0 && count == 2) {
        layer->kind = HD_LAYER_AVGPOOL;
        return parse_int(fields[1], 1, 64, &layer->pool);
    }
    if (strcmp(kind, "gap") == 0 && count == 1) {
        layer->kind = HD_LAYER_GAP;
        return 0;
    }
    if (strcmp(kind, "flatten") == 0 && count == 1) {
        layer->kind = HD_LAYER_FLATTEN;
        return 0;
    }
    if (strcmp(kind, "bn") == 0 && count == 1) {
        layer->kind = HD_LAYER_BATCHNORM;
        return 0;
    }
    if (strcmp(kind, "relu") == 0 && count == 1) {
        layer->kind = HD_LAYER_RELU;
        return 0;
    }
    if (strcmp(kind, "dropout") == 0 && count == 2) {
        layer->kind = HD_LAYER_DROPOUT;
        double rate;
        /* Checked as the float it is stored in: 0.99999999 rounds to 1.0f, which would scale by 1/0. */
        if (hd_parse_real(fields[1], 0.0, 1.0, &rate) != 0 || !((float)rate < 1.0f))
            return -1;
        layer->rate = (float)rate;
        return 0;
    }
    return -1;
}

int hd_spec_parse(const char *text, hd_layer_spec *layers, int max_layers, int *n_layers) {
    char buf[1024];
    if (!text || strlen(text) >= sizeof buf)
        return hd_fail("model spec: empty or too long");
    snprintf(buf, sizeof buf, "%s", text);
    int n = 0;
    for (char *save = NULL, *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char original[128];
        snprintf(original, sizeof original, "%s", item);
        if (n == max_layers)
            return hd_fail("model spec: more than %d layers", max_layers);
        const char *why = NULL;
        if (parse_item(item, &layers[n], &why) != 0) {
            if (why)
                return hd_fail("model spec: bad layer '%s': %s", original, why);
            return hd_fail("model spec: bad layer '%s' (expected "
                           "conv:FILTERS:KERNEL[:sSTRIDE][:same|valid|pPAD][:relu], "
                           "maxpool:SIZE, avgpool:SIZE, gap, flatten, dense:UNITS[:relu], dropout:RATE "
                           "with 0 <= RATE < 1, bn or relu)",
                           original);
        }
        n++;
    }
    if (n == 0)
        return hd_fail("model spec: no layers");
    if (layers[n - 1].kind != HD_LAYER_DENSE || layers[n - 1].act != HD_ACT_NONE)
        return hd_fail(
            "model spec: the last layer must be dense without activation (its outputs are the logits)");
    *n_layers = n;
    return 0;
}

void hd_spec_format(const hd_layer_spec *layers, int n_layers, char *buf, size_t buf_len) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n_layers && used < buf_len; i++) {
        const hd_layer_spec *l = &layers[i];
        const char *sep = i ? "," : "";
        const char *act = l->act == HD_ACT_RELU ? ":relu" : "";
        int w = 0;
        switch (l->kind) {
        case HD_LAYER_CONV: {
            char stride[16] = "", pad[16] = "";
            if (l->stride > 1)
                snprintf(stride, sizeof stride, ":s%d", l->stride);
            if (l->pad > 0 && l->kernel % 2 == 1 && l->pad == (l->kernel - 1) / 2)
                snprintf(pad, sizeof pad, ":same");
            else if (l->pad > 0)
                snprintf(pad, sizeof pad, ":p%d", l->pad);
            w = snprintf(buf + used, buf_len - used, "%sconv:%d:%d%s%s%s", sep, l->units, l->kernel, stride,
                         pad, act);
            break;
        }
        case HD_LAYER_MAXPOOL:
            w = snprintf(buf + used, buf_len - used, "%smaxpool:%d", sep, l->pool);
            break;
        case HD_LAYER_AVGPOOL:
            w = snprintf(buf + used, buf_len - used, "%savgpool:%d", sep, l->pool);
            break;
        case HD_LAYER_GAP:
            w = snprintf(buf + used, buf_len - used, "%sgap", sep);
            break;
        case HD_LAYER_FLATTEN:
            w = snprintf(buf + used, buf_len - used, "%sflatten", sep);
            break;
        case HD_LAYER_DENSE:
            w = snprintf(buf + used, buf_len - used, "%sdense:%d%s", sep, l->units, act);
            break;
        case HD_LAYER_BATCHNORM:
            w = snprintf(buf + used, buf_len - used, "%sbn", sep);
            break;
        case HD_LAYER_RELU:
            w = snprintf(buf + used, buf_len - used, "%srelu", sep);
            break;
        case HD_LAYER_DROPOUT: {
            char rate[32]; /* the shortest exact form: checkpoints store the spec and parse it again */
            hd_format_float(rate, sizeof rate, l->rate);
            w = snprintf(buf + used, buf_len - used, "%sdropout:%s", sep, rate);
            break;
        }
        }
        if (w < 0)
            return;
        used += (size_t)w;
    }
}
