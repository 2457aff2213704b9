/* run_dir.h: who may train into a run directory.
 *
 * A training claims its run directory before it does any work:
 *   - the directory is made (with its parents) and must be writable: a file is created there and removed,
 *     so a read-only directory is refused at once rather than after an epoch of training;
 *   - RUN_DIR/.lock is locked (flock, exclusive, not waiting) and holds the owner's process ID while the
 *     training runs: a second training into the same directory fails at once, naming that process. The
 *     kernel drops the lock when the process ends, however it ends;
 *   - a directory that already holds a run (any of HD_RUN_FILES) is refused unless the training resumes it
 *     (--resume) or is told to replace it (--overwrite, which removes those files first, so nothing of the
 *     old run is left to be mistaken for the new one's). */
#ifndef HD_RUN_DIR_H
#define HD_RUN_DIR_H

typedef enum {
    HD_RUN_NEW,       /* a fresh run: the directory must not hold one */
    HD_RUN_RESUME,    /* continue the run the directory holds */
    HD_RUN_OVERWRITE, /* a fresh run replacing the one the directory may hold */
} hd_run_mode;

typedef struct {
    int fd; /* the locked RUN_DIR/.lock, or -1 */
} hd_run_lock;

/* The files a run writes into its directory (NULL-terminated). */
extern const char *const HD_RUN_FILES[];

/* Claims run_dir for a training as described above; on success *lock holds it until hd_run_dir_release.
 * -1 + hd_fail (one line naming the directory) otherwise, with nothing changed in the directory. */
int hd_run_dir_claim(const char *run_dir, hd_run_mode mode, hd_run_lock *lock);
void hd_run_dir_release(hd_run_lock *lock);

#endif
