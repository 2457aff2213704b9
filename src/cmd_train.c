/* cmd_train.c: `hd-gpu train`: options, data, backend, then hd_train. */
#include "hd/cli.h"
#include "hd/common.h"
#include "hd/interrupt.h"
#include "hd/mnist.h"
#include "hd/run_settings.h"
#include "hd/trainer.h"
#include "train_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_MIRRORS 8

static void train_usage(FILE *out) {
    hd_train_config d;
    hd_train_config_defaults(&d);
    fprintf(out,
            "usage: hd-gpu train [options]\n"
            "Trains the CNN on MNIST (or any IDX set of its shape) and evaluates it on the test set.\n\n"
            "Data:\n"
            "  --data DIR         IDX files (train-images-idx3-ubyte[.gz], ...); default: $HD_DATA_DIR,\n"
            "                     then the cache ~/.cache/hd-gpu/mnist, downloading if absent\n"
            "  --mirror URL       MNIST mirror to download from (repeatable)\n"
            "  --no-download      fail instead of downloading\n"
            "  --train-limit N    use only the first N training images (quick runs)\n"
            "  --test-limit N     evaluate on the first N test images\n"
            "Model and optimizer:\n"
            "  --model-spec SPEC  layers (default %s)\n"
            "  --optimizer NAME   adam (default) or sgd\n"
            "  --lr X             learning rate (default %g; sgd: 0.01 unless given)\n"
            "  --momentum X       sgd momentum (default %g)\n"
            "  --batch-size N     (default %d)\n"
            "  --epochs N         at most this many epochs (default %d)\n"
            "  --seed N           seed for initialisation, shuffling, dropout, augmentation (default %llu)\n"
            "  --no-augment       train on the images as they are\n"
            "Validation (never the test set):\n"
            "  --val-split F      fraction of the training set held out (default %g)\n"
            "  --patience N       early stopping after N epochs without val-loss improvement (default %d; 0: "
            "off)\n"
            "  --lr-patience N    reduce the learning rate after N flat epochs (default %d)\n"
            "  --lr-factor F      by this factor (default %g)\n"
            "  --min-lr X         down to this (default %g)\n"
            "Run:\n"
            "  --run-dir DIR      where checkpoints, metrics.csv and the report go (default runs/DATE-TIME)\n"
            "  --resume DIR       continue the run in DIR from its last checkpoint, with its settings\n"
            "                     (only --epochs may change them, to extend the run)\n"
            "  --overwrite        replace the run that --run-dir holds (otherwise refused)\n"
            "  --no-report        skip the plots and report.html\n"
            "  --progress / --no-progress   live progress bar (default: when stderr is a terminal)\n"
            "  --time-to-accuracy F  also evaluate the test set after each epoch (reported, never used for\n"
            "                     decisions) and stop at the first epoch reaching F (benchmark)\n"
            "  --quiet            only errors\n"
            "Device:\n%s",
            d.spec, (double)d.lr, (double)d.momentum, d.batch, d.epochs, (unsigned long long)d.seed,
            d.val_fraction, d.es_patience, d.lr_patience, d.lr_factor, d.min_lr, hd_device_options_usage());
}

static int parse_number(const char *opt, const char *text, double lo, double hi, double *value) {
    if (hd_parse_real(text, lo, hi, value) != 0) {
        fprintf(stderr, "hd-gpu train: %s '%s': expected a number in [%g, %g]\n", opt, text, lo, hi);
        return -1;
    }
    return 0;
}

static void default_run_dir(char *buf, size_t len) {
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    snprintf(buf, len, "runs/%s", stamp);
}

