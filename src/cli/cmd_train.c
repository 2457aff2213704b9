/* cmd_train.c: `hd-gpu train`: options, data, backend, then hd_train. */
#include "hd/cli.h"
#include "hd/common.h"
#include "hd/freeze.h"
#include "hd/interrupt.h"
#include "hd/json_io.h"
#include "hd/mnist.h"
#include "hd/presets.h"
#include "hd/run_settings.h"
#include "hd/trainer.h"

#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_MIRRORS 8

/* What the options set. */
typedef struct {
    hd_train_config cfg;
    hd_mnist_options data;
    hd_device_options dev;
    const char *mirrors[MAX_MIRRORS];
    int n_mirrors, lr_given, progress;
    char run_dir[4096];
    const char *init_arg; /* --init as given (a run directory or a checkpoint) */
    char init_path[4200]; /* the checkpoint it names */
} train_settings;

#define T(s) ((train_settings *)(s))
/* Marks a setting that defines the run as given on the command line: --resume refuses it when it
 * contradicts the run, and takes the others from the run (run_settings.h). */
#define GIVEN(s, key) (T(s)->cfg.given |= hd_run_settings_bit(key))
static int set_data(void *s, const char *v) {
    return T(s)->data.data_dir = v, 0;
}
static int set_mirror(void *s, const char *v) {
    if (T(s)->n_mirrors == MAX_MIRRORS)
        return hd_fail("at most %d mirrors", MAX_MIRRORS);
    return T(s)->mirrors[T(s)->n_mirrors++] = v, 0;
}
static int set_no_download(void *s, const char *v) {
    return (void)v, T(s)->data.allow_download = 0, 0;
}
static int set_train_limit(void *s, const char *v) {
    GIVEN(s, "train_limit");
    return hd_cli_int(v, 1, 1000000000, &T(s)->cfg.train_limit);
}
static int set_test_limit(void *s, const char *v) {
    GIVEN(s, "test_limit");
    return hd_cli_int(v, 1, 1000000000, &T(s)->cfg.test_limit);
}
static int set_model_spec(void *s, const char *v) {
    GIVEN(s, "spec");
    return T(s)->cfg.spec = v, 0;
}
static int set_optimizer(void *s, const char *v) {
    GIVEN(s, "optimizer");
    return hd_optimizer_parse(v, &T(s)->cfg.optimizer) ? hd_fail("expected one of: %s", hd_optimizer_names())
                                                       : 0;
}
static int set_lr(void *s, const char *v) {
    GIVEN(s, "learning_rate");
    return T(s)->lr_given = 1, hd_cli_float(v, 1e-9, 10, &T(s)->cfg.lr);
}
static int set_momentum(void *s, const char *v) {
    GIVEN(s, "momentum");
    return hd_cli_float(v, 0, 0.9999, &T(s)->cfg.momentum);
}
static int set_nesterov(void *s, const char *v) {
    GIVEN(s, "nesterov");
    return (void)v, T(s)->cfg.nesterov = 1, 0;
}
static int set_adam_beta1(void *s, const char *v) {
    GIVEN(s, "adam_beta1");
    return hd_cli_float(v, 0, 0.9999, &T(s)->cfg.adam_beta1);
}
static int set_adam_beta2(void *s, const char *v) {
    GIVEN(s, "adam_beta2");
    return hd_cli_float(v, 0, 0.9999, &T(s)->cfg.adam_beta2);
}
static int set_lr_schedule(void *s, const char *v) {
    GIVEN(s, "lr_schedule");
    return hd_lr_schedule_parse(v, &T(s)->cfg.lr_schedule);
}
static int set_pct_start(void *s, const char *v) {
    GIVEN(s, "pct_start");
    return hd_cli_real(v, 0.01, 0.99, &T(s)->cfg.pct_start);
}
static int set_lr_decay(void *s, const char *v) {
    GIVEN(s, "lr_decay");
    return hd_cli_real(v, 0.01, 1, &T(s)->cfg.lr_decay);
}
static int set_label_smoothing(void *s, const char *v) {
    GIVEN(s, "label_smoothing");
    double e;
    /* Checked as the float it is stored in: 0.99999999 would round to 1.0f. */
    if (hd_parse_real(v, 0.0, 1.0, &e) != 0 || !((float)e < 1.0f))
        return hd_fail("expected a number in [0, 1)");
    return T(s)->cfg.label_smoothing = (float)e, 0;
}
static int set_ema(void *s, const char *v) {
    GIVEN(s, "ema");
    double d;
    if (hd_parse_real(v, 0.0, 1.0, &d) != 0 || !(d < 1.0))
        return hd_fail("expected a decay in [0, 1)");
    return T(s)->cfg.ema = d, 0;
}
static int set_batch_size(void *s, const char *v) {
    GIVEN(s, "batch");
    return hd_cli_int(v, 1, 65536, &T(s)->cfg.batch);
}
static int set_epochs(void *s, const char *v) {
    GIVEN(s, "epochs");
    return hd_cli_real(v, 0.01, 100000, &T(s)->cfg.epochs);
}
static int set_seed(void *s, const char *v) {
    GIVEN(s, "seed");
    long long seed;
    return hd_parse_integer(v, 0, 1000000000000000LL, &seed) ? hd_fail("expected a whole number in [0, 1e15]")
                                                             : (T(s)->cfg.seed = (uint64_t)seed, 0);
}
static int set_no_augment(void *s, const char *v) {
    GIVEN(s, "augment");
    return (void)v, T(s)->cfg.augment = 0, 0;
}
static int set_augment_rotation(void *s, const char *v) {
    GIVEN(s, "augment_rotation");
    return hd_cli_float(v, 0, 180, &T(s)->cfg.augment_rotation);
}
static int set_augment_shift(void *s, const char *v) {
    GIVEN(s, "augment_shift");
    return hd_cli_float(v, 0, 14, &T(s)->cfg.augment_shift);
}
static int set_augment_zoom(void *s, const char *v) {
    GIVEN(s, "augment_zoom");
    return hd_cli_float(v, 0, 0.5, &T(s)->cfg.augment_zoom);
}
static int set_normalize(void *s, const char *v) {
    GIVEN(s, "normalize");
    return (void)v, T(s)->cfg.normalize = 1, 0;
}
static int set_val_split(void *s, const char *v) {
    GIVEN(s, "val_split");
    return hd_cli_real(v, 0, 0.9, &T(s)->cfg.val_fraction);
}
static int set_patience(void *s, const char *v) {
    GIVEN(s, "patience");
    return hd_cli_int(v, 0, 100000, &T(s)->cfg.es_patience);
}
static int set_lr_patience(void *s, const char *v) {
    GIVEN(s, "lr_patience");
    return hd_cli_int(v, 1, 100000, &T(s)->cfg.lr_patience);
}
static int set_lr_factor(void *s, const char *v) {
    GIVEN(s, "lr_factor");
    return hd_cli_real(v, 0.01, 1, &T(s)->cfg.lr_factor);
}
static int set_min_lr(void *s, const char *v) {
    GIVEN(s, "min_lr");
    return hd_cli_real(v, 0, 10, &T(s)->cfg.min_lr);
}
static int set_init(void *s, const char *v) {
    return T(s)->init_arg = v, 0;
}
static int set_freeze(void *s, const char *v) {
    GIVEN(s, "freeze");
    return hd_freeze_check(v) != 0 ? -1 : (T(s)->cfg.freeze = v, 0);
}
static int set_num_classes(void *s, const char *v) {
    GIVEN(s, "num_classes");
    return hd_cli_int(v, 2, HD_MAX_CLASSES, &T(s)->cfg.num_classes);
}
static int set_class_names(void *s, const char *v) {
    return T(s)->cfg.class_names = v, 0;
}
static int set_run_dir(void *s, const char *v) {
    return snprintf(T(s)->run_dir, sizeof T(s)->run_dir, "%s", v), 0;
}
static int set_resume(void *s, const char *v) {
    return T(s)->cfg.resume = 1, set_run_dir(s, v);
}
static int set_overwrite(void *s, const char *v) {
    return (void)v, T(s)->cfg.overwrite = 1, 0;
}
static int set_no_report(void *s, const char *v) {
    return (void)v, T(s)->cfg.report = 0, 0;
}
static int set_progress(void *s, const char *v) {
    return (void)v, T(s)->progress = 1, 0;
}
static int set_no_progress(void *s, const char *v) {
    return (void)v, T(s)->progress = 0, 0;
}
static int set_time_to_accuracy(void *s, const char *v) {
    return hd_cli_real(v, 0.01, 1, &T(s)->cfg.time_to_accuracy);
}
static int set_quiet(void *s, const char *v) {
    return (void)v, T(s)->cfg.quiet = T(s)->data.quiet = T(s)->dev.quiet = 1, 0;
}
#undef GIVEN
#undef T

