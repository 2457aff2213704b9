/* gpu_cublas_load.c: cuBLAS opened when the GPU backend first asks for it, not linked.
 *
 * Why: linking libcublas makes every hd-gpu process load it at start-up, and libcublasLt's start-up
 * touches about 210 MiB (measured: an empty program linked with -lcublasLt peaks at 212 MiB resident,
 * with -lcudart 1.4 MiB, with -lcudnn 2.6 MiB). A CPU training would then carry 227 MiB it never uses,
 * more than its own working set (issue 22: a default training within 300 MB).
 *
 * How: this file defines the cuBLAS entry points the kernels call, under their own names and with the
 * prototypes of cublas_api.h (the compiler holds them to it), each forwarding to the function of that
 * name in libcublas.so.<major>, opened with dlopen on the first call (cublasCreate, from the backend's
 * creation). The library is looked for by name (the program's run path, LD_LIBRARY_PATH, the system's
 * cache), then in the directory the build found it in. If it cannot be opened, every entry point
 * returns CUBLAS_STATUS_NOT_INITIALIZED and cublasGetStatusString says why, so the backend's creation
 * fails with that reason in its one line and the CPU fallback follows. */
#include <cublas_v2.h>
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>
#include <stdio.h>

#define HD_STR_(x)    #x
#define HD_STR(x)     HD_STR_(x)
#define CUBLAS_SONAME "libcublas.so." HD_STR(CUBLAS_VER_MAJOR)

typedef struct {
    cublasStatus_t (*create)(cublasHandle_t *);
    cublasStatus_t (*destroy)(cublasHandle_t);
    cublasStatus_t (*get_version)(cublasHandle_t, int *);
    cublasStatus_t (*set_workspace)(cublasHandle_t, void *, size_t);
    cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t);
    cublasStatus_t (*set_pointer_mode)(cublasHandle_t, cublasPointerMode_t);
    cublasStatus_t (*get_math_mode)(cublasHandle_t, cublasMath_t *);
    cublasStatus_t (*set_math_mode)(cublasHandle_t, cublasMath_t);
    const char *(*status_string)(cublasStatus_t);
    cublasStatus_t (*sgemm)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                            const float *, const float *, int, const float *, int, const float *, float *,
                            int);
} cublas_api;

static cublas_api api;
static int api_ready;
static char api_error[512];
static pthread_once_t api_once = PTHREAD_ONCE_INIT;

static void *open_cublas(void) {
    void *lib = dlopen(CUBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
#ifdef HD_CUBLAS_DIR
    if (!lib)
        lib = dlopen(HD_CUBLAS_DIR "/" CUBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
#endif
    return lib;
}

/* dlsym's void * to a function pointer: through memcpy, which ISO C allows (a cast does not). */
static int find(void *lib, const char *name, void *fn, size_t size) {
    void *p = dlsym(lib, name);
    if (!p) {
        snprintf(api_error, sizeof api_error, "cuBLAS could not be used: %s has no %s", CUBLAS_SONAME, name);
        return 0;
    }
    memcpy(fn, &p, size);
    return 1;
}

#define FIND(field, name) find(lib, name, &api.field, sizeof api.field)

static void load(void) {
    void *lib = open_cublas();
    if (!lib) {
        const char *why = dlerror();
        snprintf(api_error, sizeof api_error, "cuBLAS could not be loaded: %s", why ? why : CUBLAS_SONAME);
        return;
    }
    api_ready = FIND(create, "cublasCreate_v2") && FIND(destroy, "cublasDestroy_v2") &&
                FIND(get_version, "cublasGetVersion_v2") && FIND(set_workspace, "cublasSetWorkspace_v2") &&
                FIND(set_stream, "cublasSetStream_v2") && FIND(set_pointer_mode, "cublasSetPointerMode_v2") &&
                FIND(get_math_mode, "cublasGetMathMode") && FIND(set_math_mode, "cublasSetMathMode") &&
                FIND(status_string, "cublasGetStatusString") && FIND(sgemm, "cublasSgemm_v2");
}

static int ready(void) {
    pthread_once(&api_once, load);
    return api_ready;
}

cublasStatus_t CUBLASWINAPI cublasCreate_v2(cublasHandle_t *handle) {
    return ready() ? api.create(handle) : CUBLAS_STATUS_NOT_INITIALIZED;
}

cublasStatus_t CUBLASWINAPI cublasDestroy_v2(cublasHandle_t handle) {
    return ready() ? api.destroy(handle) : CUBLAS_STATUS_NOT_INITIALIZED;
}

cublasStatus_t CUBLASWINAPI cublasGetVersion_v2(cublasHandle_t handle, int *version) {
    return ready() ? api.get_version(handle, version) : CUBLAS_STATUS_NOT_INITIALIZED;
}

cublasStatus_t CUBLASWINAPI cublasSetWorkspace_v2(cublasHandle_t handle, void *workspace,
                                                  size_t workspaceSizeInBytes) {
    return ready() ? api.set_workspace(handle, workspace, workspaceSizeInBytes)
                   : CUBLAS_STATUS_NOT_INITIALIZED;
}

cublasStatus_t CUBLASWINAPI cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId) {
    return ready() ? api.set_stream(handle, streamId) : CUBLAS_STATUS_NOT_INITIALIZED;
}

cublasStatus_t CUBLASWINAPI cublasSetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t mode) {
    return ready() ? api.set_pointer_mode(handle, mode) : CUBLAS_STATUS_NOT_INITIALIZED;
}

cublasStatus_t CUBLASWINAPI cublasGetMathMode(cublasHandle_t handle, cublasMath_t *mode) {
    return ready() ? api.get_math_mode(handle, mode) : CUBLAS_STATUS_NOT_INITIALIZED;
}

cublasStatus_t CUBLASWINAPI cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    return ready() ? api.set_math_mode(handle, mode) : CUBLAS_STATUS_NOT_INITIALIZED;
}

const char *CUBLASWINAPI cublasGetStatusString(cublasStatus_t status) {
    return ready() ? api.status_string(status) : api_error;
}

cublasStatus_t CUBLASWINAPI cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t transa,
                                           cublasOperation_t transb, int m, int n, int k, const float *alpha,
                                           const float *A, int lda, const float *B, int ldb,
                                           const float *beta, float *C, int ldc) {
    return ready() ? api.sgemm(handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)
                   : CUBLAS_STATUS_NOT_INITIALIZED;
}
