/* serve_batcher.c: the micro-batcher of `hd-gpu serve` (serve.h). One thread owns the device and the
 * model (loaded once, for batches of up to max_batch images): every backend call is made from it, so a
 * GPU backend's context stays on one thread. HTTP threads queue jobs (hd_batcher_submit) and go on with
 * other connections; the thread takes the queue as one batch when it holds max_batch jobs, or when the
 * oldest has waited wait_s, or at once when no other request is being decoded (hd_batcher_expect), since
 * nothing more can join it. The batch runs as one forward pass through hd_model, whichever backend it is
 * on, and each job's `done` is called. The queue is guarded by one mutex; the thread waits on a
 * condition variable (work), and hd_batcher_start on another (ready). */
#include "hd/common.h"
#include "hd/dataset_split.h"
#include "hd/model.h"
#include "hd/model_load.h"
#include "hd/serve.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef hd_batcher_job request;

struct hd_batcher {
    hd_batcher_config config;
    hd_batcher_info *info;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t work, ready;
    /* guarded by lock */
    request *head, *tail;
    int queued, expected, stopping, started;
    int start_rc;
    char start_error[1024];
    uint64_t requests, batches;
    int largest;
    /* the thread's own */
    hd_backend *be;
    hd_model model;
    float *input, *logits;
    request **taken;
};

static double monotonic_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static struct timespec timespec_of(double seconds) {
    struct timespec ts;
    ts.tv_sec = (time_t)floor(seconds);
    ts.tv_nsec = (long)((seconds - floor(seconds)) * 1e9);
    if (ts.tv_nsec >= 1000000000L)
        ts.tv_nsec = 999999999L;
    return ts;
}

/* Opens the device and loads the model (the thread's first job): 0, -1 + hd_fail(), or -2 when the
 * device could not be opened (its message is printed already). */
static int load_model(hd_batcher *b) {
    b->be = hd_device_options_open(b->config.dev);
    if (!b->be)
        return -2;
    if (hd_model_load_checkpoint(&b->model, b->be, b->config.model_path, b->config.max_batch) != 0) {
        memset(&b->model, 0, sizeof b->model);
        return -1;
    }
    if (b->model.in_c != 1 || b->model.in_h != HD_DIGIT_SIDE || b->model.in_w != HD_DIGIT_SIDE)
        return hd_fail("%s: the model takes %dx%dx%d inputs; serve reads 1x%dx%d grayscale images",
                       b->config.model_path, b->model.in_c, b->model.in_h, b->model.in_w, HD_DIGIT_SIDE,
                       HD_DIGIT_SIDE);
    size_t n = (size_t)b->config.max_batch;
    b->input = hd_malloc(n * HD_DIGIT_PIXELS * sizeof *b->input);
    b->logits = hd_malloc(n * (size_t)b->model.classes * sizeof *b->logits);
    b->taken = hd_malloc(n * sizeof(request *));
    if (!b->input || !b->logits || !b->taken)
        return -1;
    hd_batcher_info *info = b->info;
    snprintf(info->spec, sizeof info->spec, "%s", b->model.spec_text);
    snprintf(info->device, sizeof info->device, "%s", b->be->ops->describe(b->be));
    info->parameters = b->model.param_count;
    info->classes = b->model.classes;
    snprintf(info->class_names, sizeof info->class_names, "%s",
             b->model.class_names ? b->model.class_names : "");
    return 0;
}

static void unload_model(hd_batcher *b) {
    if (b->model.be)
        hd_model_destroy(&b->model);
    hd_backend_destroy(b->be);
    free(b->input);
    free(b->logits);
    free(b->taken);
}

/* One forward pass over the n taken requests; their probabilities written (outside the lock). */
static void run_batch(hd_batcher *b, int n) {
    hd_model *m = &b->model;
    for (int i = 0; i < n; i++)
        memcpy(b->input + (size_t)i * HD_DIGIT_PIXELS, b->taken[i]->pixels,
               HD_DIGIT_PIXELS * sizeof *b->input);
    hd_normalize_pixels(b->input, (size_t)n * HD_DIGIT_PIXELS, m->input_mean, m->input_std);
    b->be->ops->upload(b->be, m->input, b->input, (size_t)n * HD_DIGIT_PIXELS * sizeof *b->input);
    const float *device_logits = hd_model_forward(m, n, 0, 0);
    b->be->ops->download(b->be, b->logits, device_logits, (size_t)n * m->classes * sizeof *b->logits);
    for (int i = 0; i < n; i++) {
        const float *z = b->logits + (size_t)i * m->classes;
        float top = z[0];
        for (int c = 1; c < m->classes; c++)
            top = fmaxf(top, z[c]);
        double sum = 0.0;
        for (int c = 0; c < m->classes; c++)
            sum += exp((double)z[c] - top);
        for (int c = 0; c < m->classes; c++)
            b->taken[i]->probabilities[c] = (float)(exp((double)z[c] - top) / sum);
    }
}

