/* blas_kernels.h: making sure OpenBLAS runs the kernels this CPU can run (src/cpu/blas_kernels.c). The CPU
 * backend's business, apart from the backend interface. */
#ifndef HD_BLAS_KERNELS_H
#define HD_BLAS_KERNELS_H

#ifdef __cplusplus
extern "C" {
#ifdef __cplusplus
}
#endif

#endif

/* OpenBLAS picks its kernels from the CPU's model number when it loads, and one older than the CPU
 * falls back to SSE3 kernels. A program calls hd_blas_choose_kernels(argv) first thing in main: when
 * OPENBLAS_CORETYPE is unset and the CPU runs AVX2 and FMA (or AVX-512) but OpenBLAS picked kernels
 * without them, it sets OPENBLAS_CORETYPE to Haswell (or SkylakeX) and executes the program again
 * (/proc/self/exe, same arguments); otherwise (also when started through ld.so, under valgrind or
 * under a CUDA tool such as compute-sanitizer) it returns and changes nothing. */
void hd_blas_choose_kernels(char **argv);
/* The rule it applies: the kernel set to ask for, given the one OpenBLAS picked and the CPU's
 * features, or NULL to keep OpenBLAS' choice. */
const char *hd_blas_better_kernels(const char *picked, int has_avx2_fma, int has_avx512);

#ifdef __cplusplus
}
#endif

#endif
