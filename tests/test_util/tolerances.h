/* tolerances.h: the tolerances of the numerical tests, each with its reason: the CPU's
 * finite-difference gradient checks (tests/test_cpu_layers.c, test_gradcheck_network.c)
 * and the GPU-vs-CPU comparisons (tests/gpu_test_*.c).
 *
 * check_tensor passes an element when |gpu - cpu| <= atol + rtol * |cpu|; the GPU tests set
 * atol = ATOL_SCALE * max |cpu| over the tensor (gpu_compare_tensors), so that an element
 * that cancels to near zero is judged against the size of the terms it was summed from. */
#ifndef HD_TEST_TOLERANCES_H
#define HD_TEST_TOLERANCES_H

/* ---- CPU gradient checks: analytic backward against central finite differences ---- */

/* Per layer, L = sum(out * r): float32 forward sums of ~100 terms carry ~1e-6 relative
 * error, which dividing by 2 eps (eps = 1e-2) turns into ~1e-4 of the gradient's scale. */
#define GRAD_EPS  1e-2f
#define GRAD_ATOL 2e-3
#define GRAD_RTOL 1e-2
/* Whole network, mean cross-entropy: float32 losses carry ~1e-7 relative noise, ~1e-3 of
 * a difference over 2 eps = 5e-4; a larger eps would cross more ReLU/pool kinks. */
#define NET_GRAD_EPS  2.5e-4f
#define NET_GRAD_ATOL 1.5e-3
#define NET_GRAD_RTOL 5e-2

/* ---- GPU against CPU ---- */

/* The FP32 bound. Both backends compute in FP32 and sum in different orders (cuDNN
 * and cuBLAS tiles vs the CPU's per-image GEMMs and per-thread partial sums). The rounding
 * of a sum scales with its terms, not its value: about u * sqrt(k) * sum |terms| (u = 6e-8)
 * for k terms added in blocks, since rounding errors of random sign add like a random walk.
 * For an element that carries its tensor's magnitude, sum |terms| is within a small factor of
 * |value| and that stays well under 1e-4 of it (conv1's weight gradient at batch 128 sums
 * k = 86528 terms: sqrt(k) * u = 2e-5); an element whose terms cancel is held to the
 * absolute floor below instead. Every comparison prints its max_rel, max_abs and tol_used
 * (the largest |gpu - cpu| over what is allowed; 1 fails), and bench/gpu-check's summary lists
 * each GPU test's nearest one, so the first GPU run shows the margin. */
#define GPU_TOL_RTOL 1e-4
/* The absolute floor, as a fraction of the tensor's largest magnitude: an element that
 * cancels keeps the rounding of its terms, which scale with the tensor, not with itself. */
#define GPU_TOL_ATOL_SCALE 1e-5
/* Loss sums: both sides add the rows' losses in double from logits that agree to ~1e-6. */
#define GPU_TOL_LOSS_RTOL 1e-5
/* Adam and SGD: the same formula per element; only the device's fused multiply-adds round
 * differently (an ulp or so), relative to the value ... */
#define GPU_TOL_OPT_RTOL 1e-5
/* ... or, after cancellation in m or the velocity, to the tensor's largest magnitude. */
#define GPU_TOL_OPT_ATOL_SCALE 1e-6
/* TF32 (allow_tf32): inputs rounded to 10 mantissa bits, so ||gpu - cpu|| / ||cpu|| reaches
 * about 1e-3 over a sum of hundreds of products; this bounds that norm-wise error. */
#define GPU_TOL_TF32_NORM_RTOL 3e-3
/* Loss curves of a few hundred Adam steps from the same start: |gpu - cpu| <= ATOL + RTOL *
 * cpu at every step. Measured on the CPU (two models, one nudged by an ulp per step, or half
 * its weights by an ulp once): at most 1.4e-3 apart at loss 0.69 over six seeds; these are 5x
 * that, and far below what one wrong gradient does to the curve. */
#define GPU_TOL_CURVE_RTOL 1e-2
#define GPU_TOL_CURVE_ATOL 1e-3
/* Exact: dropout masks (integer Philox, one IEEE division, one multiplication on both
 * sides), pooling maxima and their routing, ReLU masks and copies involve no rounding. */
#define GPU_TOL_EXACT 0.0

#endif
