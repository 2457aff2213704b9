/* mnist.h: finding (and, if allowed, downloading) the MNIST training and test sets.
 *
 * Where the files are looked for, first match wins:
 *   1. opt->data_dir (the CLI's --data DIR), if given;
 *   2. $HD_DATA_DIR, if set and non-empty;
 *   3. the per-user cache, $XDG_CACHE_HOME/hd-gpu/mnist (default ~/.cache/hd-gpu/mnist).
 * A directory named by 1 or 2 is authoritative: if it lacks a file the load fails (naming the directory
 * and the missing files) rather than silently using other data. Such a directory may hold any IDX set
 * under MNIST's file names, raw or .gz, and also "train-images.idx3-ubyte"-style names, e.g. Debian's
 * dataset-fashion-mnist (/usr/share/datasets/fashion-mnist); only the IDX checks of idx.h apply there.
 * Files in the cache were verified against their SHA-256 when stored; missing ones are downloaded into
 * it when opt->allow_download is set (one line per file on stderr unless opt->quiet). */
#ifndef HD_MNIST_H
#define HD_MNIST_H

#include "hd/idx.h"

#include <stddef.h>

#define HD_MNIST_TRAIN_IMAGES "train-images-idx3-ubyte"
#define HD_MNIST_TRAIN_LABELS "train-labels-idx1-ubyte"
#define HD_MNIST_TEST_IMAGES  "t10k-images-idx3-ubyte"
#define HD_MNIST_TEST_LABELS  "t10k-labels-idx1-ubyte"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *data_dir;       /* --data DIR, or NULL */
    const char *const *mirrors; /* base URLs tried in order; NULL/0: $HD_MNIST_MIRROR, else the defaults */
    int n_mirrors;
    int allow_download; /* download missing files into the cache */
    int quiet;          /* no progress lines */
} hd_mnist_options;

/* data_dir NULL, default mirrors, allow_download 1, quiet 0. */
void hd_mnist_options_defaults(hd_mnist_options *opt);

/* Loads both sets (see the search order above); train may be NULL to load only the test
 * set, when only the two test files are looked for (and downloaded). On failure both are zeroed, and the
 * message says which directory was searched and how to get the data (scripts/fetch-mnist). */
int hd_mnist_load(const hd_mnist_options *opt, hd_dataset *train, hd_dataset *test);

/* The per-user cache directory ($XDG_CACHE_HOME/hd-gpu/mnist or ~/.cache/hd-gpu/mnist). */
int hd_mnist_cache_dir(char *buf, size_t len);

/* Downloads, verified, every one of the four files that dir lacks (uncompressed, under MNIST's names). */
int hd_mnist_download(const hd_mnist_options *opt, const char *dir);

/* The SHA-256 (hex) of the uncompressed file NAME (one of HD_MNIST_*), or NULL. */
const char *hd_mnist_sha256(const char *name);
/* The built-in mirror list, tried in order. */
const char *const *hd_mnist_default_mirrors(int *count);

#ifdef __cplusplus
}
#endif

#endif
