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

int hd_run_evaluate_for_report(const char *run_dir, const char *device, hd_report_inputs *out) {
    char path[4200];
    snprintf(path, sizeof path, "%s/best.safetensors", run_dir);
    hd_cpu_options cpu = {0};
    hd_backend *be = hd_backend_open(device, 0, &cpu, NULL);
    if (!be)
        return -1;
    hd_model model = {0};
    hd_dataset train = {0}, test = {0};
    hd_float_set test_set = {0};
    hd_mnist_options data;
    hd_mnist_options_defaults(&data);
    data.quiet = 1;
    int rc = -1;
    double loss = 0;
    /* The run's own data directory, as recorded by `hd-gpu train --data DIR`. */
    char settings_path[4200], data_dir[4096] = "";
    snprintf(settings_path, sizeof settings_path, "%s/settings.txt", run_dir);
    FILE *settings_file = fopen(settings_path, "r");
    if (settings_file) {
        char line[4200];
        while (fgets(line, sizeof line, settings_file))
            if (strncmp(line, "data: ", 6) == 0 && sscanf(line + 6, "%4095[^\n]", data_dir) == 1)
                data.data_dir = data_dir;
        fclose(settings_file);
    }
    if (hd_model_load_checkpoint(&model, be, path, 1000) != 0 || hd_mnist_load(&data, &train, &test) != 0 ||
        hd_float_set_from_bytes(&test_set, test.images, test.labels, test.rows, test.cols, NULL,
                                test.count) != 0 ||
        hd_report_fill_from_test(&model, &test_set, &test, out, &loss) != 0)
        goto out;
    hd_safetensors *file = NULL;
    if (hd_safetensors_read(path, &file) == 0) {
        const char *best = hd_safetensors_meta(file, "hd.train.best_epoch");
        out->best_epoch = best ? atoi(best) : 0;
        hd_safetensors_free(file);
    }
    snprintf(path, sizeof path, "%s/settings.txt", run_dir);
    uint8_t *settings = NULL;
    size_t size = 0;
    if (hd_read_file(path, &settings, &size) == 0)
        out->settings_text = (char *)settings;
    rc = 0;
out:
    if (model.be)
        hd_model_destroy(&model);
    hd_float_set_free(&test_set);
    hd_dataset_free(&train);
    hd_dataset_free(&test);
    hd_backend_destroy(be);
    return rc;
}
