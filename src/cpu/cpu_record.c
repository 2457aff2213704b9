/* cpu_record.c: set_step_scalars, the write of the per-step values (dropout counter, step size) that the
 * ops read (kernels/gpu_record.cu is its GPU twin). The CPU reads them from its own memory, so the write
 * is a copy. The CPU does not record: record_begin and the rest are left NULL in the ops table
 * (backend.h), and every step runs op by op. */
#include "cpu_backend.h"

void cpu_set_step_scalars(hd_backend *be, hd_step_scalars *dst, const hd_step_scalars *value) {
    (void)be;
    *dst = *value;
}
