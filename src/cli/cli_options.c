/* cli_options.c: parsing a command's option table with getopt_long, its --help text, and the
 * "did you mean" suggestion for a misspelt name (see cli_options.h). */
#include "hd/cli_options.h"
#include "hd/cli.h"
#include "hd/common.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define HELP_ID     'h'
#define OPTION_ID0  1000 /* getopt_long returns OPTION_ID0 + the option's index in the command */
#define HELP_COLUMN 21

int hd_cli_int(const char *arg, long long lo, long long hi, int *out) {
    long long v;
    if (hd_parse_integer(arg, lo, hi, &v) != 0)
        return hd_fail("expected a whole number in [%lld, %lld]", lo, hi);
    *out = (int)v;
    return 0;
}

int hd_cli_real(const char *arg, double lo, double hi, double *out) {
    if (hd_parse_real(arg, lo, hi, out) != 0)
        return hd_fail("expected a number in [%g, %g]", lo, hi);
    return 0;
}

int hd_cli_float(const char *arg, double lo, double hi, float *out) {
    double v;
    if (hd_cli_real(arg, lo, hi, &v) != 0)
        return -1;
    *out = (float)v;
    return 0;
}

static size_t edit_distance(const char *a, const char *b) {
    enum { MAX = 64 };
    size_t la = strlen(a), lb = strlen(b);
    if (la >= MAX || lb >= MAX)
        return MAX;
    size_t row[MAX];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t above = row[j];
            size_t best = diagonal + (a[i - 1] != b[j - 1]);
            if (above + 1 < best)
                best = above + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diagonal = above;
        }
    }
    return row[lb];
}

const char *hd_cli_nearest(const char *word, const char *const *names, size_t count) {
    const char *best = NULL;
    size_t best_distance = (size_t)-1;
    for (size_t i = 0; i < count; i++) {
        size_t d = edit_distance(word, names[i]);
        if (d < best_distance) {
            best_distance = d;
            best = names[i];
        }
    }
    size_t allowed = strlen(word) <= 4 ? 1 : strlen(word) <= 8 ? 2 : 3;
    return best && best_distance <= allowed ? best : NULL;
}

static size_t option_count(const hd_cli_command *cmd) {
    size_t n = 0;
    for (size_t g = 0; g < cmd->n_groups; g++)
        n += cmd->groups[g].count;
    return n;
}

/* The k-th option of the command (over all its groups) and its group. */
static const hd_cli_option *option_at(const hd_cli_command *cmd, size_t k, const hd_cli_group **group) {
    for (size_t g = 0; g < cmd->n_groups; g++) {
        if (k < cmd->groups[g].count) {
            *group = &cmd->groups[g];
            return &cmd->groups[g].options[k];
        }
        k -= cmd->groups[g].count;
    }
    return NULL;
}

/* "unknown option '--epoch'; did you mean '--epochs'?" or the names it abbreviates. */
static void unknown_option(const hd_cli_command *cmd, const char *word) {
    char name[128];
    const char *start = word + strspn(word, "-");
    snprintf(name, sizeof name, "%.*s", (int)strcspn(start, "="), start);
    size_t n = option_count(cmd), n_prefixed = 0;
    const char *names[256];
    char matches[512] = "";
    for (size_t k = 0; k < n && k < 255; k++) {
        const hd_cli_group *group;
        names[k] = option_at(cmd, k, &group)->name;
        if (*name && strncmp(names[k], name, strlen(name)) == 0) {
            size_t used = strlen(matches);
            snprintf(matches + used, sizeof matches - used, "%s--%s", n_prefixed++ ? ", " : "", names[k]);
        }
    }
    names[n < 255 ? n : 255] = "help";
    const char *near = hd_cli_nearest(name, names, (n < 255 ? n : 255) + 1);
    if (n_prefixed > 1 && strncmp(word, "--", 2) == 0)
        fprintf(stderr, "hd-gpu %s: option '%s' is ambiguous: %s (see --help)\n", cmd->name, word, matches);
    else if (near)
        fprintf(stderr, "hd-gpu %s: unknown option '%s'; did you mean '--%s'? (see --help)\n", cmd->name,
                word, near);
    else
        fprintf(stderr, "hd-gpu %s: unknown option '%s' (see --help)\n", cmd->name, word);
}

/* Runs the option's setter; on a bad value prints the one line and returns -1. */
static int apply(const hd_cli_command *cmd, const hd_cli_option *option, const hd_cli_group *group,
                 void *settings, const char *arg) {
    if (option->set((char *)settings + group->offset, arg) == 0)
        return 0;
    if (arg)
        fprintf(stderr, "hd-gpu %s: --%s '%s': %s\n", cmd->name, option->name, arg, hd_last_error());
    else
        fprintf(stderr, "hd-gpu %s: --%s: %s\n", cmd->name, option->name, hd_last_error());
    return -1;
}

/* One pass of getopt_long over args: early options only (pass 0) or all the others (pass 1). */
/* The id getopt_long returns for an option: OPTION_ID0 + its index, also when spelt with its letter. */
static int option_id(const hd_cli_command *cmd, int id) {
    size_t n = option_count(cmd);
    for (size_t k = 0; id > 0 && id < OPTION_ID0 && id != 'h' && k < n; k++) {
        const hd_cli_group *group;
        if (option_at(cmd, k, &group)->short_name == id)
            return OPTION_ID0 + (int)k;
    }
    return id;
}

