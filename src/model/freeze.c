/* freeze.c: parsing --freeze WHICH and marking the layers it names (freeze.h). */
#include "hd/freeze.h"
#include "hd/common.h"

#include <stdio.h>
#include <string.h>

/* Kinds by the name the spec gives them. */
static const struct {
    const char *name;
    hd_layer_kind kind;
} kinds[] = {
    {"conv", HD_LAYER_CONV},   {"maxpool", HD_LAYER_MAXPOOL}, {"flatten", HD_LAYER_FLATTEN},
    {"dense", HD_LAYER_DENSE}, {"dropout", HD_LAYER_DROPOUT}, {"avgpool", HD_LAYER_AVGPOOL},
    {"gap", HD_LAYER_GAP},     {"bn", HD_LAYER_BATCHNORM},    {"relu", HD_LAYER_RELU},
};
#define N_KINDS ((int)(sizeof kinds / sizeof kinds[0]))

/* One item: a kind (*kind set, *lo = *hi = 0) or a 1-based range lo..hi (*kind = -1). */
static int parse_item(const char *item, int *kind, int *lo, int *hi) {
    *kind = -1;
    *lo = *hi = 0;
    for (int k = 0; k < N_KINDS; k++)
        if (strcmp(item, kinds[k].name) == 0)
            return *kind = (int)kinds[k].kind, 0;
    char first[16], last[16];
    const char *dash = strchr(item, '-');
    size_t a = dash ? (size_t)(dash - item) : strlen(item);
    const char *rest = dash ? dash + 1 : item;
    if (a == 0 || a >= sizeof first || strlen(rest) == 0 || strlen(rest) >= sizeof last)
        return -1;
    memcpy(first, item, a);
    first[a] = '\0';
    snprintf(last, sizeof last, "%s", rest);
    long long x, y;
    if (first[0] < '0' || first[0] > '9' || last[0] < '0' || last[0] > '9' ||
        hd_parse_integer(first, 1, HD_MAX_LAYERS, &x) != 0 ||
        hd_parse_integer(last, 1, HD_MAX_LAYERS, &y) != 0 || y < x)
        return -1;
    *lo = (int)x;
    *hi = (int)y;
    return 0;
}

/* Parses each item of which and, given a model, marks the layers it names; -1 + hd_fail on the first bad
 * one, its message after `prefix` (the command line names the option itself). */
static int each_item(const char *which, hd_model *model, const char *prefix) {
    if (strlen(which) >= HD_FREEZE_MAX_LEN)
        return hd_fail("%slonger than %d characters", prefix, HD_FREEZE_MAX_LEN - 1);
    char text[HD_FREEZE_MAX_LEN];
    snprintf(text, sizeof text, "%s", which);
    char *save = NULL;
    int items = 0;
    for (char *item = strtok_r(text, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        int kind, lo, hi;
        items++;
        if (parse_item(item, &kind, &lo, &hi) != 0) {
            char names[128] = "";
            for (int k = 0; k < N_KINDS; k++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", k ? ", " : "",
                         kinds[k].name);
            return hd_fail("%s'%s' is neither a layer kind (%s) nor a layer number or range such as 1-3",
                           prefix, item, names);
        }
        if (!model)
            continue;
        int hits = 0;
        if (kind >= 0) {
            for (int i = 0; i < model->n_layers; i++)
                if ((int)model->layers[i].spec.kind == kind)
                    hits += model->layers[i].frozen = 1;
            if (!hits)
                return hd_fail("--freeze: the model (%s) has no %s layer", model->spec_text, item);
        } else {
            if (hi > model->n_layers)
                return hd_fail("--freeze: '%s' is past the model's %d layers (%s)", item, model->n_layers,
                               model->spec_text);
            for (int i = lo - 1; i < hi; i++)
                model->layers[i].frozen = 1;
        }
    }
    if (items == 0 && which[0])
        return hd_fail("%s'%s' names no layers", prefix, which);
    return 0;
}

int hd_freeze_check(const char *which) {
    return which ? each_item(which, NULL, "") : 0;
}

int hd_freeze_apply(hd_model *model, const char *which) {
    for (int i = 0; i < model->n_layers; i++)
        model->layers[i].frozen = 0;
    if (!which || !which[0])
        return 0;
    if (each_item(which, model, "--freeze: ") != 0) {
        for (int i = 0; i < model->n_layers; i++)
            model->layers[i].frozen = 0;
        return -1;
    }
    if (hd_model_first_trainable(model) == model->n_layers) {
        for (int i = 0; i < model->n_layers; i++)
            model->layers[i].frozen = 0;
        return hd_fail("--freeze %s: every layer with parameters would be frozen, leaving nothing to train",
                       which);
    }
    return 0;
}

void hd_freeze_describe(const hd_model *model, char *buf, size_t len) {
    size_t used = 0;
    if (len == 0)
        return;
    buf[0] = '\0';
    for (int i = 0; i < model->n_layers; i++) {
        if (!model->layers[i].frozen)
            continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? "," : "", model->layers[i].name);
        if (n < 0 || (size_t)n >= len - used)
            break;
        used += (size_t)n;
    }
    if (!used)
        snprintf(buf, len, "none");
}
