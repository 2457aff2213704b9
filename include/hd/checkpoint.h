/* checkpoint.h: saving and loading a model (and optionally its optimizer state) as safetensors.
 *
 * Tensors, one pair per layer with parameters, in the backend's layout (PyTorch's):
 *   "<layer>.weight"  conv (out_c, in_c, k, k), dense (out_features, in_features)
 *   "<layer>.bias"    (units)
 *   "optimizer.m.<layer>.weight", "optimizer.v.<layer>.bias", ...: Adam's moments, or SGD's
 *                     velocity as m (saved only when an optimizer is given)
 *   "optimizer.average.<layer>.weight", "optimizer.average.<bn>.running_var", ...: the weight average
 *                     of an optimizer with one (--ema), of every parameter and running statistic
 * Metadata (all strings):
 *   hd.format_version "1"        hd.spec   the model's spec    hd.input "1x28x28"
 *   hd.optimizer      "adam"/"sgd", with hd.optimizer.lr, .t, .beta1, .beta2, .eps,
 *                     .momentum, .nesterov (floats printed with 9 significant digits), and
 *                     .ema_decay (17 digits) when the optimizer keeps a weight average
 *   hd.data_crc32     CRC-32 of the data, checked on load (safetensors.h)
 *   and the caller's extra pairs (the trainer's epoch, best loss, seed, ...).
 * The file is written atomically and is readable by Python's safetensors. */
#ifndef HD_CHECKPOINT_H
#define HD_CHECKPOINT_H

#include "hd/model.h"
#include "hd/optimizer.h"
#include "hd/safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HD_CHECKPOINT_FORMAT_VERSION "1"

/* Saves the model's parameters and, when opt is not NULL, its state. Extra keys must not
 * repeat the hd.* keys above. */
int hd_checkpoint_save(const char *path, const hd_model *model, const hd_optimizer *opt,
                       const hd_st_meta *extra, int n_extra);

/* Loads a checkpoint into a model built with the same spec and input shape. When opt is not
 * NULL (already set up with hd_optimizer_init for this model, of the checkpoint's kind), its
 * state, step count t and hyperparameters (lr, betas, eps, momentum, nesterov) are replaced by
 * the checkpoint's; a caller that wants other hyperparameters sets them after loading. Its weight
 * average too: the optimizer must keep one (ema_decay > 0 at init) exactly when the file has one.
 * Without opt, the file's optimizer tensors (the average among them) are not read.
 * Nothing is changed unless everything checks out. Fails with "PATH: model spec mismatch:
 * checkpoint has X, model is Y", on a missing or misshapen tensor, on a tensor the model does
 * not have, and when optimizer state is requested but absent. When file_out is not NULL it
 * receives the loaded file (for extra metadata: hd_safetensors_meta); the caller frees it. */
int hd_checkpoint_load(const char *path, hd_model *model, hd_optimizer *opt, hd_safetensors **file_out);

/* The spec a checkpoint was saved with (after checking the whole file), to build a model of
 * the right architecture before hd_checkpoint_load. */
int hd_checkpoint_read_spec(const char *path, char *spec, size_t spec_len);
/* The same from a file already read (path only names it in errors). */
int hd_checkpoint_spec_of(const hd_safetensors *file, const char *path, char *spec, size_t spec_len);

#ifdef __cplusplus
}
#endif

#endif
