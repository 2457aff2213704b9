/* cli.h: the subcommands of the hd-gpu program, one file each (src/cli/cmd_*.c), and the
 * option helpers they share. Each command takes argv after the subcommand name and
 * returns the process exit code: 0 success, 1 runtime error, 2 usage error. */
#ifndef HD_CLI_H
#define HD_CLI_H

#include "hd/backend.h"
#include "hd/cli_options.h"

#include <stddef.h>

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
int hd_cmd_serve(int argc, char **argv);

/* Options every command that runs a model understands. */
typedef struct {
    const char *device; /* "auto" (default), "cpu", or a GPU index */
    int no_fallback;
    int threads;
    int deterministic;
    int allow_tf32;
    int no_graphs;
    int quiet; /* no notice when falling back to the CPU */
} hd_device_options;

void hd_device_options_defaults(hd_device_options *opt);
/* Their option tables (cli_options.h), setting an hd_device_options: --device, --no-fallback,
 * --threads, --deterministic, --tf32; and --no-graph, for the commands that train. */
extern const hd_cli_option hd_device_cli_options[5];
extern const hd_cli_option hd_graph_cli_options[1];
/* Opens the backend (prints the one-line notice on fallback unless quiet); NULL + message printed. */
hd_backend *hd_device_options_open(const hd_device_options *opt);

/* The checkpoint that a --model argument names: a file as it is, or a run directory's
 * best.safetensors. -1 with a message naming the argument when neither is there. */
int hd_resolve_model_path(const char *arg, char *path, size_t len);

#endif
