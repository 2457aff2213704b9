/* main.c: the hd-gpu program: dispatches to the subcommands of cli.h. */
#include "hd/backend.h"
#include "hd/blas_kernels.h"
#include "hd/cli.h"
#include "hd/cli_options.h"
#include "hd/common.h"
#include "hd/plot.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out) {
    size_t n;
    const hd_cli_command *const *commands = hd_cli_commands(&n);
    fprintf(out,
            "usage: hd-gpu COMMAND [options]   (hd-gpu help COMMAND, or COMMAND --help, for its options)\n\n"
            "commands:\n");
    for (size_t i = 0; i < n; i++)
        fprintf(out, "  %-9s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(out, "  %-9s %s\n\n  --version, --help\n", "help", "this text, or a command's (help COMMAND)");
}

static const hd_cli_command *find_command(const char *name) {
    size_t n;
    const hd_cli_command *const *commands = hd_cli_commands(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, commands[i]->name) == 0)
            return commands[i];
    return NULL;
}

/* "unknown command 'trian'; did you mean 'train'?" */
static int unknown_command(const char *name) {
    size_t n;
    const hd_cli_command *const *commands = hd_cli_commands(&n);
    const char *names[16];
    for (size_t i = 0; i < n && i < 16; i++)
        names[i] = commands[i]->name;
    const char *near = hd_cli_nearest(name, names, n < 16 ? n : 16);
    if (near)
        fprintf(stderr, "hd-gpu: unknown command '%s'; did you mean '%s'? (see hd-gpu --help)\n", name, near);
    else
        fprintf(stderr, "hd-gpu: unknown command '%s' (see hd-gpu --help)\n", name);
    return HD_EXIT_USAGE;
}

/* hd-gpu help [COMMAND] */
static int help(int argc, char **argv) {
    if (argc == 0) {
        usage(stdout);
        return HD_EXIT_OK;
    }
    const hd_cli_command *cmd = find_command(argv[0]);
    if (argc > 1) {
        fprintf(stderr, "hd-gpu help: one command at a time\n");
        return HD_EXIT_USAGE;
    }
    if (!cmd)
        return unknown_command(argv[0]);
    hd_cli_print_help(cmd, stdout);
    return HD_EXIT_OK;
}

/* What is generated from the option tables: --man, --completion bash, --list-options. */
static int generated(int argc, char **argv) {
    const char *what = argv[1];
    if (strcmp(what, "--man") == 0 && argc == 2)
        hd_cli_write_man(stdout);
    else if (strcmp(what, "--completion") == 0 && argc == 3 && strcmp(argv[2], "bash") == 0)
        hd_cli_write_bash_completion(stdout);
    else if (strcmp(what, "--list-options") == 0 && argc == 2)
        hd_cli_write_option_list(stdout);
    else {
        fprintf(stderr, "hd-gpu: %s: expected --man, --completion bash or --list-options\n", what);
        return HD_EXIT_USAGE;
    }
    return fflush(stdout) == 0 ? HD_EXIT_OK : HD_EXIT_RUNTIME;
}

/* The optional features this build has (CMakeLists.txt turns each off when its -dev package is missing). */
#ifdef HD_WITH_CUDA
#define HD_FEATURE_CUDA 1
#else
#define HD_FEATURE_CUDA 0
#endif
#ifdef HD_HAVE_CURL
#define HD_FEATURE_CURL 1
#else
#define HD_FEATURE_CURL 0
#endif
#ifdef HD_HAVE_CAIRO
#define HD_FEATURE_CAIRO 1
#else
#define HD_FEATURE_CAIRO 0
#endif
#ifdef HD_HAVE_STB
#define HD_FEATURE_STB 1
#else
#define HD_FEATURE_STB 0
#endif

int main(int argc, char **argv) {
    hd_blas_choose_kernels(argv);
    if (argc < 2) {
        usage(stderr);
        return HD_EXIT_USAGE;
    }
    atexit(hd_plot_release_caches);
    const char *command = argv[1];
    if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0) {
        usage(stdout);
        return HD_EXIT_OK;
    }
    if (strcmp(command, "help") == 0)
        return help(argc - 2, argv + 2);
    if (strcmp(command, "--man") == 0 || strcmp(command, "--completion") == 0 ||
        strcmp(command, "--list-options") == 0)
        return generated(argc, argv);
    if (strcmp(command, "--version") == 0) {
        printf("hd-gpu %s\n", HD_VERSION);
        printf("features: %s, %s, %s, %s\n", HD_FEATURE_CUDA ? "cuda" : "no cuda",
               HD_FEATURE_CURL ? "download (curl)" : "no download (built without curl)",
               HD_FEATURE_CAIRO ? "plots (cairo)" : "no plots (built without cairo)",
               HD_FEATURE_STB ? "images (stb)" : "no images (built without stb)");
        char *blas = openblas_get_config(), *kernels = openblas_get_corename();
        printf("cpu: %s; kernels %s\n", blas ? blas : "OpenBLAS", kernels ? kernels : "?");
        return HD_EXIT_OK;
    }
    const hd_cli_command *cmd = find_command(command);
    if (cmd)
        return cmd->run(argc - 2, argv + 2);
    if (command[0] == '-') {
        fprintf(stderr, "hd-gpu: unknown option '%s' (see hd-gpu --help)\n", command);
        return HD_EXIT_USAGE;
    }
    return unknown_command(command);
}
