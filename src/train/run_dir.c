/* run_dir.c: claiming and locking a run directory (see run_dir.h). */
#include "hd/run_dir.h"
#include "hd/common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const HD_RUN_FILES[] = {
    "settings.txt", "metrics.csv",   "last.safetensors", "best.safetensors",  "results.txt", "report.html",
    "history.png",  "confusion.png", "filters.png",      "misclassified.png", NULL};

static int join(char *buf, size_t len, const char *dir, const char *name) {
    int n = snprintf(buf, len, "%s/%s", dir, name);
    return n > 0 && (size_t)n < len ? 0 : hd_fail("%s/%s: path too long", dir, name);
}

/* Creates and removes a file in dir: the only test of writability that also holds for root, a read-only
 * mount and an immutable directory. */
static int check_writable(const char *dir) {
    char probe[4200];
    if (join(probe, sizeof probe, dir, ".hd-write-check.XXXXXX") != 0)
        return -1;
    int fd = mkstemp(probe);
    if (fd < 0)
        return hd_fail("%s: cannot write into the run directory (%s)", dir, strerror(errno));
    close(fd);
    unlink(probe);
    return 0;
}

/* The process ID the lock file names, or 0. */
static long lock_holder(int fd) {
    char text[32] = "";
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    long long pid = 0;
    text[strcspn(text, "\n")] = '\0';
    return hd_parse_integer(text, 1, 1LL << 40, &pid) == 0 ? (long)pid : 0;
}

/* The run files present in dir, listed into `found`; returns how many. settings.txt alone is not a run:
 * a training that failed before its first checkpoint (a bad spec, a first epoch that diverged) may be
 * started again in its directory. */
static int run_files_present(const char *dir, char *found, size_t len) {
    int count = 0;
    found[0] = '\0';
    for (int i = 0; HD_RUN_FILES[i]; i++) {
        if (strcmp(HD_RUN_FILES[i], "settings.txt") == 0)
            continue;
        char path[4200];
        struct stat st;
        if (join(path, sizeof path, dir, HD_RUN_FILES[i]) != 0 || lstat(path, &st) != 0)
            continue;
        size_t used = strlen(found);
        snprintf(found + used, len - used, "%s%s", count ? ", " : "", HD_RUN_FILES[i]);
        count++;
    }
    return count;
}

static int remove_run_files(const char *dir) {
    for (int i = 0; HD_RUN_FILES[i]; i++) {
        char path[4200];
        if (join(path, sizeof path, dir, HD_RUN_FILES[i]) != 0)
            return -1;
        if (unlink(path) != 0 && errno != ENOENT)
            return hd_fail("%s: cannot remove it to overwrite the run (%s)", path, strerror(errno));
    }
    return 0;
}

int hd_run_dir_claim(const char *run_dir, hd_run_mode mode, hd_run_lock *lock) {
    lock->fd = -1;
    if (!run_dir || !run_dir[0])
        return hd_fail("training needs a run directory");
    struct stat st;
    if (mode == HD_RUN_RESUME && (stat(run_dir, &st) != 0 || !S_ISDIR(st.st_mode)))
        return hd_fail("%s: no run directory there to resume", run_dir);
    if (hd_mkdir_p(run_dir) != 0 || check_writable(run_dir) != 0)
        return -1;
    char path[4200];
    if (join(path, sizeof path, run_dir, ".lock") != 0)
        return -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return hd_fail("%s: cannot open the run directory's lock (%s)", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int saved = errno;
        long holder = lock_holder(fd);
        close(fd);
        if (saved != EWOULDBLOCK)
            return hd_fail("%s: cannot lock (%s)", path, strerror(saved));
        if (holder > 0)
            return hd_fail("%s: in use by another training (process %ld); wait for it or choose another "
                           "--run-dir",
                           run_dir, holder);
        return hd_fail("%s: in use by another training; wait for it or choose another --run-dir", run_dir);
    }
    char found[512];
    int present = run_files_present(run_dir, found, sizeof found);
    int rc = 0;
    if (mode == HD_RUN_NEW && present > 0)
        rc = hd_fail("%s: holds a run already (%s); --resume %s continues it, --overwrite replaces it, or "
                     "choose another --run-dir",
                     run_dir, found, run_dir);
    else if (mode == HD_RUN_OVERWRITE)
        rc = remove_run_files(run_dir);
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (rc == 0 && (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n))
        rc = hd_fail("%s: cannot write (%s)", path, strerror(errno));
    if (rc != 0) {
        close(fd);
        return -1;
    }
    lock->fd = fd;
    return 0;
}

void hd_run_dir_release(hd_run_lock *lock) {
    if (lock->fd >= 0)
        close(lock->fd); /* closing the last descriptor drops the flock */
    lock->fd = -1;
}
