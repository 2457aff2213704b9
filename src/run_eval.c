/* run_eval.c: hd_run_evaluate_for_report (report.h): the test-set parts of a run's report,
 * from its best checkpoint, for `hd-gpu report RUN_DIR`. */
#include "hd/common.h"
#include "hd/mnist.h"
#include "hd/report.h"
#include "hd/safetensors.h"
#include "model_load.h"
#include "train_finish.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The value of "data: DIR" in the run's settings (written by `hd-gpu train --data DIR`). */
static int settings_data_dir(const char *settings, char *dir, size_t len) {
    for (const char *line = settings; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "data: ", 6) != 0)
            continue;
        size_t n = strcspn(line + 6, "\n");
        if (n == 0 || n >= len)
            return 0;
        memcpy(dir, line + 6, n);
        dir[n] = '\0';
        return 1;
    }
    return 0;
}

int hd_run_evaluate_for_report(const char *run_dir, const char *device, hd_report_inputs *out) {
    char path[4200], data_dir[4096];
    snprintf(path, sizeof path, "%s/settings.txt", run_dir);
    uint8_t *settings = NULL;
    size_t size = 0;
    if (hd_read_file(path, &settings, &size) == 0)
        out->settings_text = (char *)settings;
    hd_mnist_options data;
    hd_mnist_options_defaults(&data);
    data.quiet = 1;
    if (out->settings_text && settings_data_dir(out->settings_text, data_dir, sizeof data_dir))
        data.data_dir = data_dir; /* evaluate on the data the run trained on */

    hd_cpu_options cpu = {0};
    hd_backend *be = hd_backend_open(device, 0, &cpu, NULL);
    if (!be)
        return -1;
    snprintf(path, sizeof path, "%s/best.safetensors", run_dir);
    hd_eval_inputs in;
    double loss = 0;
    int rc = -1;
    if (hd_eval_inputs_load(&in, be, path, &data, 1000) == 0) {
        rc = hd_report_fill_from_test(&in.model, &in.test, &in.test_bytes, out, &loss);
        out->test_loss = loss;
        out->summary = rc == 0 ? hd_malloc(sizeof *out->summary) : NULL;
        if (out->summary)
            hd_model_summary_make(&in.model, out->summary);
        hd_eval_inputs_free(&in);
    }
    hd_safetensors *file = NULL;
    if (rc == 0 && hd_safetensors_read(path, &file) == 0) {
        const char *best = hd_safetensors_meta(file, "hd.train.best_epoch");
        out->best_epoch = best ? atoi(best) : 0;
        hd_safetensors_free(file);
    }
    hd_backend_destroy(be);
    return rc;
}
