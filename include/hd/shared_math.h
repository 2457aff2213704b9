/* shared_math.h: the per-element and per-row math that both backends run.
 *
 * Everything here is compiled twice: by the host C compiler for the CPU backend and by
 * nvcc for the GPU kernels (HD_HOST_DEVICE marks the functions for both). The CPU tests
 * therefore exercise the very code the kernels run, and both backends draw the same
 * random numbers for the same seed: Philox4x32-10 is counter based, so the random
 * number for (seed, stream, step, element) is a pure function, with no generator state
 * to carry between threads or launches.
 *
 * Conventions: float32 everywhere; gradients written by these functions are written
 * with `=` (not accumulated). */
#ifndef HD_SHARED_MATH_H
#define HD_SHARED_MATH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __CUDACC__
#define HD_HOST_DEVICE __host__ __device__
#else
#define HD_HOST_DEVICE
#endif

/* Random-number streams: one per purpose, so that dropout in layer 7 and augmentation of
 * image 7 never draw the same numbers. */
#define HD_RNG_STREAM_AUGMENT 1u
#define HD_RNG_STREAM_SHUFFLE 2u
#define HD_RNG_STREAM_INIT    3u
#define HD_RNG_STREAM_DROPOUT 0x100u /* + layer index */

typedef struct {
    uint32_t v[4];
} hd_philox_out;

HD_HOST_DEVICE static inline uint32_t hd_mulhilo32(uint32_t a, uint32_t b, uint32_t *hi) {
    uint64_t product = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(product >> 32);
    return (uint32_t)product;
}

/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11).
 * counter: 128 bits; key: 64 bits. Returns four independent 32-bit words. */
HD_HOST_DEVICE static inline hd_philox_out hd_philox4x32(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                                         uint32_t k0, uint32_t k1) {
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = hd_mulhilo32(0xD2511F53u, c0, &hi0);
        uint32_t lo1 = hd_mulhilo32(0xCD9E8D57u, c2, &hi1);
        uint32_t n0 = hi1 ^ c1 ^ k0;
        uint32_t n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    hd_philox_out out = {{c0, c1, c2, c3}};
    return out;
}

/* 32 random bits -> float in [0, 1) with 24 bits of resolution. */
HD_HOST_DEVICE static inline float hd_uint_to_unit_float(uint32_t x) {
    return (float)(x >> 8) * (1.0f / 16777216.0f);
}

/* The four random words of one counter of one stream at one step. */
HD_HOST_DEVICE static inline hd_philox_out hd_random_words(uint64_t seed, uint32_t stream, uint64_t step,
                                                           uint64_t counter) {
    return hd_philox4x32((uint32_t)counter, (uint32_t)(counter >> 32), (uint32_t)step,
                         ((uint32_t)(step >> 32) & 0xFFFFu) | (stream << 16), (uint32_t)seed,
                         (uint32_t)(seed >> 32));
}

/* The random number for one element of one stream at one step, uniform in [0, 1): the first word of the
 * element's own counter. */
HD_HOST_DEVICE static inline float hd_random_unit(uint64_t seed, uint32_t stream, uint64_t step,
                                                  uint64_t element) {
    return hd_uint_to_unit_float(hd_random_words(seed, stream, step, element).v[0]);
}

/* Dropout's draw for one element: word element % 4 of counter element / 4, so that one Philox
 * evaluation serves four neighbouring elements (a quarter of the work of one each: Philox was most of
 * the dropout layers' time, and `best` runs three, forward and backward). The loops over quads take the
 * four words of hd_random_words(seed, HD_RNG_STREAM_DROPOUT + layer_index, step, quad) at once. */
HD_HOST_DEVICE static inline uint32_t hd_dropout_word(uint64_t seed, uint32_t layer_index, uint64_t step,
                                                      uint64_t element) {
    hd_philox_out r = hd_random_words(seed, HD_RNG_STREAM_DROPOUT + layer_index, step, element >> 2);
    unsigned k = (unsigned)(element & 3u); /* selected, not indexed: a GPU keeps r in registers */
    return k == 0 ? r.v[0] : k == 1 ? r.v[1] : k == 2 ? r.v[2] : r.v[3];
}

/* Inverted dropout scales the kept elements by 1/(1-rate), so that evaluation needs no rescaling. */
HD_HOST_DEVICE static inline float hd_dropout_scale(float rate) {
    return 1.0f / (1.0f - rate);
}

