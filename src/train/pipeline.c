/* pipeline.c: the producer thread and ring of upload buffers declared in pipeline.h. */
#include "hd/pipeline.h"
#include "hd/common.h"
#include "hd/shared_math.h"

#include <pthread.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

typedef enum { SLOT_FREE, SLOT_FILLING, SLOT_READY, SLOT_IN_FLIGHT } slot_state;

typedef struct {
    float *images;   /* host_alloc: batch x rows x cols */
    int32_t *labels; /* host_alloc: batch */
    int count;
    int fence;
    slot_state state;
} pipeline_slot;

struct hd_pipeline {
    hd_backend *be;
    /* Two device batches: while step s computes on one, batch s+1 is uploaded into the
     * other, so a GPU backend overlaps the copy with compute. */
    float *device_images[2];
    int32_t *device_labels[2];
    int device_count[2];
    float *model_input; /* the model's own buffers, restored at the end of each epoch */
    int32_t *model_labels;
    hd_pipeline_config config;
    size_t image_size;
    pipeline_slot slots[HD_PIPELINE_SLOTS];
    int *order;          /* this epoch's permutation */
    uint64_t *positions; /* scratch: training-set indices of one batch */
    float *gathered;     /* scratch: gathered images before augmentation */
    uint64_t epoch;
    int threaded;                  /* a producer thread (beside a GPU) or batches made in line */
    int augment_threads;           /* 1 beside a CPU backend (its cores compute); more beside a GPU */
    int steps, produced, consumed; /* consumed: batches uploaded */
    int current;                   /* batches handed to the trainer */
    int first;                     /* the epoch's first batch (0, or where an interrupted epoch stopped) */
    int stop;
    double wait_seconds;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed;
};

static void fill_slot(hd_pipeline *p, pipeline_slot *slot, int step) {
    const hd_float_set *data = p->config.data;
    int begin = step * p->config.batch;
    int count = data->count - begin < p->config.batch ? data->count - begin : p->config.batch;
    float *dst = p->config.augment ? p->gathered : slot->images;
    for (int i = 0; i < count; i++) {
        int index = p->order[begin + i];
        hd_float_set_image(data, index, dst + (size_t)i * p->image_size);
        slot->labels[i] = data->labels[index];
        p->positions[i] = (uint64_t)index;
    }
    if (p->config.augment) {
        /* Each image's transform depends only on (seed, epoch, index), so the batch can be
         * split across threads without changing a bit. */
        int threads = p->augment_threads;
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int t = 0; t < threads; t++) {
            int first = count * t / threads, last = count * (t + 1) / threads;
            hd_augment_batch(&p->config.ranges, p->config.seed, p->epoch, p->positions + first, last - first,
                             p->gathered + (size_t)first * p->image_size,
                             slot->images + (size_t)first * p->image_size, data->rows, data->cols);
        }
    }
    if (p->config.norm_std > 0.0f)
        hd_normalize_pixels(slot->images, (size_t)count * p->image_size, p->config.norm_mean,
                            p->config.norm_std);
    slot->count = count;
}

static void *producer_main(void *arg) {
    hd_pipeline *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stop &&
               (p->produced >= p->steps || p->slots[p->produced % HD_PIPELINE_SLOTS].state != SLOT_FREE))
            pthread_cond_wait(&p->changed, &p->lock);
        if (p->stop)
            break;
        int step = p->produced;
        pipeline_slot *slot = &p->slots[step % HD_PIPELINE_SLOTS];
        slot->state = SLOT_FILLING;
        pthread_mutex_unlock(&p->lock);
        fill_slot(p, slot, step);
        pthread_mutex_lock(&p->lock);
        slot->state = SLOT_READY;
        p->produced++;
        pthread_cond_broadcast(&p->changed);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int hd_pipeline_create(hd_pipeline **out, hd_backend *be, const hd_pipeline_config *config) {
    hd_pipeline *p = hd_calloc(1, sizeof *p);
    if (!p)
        return -1;
    p->be = be;
    p->config = *config;
    p->image_size = (size_t)config->data->rows * config->data->cols;
    /* Beside a GPU, a producer thread prepares batches ahead, augmenting on several cores
     * (one augments ~100k images/s, which a GPU outruns). Beside the CPU backend every core
     * is already computing: a producer thread would only take turns with the compute
     * threads (and stall their barriers), so batches are prepared in line, on all cores. */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    p->threaded = config->producer == HD_PRODUCER_AUTO ? be->is_gpu : config->producer == HD_PRODUCER_THREAD;
    p->augment_threads =
        p->threaded ? (int)(cores > 2 ? (cores / 2 < 8 ? cores / 2 : 8) : 1) : (int)(cores > 0 ? cores : 1);
    p->order = hd_malloc(sizeof(int) * (size_t)config->data->count);
    p->positions = hd_malloc(sizeof(uint64_t) * (size_t)config->batch);
    p->gathered = hd_malloc(sizeof(float) * p->image_size * (size_t)config->batch);
    int ok = p->order && p->positions && p->gathered;
    for (int b = 0; ok && b < 2; b++) {
        p->device_images[b] = be->ops->alloc(be, p->image_size * (size_t)config->batch);
        p->device_labels[b] = hd_backend_alloc_int32(be, (size_t)config->batch);
        ok = p->device_images[b] && p->device_labels[b];
    }
    for (int s = 0; ok && s < HD_PIPELINE_SLOTS; s++) {
        p->slots[s].images = be->ops->host_alloc(be, sizeof(float) * p->image_size * (size_t)config->batch);
        p->slots[s].labels = be->ops->host_alloc(be, sizeof(int32_t) * (size_t)config->batch);
        ok = p->slots[s].images && p->slots[s].labels;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->changed, NULL);
    if (!ok || (p->threaded && pthread_create(&p->thread, NULL, producer_main, p) != 0)) {
        if (ok)
            hd_fail("cannot start the data pipeline thread");
        p->stop = 1;
        p->thread = 0;
        hd_pipeline_destroy(p);
        return -1;
    }
    *out = p;
    return 0;
}

