/* test_blas_kernels.c: the rule by which hd-gpu overrides OpenBLAS' choice of kernels
 * (hd_blas_better_kernels); tests/cli_test.sh checks the program applies it. */
#include "hd/blas_kernels.h"
#include "test_util/check.h"

#include <stdio.h>
#include <string.h>

static void check_choice(const char *picked, int avx2_fma, int avx512, const char *want) {
    const char *got = hd_blas_better_kernels(picked, avx2_fma, avx512);
    CHECK((got == NULL && want == NULL) || (got && want && strcmp(got, want) == 0),
          "picked %s, avx2+fma %d, avx512 %d: want %s, got %s", picked ? picked : "(null)", avx2_fma, avx512,
          want ? want : "OpenBLAS' choice", got ? got : "OpenBLAS' choice");
}

int main(void) {
    /* OpenBLAS 0.3.21 on an Emerald Rapids Xeon (model 207) picks Prescott: SSE3 kernels. */
    check_choice("Prescott", 1, 1, "SkylakeX");
    check_choice("Prescott", 1, 0, "Haswell");
    check_choice("Sandybridge", 1, 0, "Haswell"); /* AVX without FMA kernels */
    check_choice("Nehalem", 1, 1, "SkylakeX");
    /* A CPU without AVX2 and FMA keeps whatever OpenBLAS picked. */
    check_choice("Prescott", 0, 0, NULL);
    check_choice("Sandybridge", 0, 0, NULL);
    /* Kernel sets that already use AVX2 + FMA or AVX-512 are kept, in any case. */
    check_choice("Haswell", 1, 1, NULL);
    check_choice("SKYLAKEX", 1, 1, NULL);
    check_choice("Zen", 1, 0, NULL);
    check_choice("cooperlake", 1, 1, NULL);
    check_choice("SapphireRapids", 1, 1, NULL);
    check_choice(NULL, 1, 1, NULL);
    return test_finish();
}
