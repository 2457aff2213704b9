/* test_spec.c: model spec strings (model.h): the canonical form reads back as the same layers (dropout
 * rates in their shortest exact form), and bad specs are refused with a message naming the item. */
#include "check.h"
#include "hd/common.h"
#include "hd/model.h"

#include <string.h>

static void check_canonical(const char *text, const char *expected) {
    hd_layer_spec layers[HD_MAX_LAYERS], again[HD_MAX_LAYERS];
    int n = 0, n_again = 0;
    int rc = hd_spec_parse(text, layers, HD_MAX_LAYERS, &n);
    CHECK(rc == 0, "\"%s\" does not parse: %s", text, hd_last_error());
    if (rc != 0)
        return;
    char canonical[1024];
    hd_spec_format(layers, n, canonical, sizeof canonical);
    CHECK(strcmp(canonical, expected) == 0, "\"%s\" formats as \"%s\", expected \"%s\"", text, canonical,
          expected);
    rc = hd_spec_parse(canonical, again, HD_MAX_LAYERS, &n_again);
    CHECK(rc == 0 && n_again == n, "\"%s\" does not parse back: %s", canonical, hd_last_error());
    for (int i = 0; rc == 0 && i < n && i < n_again; i++)
        CHECK(again[i].kind == layers[i].kind && again[i].units == layers[i].units &&
                  again[i].kernel == layers[i].kernel && again[i].pool == layers[i].pool &&
                  again[i].rate == layers[i].rate && again[i].act == layers[i].act,
              "\"%s\": layer %d differs after the round trip (rate %.9g vs %.9g)", text, i,
              (double)layers[i].rate, (double)again[i].rate);
}

static void check_refused(const char *text, const char *want_phrase) {
    hd_layer_spec layers[HD_MAX_LAYERS];
    int n = 0;
    int rc = hd_spec_parse(text, layers, HD_MAX_LAYERS, &n);
    const char *msg = hd_last_error();
    CHECK(rc == -1 && strstr(msg, want_phrase) && !strchr(msg, '\n'),
          "\"%s\": want a one-line error with '%s', got rc %d '%s'", text, want_phrase, rc, rc ? msg : "");
}

int main(void) {
    check_canonical(HD_DEFAULT_SPEC, HD_DEFAULT_SPEC);
    check_canonical("conv:8:5,maxpool:3,flatten,dense:10", "conv:8:5,maxpool:3,flatten,dense:10");
    /* %g's six digits used to turn 0.2111111 into 0.211111: a checkpoint then rebuilt another model. */
    check_canonical("dropout:0.2111111,dense:10", "dropout:0.2111111,dense:10");
    check_canonical("dropout:0.25000,dropout:1e-3,dropout:0,dense:10",
                    "dropout:0.25,dropout:0.001,dropout:0,dense:10");
    check_canonical("dropout:0.9999999,dense:10", "dropout:0.9999999,dense:10");

    check_refused("dropout:0.99999999,dense:10", "bad layer 'dropout:0.99999999'"); /* 1.0f as a float */
    check_refused("dropout:1,dense:10", "bad layer 'dropout:1'");
    check_refused("dropout:nan,dense:10", "bad layer 'dropout:nan'");
    check_refused("conv:32:3:tanh,dense:10", "bad layer 'conv:32:3:tanh'");
    check_refused("conv\n:3,dense:10", "bad layer 'conv\\n:3'");
    check_refused("conv:32:3:relu", "the last layer must be dense");
    check_refused("", "model spec");
    return test_finish();
}