/* Waits (lock held) until a batch should run; returns how many requests it took, 0 when stopping. */
static int take_batch(hd_batcher *b) {
    while (!b->stopping && b->queued == 0)
        pthread_cond_wait(&b->work, &b->lock);
    while (!b->stopping && b->queued < b->config.max_batch && b->expected > 0) {
        double deadline = b->head->arrival + b->config.wait_s;
        if (monotonic_now() >= deadline)
            break;
        struct timespec until = timespec_of(deadline);
        if (pthread_cond_timedwait(&b->work, &b->lock, &until) == ETIMEDOUT)
            break;
    }
    if (b->stopping)
        return 0;
    int n = 0;
    while (b->head && n < b->config.max_batch) {
        b->taken[n++] = b->head;
        b->head = b->head->next;
        b->queued--;
    }
    if (!b->head)
        b->tail = NULL;
    return n;
}

static void *batcher_thread(void *arg) {
    hd_batcher *b = arg;
    int rc = load_model(b);
    pthread_mutex_lock(&b->lock);
    b->start_rc = rc;
    if (rc == -1)
        snprintf(b->start_error, sizeof b->start_error, "%s", hd_last_error());
    b->started = 1;
    pthread_cond_broadcast(&b->ready);
    while (rc == 0) {
        int n = take_batch(b);
        if (n == 0)
            break;
        pthread_mutex_unlock(&b->lock);
        run_batch(b, n);
        for (int i = 0; i < n; i++)
            b->taken[i]->batch = n;
        pthread_mutex_lock(&b->lock);
        b->requests += (uint64_t)n;
        b->batches++;
        if (n > b->largest)
            b->largest = n;
        pthread_mutex_unlock(&b->lock);
        for (int i = 0; i < n; i++) /* the last touch of each job: its owner may free it at once */
            b->taken[i]->done(b->taken[i], b->taken[i]->arg);
        pthread_mutex_lock(&b->lock);
    }
    /* stopping: whatever is still queued is answered with batch 0 */
    request *left = b->head;
    b->head = b->tail = NULL;
    b->queued = 0;
    pthread_mutex_unlock(&b->lock);
    while (left) {
        request *next = left->next;
        left->batch = 0;
        left->done(left, left->arg);
        left = next;
    }
    unload_model(b);
    return NULL;
}

static void batcher_free(hd_batcher *b) {
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->work);
    pthread_cond_destroy(&b->ready);
    free(b);
}

int hd_batcher_start(hd_batcher **out, const hd_batcher_config *config, hd_batcher_info *info) {
    *out = NULL;
    if (config->max_batch < 1 || !(config->wait_s >= 0.0))
        return hd_fail("batcher: max_batch %d and wait %g s: expected at least 1 and 0", config->max_batch,
                       config->wait_s);
    hd_batcher *b = hd_calloc(1, sizeof *b);
    if (!b)
        return -1;
    b->config = *config;
    b->info = info;
    memset(info, 0, sizeof *info);
    pthread_condattr_t monotonic;
    pthread_condattr_init(&monotonic);
    pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->work, &monotonic);
    pthread_cond_init(&b->ready, NULL);
    pthread_condattr_destroy(&monotonic);
    int err = pthread_create(&b->thread, NULL, batcher_thread, b);
    if (err != 0) {
        batcher_free(b);
        return hd_fail("batcher: cannot start its thread: %s", strerror(err));
    }
    pthread_mutex_lock(&b->lock);
    while (!b->started)
        pthread_cond_wait(&b->ready, &b->lock);
    int rc = b->start_rc;
    pthread_mutex_unlock(&b->lock);
    if (rc != 0) {
        pthread_join(b->thread, NULL);
        if (rc == -1)
            hd_fail("%s", b->start_error);
        batcher_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

void hd_batcher_expect(hd_batcher *b) {
    pthread_mutex_lock(&b->lock);
    b->expected++;
    pthread_mutex_unlock(&b->lock);
}

void hd_batcher_abandon(hd_batcher *b) {
    pthread_mutex_lock(&b->lock);
    b->expected--;
    pthread_cond_signal(&b->work); /* the thread may be waiting for this one */
    pthread_mutex_unlock(&b->lock);
}

int hd_batcher_submit(hd_batcher *b, hd_batcher_job *job) {
    job->batch = 0;
    job->next = NULL;
    job->arrival = monotonic_now();
    pthread_mutex_lock(&b->lock);
    b->expected--;
    if (b->stopping) {
        pthread_mutex_unlock(&b->lock);
        return hd_fail("the server is stopping");
    }
    if (b->tail)
        b->tail->next = job;
    else
        b->head = job;
    b->tail = job;
    b->queued++;
    pthread_cond_signal(&b->work);
    pthread_mutex_unlock(&b->lock);
    return 0;
}

void hd_batcher_stats(hd_batcher *b, uint64_t *requests, uint64_t *batches, int *largest) {
    pthread_mutex_lock(&b->lock);
    *requests = b->requests;
    *batches = b->batches;
    *largest = b->largest;
    pthread_mutex_unlock(&b->lock);
}

void hd_batcher_stop(hd_batcher *b) {
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    int running = !b->stopping;
    b->stopping = 1;
    pthread_cond_broadcast(&b->work);
    pthread_mutex_unlock(&b->lock);
    if (running)
        pthread_join(b->thread, NULL);
}

void hd_batcher_free(hd_batcher *b) {
    if (!b)
        return;
    hd_batcher_stop(b);
    batcher_free(b);
}