static const hd_cli_option data_options[] = {
    HD_CLI_OPTION("data", "DIR", set_data,
                  "IDX files (train-images-idx3-ubyte[.gz], ...); default: $HD_DATA_DIR,\n"
                  "then the cache ~/.cache/hd-gpu/mnist, downloading if absent"),
    HD_CLI_OPTION("mirror", "URL", set_mirror, "MNIST mirror to download from (repeatable)"),
    HD_CLI_OPTION("no-download", NULL, set_no_download, "fail instead of downloading"),
    HD_CLI_OPTION("train-limit", "N", set_train_limit, "use only the first N training images (quick runs)"),
    HD_CLI_OPTION("test-limit", "N", set_test_limit, "evaluate on the first N test images"),
};
static const hd_cli_option model_options[] = {
    HD_CLI_OPTION("model-spec", "SPEC", set_model_spec,
                  "layers (default " HD_DEFAULT_SPEC "),\n"
                  "or a preset, a model with its recipe, whose settings the other flags override\n"
                  "(Presets below)"),
    HD_CLI_OPTION_CHOICES("optimizer", "NAME", set_optimizer, "the update rule (default adam)",
                          hd_optimizer_names),
    HD_CLI_OPTION("lr", "X", set_lr, "learning rate (default: adam 0.001, sgd 0.01)"),
    HD_CLI_OPTION("momentum", "X", set_momentum, "sgd momentum (default 0.9)"),
    HD_CLI_OPTION("nesterov", NULL, set_nesterov, "sgd: Nesterov momentum (as PyTorch's SGD(nesterov=True))"),
    HD_CLI_OPTION("adam-beta1", "X", set_adam_beta1, "adam: decay of the mean of gradients (default 0.9)"),
    HD_CLI_OPTION("adam-beta2", "X", set_adam_beta2, "adam: decay of the mean of squares (default 0.999)"),
    HD_CLI_OPTION_CHOICES("lr-schedule", "NAME", set_lr_schedule,
                          "learning rate per batch: constant (with --lr-patience), onecycle\n"
                          "(PyTorch's OneCycleLR: --lr/25 up to --lr, then down to --lr/25/1e4),\n"
                          "cosine (down to --min-lr over the run), exp (--lr times --lr-decay^epoch,\n"
                          "constant within an epoch) (default constant)",
                          hd_lr_schedule_names),
    HD_CLI_OPTION("pct-start", "F", set_pct_start,
                  "onecycle: fraction of the run spent rising (default 0.3)"),
    HD_CLI_OPTION("lr-decay", "G", set_lr_decay,
                  "exp: the learning rate's factor per epoch, in [0.01, 1] (default 0.95)"),
    HD_CLI_OPTION("label-smoothing", "E", set_label_smoothing,
                  "label smoothing in [0, 1) (default 0): train against targets (1 - E) one-hot\n"
                  "+ E / classes, as PyTorch's CrossEntropyLoss(label_smoothing=E); evaluation\n"
                  "losses stay the plain cross-entropy"),
    HD_CLI_OPTION("ema", "DECAY", set_ema,
                  "average the weights, in [0, 1) (default 0: off): validation, test and\n"
                  "best.safetensors use their moving average (batch norm's statistics too),\n"
                  "avg += (1 - d) (w - avg) every step t, d = min(DECAY, (1 + t) / (10 + t))"),
    HD_CLI_OPTION("batch-size", "N", set_batch_size, "(default 128)"),
    HD_CLI_OPTION("epochs", "N", set_epochs,
                  "at most this many epochs (default 40); a fraction (1.5) trains that share\n"
                  "of the last epoch's batches"),
    HD_CLI_OPTION("seed", "N", set_seed,
                  "seed for initialisation, shuffling, dropout, augmentation (default 42)"),
    HD_CLI_OPTION("no-augment", NULL, set_no_augment, "train on the images as they are"),
    HD_CLI_OPTION("augment-rotation", "DEG", set_augment_rotation,
                  "augmentation: turn each image by up to DEG degrees either way (default 10)"),
    HD_CLI_OPTION("augment-shift", "PX", set_augment_shift,
                  "augmentation: move it up to PX pixels along each axis (default 2)"),
    HD_CLI_OPTION("augment-zoom", "Z", set_augment_zoom,
                  "augmentation: scale it by a factor in [1 - Z, 1 + Z] (default 0.1)"),
    HD_CLI_OPTION("normalize", NULL, set_normalize,
                  "inputs minus the training images' mean, over their std (recorded in the model:\n"
                  "eval, predict and export apply it; exported models still take [0, 1] pixels)"),
};
static const hd_cli_option transfer_options[] = {
    HD_CLI_OPTION("init", "MODEL", set_init,
                  "start from a trained model (a run directory or a .safetensors file): its\n"
                  "tensors whose name and shape match are loaded, the rest start fresh (a table\n"
                  "says which); its input normalisation too, unless --normalize. Not its\n"
                  "optimizer state (that is --resume)"),
    HD_CLI_OPTION("freeze", "WHICH", set_freeze,
                  "keep layers fixed: kinds (conv, dense, ...) and 1-based layer numbers or\n"
                  "ranges as `hd-gpu summary` lists them (1-3), comma-separated; no optimizer\n"
                  "step for them, no backward work below the lowest trainable layer"),
    HD_CLI_OPTION("num-classes", "N", set_num_classes,
                  "classes (default: the training labels' largest + 1); the last dense layer's\n"
                  "units are set to it, whatever the spec says"),
    HD_CLI_OPTION("class-names", "FILE", set_class_names,
                  "one name a line, one line per class: shown by the report and predict"),
};
static const hd_cli_option validation_options[] = {
    HD_CLI_OPTION("val-split", "F", set_val_split,
                  "fraction of the training set held out (default 0.1); 0: train on all of it,\n"
                  "no early stopping or plateau reduction, keep the last weights"),
    HD_CLI_OPTION("patience", "N", set_patience,
                  "early stopping after N epochs without val-loss improvement (default 6; 0: off)"),
    HD_CLI_OPTION("lr-patience", "N", set_lr_patience,
                  "reduce the learning rate after N flat epochs (default 2; constant schedule)"),
    HD_CLI_OPTION("lr-factor", "F", set_lr_factor, "by this factor (default 0.5)"),
    HD_CLI_OPTION("min-lr", "X", set_min_lr, "down to this (default 1e-05)"),
};
static const hd_cli_option run_options[] = {
    HD_CLI_OPTION("run-dir", "DIR", set_run_dir,
                  "where checkpoints, metrics.csv and the report go (default runs/DATE-TIME)"),
    HD_CLI_OPTION("resume", "DIR", set_resume,
                  "continue the run in DIR where it stopped, with its settings and data\n"
                  "(a flag that contradicts them is refused; --epochs N extends the run)"),
    HD_CLI_OPTION("overwrite", NULL, set_overwrite,
                  "replace the run that --run-dir holds (otherwise refused)"),
    HD_CLI_OPTION("no-report", NULL, set_no_report, "skip the plots and report.html"),
    HD_CLI_OPTION("progress", NULL, set_progress, "live progress bar (default: when stderr is a terminal)"),
    HD_CLI_OPTION("no-progress", NULL, set_no_progress, "plain lines, no progress bar"),
    HD_CLI_OPTION("time-to-accuracy", "F", set_time_to_accuracy,
                  "also evaluate the test set after each epoch (reported, never used for\n"
                  "decisions) and stop at the first epoch reaching F (benchmark)"),
    HD_CLI_OPTION("quiet", NULL, set_quiet, "only errors"),
};
static const hd_cli_group train_groups[] = {
    HD_CLI_GROUP_WHOLE("Data:", data_options),
    HD_CLI_GROUP_WHOLE("Model and optimizer:", model_options),
    HD_CLI_GROUP_WHOLE("Transfer learning:", transfer_options),
    HD_CLI_GROUP_WHOLE("Validation (never the test set):", validation_options),
    HD_CLI_GROUP_WHOLE("Run:", run_options),
    HD_CLI_GROUP("Device:", hd_device_cli_options, train_settings, dev),
    HD_CLI_GROUP(NULL, hd_graph_cli_options, train_settings, dev),
};
const hd_cli_command hd_cli_train = {
    .name = "train",
    .summary = "train the CNN on MNIST, evaluate it on the test set, write a report",
    .synopsis = "[options]",
    .description = "Trains the CNN on MNIST (or any IDX set) and evaluates it on the test set. The class\n"
                   "count follows the training labels; --init and --freeze fine-tune a trained model.",
    .groups = train_groups,
    .n_groups = sizeof train_groups / sizeof train_groups[0],
    .epilog_fn = hd_preset_help,
    .run = hd_cmd_train,
};

