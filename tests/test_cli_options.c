/* test_cli_options.c: the option-table parser (cli_options.h) and the optimizer names table.
 *
 * A table of this test's own is parsed with getopt_long: values reach their setters, operands
 * come out last in order, an "early" option is applied before the others whatever its place,
 * bad values, unknown options, missing values and values given to flags are usage errors, and
 * --help is answered. The nearest-name search finds misspellings and nothing for unrelated
 * words. train's --help states the defaults hd_train_config_defaults and the optimizer table
 * really use, and the optimizer table round-trips every name it lists. */
#include "check.h"
#include "hd/cli.h"
#include "hd/cli_options.h"
#include "hd/common.h"
#include "hd/optimizer.h"
#include "hd/trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int count, flag, quick;
    int count_when_quick; /* count as the early option found it */
} toy_settings;

#define S(s) ((toy_settings *)(s))
static int set_count(void *s, const char *v) {
    return hd_cli_int(v, 1, 10, &S(s)->count);
}
static int set_flag(void *s, const char *v) {
    return (void)v, S(s)->flag = 1, 0;
}
static int set_quick(void *s, const char *v) {
    return (void)v, S(s)->quick = 1, S(s)->count_when_quick = S(s)->count, S(s)->count = 5, 0;
}
#undef S

static const hd_cli_option toy_options[] = {
    HD_CLI_OPTION("count", "N", set_count, "a number"),
    HD_CLI_OPTION("flag", NULL, set_flag, "a flag"),
    HD_CLI_OPTION_EARLY("quick", NULL, set_quick, "sets count to 5 unless given"),
};
static const hd_cli_group toy_groups[] = {HD_CLI_GROUP_WHOLE(NULL, toy_options)};
static const hd_cli_command toy = {
    "toy", "a toy", "[options] FILE...", "A toy command.", toy_groups, 1, "FILE", NULL, NULL, NULL};

static int parse(toy_settings *s, char **argv, int argc, int *first) {
    memset(s, 0, sizeof *s);
    return hd_cli_parse(&toy, s, argc, argv, first);
}

static void test_parser(void) {
    toy_settings s;
    int first = -1;
    char *args1[] = {"a.png", "--count", "3", "b.png", "--flag", "--", "--c.png"};
    CHECK(parse(&s, args1, 7, &first) == 0, "a good command line parses");
    CHECK(s.count == 3 && s.flag == 1 && s.quick == 0, "values reached their setters: count %d flag %d",
          s.count, s.flag);
    CHECK(first == 4 && strcmp(args1[4], "a.png") == 0 && strcmp(args1[5], "b.png") == 0 &&
              strcmp(args1[6], "--c.png") == 0,
          "operands last, in order, after --: first %d", first);

    char *args2[] = {"--count=7", "--quick"}; /* the early option first, so --count overrides it */
    CHECK(parse(&s, args2, 2, &first) == 0 && s.quick && s.count_when_quick == 0 && s.count == 7,
          "--quick applied before --count 7 given ahead of it: count %d (quick saw %d)", s.count,
          s.count_when_quick);
    char *args3[] = {"--quick"};
    CHECK(parse(&s, args3, 1, &first) == 0 && s.count == 5, "--quick alone: count %d", s.count);
    char *args4[] = {"--cou", "2"}; /* an unambiguous prefix, as getopt_long takes it */
    CHECK(parse(&s, args4, 2, &first) == 0 && s.count == 2, "--cou 2: count %d", s.count);

    char *bad_value[] = {"--count", "11"}, *missing[] = {"--count"}, *unknown[] = {"--cuont", "1"},
         *flag_value[] = {"--flag=1"}, *short_unknown[] = {"-x"};
    CHECK(parse(&s, bad_value, 2, &first) == -1, "--count 11 (out of range) is a usage error");
    CHECK(parse(&s, missing, 1, &first) == -1, "--count without a value is a usage error");
    CHECK(parse(&s, unknown, 2, &first) == -1, "--cuont is a usage error");
    CHECK(parse(&s, flag_value, 1, &first) == -1, "--flag=1 is a usage error");
    CHECK(parse(&s, short_unknown, 1, &first) == -1, "-x is a usage error");
}

