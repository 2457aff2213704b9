/* main.c: the hd-gpu program: dispatches to the subcommands of cli.h. */
#include "hd/cli.h"
#include "hd/common.h"
#include "hd/plot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out) {
    fprintf(out, "usage: hd-gpu COMMAND [options]   (hd-gpu COMMAND --help for its options)\n\n"
                 "commands:\n"
                 "  train     train the CNN on MNIST, evaluate it on the test set, write a report\n"
                 "  eval      evaluate a saved model on the test set (--model FILE)\n"
                 "  predict   classify your own images of digits (--model FILE IMAGE...)\n"
                 "  report    regenerate a run's plots and report.html (RUN_DIR)\n"
                 "  bench     measure training and inference speed\n\n"
                 "  --version, --help\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return HD_EXIT_USAGE;
    }
    atexit(hd_plot_release_caches);
    const char *command = argv[1];
    if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0 || strcmp(command, "help") == 0) {
        usage(stdout);
        return HD_EXIT_OK;
    }
    if (strcmp(command, "--version") == 0) {
        printf("hd-gpu %s\n", HD_VERSION);
        return HD_EXIT_OK;
    }
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } commands[] = {{"train", hd_cmd_train},
                    {"eval", hd_cmd_eval},
                    {"predict", hd_cmd_predict},
                    {"report", hd_cmd_report},
                    {"bench", hd_cmd_bench}};
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(command, commands[i].name) == 0)
            return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "hd-gpu: unknown command '%s'\n", command);
    usage(stderr);
    return HD_EXIT_USAGE;
}
