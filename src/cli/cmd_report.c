/* cmd_report.c: `hd-gpu report RUN_DIR`: regenerates the run's figures and report.html from
 * RUN_DIR/metrics.csv and an evaluation of RUN_DIR/best.safetensors on the test set. */
#include <stdio.h>
#include <string.h>

#include "hd/cli.h"
#include "hd/common.h"
#include "hd/metrics.h"
#include "hd/report.h"
#include "hd/report_eval.h"

typedef struct {
    const char *device;
} report_settings;

static int set_device(void *s, const char *v) {
    return ((report_settings *)s)->device = v, 0;
}

static const hd_cli_option report_options[] = {
    HD_CLI_OPTION("device", "D", set_device,
                  "where to evaluate: auto (default: a GPU if one answers), cpu, or a GPU index"),
};
static const hd_cli_group report_groups[] = {HD_CLI_GROUP_WHOLE(NULL, report_options)};
const hd_cli_command hd_cli_report = {
    .name = "report",
    .summary = "regenerate a run's plots and report.html (RUN_DIR)",
    .synopsis = "RUN_DIR [options]",
    .description = "Regenerates RUN_DIR/report.html and its figures (history.png, confusion.png,\n"
                   "misclassified.png, filters.png) from RUN_DIR/metrics.csv and an evaluation of\n"
                   "RUN_DIR/best.safetensors on the MNIST test set.",
    .groups = report_groups,
    .n_groups = 1,
    .positional = "RUN_DIR",
    .run = hd_cmd_report,
};

int hd_cmd_report(int argc, char **argv) {
    report_settings s = {"auto"};
    int first_operand;
    int parsed = hd_cli_parse(&hd_cli_report, &s, argc, argv, &first_operand);
    if (parsed != 0)
        return parsed > 0 ? HD_EXIT_OK : HD_EXIT_USAGE;
    if (first_operand >= argc) {
        fprintf(stderr, "hd-gpu report: RUN_DIR is required (see --help)\n");
        return HD_EXIT_USAGE;
    }
    if (argc - first_operand > 1) {
        fprintf(stderr, "hd-gpu report: one run directory only (got %s and %s)\n", argv[first_operand],
                argv[first_operand + 1]);
        return HD_EXIT_USAGE;
    }
    const char *run_dir = argv[first_operand], *device = s.device;

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
