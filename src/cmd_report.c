/* cmd_report.c: `hd-gpu report RUN_DIR`: regenerates the run's figures and report.html from
 * RUN_DIR/metrics.csv and an evaluation of RUN_DIR/best.safetensors on the test set. */
#include <stdio.h>
#include <string.h>

#include "hd/cli.h"
#include "hd/common.h"
#include "hd/metrics.h"
#include "hd/report.h"
#include "hd/report_eval.h"

static void print_usage(FILE *out) {
    fprintf(out,
            "usage: hd-gpu report RUN_DIR [--device auto|cpu|N]\n"
            "\n"
            "Regenerates RUN_DIR/report.html and its figures (history.png, confusion.png,\n"
            "misclassified.png, filters.png) from RUN_DIR/metrics.csv and an evaluation of\n"
            "RUN_DIR/best.safetensors on the MNIST test set.\n"
            "\n"
            "  --device D   where to evaluate: auto (default: a GPU if one answers), cpu, or a GPU index\n"
            "  -h, --help   this text\n");
}

int hd_cmd_report(int argc, char **argv) {
    const char *run_dir = NULL, *device = "auto";
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            print_usage(stdout);
            return HD_EXIT_OK;
        } else if (strcmp(argv[i], "--device") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "hd-gpu report: --device needs a value\n");
                return HD_EXIT_USAGE;
            }
            device = argv[++i];
        } else if (strncmp(argv[i], "--device=", 9) == 0) {
            device = argv[i] + 9;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "hd-gpu report: unknown option %s\n", argv[i]);
            print_usage(stderr);
            return HD_EXIT_USAGE;
        } else if (run_dir) {
            fprintf(stderr, "hd-gpu report: one run directory only (got %s and %s)\n", run_dir, argv[i]);
            return HD_EXIT_USAGE;
        } else {
            run_dir = argv[i];
        }
    }
    if (!run_dir) {
        print_usage(stderr);
        return HD_EXIT_USAGE;
    }

    hd_report_inputs in;
    memset(&in, 0, sizeof in);
    in.test_accuracy = -1;
    char metrics_path[4096];
    snprintf(metrics_path, sizeof metrics_path, "%s/metrics.csv", run_dir);
    if (hd_metrics_csv_read(metrics_path, &in.rows, &in.n_rows) != 0) {
        fprintf(stderr, "hd-gpu report: %s\n", hd_last_error());
        return HD_EXIT_RUNTIME;
    }
    if (hd_report_read_results(run_dir, &in) != 0) {
        fprintf(stderr, "hd-gpu report: %s\n", hd_last_error());
        hd_report_inputs_free(&in);
        return HD_EXIT_RUNTIME;
    }
    int evaluated = hd_run_evaluate_for_report(run_dir, device, &in) == 0;
    if (!evaluated) {
        /* Still worth a page: the history and the metrics table, without test-set parts. */
        fprintf(stderr, "hd-gpu report: %s (writing the report without the test-set figures)\n",
                hd_last_error());
        hd_report_inputs kept = {.rows = in.rows,
                                 .n_rows = in.n_rows,
                                 .settings_text = in.settings_text,
                                 .ended_by = in.ended_by,
                                 .finished = in.finished,
                                 .test_accuracy = -1};
        in.rows = NULL;
        in.settings_text = in.ended_by = in.finished = NULL;
        hd_report_inputs_free(&in);
        in = kept;
    }
    int rc = hd_report_generate(run_dir, &in);
    hd_report_inputs_free(&in);
    if (rc != 0) {
        fprintf(stderr, "hd-gpu report: %s\n", hd_last_error());
        return HD_EXIT_RUNTIME;
    }
    printf("wrote %s/%s and its figures\n", run_dir, HD_REPORT_HTML);
    return evaluated ? HD_EXIT_OK : HD_EXIT_RUNTIME;
}