/* The multiplier of one word of a draw: the element is kept (scale = hd_dropout_scale(rate)) when the
 * word's uniform number is >= rate, else 0. The loops over quads (one Philox evaluation, four words) call
 * this per word. */
HD_HOST_DEVICE static inline float hd_dropout_word_multiplier(uint32_t word, float rate, float scale) {
    return hd_uint_to_unit_float(word) >= rate ? scale : 0.0f;
}

/* The multiplier for one element: 0 or 1/(1-rate), 1 at rate 0. rate must be in [0, 1). */
HD_HOST_DEVICE static inline float hd_dropout_multiplier(uint64_t seed, uint32_t layer_index, uint64_t step,
                                                         uint64_t element, float rate) {
    if (rate <= 0.0f)
        return 1.0f;
    return hd_dropout_word_multiplier(hd_dropout_word(seed, layer_index, step, element), rate,
                                      hd_dropout_scale(rate));
}

/* Fused softmax + cross-entropy for one row of logits, in one pass over the row after the
 * max: stable log-sum-exp, the row's loss, the gradient of (grad_scale * loss) with
 * respect to the logits (written to grad_row unless it is NULL), and whether the arg-max
 * (first maximum) equals the label. Returns the loss -sum_c t_c log softmax(logits)_c against the
 * target t = (1 - smoothing) one_hot(label) + smoothing / classes, as PyTorch's
 * CrossEntropyLoss(label_smoothing=smoothing); its gradient is softmax - t. smoothing 0 (the plain
 * -log softmax(logits)[label]) takes exactly the arithmetic it took before smoothing existed. */
HD_HOST_DEVICE static inline float hd_softmax_xent_row(const float *logits, int classes, int label,
                                                       float smoothing, float *grad_row, float grad_scale,
                                                       int *correct) {
    if (classes < 1) {
        *correct = 0;
        return 0.0f;
    }
    float max_logit = logits[0];
    int arg_max = 0;
    for (int c = 1; c < classes; c++) {
        if (logits[c] > max_logit) {
            max_logit = logits[c];
            arg_max = c;
        }
    }
    float sum = 0.0f;
    for (int c = 0; c < classes; c++)
        sum += expf(logits[c] - max_logit);
    float log_sum = logf(fmaxf(sum, 1.0f)); /* sum >= 1 anyway: the maximum contributes exp(0) */
    if (grad_row) {
        float inv_sum = 1.0f / sum;
        float off = smoothing / (float)classes, on = 1.0f - smoothing + off; /* the target's two values */
        for (int c = 0; c < classes; c++) {
            float p = expf(logits[c] - max_logit) * inv_sum;
            float target = smoothing > 0.0f ? (c == label ? on : off) : (c == label ? 1.0f : 0.0f);
            grad_row[c] = (p - target) * grad_scale;
        }
    }
    *correct = (arg_max == label);
    if (smoothing > 0.0f) {
        /* -sum_c t_c (z_c - m - log_sum) = log_sum - (1 - E)(z_label - m) - E mean_c(z_c - m) */
        float shifted_sum = 0.0f;
        for (int c = 0; c < classes; c++)
            shifted_sum += logits[c] - max_logit;
        return log_sum - (1.0f - smoothing) * (logits[label] - max_logit) -
               smoothing * (shifted_sum / (float)classes);
    }
    return log_sum - (logits[label] - max_logit);
}

/* Average pooling (window and stride `size`, no padding): the mean of output (oy, ox)'s window of one
 * plane of width in_w, summed in row-major order. */
HD_HOST_DEVICE static inline float hd_avgpool_window(const float *plane, int in_w, int size, int oy, int ox) {
    float sum = 0.0f;
    for (int dy = 0; dy < size; dy++) {
        const float *row = plane + (size_t)(oy * size + dy) * (size_t)in_w + (size_t)ox * (size_t)size;
        for (int dx = 0; dx < size; dx++)
            sum += row[dx];
    }
    return sum / (float)(size * size);
}

/* Its gradient at input (iy, ix): the window's output gradient over size^2; 0 in the rows and
 * columns no window covers. */
HD_HOST_DEVICE static inline float hd_avgpool_grad(const float *dout_plane, int out_h, int out_w, int size,
                                                   int iy, int ix) {
    int oy = iy / size, ox = ix / size;
    if (oy >= out_h || ox >= out_w)
        return 0.0f;
    return dout_plane[(size_t)oy * (size_t)out_w + (size_t)ox] / (float)(size * size);
}

