/* check.h: assertions for the tests.
 *
 * CHECK(cond, fmt, ...) records a failure (with file:line) and continues; a test's main
 * ends with `return test_finish();`, which prints "N passed, N failed" and returns 0, 1,
 * or 77 (ctest's skip code) after test_skip(). check_tensor compares element-wise with
 * |got - ref| <= atol + rtol * |ref| and prints the worst error and first mismatches.
 * Linking it also gives a test program the OpenBLAS kernels hd-gpu chooses (check.c). */
#ifndef HD_TEST_CHECK_H
#define HD_TEST_CHECK_H

#include "hd/idx.h"

#include <stddef.h>
#include <stdint.h>

#define HD_TEST_SKIP 77

void test_check(int ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define CHECK(cond, ...) test_check(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

/* Returns 1 if every element is within tolerance (and records a failure otherwise). */
int check_tensor_at(const char *name, const float *got, const float *ref, size_t n, double atol, double rtol,
                    const char *file, int line);
#define check_tensor(name, got, ref, n, atol, rtol)                                                          \
    check_tensor_at((name), (got), (ref), (n), (atol), (rtol), __FILE__, __LINE__)

/* Report maximum absolute and relative differences without judging. */
void tensor_max_error(const float *got, const float *ref, size_t n, double *max_abs, double *max_rel);

/* Mark the whole test as skipped with a reason (printed). */
void test_skip(const char *reason);
int test_finish(void);
int test_failures(void);

/* A seed that changes on every run (time and pid), printed so a failure can be replayed
 * with HD_TEST_SEED=<seed>. */
uint64_t test_fresh_seed(void);
/* Uniform floats in [lo, hi) from a splitmix64 state. */
void test_fill_uniform(float *x, size_t n, float lo, float hi, uint64_t *state);
uint64_t test_rand_u64(uint64_t *state);

/* A new empty temporary directory (mkdtemp under $TMPDIR or /tmp); caller frees. */
char *test_make_temp_dir(const char *tag);
/* "dir/name", malloc'd (NULL when out of memory); caller frees. */
char *test_path_join(const char *dir, const char *name);
/* rm -r of a directory made by test_make_temp_dir. */
void test_remove_tree(const char *path);
/* Number of entries in a directory other than . and .. (-1 if it cannot be read). */
int test_count_entries(const char *dir);
/* Pearson correlation of two float arrays of length n. */
double test_correlation(const float *a, const float *b, int n);
/* Directory holding the real MNIST files for tests, or NULL (HD_TEST_DATA_DIR). */
const char *test_mnist_dir(void);
/* The real MNIST from test_mnist_dir into *train and *test: 0 loaded; 1 not there (test_skip said so: the
 * caller returns test_finish()); -1 it would not load (a CHECK recorded why). */
int test_load_mnist(hd_dataset *train, hd_dataset *test);

#endif