void hd_pipeline_destroy(hd_pipeline *p) {
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
    if (p->thread)
        pthread_join(p->thread, NULL);
    for (int s = 0; s < HD_PIPELINE_SLOTS; s++) {
        if (p->slots[s].state == SLOT_IN_FLIGHT)
            p->be->ops->fence_wait(p->be, p->slots[s].fence);
        if (p->slots[s].images)
            p->be->ops->host_free(p->be, p->slots[s].images);
        if (p->slots[s].labels)
            p->be->ops->host_free(p->be, p->slots[s].labels);
    }
    for (int b = 0; b < 2; b++) {
        if (p->device_images[b])
            p->be->ops->free(p->be, p->device_images[b]);
        if (p->device_labels[b])
            p->be->ops->free(p->be, p->device_labels[b]);
    }
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->changed);
    free(p->order);
    free(p->positions);
    free(p->gathered);
    free(p);
}

/* Hands back every in-flight slot except the newest `keep`, after its fence has passed. */
static void release_slots(hd_pipeline *p, int keep) {
    for (int back = HD_PIPELINE_SLOTS; back > keep; back--) {
        int step = p->consumed - back;
        if (step < 0)
            continue;
        pipeline_slot *slot = &p->slots[step % HD_PIPELINE_SLOTS];
        pthread_mutex_lock(&p->lock); /* the producer writes slot states under the lock */
        int in_flight = slot->state == SLOT_IN_FLIGHT;
        pthread_mutex_unlock(&p->lock);
        if (!in_flight)
            continue;
        p->be->ops->fence_wait(p->be, slot->fence);
        pthread_mutex_lock(&p->lock);
        slot->state = SLOT_FREE;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
    }
}

int hd_pipeline_start_epoch(hd_pipeline *p, uint64_t epoch) {
    return hd_pipeline_start_epoch_at(p, epoch, 0);
}

int hd_pipeline_start_epoch_at(hd_pipeline *p, uint64_t epoch, int first) {
    release_slots(p, 0);
    pthread_mutex_lock(&p->lock);
    /* An epoch left early (a diverged step) can find the producer filling a slot: let it
     * start nothing more and finish that one before the slots are reset under it. */
    p->steps = p->produced;
    for (;;) {
        int filling = 0;
        for (int s = 0; s < HD_PIPELINE_SLOTS; s++)
            filling |= p->slots[s].state == SLOT_FILLING;
        if (!filling)
            break;
        pthread_cond_wait(&p->changed, &p->lock);
    }
    p->epoch = epoch;
    hd_epoch_permutation(p->order, p->config.data->count, p->config.seed, epoch);
    p->steps = (p->config.data->count + p->config.batch - 1) / p->config.batch;
    p->first = first < 0 ? 0 : first > p->steps ? p->steps : first;
    p->produced = p->first;
    p->consumed = p->first;
    p->current = p->first;
    for (int s = 0; s < HD_PIPELINE_SLOTS; s++)
        p->slots[s].state = SLOT_FREE;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
    return p->steps;
}

/* Waits for the producer's batch `step` and queues its upload into device buffer step % 2. */
static void upload_step(hd_pipeline *p, int step) {
    /* Keep at most two uploads in flight: the host runs at most two steps ahead. */
    release_slots(p, 2);
    pipeline_slot *slot = &p->slots[step % HD_PIPELINE_SLOTS];
    double t0 = hd_now_seconds();
    if (!p->threaded) {
        fill_slot(p, slot, step);
        slot->state = SLOT_READY;
        p->produced = step + 1;
    }
    pthread_mutex_lock(&p->lock);
    while (slot->state != SLOT_READY)
        pthread_cond_wait(&p->changed, &p->lock);
    pthread_mutex_unlock(&p->lock);
    p->wait_seconds += hd_now_seconds() - t0;
    hd_backend *be = p->be;
    int b = step % 2;
    be->ops->upload(be, p->device_images[b], slot->images,
                    sizeof(float) * p->image_size * (size_t)slot->count);
    be->ops->upload(be, p->device_labels[b], slot->labels, sizeof(int32_t) * (size_t)slot->count);
    p->device_count[b] = slot->count;
    slot->fence = be->ops->fence_record(be);
    pthread_mutex_lock(&p->lock);
    slot->state = SLOT_IN_FLIGHT;
    pthread_mutex_unlock(&p->lock);
    p->consumed = step + 1;
}

void hd_pipeline_restore(hd_pipeline *p, hd_model *model) {
    if (p->model_input) {
        model->input = p->model_input;
        model->labels = p->model_labels;
    }
}

int hd_pipeline_next(hd_pipeline *p, hd_model *model) {
    int step = p->current++;
    if (step >= p->steps) {
        hd_pipeline_restore(p, model);
        return 0;
    }
    if (step == p->first) {
        p->model_input = model->input;
        p->model_labels = model->labels;
        upload_step(p, step);
    }
    /* The next batch's upload is queued before this step's compute. */
    if (step + 1 < p->steps)
        upload_step(p, step + 1);
    model->input = p->device_images[step % 2];
    model->labels = p->device_labels[step % 2];
    return p->device_count[step % 2];
}

double hd_pipeline_wait_seconds(const hd_pipeline *p) {
    return p->wait_seconds;
}
