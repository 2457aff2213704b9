/* test_report_results.c: hd_report_read_results (report.h) reads what ended a run and when it
 * finished back from RUN_DIR/results.txt: both lines found among the others, a run without
 * results.txt said not to have finished, a long line's tail not taken for a line, a long value
 * cut, an unreadable file refused naming it. */
#include "check.h"
#include "hd/common.h"
#include "hd/report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void write_results(const char *dir, const char *text) {
    char *path = test_path_join(dir, "results.txt");
    CHECK(path && hd_write_file_atomic(path, text, strlen(text)) == 0, "write results.txt: %s",
          hd_last_error());
    free(path);
}

static void test_lines(const char *dir) {
    write_results(dir, "best_epoch: 7\nepochs_run: 13\n" HD_RESULTS_ENDED_BY ": " HD_ENDED_EARLY_STOPPING
                       "\n" HD_RESULTS_FINISHED ": 2026-12-06 19:36:26 UTC\r\ntest accuracy 99.21%\n");
    hd_report_inputs in;
    memset(&in, 0, sizeof in);
    CHECK(hd_report_read_results(dir, &in) == 0, "read: %s", hd_last_error());
    CHECK(in.ended_by && strcmp(in.ended_by, "early stopping") == 0, "ended_by \"%s\"",
          in.ended_by ? in.ended_by : "(null)");
    CHECK(in.finished && strcmp(in.finished, "2026-12-06 19:36:26 UTC") == 0, "finished \"%s\"",
          in.finished ? in.finished : "(null)");
    hd_report_inputs_free(&in);

    /* A results.txt from before these lines: both stay unknown. */
    write_results(dir, "best_epoch: 7\nepochs_run: 13\n");
    CHECK(hd_report_read_results(dir, &in) == 0 && !in.ended_by && !in.finished,
          "older results.txt: nothing recorded (%s)", in.ended_by ? in.ended_by : "null");
    hd_report_inputs_free(&in);

    /* The tail of a 600-character line is not a line of its own; a long value is cut at 200. */
    char text[2048];
    int len = snprintf(text, sizeof text, "note: ");
    for (int i = 0; i < 600; i++)
        text[len++] = 'x';
    len += snprintf(text + len, sizeof text - (size_t)len, "%s",
                    HD_RESULTS_ENDED_BY ": hidden in a long line\n" HD_RESULTS_FINISHED ": ");
    for (int i = 0; i < 300; i++)
        text[len++] = '9';
    snprintf(text + len, sizeof text - (size_t)len, "\n");
    char *note = strstr(text, HD_RESULTS_ENDED_BY ": hidden");
    /* Put the key exactly where fgets' 512-byte buffer ends, so it starts the next read. */
    memmove(text + 511, note, strlen(note) + 1);
    write_results(dir, text);
    CHECK(hd_report_read_results(dir, &in) == 0, "read long lines: %s", hd_last_error());
    CHECK(!in.ended_by, "the tail of a long line was taken as ended_by: \"%s\"", in.ended_by);
    CHECK(in.finished && strlen(in.finished) == 200, "a long value is cut at 200 (%zu)",
          in.finished ? strlen(in.finished) : 0);
    hd_report_inputs_free(&in);
}

static void test_missing_and_unreadable(const char *dir) {
    char *run = test_path_join(dir, "unfinished");
    CHECK(run && hd_mkdir_p(run) == 0, "mkdir: %s", hd_last_error());
    hd_report_inputs in;
    memset(&in, 0, sizeof in);
    CHECK(hd_report_read_results(run, &in) == 0, "no results.txt is no error: %s", hd_last_error());
    CHECK(in.ended_by && strstr(in.ended_by, "did not finish") && !in.finished,
          "no results.txt: ended_by says the run did not finish (\"%s\")",
          in.ended_by ? in.ended_by : "null");
    hd_report_inputs_free(&in);

    /* results.txt that is a directory: opens, but cannot be read. */
    char *bad = test_path_join(run, "results.txt");
    CHECK(bad && mkdir(bad, 0700) == 0, "mkdir results.txt");
    CHECK(hd_report_read_results(run, &in) == -1 && strstr(hd_last_error(), "results.txt"),
          "an unreadable results.txt is refused naming it (\"%s\")", hd_last_error());
    hd_report_inputs_free(&in);
    free(bad);
    free(run);
}

int main(void) {
    char *dir = test_make_temp_dir("results");
    CHECK(dir != NULL, "temp dir");
    if (!dir)
        return test_finish();
    test_lines(dir);
    test_missing_and_unreadable(dir);
    test_remove_tree(dir);
    free(dir);
    return test_finish();
}