/* Global average pooling: the mean of a plane of `count` values, summed in order. */
HD_HOST_DEVICE static inline float hd_plane_mean(const float *plane, int count) {
    float sum = 0.0f;
    for (int i = 0; i < count; i++)
        sum += plane[i];
    return sum / (float)count;
}

/* Adam, as Keras computes it: the bias corrections are folded into the step size on the
 * host (step_size = lr * sqrt(1 - beta2^t) / (1 - beta1^t)), then per element
 *   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;  p -= step_size m / (sqrt(v) + eps) */
HD_HOST_DEVICE static inline void hd_adam_update(float *param, float *m, float *v, float grad, float beta1,
                                                 float beta2, float eps, float step_size) {
    float m_new = beta1 * *m + (1.0f - beta1) * grad;
    float v_new = beta2 * *v + (1.0f - beta2) * grad * grad;
    *m = m_new;
    *v = v_new;
    *param -= step_size * m_new / (sqrtf(v_new) + eps);
}

/* SGD with momentum, as Keras computes it: velocity = momentum velocity - lr g; then
 * p += velocity (or, with Nesterov, p += momentum velocity - lr g). */
HD_HOST_DEVICE static inline void hd_sgd_update(float *param, float *velocity, float grad, float lr,
                                                float momentum, int nesterov) {
    float vel = momentum * *velocity - lr * grad;
    *velocity = vel;
    *param += nesterov ? momentum * vel - lr * grad : vel;
}

/* Weight averaging (--ema): one step of an exponential moving average of the weights,
 *   avg = avg + w (x - avg),  w = 1 - decay this step (optimizer.h's hd_optimizer_average_weight).
 * Three rounded operations in this order on both sides (no fused multiply-add on the device), so the
 * CPU and GPU averages agree bit for bit; with avg = 0 and w = 1 it is an exact copy of x. */
HD_HOST_DEVICE static inline float hd_ema_update(float avg, float x, float w) {
#ifdef __CUDA_ARCH__
    return __fadd_rn(avg, __fmul_rn(w, __fsub_rn(x, avg)));
#else
    return avg + w * (x - avg);
#endif
}

/* Batch normalisation (PyTorch's BatchNorm1d/2d), per channel c over the count = n * h * w values
 * of a batch. The per-channel sums (mean, biased variance; sum dy and sum dy * xhat) are the
 * backends' own reductions; these are the per-element and per-channel steps around them.
 * Training: xhat = (x - mean) * invstd with the batch's biased variance, y = gamma xhat + beta, and
 * running = (1 - momentum) running + momentum batch, with the unbiased variance for running_var.
 * Evaluation (and a frozen layer): the running mean and variance take the batch's place. */
#define HD_BN_EPS      1e-5f
#define HD_BN_MOMENTUM 0.1f

HD_HOST_DEVICE static inline float hd_bn_invstd(float var, float eps) {
    return 1.0f / sqrtf(var + eps);
}

HD_HOST_DEVICE static inline float hd_bn_normalize(float x, float mean, float invstd, float gamma,
                                                   float beta) {
    return gamma * ((x - mean) * invstd) + beta;
}

/* PyTorch's unbiased variance for the running estimate: biased * count / (count - 1); a channel
 * with one value (count 1, where PyTorch refuses to train) keeps its biased variance, 0. */
HD_HOST_DEVICE static inline float hd_bn_unbiased_var(float biased, double count) {
    return count > 1.0 ? (float)((double)biased * count / (count - 1.0)) : biased;
}

HD_HOST_DEVICE static inline float hd_bn_running_update(float running, float batch, float momentum) {
    return (1.0f - momentum) * running + momentum * batch;
}

/* dx for one element, from the channel's mean_dy = sum dy / count and mean_dy_xhat = sum (dy xhat) /
 * count (both 0 when the statistics were the running ones, which do not depend on x):
 *   dx = gamma invstd (dy - mean_dy - xhat mean_dy_xhat). dgamma = sum dy xhat, dbeta = sum dy. */
HD_HOST_DEVICE static inline float hd_bn_backward_dx(float dy, float xhat, float gamma_invstd, float mean_dy,
                                                     float mean_dy_xhat) {
    return gamma_invstd * (dy - mean_dy - xhat * mean_dy_xhat);
}

#endif
