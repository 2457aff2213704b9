/* run_settings.h: the settings that define a training run, in one table: each with the command-line flag
 * that sets it and the key it is recorded under in last.safetensors (hd.train.KEY).
 *
 * --resume continues a run as it was started: every recorded setting the command line does not give is
 * taken from the checkpoint, and one it gives with another value is refused, naming the flag, both values
 * and the file. The one exception is --epochs, which may extend (or shorten) the run; the run then records
 * the new value. */
#ifndef HD_RUN_SETTINGS_H
#define HD_RUN_SETTINGS_H

#include "hd/safetensors.h"
#include "hd/trainer.h"

#include <stddef.h>

#define HD_RUN_SETTINGS_MAX 20
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

#endif
