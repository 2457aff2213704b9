/* train_finish.h: the end of a run: best weights restored, the test set evaluated once,
 * results printed and written (RUN_DIR/results.txt), the report drawn. */
#ifndef HD_TRAIN_FINISH_H
#define HD_TRAIN_FINISH_H

#include "hd/idx.h"
#include "hd/dataset_split.h"
#include "hd/report.h"
#include "hd/train_config.h"
#include "train_state.h"

int hd_train_finish(hd_model *model, const hd_train_state *st, const hd_float_set *test,
                    const hd_dataset *test_bytes, const hd_train_config *cfg, hd_train_result *result);

#endif
