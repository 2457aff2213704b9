/* report_results.c: hd_report_read_results (report.h): what ended a run and when it finished,
 * read back from RUN_DIR/results.txt for `hd-gpu report`. */
#include "hd/report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hd/common.h"

#define RESULTS_VALUE_MAX 200 /* a longer value is cut here: it is only shown */

/* A copy of value without its line end, at most RESULTS_VALUE_MAX bytes; NULL + hd_fail. */
static char *copy_value(const char *value) {
    size_t len = strcspn(value, "\r\n");
    if (len > RESULTS_VALUE_MAX)
        len = RESULTS_VALUE_MAX;
    char *copy = hd_malloc(len + 1);
    if (copy) {
        memcpy(copy, value, len);
        copy[len] = '\0';
    }
    return copy;
}

int hd_report_read_results(const char *run_dir, hd_report_inputs *in) {
    char path[4200];
    snprintf(path, sizeof path, "%s/results.txt", run_dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno != ENOENT)
            return hd_fail("%s: cannot open: %s", path, strerror(errno));
        free(in->ended_by);
        in->ended_by =
            copy_value("(the run did not finish: no results.txt; interrupted, diverged or still running)");
        return in->ended_by ? 0 : -1;
    }
    static const char ended_key[] = HD_RESULTS_ENDED_BY ": ", finished_key[] = HD_RESULTS_FINISHED ": ";
    char line[512];
    int rc = 0, continued = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        /* The rest of a line longer than the buffer is not a new line. */
        int starts_line = !continued;
        continued = strchr(line, '\n') == NULL;
        if (!starts_line)
            continue;
        char **field = NULL;
        const char *value = NULL;
        if (strncmp(line, ended_key, sizeof ended_key - 1) == 0) {
            field = &in->ended_by;
            value = line + sizeof ended_key - 1;
        } else if (strncmp(line, finished_key, sizeof finished_key - 1) == 0) {
            field = &in->finished;
            value = line + sizeof finished_key - 1;
        }
        if (!field)
            continue;
        free(*field);
        *field = copy_value(value);
        if (!*field)
            rc = -1;
    }
    if (rc == 0 && ferror(f))
        rc = hd_fail("%s: read error", path);
    fclose(f);
    return rc;
}