int hd_cmd_train(int argc, char **argv) {
    hd_train_config cfg;
    hd_train_config_defaults(&cfg);
    hd_device_options dev;
    hd_device_options_defaults(&dev);
    hd_mnist_options data;
    hd_mnist_options_defaults(&data);
    const char *mirrors[MAX_MIRRORS];
    int n_mirrors = 0, lr_given = 0, progress = -1;
    char run_dir[4096] = "";
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int dev_rc = hd_device_options_parse(&dev, argc, argv, &i);
        if (dev_rc < 0)
            return HD_EXIT_USAGE;
        if (dev_rc > 0)
            continue;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            train_usage(stdout);
            return HD_EXIT_OK;
        }
        /* flags without a value */
        if (strcmp(a, "--no-augment") == 0) {
            cfg.augment = 0;
            continue;
        }
        if (strcmp(a, "--no-download") == 0) {
            data.allow_download = 0;
            continue;
        }
        if (strcmp(a, "--no-report") == 0) {
            cfg.report = 0;
            continue;
        }
        if (strcmp(a, "--progress") == 0 || strcmp(a, "--no-progress") == 0) {
            progress = a[2] == 'p';
            continue;
        }
        if (strcmp(a, "--overwrite") == 0) {
            cfg.overwrite = 1;
            continue;
        }
        if (strcmp(a, "--quiet") == 0) {
            cfg.quiet = 1;
            data.quiet = 1;
            continue;
        }
        if (i + 1 >= argc || strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "hd-gpu train: unknown option or missing value: '%s' (see --help)\n", a);
            return HD_EXIT_USAGE;
        }
        const char *v = argv[++i];
        double x = 0;
        int bad = 0;
        if (strcmp(a, "--data") == 0)
            data.data_dir = v;
        else if (strcmp(a, "--mirror") == 0 && n_mirrors < MAX_MIRRORS)
            mirrors[n_mirrors++] = v;
        else if (strcmp(a, "--model-spec") == 0)
            cfg.spec = v;
        else if (strcmp(a, "--run-dir") == 0 || strcmp(a, "--resume") == 0) {
            snprintf(run_dir, sizeof run_dir, "%s", v);
            cfg.resume = strcmp(a, "--resume") == 0;
        } else if (strcmp(a, "--optimizer") == 0) {
            if (hd_optimizer_parse(v, &cfg.optimizer) != 0) {
                fprintf(stderr, "hd-gpu train: %s\n", hd_last_error());
                return HD_EXIT_USAGE;
            }
        } else if (strcmp(a, "--lr") == 0) {
            bad = parse_number(a, v, 1e-9, 10, &x);
            cfg.lr = (float)x;
            lr_given = 1;
        } else if (strcmp(a, "--momentum") == 0) {
            bad = parse_number(a, v, 0, 0.9999, &x);
            cfg.momentum = (float)x;
        } else if (strcmp(a, "--batch-size") == 0) {
            bad = parse_number(a, v, 1, 65536, &x);
            cfg.batch = (int)x;
        } else if (strcmp(a, "--epochs") == 0) {
            bad = parse_number(a, v, 1, 100000, &x);
            cfg.epochs = (int)x;
        } else if (strcmp(a, "--seed") == 0) {
            bad = parse_number(a, v, 0, 1e15, &x);
            cfg.seed = (uint64_t)x;
        } else if (strcmp(a, "--val-split") == 0) {
            bad = parse_number(a, v, 0, 0.9, &cfg.val_fraction);
        } else if (strcmp(a, "--patience") == 0) {
            bad = parse_number(a, v, 0, 100000, &x);
            cfg.es_patience = (int)x;
        } else if (strcmp(a, "--lr-patience") == 0) {
            bad = parse_number(a, v, 1, 100000, &x);
            cfg.lr_patience = (int)x;
        } else if (strcmp(a, "--lr-factor") == 0) {
            bad = parse_number(a, v, 0.01, 1, &cfg.lr_factor);
        } else if (strcmp(a, "--min-lr") == 0) {
            bad = parse_number(a, v, 0, 10, &cfg.min_lr);
        } else if (strcmp(a, "--train-limit") == 0) {
            bad = parse_number(a, v, 1, 1e9, &x);
            cfg.train_limit = (int)x;
        } else if (strcmp(a, "--test-limit") == 0) {
            bad = parse_number(a, v, 1, 1e9, &x);
            cfg.test_limit = (int)x;
        } else if (strcmp(a, "--time-to-accuracy") == 0) {
            bad = parse_number(a, v, 0.01, 1, &cfg.time_to_accuracy);
        } else {
            fprintf(stderr, "hd-gpu train: unknown option '%s' (see --help)\n", a);
            return HD_EXIT_USAGE;
        }
        if (bad)
            return HD_EXIT_USAGE;
    }
    if (cfg.optimizer == HD_OPT_SGD && !lr_given)
        cfg.lr = 0.01f;
    if (cfg.resume && cfg.overwrite) {
        fprintf(stderr, "hd-gpu train: --resume continues a run, --overwrite replaces it: give one\n");
        return HD_EXIT_USAGE;
    }
    cfg.given = hd_run_settings_given(argc, argv);
    cfg.progress = progress >= 0 ? progress : isatty(2) && !cfg.quiet;
    data.mirrors = n_mirrors ? mirrors : NULL;
    data.n_mirrors = n_mirrors;
    if (!run_dir[0])
        default_run_dir(run_dir, sizeof run_dir);
    cfg.run_dir = run_dir;

    /* A resumed run trains on the data it was started with: unless --data names a directory (whose
     * contents hd_train checks against the run's), the one it recorded. */
    char recorded_data[4096] = "";
    if (cfg.resume && !data.data_dir) {
        if (hd_train_state_recorded_data_dir(run_dir, recorded_data, sizeof recorded_data) != 0) {
            fprintf(stderr, "hd-gpu: %s\n", hd_last_error());
            return HD_EXIT_RUNTIME;
        }
        if (recorded_data[0])
            data.data_dir = recorded_data;
    }
    /* `hd-gpu report` and --resume use the same data: record where it came from. */
    char *data_dir = data.data_dir ? realpath(data.data_dir, NULL) : NULL;
    cfg.data_dir = data_dir ? data_dir : data.data_dir;

    hd_dataset train = {0}, test = {0};
    int status = HD_EXIT_RUNTIME;
    hd_backend *be = NULL;
    if (hd_mnist_load(&data, &train, &test) != 0) {
        fprintf(stderr, "hd-gpu: %s\n", hd_last_error());
        goto out;
    }
    be = hd_device_options_open(&dev);
    if (!be)
        goto out;
    if (!cfg.quiet)
        printf("hd-gpu %s on %s\nrun directory: %s\n", HD_VERSION, be->ops->describe(be), run_dir);
    hd_interrupt_install();
    hd_train_result result;
    int trained = hd_train(be, &cfg, &train, &test, &result);
    if (trained == HD_TRAIN_INTERRUPTED) {
        fprintf(stderr,
                "hd-gpu: interrupted after %d epochs; the run is saved in %s/last.safetensors; continue "
                "it with: hd-gpu train --resume %s\n",
                result.epochs_run, run_dir, run_dir);
        status = 128 + result.interrupted;
        goto out;
    }
    if (trained != 0) {
        fprintf(stderr, "hd-gpu: %s\n", hd_last_error());
        goto out;
    }
    if (!cfg.quiet)
        printf("done: test accuracy %.2f%%, best epoch %d of %d, %.1f s/epoch, %.0f img/s\n",
               100 * result.test_accuracy, result.best_epoch, result.epochs_run, result.seconds_per_epoch,
               result.images_per_sec);
    status = HD_EXIT_OK;
out:
    hd_backend_destroy(be);
    hd_dataset_free(&train);
    hd_dataset_free(&test);
    free(data_dir);
    return status;
}
