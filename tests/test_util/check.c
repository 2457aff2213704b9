/* check.c: the test assertions declared in check.h. */
#include "check.h"
#include "hd/backend.h"
#include "hd/blas_kernels.h"
#include "hd/common.h"
#include "hd/mnist.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Test programs run the OpenBLAS kernels hd-gpu runs: it calls hd_blas_choose_kernels first thing in
 * main, and here it runs before each test's main (glibc hands constructors main's arguments), after
 * OpenBLAS has loaded and picked its kernels. */
__attribute__((constructor)) static void test_choose_blas_kernels(int argc, char **argv, char **envp) {
    (void)argc;
    (void)envp;
    hd_blas_choose_kernels(argv);
}

static int passed_count;
static int failed_count;
static int skipped;

void test_check(int ok, const char *file, int line, const char *fmt, ...) {
    if (ok) {
        passed_count++;
        return;
    }
    failed_count++;
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    va_list args;
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fputc('\n', stderr);
}

void tensor_max_error(const float *got, const float *ref, size_t n, double *max_abs, double *max_rel) {
    *max_abs = 0.0;
    *max_rel = 0.0;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)got[i] - (double)ref[i]);
        double rel = diff / fmax(fabs((double)ref[i]), 1e-30);
        if (diff > *max_abs)
            *max_abs = diff;
        if (rel > *max_rel && diff > 0)
            *max_rel = rel;
    }
}

int check_tensor_at(const char *name, const float *got, const float *ref, size_t n, double atol, double rtol,
                    const char *file, int line) {
    size_t bad = 0, worst = 0;
    double worst_excess = -1.0, max_abs = 0.0, max_rel = 0.0;
    double used = 0.0; /* the largest diff / allowed: under 1 passes; how close the tolerance is */
    for (size_t i = 0; i < n; i++) {
        double g = got[i], r = ref[i];
        double diff = fabs(g - r);
        double allowed = atol + rtol * fabs(r);
        if (isnan(g) != isnan(r) || isinf(g) != isinf(r))
            diff = INFINITY;
        if (diff > max_abs)
            max_abs = diff;
        if (fabs(r) > 0 && diff / fabs(r) > max_rel)
            max_rel = diff / fabs(r);
        double ratio = diff == 0 ? 0.0 : allowed > 0 ? diff / allowed : INFINITY;
        if (ratio > used)
            used = ratio;
        if (diff - allowed > worst_excess) {
            worst_excess = diff - allowed;
            worst = i;
        }
        if (!(diff <= allowed)) {
            if (bad < 5)
                fprintf(stderr, "  %s[%zu]: got %.9g, expected %.9g (diff %.3g > %.3g)\n", name, i, g, r,
                        diff, allowed);
            bad++;
        }
    }
    printf("%-28s n=%-8zu max_abs=%.3g max_rel=%.3g worst[%zu] (atol %.1g, rtol %.1g) tol_used=%.3g %s\n",
           name, n, max_abs, max_rel, worst, atol, rtol, used, bad ? "MISMATCH" : "ok");
    test_check(bad == 0, file, line, "%s: %zu of %zu elements out of tolerance", name, bad, n);
    return bad == 0;
}

void test_skip(const char *reason) {
    printf("SKIP: %s\n", reason);
    skipped = 1;
}

int test_failures(void) {
    return failed_count;
}

int test_finish(void) {
    if (skipped && failed_count == 0) {
        printf("0 passed, 0 failed, 1 skipped\n");
        return HD_TEST_SKIP;
    }
    printf("%d passed, %d failed\n", passed_count, failed_count);
    return failed_count ? 1 : 0;
}

uint64_t test_rand_u64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t test_fresh_seed(void) {
    const char *env = getenv("HD_TEST_SEED");
    uint64_t seed;
    if (env && *env) {
        seed = strtoull(env, NULL, 0);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = ((uint64_t)ts.tv_sec * 1000000007ull) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
    }
    printf("test seed: %llu (replay with HD_TEST_SEED=%llu)\n", (unsigned long long)seed,
           (unsigned long long)seed);
    return seed;
}

void test_fill_uniform(float *x, size_t n, float lo, float hi, uint64_t *state) {
    for (size_t i = 0; i < n; i++) {
        double u = (double)(test_rand_u64(state) >> 11) * (1.0 / 9007199254740992.0);
        x[i] = (float)(lo + (hi - lo) * u);
    }
}

char *test_make_temp_dir(const char *tag) {
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    size_t len = strlen(base) + strlen(tag) + 32;
    char *path = malloc(len);
    if (!path)
        return NULL;
    snprintf(path, len, "%s/hd-%s-XXXXXX", base, tag);
    if (!mkdtemp(path)) {
        free(path);
        return NULL;
    }
    return path;
}

char *test_path_join(const char *dir, const char *name) {
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);
    if (p)
        snprintf(p, len, "%s/%s", dir, name);
    return p;
}

void test_remove_tree(const char *path) {
    if (!path || strncmp(path, "/tmp/", 5) != 0) {
        const char *base = getenv("TMPDIR");
        if (!path || !base || strncmp(path, base, strlen(base)) != 0)
            return; /* only ever remove what test_make_temp_dir made */
    }
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", path);
}

const char *test_mnist_dir(void) {
    const char *dir = getenv("HD_TEST_DATA_DIR");
    if (!dir || !*dir)
        return NULL;
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/train-images-idx3-ubyte", dir);
    struct stat st;
    if (stat(probe, &st) != 0)
        return NULL;
    return dir;
}

int test_count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

double test_correlation(const float *a, const float *b, int n) {
    double ma = 0, mb = 0;
    for (int i = 0; i < n; i++) {
        ma += a[i];
        mb += b[i];
    }
    ma /= n;
    mb /= n;
    double sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < n; i++) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    return sab / sqrt(saa * sbb + 1e-30);
}

int test_load_mnist(hd_dataset *train, hd_dataset *test) {
    const char *dir = test_mnist_dir();
    if (!dir) {
        test_skip("real MNIST not found (set HD_TEST_DATA_DIR; scripts/fetch-mnist fetches it)");
        return 1;
    }
    hd_mnist_options opt;
    hd_mnist_options_defaults(&opt);
    opt.data_dir = dir;
    opt.allow_download = 0;
    opt.quiet = 1;
    *train = (hd_dataset){0};
    *test = (hd_dataset){0};
    int rc = hd_mnist_load(&opt, train, test);
    CHECK(rc == 0, "load MNIST from %s: %s", dir, hd_last_error());
    return rc == 0 ? 0 : -1;
}