static void test_nearest(void) {
    const char *names[] = {"epochs", "batch-size", "lr", "lr-patience", "no-augment", "train", "eval"};
    size_t n = sizeof names / sizeof names[0];
    const struct {
        const char *word, *want;
    } cases[] = {{"epocs", "epochs"},
                 {"epohcs", "epochs"},
                 {"batchsize", "batch-size"},
                 {"no-augmnet", "no-augment"},
                 {"trian", "train"},
                 {"evl", "eval"},
                 {"lr", "lr"},
                 {"frobnicate", NULL},
                 {"x", NULL}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = hd_cli_nearest(cases[i].word, names, n);
        CHECK(cases[i].want ? got && strcmp(got, cases[i].want) == 0 : got == NULL,
              "nearest to '%s': %s, expected %s", cases[i].word, got ? got : "none",
              cases[i].want ? cases[i].want : "none");
    }
}

/* The "(default X)" that train's --help gives for an option, as a number. */
static double help_default(const char *help, const char *option, const char *marker) {
    char key[64];
    snprintf(key, sizeof key, "\n  %s ", option);
    const char *line = strstr(help, key);
    const char *at = line ? strstr(line + 1, marker) : NULL;
    const char *end = line ? strchr(line + 1, '\n') : NULL;
    return at && end && at < end ? strtod(at + strlen(marker), NULL) : -1.0;
}

static void test_train_help_defaults(void) {
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    CHECK(f != NULL, "open_memstream");
    if (!f)
        return;
    hd_cli_print_help(&hd_cli_train, f);
    fclose(f);
    hd_train_config d;
    hd_train_config_defaults(&d);
    const struct {
        const char *option, *marker;
        double want;
    } cases[] = {
        {"--epochs", "(default ", d.epochs},
        {"--batch-size", "(default ", d.batch},
        {"--seed", "(default ", (double)d.seed},
        {"--momentum", "(default ", d.momentum},
        {"--val-split", "(default ", d.val_fraction},
        {"--patience", "(default ", d.es_patience},
        {"--lr-patience", "(default ", d.lr_patience},
        {"--lr-factor", "(default ", d.lr_factor},
        {"--min-lr", "(default ", d.min_lr},
        {"--lr-decay", "(default ", d.lr_decay},
        {"--label-smoothing", "(default ", d.label_smoothing},
        {"--ema", "(default ", d.ema},
        {"--augment-rotation", "(default ", d.augment_rotation},
        {"--augment-shift", "(default ", d.augment_shift},
        {"--augment-zoom", "(default ", d.augment_zoom},
        {"--lr", "adam ", hd_optimizer_info_of(HD_OPT_ADAM)->lr},
        {"--lr", "sgd ", hd_optimizer_info_of(HD_OPT_SGD)->lr},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double got = help_default(text, cases[i].option, cases[i].marker);
        CHECK((float)got == (float)cases[i].want, /* some defaults are floats: 0.9f is not 0.9 */
              "train --help: %s %s%g, the code uses %g", cases[i].option, cases[i].marker, got,
              cases[i].want);
    }
    CHECK(d.optimizer == HD_OPT_ADAM && strstr(text, "(default adam)"),
          "the default optimizer is adam, as --help says");
    free(text);
}

static void test_optimizer_table(void) {
    char names[128];
    snprintf(names, sizeof names, "%s", hd_optimizer_names());
    int n = 0;
    char *save = NULL;
    for (char *name = strtok_r(names, " ", &save); name; name = strtok_r(NULL, " ", &save), n++) {
        hd_optimizer_kind kind;
        CHECK(hd_optimizer_parse(name, &kind) == 0 && strcmp(hd_optimizer_name(kind), name) == 0,
              "optimizer '%s' round-trips", name);
        hd_optimizer opt;
        hd_optimizer_defaults(&opt, kind);
        CHECK(opt.lr == hd_optimizer_info_of(kind)->lr && opt.nesterov == 0,
              "%s: default lr %g from the table", name, (double)opt.lr);
    }
    CHECK(n == 2, "two optimizers listed ('%s')", hd_optimizer_names());
    hd_optimizer_kind kind;
    CHECK(hd_optimizer_parse("adamw", &kind) != 0 && strstr(hd_last_error(), "adamw") &&
              strstr(hd_last_error(), hd_optimizer_names()),
          "an unknown name is refused naming it and the known ones: '%s'", hd_last_error());
}

int main(void) {
    test_parser();
    test_nearest();
    test_train_help_defaults();
    test_optimizer_table();
    return test_finish();
}
