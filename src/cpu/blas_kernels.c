/* blas_kernels.c: making sure OpenBLAS runs the kernels this CPU can run (see blas_kernels.h).
 *
 * A DYNAMIC_ARCH OpenBLAS picks its kernel set from the CPU's model number when it loads. One older
 * than the CPU does not know its model and falls back to SSE3 kernels: Debian 12's 0.3.21 on an Emerald
 * Rapids Xeon (family 6, model 207) runs "Prescott", 2.4x slower per training step than "SkylakeX".
 * The kernel set can only be chosen before the library initialises, by OPENBLAS_CORETYPE, so the
 * program sets it and executes itself again. */
#include "hd/blas_kernels.h"
#include "hd/common.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

const char *hd_blas_better_kernels(const char *picked, int has_avx2_fma, int has_avx512) {
    /* OpenBLAS' kernel sets built on AVX2 and FMA, or AVX-512 (names as openblas_get_corename gives them,
     * in any case). */
    static const char *const wide[] = {"haswell",        "zen",      "skylakex", "cooperlake",
                                       "sapphirerapids", "excavator"};
    if (!picked || !has_avx2_fma)
        return NULL;
    for (size_t i = 0; i < sizeof wide / sizeof wide[0]; i++)
        if (strcasecmp(picked, wide[i]) == 0)
            return NULL;
    return has_avx512 ? "SkylakeX" : "Haswell";
}

/* /proc/self/exe is this program, so executing it again starts the same thing: not so when the program
 * was started by naming the dynamic loader (`ld-linux-x86-64.so.2 ./hd-gpu`: the kernel ran the loader,
 * and AT_BASE, the interpreter's address, is 0), nor under valgrind (/proc/self/exe is valgrind's tool,
 * and a program executed again would leave valgrind's checks). Nor is it done under a CUDA tool that
 * the driver loads into the process (compute-sanitizer, Nsight: CUDA_INJECTION64_PATH), which watches
 * the process it started and is not documented to follow it into a new program image. */
static int may_execute_again(void) {
    const char *preload = getenv("LD_PRELOAD");
    return getauxval(AT_BASE) != 0 && !(preload && strstr(preload, "vgpreload")) &&
           !getenv("CUDA_INJECTION64_PATH");
}

void hd_blas_choose_kernels(char **argv) {
#if defined(__x86_64__) || defined(__i386__)
    if (getenv("OPENBLAS_CORETYPE")) /* the user's choice, or already chosen here */
        return;
    if (!may_execute_again())
        return;
    __builtin_cpu_init();
    int avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                 __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    /* HD_TEST_BLAS_PICKED stands in for OpenBLAS' choice, so that tests take this path on any CPU. */
    const char *picked = getenv("HD_TEST_BLAS_PICKED");
    const char *better = hd_blas_better_kernels(picked ? picked : openblas_get_corename(), avx2_fma, avx512);
    if (!better || setenv("OPENBLAS_CORETYPE", better, 1) != 0)
        return;
    fflush(NULL);
    execv("/proc/self/exe", argv);
    unsetenv("OPENBLAS_CORETYPE"); /* no /proc: carry on with the kernels OpenBLAS picked */
#else
    (void)argv;
#endif
}
