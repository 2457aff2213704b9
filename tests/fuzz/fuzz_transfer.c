/* fuzz_transfer.c: the transfer-learning inputs a user writes (freeze.h, transfer.h). The first byte picks
 * the parser, the rest is its input:
 *   even: --freeze WHICH on the default model's layout. A success leaves a layer with parameters trainable
 *         and agrees with hd_freeze_check; a failure leaves nothing frozen and says so in one line
 *         starting with "--freeze";
 *   odd:  a --class-names file for 1 + (byte / 2) % 16 classes. A success holds exactly that many names,
 *         each 1..63 bytes without control characters; a failure is one line naming the file. */
#include "fuzz_util.h"

#include "hd/common.h"
#include "hd/freeze.h"
#include "hd/transfer.h"

#include <stdlib.h>
#include <string.h>

static void fuzz_freeze(const uint8_t *data, size_t size) {
    static hd_model layout;
    static int ready;
    if (!ready) {
        FUZZ_ASSERT(hd_model_layout(&layout, HD_DEFAULT_SPEC, 1, 28, 28, 1) == 0, "layout: %s",
                    hd_last_error());
        ready = 1;
    }
    char *text = malloc(size + 1);
    FUZZ_ASSERT(text, "out of memory");
    memcpy(text, data, size);
    text[size] = '\0';
    hd_clear_error();
    int rc = hd_freeze_apply(&layout, text);
    fuzz_check_result(rc, "--freeze");
    int frozen = 0;
    for (int i = 0; i < layout.n_layers; i++)
        frozen += layout.layers[i].frozen;
    if (rc == 0) {
        FUZZ_ASSERT(hd_model_first_trainable(&layout) < layout.n_layers, "\"%s\" froze every layer", text);
        FUZZ_ASSERT(strlen(text) == size ? hd_freeze_check(text) == 0 : 1,
                    "\"%s\" applies but does not check", text);
    } else {
        FUZZ_ASSERT(frozen == 0, "\"%s\" refused but left %d layers frozen", text, frozen);
    }
    free(text);
}

static void fuzz_class_names(int classes, const uint8_t *data, size_t size) {
    const char *path = fuzz_temp_file(data, size);
    char *names = NULL;
    hd_clear_error();
    int rc = hd_class_names_read(path, classes, &names);
    fuzz_check_result(rc, path);
    if (rc != 0) {
        FUZZ_ASSERT(names == NULL, "failure left names set");
        return;
    }
    int count = 0;
    for (const char *line = names; line; count++) {
        size_t n = strcspn(line, "\n");
        FUZZ_ASSERT(n >= 1 && n <= 63, "name %d of %zu bytes", count, n);
        for (size_t i = 0; i < n; i++)
            FUZZ_ASSERT((unsigned char)line[i] >= 0x20 && line[i] != 0x7f, "control byte in name %d", count);
        line = line[n] ? line + n + 1 : NULL;
    }
    FUZZ_ASSERT(count == classes, "%d names for %d classes", count, classes);
    free(names);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    if (data[0] % 2 == 0)
        fuzz_freeze(data + 1, size - 1);
    else
        fuzz_class_names(1 + (data[0] / 2) % 16, data + 1, size - 1);
    return 0;
}
