/* model_path.c: hd_resolve_model_path (cli.h): what a --model argument names, a checkpoint
 * file or a run directory (its best.safetensors, as `hd-gpu report RUN_DIR` reads). */
#include "hd/cli.h"
#include "hd/common.h"

#include <stdio.h>
#include <sys/stat.h>

int hd_resolve_model_path(const char *arg, char *path, size_t len) {
    struct stat st;
    if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) {
        int n = snprintf(path, len, "%s/best.safetensors", arg);
        if (n < 0 || (size_t)n >= len)
            return hd_fail("%s: path too long", arg);
        if (stat(path, &st) != 0)
            return hd_fail("%s: a directory without best.safetensors (expected a checkpoint file or a run "
                           "directory)",
                           arg);
        return 0;
    }
    int n = snprintf(path, len, "%s", arg);
    if (n < 0 || (size_t)n >= len)
        return hd_fail("%s: path too long", arg);
    return 0;
}