static int parse_pass(const hd_cli_command *cmd, void *settings, int argc, char **args,
                      const struct option *longopts, const char *shorts, int pass) {
    optind = 0; /* glibc: start again from scratch */
    opterr = 0;
    int id, index = -1;
    while ((id = getopt_long(argc, args, shorts, longopts, &index)) != -1) {
        const hd_cli_group *group = NULL;
        id = option_id(cmd, id);
        if (id == ':' || id == '?')
            optopt = option_id(cmd, optopt);
        const hd_cli_option *option =
            id >= OPTION_ID0 ? option_at(cmd, (size_t)(id - OPTION_ID0), &group) : NULL;
        if (pass == 0) {
            if (option && option->early && apply(cmd, option, group, settings, optarg) != 0)
                return -1;
            continue;
        }
        if (id == HELP_ID) {
            hd_cli_print_help(cmd, stdout);
            return 1;
        }
        if (id == ':') {
            option = optopt >= OPTION_ID0 ? option_at(cmd, (size_t)(optopt - OPTION_ID0), &group) : NULL;
            fprintf(stderr, "hd-gpu %s: --%s needs a value (%s) (see --help)\n", cmd->name,
                    option ? option->name : "?", option ? option->metavar : "?");
            return -1;
        }
        if (id == '?') {
            if (optopt >= OPTION_ID0) {
                option = option_at(cmd, (size_t)(optopt - OPTION_ID0), &group);
                fprintf(stderr, "hd-gpu %s: --%s takes no value (see --help)\n", cmd->name, option->name);
            } else if (optopt) {
                char word[3] = {'-', (char)optopt, '\0'};
                unknown_option(cmd, word);
            } else {
                unknown_option(cmd, args[optind - 1]);
            }
            return -1;
        }
        if (option && !option->early && apply(cmd, option, group, settings, optarg) != 0)
            return -1;
    }
    return 0;
}

int hd_cli_parse(const hd_cli_command *cmd, void *settings, int argc, char **argv, int *first_operand) {
    size_t n = option_count(cmd);
    struct option *longopts = hd_calloc(n + 2, sizeof *longopts);
    char **args = hd_calloc((size_t)argc + 2, sizeof *args);
    if (!longopts || !args) {
        free(longopts);
        free(args);
        fprintf(stderr, "hd-gpu %s: %s\n", cmd->name, hd_last_error());
        return -1;
    }
    for (size_t k = 0; k < n; k++) {
        const hd_cli_group *group;
        const hd_cli_option *option = option_at(cmd, k, &group);
        longopts[k] = (struct option){option->name, option->metavar ? required_argument : no_argument, NULL,
                                      OPTION_ID0 + (int)k};
    }
    longopts[n] = (struct option){"help", no_argument, NULL, HELP_ID};
    char shorts[64] = ":h"; /* getopt's letters: h, and each option's own (with ':' when it takes a value) */
    for (size_t k = 0, used = 2; k < n && used + 3 < sizeof shorts; k++) {
        const hd_cli_group *group;
        const hd_cli_option *option = option_at(cmd, k, &group);
        if (!option->short_name)
            continue;
        shorts[used++] = option->short_name;
        if (option->metavar)
            shorts[used++] = ':';
        shorts[used] = '\0';
    }
    char program[64];
    snprintf(program, sizeof program, "hd-gpu %s", cmd->name);
    args[0] = program;
    memcpy(args + 1, argv, (size_t)argc * sizeof *argv);
    int rc = parse_pass(cmd, settings, argc + 1, args, longopts, shorts, 0);
    if (rc == 0)
        rc = parse_pass(cmd, settings, argc + 1, args, longopts, shorts, 1);
    int first = optind - 1;
    memcpy(argv, args + 1, (size_t)argc * sizeof *argv); /* getopt_long moved the operands last */
    free(longopts);
    free(args);
    if (rc == 0 && !cmd->positional && first < argc) {
        fprintf(stderr, "hd-gpu %s: unexpected argument '%s' (see --help)\n", cmd->name, argv[first]);
        rc = -1;
    }
    *first_operand = first;
    return rc;
}

static void print_option(FILE *out, const char *name, const char *metavar, const char *help,
                         const char *choices) {
    char head[96];
    snprintf(head, sizeof head, "  %s%s%s", name, metavar ? " " : "", metavar ? metavar : "");
    int width = (int)strlen(head);
    if (width + 2 > HELP_COLUMN)
        fprintf(out, "%s  ", head);
    else
        fprintf(out, "%-*s", HELP_COLUMN, head);
    for (const char *line = help; *line;) {
        size_t len = strcspn(line, "\n");
        fprintf(out, "%.*s", (int)len, line);
        line += len;
        if (*line == '\n' && line[1])
            fprintf(out, "\n%*s", HELP_COLUMN, "");
        if (*line)
            line++;
    }
    if (choices)
        fprintf(out, "; one of: %s", choices);
    fputc('\n', out);
}

void hd_cli_print_help(const hd_cli_command *cmd, FILE *out) {
    fprintf(out, "usage: hd-gpu %s %s\n%s\n", cmd->name, cmd->synopsis, cmd->description);
    for (size_t g = 0; g < cmd->n_groups; g++) {
        const hd_cli_group *group = &cmd->groups[g];
        if (group->heading)
            fprintf(out, "\n%s\n", group->heading);
        else if (g == 0)
            fprintf(out, "\nOptions:\n");
        for (size_t k = 0; k < group->count; k++) {
            const hd_cli_option *o = &group->options[k];
            char name[80];
            if (o->short_name)
                snprintf(name, sizeof name, "-%c, --%s", o->short_name, o->name);
            else
                snprintf(name, sizeof name, "--%s", o->name);
            print_option(out, name, o->metavar, o->help, o->choices ? o->choices() : NULL);
        }
    }
    print_option(out, "-h, --help", NULL, "this text", NULL);
    const char *epilog = cmd->epilog_fn ? cmd->epilog_fn() : cmd->epilog;
    if (epilog)
        fprintf(out, "%s", epilog);
}
