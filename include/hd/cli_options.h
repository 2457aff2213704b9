/* cli_options.h: the command line as tables. Each command describes its options once (long
 * name, argument, help text, setter); the same table is parsed with getopt_long, printed as
 * --help, and written out as the man page and the bash completion (hd-gpu --man,
 * hd-gpu --completion bash). A setter stores one option's value into the command's own
 * settings struct; it reports a bad value with hd_fail("expected ...") and the parser prints
 * "hd-gpu COMMAND: --name 'VALUE': expected ..." and exits 2. */
#ifndef HD_CLI_OPTIONS_H
#define HD_CLI_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

/* Stores `arg` (NULL for a flag) into the settings; 0, or -1 with hd_fail("expected ..."). */
typedef int (*hd_cli_setter)(void *settings, const char *arg);

typedef struct {
    const char *name;    /* without the leading "--" */
    const char *metavar; /* the argument in --help ("N", "FILE"); NULL: a flag, takes none */
    hd_cli_setter set;
    const char *help; /* one line or more ('\n'); later lines are indented under the first */
    /* Optional: the values it takes, space separated (completion, man page). */
    const char *(*choices)(void);
    int early;       /* applied before all others, whatever their order (bench's --quick) */
    char short_name; /* a one-letter spelling too ('o' for -o), or 0 */
} hd_cli_option;

/* A table's entries: an option, one with a list of values, one applied first (cli_options.h). */
#define HD_CLI_OPTION(name, metavar, set, help)                                                              \
    { name, metavar, set, help, NULL, 0, 0 }
#define HD_CLI_OPTION_CHOICES(name, metavar, set, help, choices)                                             \
    { name, metavar, set, help, choices, 0, 0 }
#define HD_CLI_OPTION_EARLY(name, metavar, set, help)                                                        \
    { name, metavar, set, help, NULL, 1, 0 }
/* An option with a one-letter spelling as well (export's -o FILE). */
#define HD_CLI_OPTION_SHORT(name, letter, metavar, set, help)                                                \
    { name, metavar, set, help, NULL, 0, letter }

/* Options that set one part of the settings: their setters get (char *)settings + offset. */
typedef struct {
    const char *heading; /* "Device:" printed above them in --help; NULL: none */
    const hd_cli_option *options;
    size_t count;
    size_t offset;
} hd_cli_group;

#define HD_CLI_GROUP(heading, table, type, member)                                                           \
    { heading, table, sizeof(table) / sizeof((table)[0]), offsetof(type, member) }
#define HD_CLI_GROUP_WHOLE(heading, table)                                                                   \
    { heading, table, sizeof(table) / sizeof((table)[0]), 0 }

typedef struct {
    const char *name;        /* "train" */
    const char *summary;     /* one line, for `hd-gpu --help` and the man page */
    const char *synopsis;    /* what follows "hd-gpu NAME " in the usage line */
    const char *description; /* lines printed under the usage line */
    const hd_cli_group *groups;
    size_t n_groups;
    const char *positional;            /* the operands' name ("IMAGE", "RUN_DIR"); NULL: none taken */
    const char *epilog;                /* printed after the options; may be NULL */
    const char *(*epilog_fn)(void);    /* or made when printed (text worked out at run time); may be NULL */
    int (*run)(int argc, char **argv); /* the command: argv after its name; returns the exit code */
} hd_cli_command;

/* The commands of the program, in the order `hd-gpu --help` lists them (main.c). */
extern const hd_cli_command hd_cli_train, hd_cli_eval, hd_cli_predict, hd_cli_report, hd_cli_summary,
    hd_cli_export, hd_cli_bench, hd_cli_serve;
const hd_cli_command *const *hd_cli_commands(size_t *count);

/* Parses argv[0..argc) (the words after the command name) with getopt_long into `settings`.
 * Operands are moved to the end: they are argv[*first_operand..argc). Returns 0, 1 when --help
 * was printed (exit 0), or -1 on bad usage with one line printed on stderr (exit 2). */
int hd_cli_parse(const hd_cli_command *cmd, void *settings, int argc, char **argv, int *first_operand);
/* --help: usage line, description, options by group, epilog. */
void hd_cli_print_help(const hd_cli_command *cmd, FILE *out);
/* The option or command name among `names` nearest to `word` by edit distance, if it is close
 * enough to be a misspelling of it; NULL otherwise. */
const char *hd_cli_nearest(const char *word, const char *const *names, size_t count);

/* Setters' helpers: a whole number or a real number within [lo, hi] into *out. */
int hd_cli_int(const char *arg, long long lo, long long hi, int *out);
int hd_cli_real(const char *arg, double lo, double hi, double *out);
int hd_cli_float(const char *arg, double lo, double hi, float *out);

/* The man page (roff) and the bash completion script of all commands (cli_docs.c). */
void hd_cli_write_man(FILE *out);
void hd_cli_write_bash_completion(FILE *out);
/* One line per option, "COMMAND --NAME", for the test that checks the docs list them all. */
void hd_cli_write_option_list(FILE *out);

#endif
