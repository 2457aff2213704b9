/* main.c: the hd-gpu program: dispatches to the subcommands of cli.h. */
#include "hd/backend.h"
#include "hd/blas_kernels.h"
#include "hd/cli.h"
#include "hd/common.h"
#include "hd/plot.h"

#include <cblas.h>
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
                 "  summary   the model's layers, output shapes and parameters\n"
                 "  bench     measure training and inference speed\n\n"
                 "  --version, --help\n");
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
    if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0 || strcmp(command, "help") == 0) {
        usage(stdout);
        return HD_EXIT_OK;
    }
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
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } commands[] = {{"train", hd_cmd_train},   {"eval", hd_cmd_eval},   {"predict", hd_cmd_predict},
                    {"report", hd_cmd_report}, {"bench", hd_cmd_bench}, {"summary", hd_cmd_summary}};
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(command, commands[i].name) == 0)
            return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "hd-gpu: unknown command '%s'\n", command);
    usage(stderr);
    return HD_EXIT_USAGE;
}
