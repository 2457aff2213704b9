/* cli.h: the subcommands of the hd-gpu program, one file each (src/cmd_*.c), and the
 * option helpers they share. Each command takes argv after the subcommand name and
 * returns the process exit code: 0 success, 1 runtime error, 2 usage error. */
#ifndef HD_CLI_H
#define HD_CLI_H

#include "hd/backend.h"

#define HD_EXIT_OK      0
#define HD_EXIT_RUNTIME 1
#define HD_EXIT_USAGE   2

int hd_cmd_train(int argc, char **argv);
int hd_cmd_eval(int argc, char **argv);
int hd_cmd_predict(int argc, char **argv);
int hd_cmd_report(int argc, char **argv);
int hd_cmd_bench(int argc, char **argv);
int hd_cmd_summary(int argc, char **argv);
int hd_cmd_export(int argc, char **argv);

/* Options every command that runs a model understands. */
typedef struct {
    const char *device; /* "auto" (default), "cpu", or a GPU index */
    int no_fallback;
    int threads;
    int deterministic;
    int allow_tf32;
    int no_graphs;
} hd_device_options;

void hd_device_options_defaults(hd_device_options *opt);
/* If argv[*i] is one of --device, --no-fallback, --threads, --deterministic, --tf32, --no-graph,
 * consumes it (and its value) and returns 1; returns -1 on a bad value (message printed),
 * 0 if the option is not a device option. */
int hd_device_options_parse(hd_device_options *opt, int argc, char **argv, int *i);
/* Usage lines for the device options. */
const char *hd_device_options_usage(void);
/* Opens the backend (prints the one-line notice on fallback); NULL + message printed. */
hd_backend *hd_device_options_open(const hd_device_options *opt);

#endif