/* Checks that need more than one option; -1 with the message printed. */
static int check_settings(train_settings *s) {
    /* A resumed run's optimizer comes from the run (the trainer refuses a contradicting one). */
    if (s->cfg.nesterov && s->cfg.optimizer != HD_OPT_SGD && !s->cfg.resume) {
        fprintf(stderr, "hd-gpu train: --nesterov is for --optimizer sgd (see --help)\n");
        return -1;
    }
    if (s->cfg.nesterov && s->cfg.momentum == 0.0f && !s->cfg.resume) {
        fprintf(stderr, "hd-gpu train: --nesterov needs a momentum above 0 (see --help)\n");
        return -1;
    }
    if ((s->cfg.given & (hd_run_settings_bit("adam_beta1") | hd_run_settings_bit("adam_beta2"))) &&
        s->cfg.optimizer != HD_OPT_ADAM && !s->cfg.resume) {
        fprintf(stderr,
                "hd-gpu train: --adam-beta1 and --adam-beta2 are for --optimizer adam (see --help)\n");
        return -1;
    }
    if (s->cfg.resume && s->cfg.overwrite) {
        fprintf(stderr, "hd-gpu train: --resume continues a run, --overwrite replaces it: give one\n");
        return -1;
    }
    if (s->cfg.resume && s->init_arg) {
        fprintf(stderr,
                "hd-gpu train: --resume continues a run with its own weights, --init starts a new one "
                "from another's: give one\n");
        return -1;
    }
    if (!s->lr_given)
        s->cfg.lr = hd_optimizer_info_of(s->cfg.optimizer)->lr;
    const hd_preset *preset = hd_preset_find(s->cfg.spec);
    if (preset) /* its recipe, where no flag gave a value */
        hd_preset_apply(preset, &s->cfg);
    return 0;
}

