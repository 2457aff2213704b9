/* json_min.h: what is left of the hand-written JSON reader (replaced by jansson, see json_io.h):
 * only this name, for src/cmd_predict.c's hd_json_valid_utf8 until its --json output moves to
 * jansson too. Delete this file with that change. */
#ifndef HD_JSON_MIN_H
#define HD_JSON_MIN_H

#include "hd/json_io.h"

#endif
