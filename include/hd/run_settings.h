/* run_settings.h: the settings that define a training run, in one table: each with the command-line flag
 * that sets it, the key it is recorded under in last.safetensors (hd.train.KEY) and its line in
 * RUN_DIR/settings.txt, which the report shows; this module writes and reads that file.
 *
 * --resume continues a run as it was started: every recorded setting the command line does not give is
 * taken from the checkpoint, and one it gives with another value is refused, naming the flag, both values
 * and the file. The one exception is --epochs, which may extend (or shorten) the run; the run then records
 * the new value. */
#ifndef HD_RUN_SETTINGS_H
#define HD_RUN_SETTINGS_H

#include "hd/safetensors.h"
#include "hd/train_config.h"

#include <stddef.h>

#define HD_RUN_SETTINGS_MAX 32  /* at most 32: hd_train_config.given holds a bit for each */
#define HD_RUN_SETTING_LEN  512 /* longest value (a model spec) */

/* The bit in hd_train_config.given of the setting recorded as hd.train.KEY (0 for none): the command
 * line sets it for every such setting it gives. */
unsigned hd_run_settings_bit(const char *key);

/* The run settings of cfg as checkpoint metadata: fills meta[] (pointing into values[]), returns how many. */
typedef struct {
    char keys[HD_RUN_SETTINGS_MAX][48];
    char values[HD_RUN_SETTINGS_MAX][HD_RUN_SETTING_LEN];
} hd_run_settings_text;
int hd_run_settings_to_meta(const hd_train_config *cfg, hd_run_settings_text *text, hd_st_meta *meta,
                            int max);

/* Restores cfg from the run settings recorded in `file` (read from `path`) as described above. String
 * settings are copied into *store, which must outlive cfg's use. -1 + hd_fail on a contradiction or a
 * recorded value that does not parse. */
int hd_run_settings_restore(hd_train_config *cfg, const hd_safetensors *file, const char *path,
                            hd_run_settings_text *store);

/* ---- RUN_DIR/settings.txt: the run's settings as it runs them, "label: value" a line, for people and
 * the report: "device: ...", then each setting of the table that has a line, in table order, then
 * "data: DIR" when cfg->data_dir is set (`hd-gpu report` evaluates on the data the run trained on). ---- */
#define HD_SETTINGS_FILE_DATA "data"

/* Writes cfg->run_dir/settings.txt atomically. 0, or -1 + hd_fail(). */
int hd_run_settings_file_write(const hd_train_config *cfg, const char *device);
/* RUN_DIR/settings.txt's text (malloc'ed, NUL-terminated), or NULL + hd_fail() when it cannot be read. */
char *hd_run_settings_file_read(const char *run_dir);
/* The value of the first "label: value" line of text (NULL: none) into value: 1, or 0 when there is no
 * such line or its value is empty or does not fit in len. */
int hd_run_settings_file_value(const char *text, const char *label, char *value, size_t len);

/* The data directory the run in run_dir recorded in its last.safetensors (empty when it used the default
 * search), for --resume: 0, or -1 + hd_fail when there is no readable checkpoint. */
int hd_run_settings_recorded_data_dir(const char *run_dir, char *buf, size_t len);

#endif