static void default_run_dir(char *buf, size_t len) {
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    /* Two trainings started in the same second get directories of their own. */
    struct stat st;
    snprintf(buf, len, "runs/%s", stamp);
    for (int n = 2; stat(buf, &st) == 0 && n < 100; n++)
        snprintf(buf, len, "runs/%s-%d", stamp, n);
}

int hd_cmd_train(int argc, char **argv) {
    train_settings parsed_settings;
    train_settings *s = &parsed_settings;
    memset(s, 0, sizeof *s);
    hd_train_config_defaults(&s->cfg);
    hd_device_options_defaults(&s->dev);
    hd_mnist_options_defaults(&s->data);
    s->progress = -1;
    int first_operand;
    int parsed = hd_cli_parse(&hd_cli_train, s, argc, argv, &first_operand);
    if (parsed != 0)
        return parsed > 0 ? HD_EXIT_OK : HD_EXIT_USAGE;
    if (check_settings(s) != 0)
        return HD_EXIT_USAGE;
    hd_train_config cfg = s->cfg;
    hd_mnist_options data = s->data;
    hd_device_options dev = s->dev;
    char *run_dir = s->run_dir;
    cfg.progress = s->progress >= 0 ? s->progress : isatty(2) && !cfg.quiet;
    data.mirrors = s->n_mirrors ? s->mirrors : NULL;
    data.n_mirrors = s->n_mirrors;
    if (!run_dir[0])
        default_run_dir(run_dir, sizeof s->run_dir);
    cfg.run_dir = run_dir;
    if (s->init_arg && hd_resolve_model_path(s->init_arg, s->init_path, sizeof s->init_path) != 0) {
        fprintf(stderr, "hd-gpu: --init %s\n", hd_last_error());
        return HD_EXIT_RUNTIME;
    }
    cfg.init = s->init_arg ? s->init_path : NULL;

    /* A resumed run trains on the data it was started with: unless --data names a directory (whose
     * contents hd_train checks against the run's), the one it recorded. */
    char recorded_data[4096] = "";
    if (cfg.resume && !data.data_dir) {
        if (hd_run_settings_recorded_data_dir(run_dir, recorded_data, sizeof recorded_data) != 0) {
            fprintf(stderr, "hd-gpu: %s\n", hd_last_error());
            return HD_EXIT_RUNTIME;
        }
        if (recorded_data[0])
            data.data_dir = recorded_data;
    }
    /* `hd-gpu report` and --resume use the same data: record where it came from (in checkpoint metadata,
     * which is JSON, hence UTF-8). */
    char *data_dir = data.data_dir ? realpath(data.data_dir, NULL) : NULL;
    cfg.data_dir = data_dir ? data_dir : data.data_dir;
    if (cfg.data_dir && !hd_json_valid_utf8(cfg.data_dir)) {
        fprintf(stderr,
                "hd-gpu train: --data %s: the path is not UTF-8, which a checkpoint cannot record; "
                "use a link to it with a UTF-8 name\n",
                data.data_dir);
        free(data_dir);
        return HD_EXIT_USAGE;
    }

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
                "hd-gpu: stopped; the run is saved in %s/last.safetensors; continue it with: hd-gpu train "
                "--resume %s\n",
                run_dir, run_dir);
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
