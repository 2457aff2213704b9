/* pipeline.h: the host-side data driver. Batches are shuffled (seeded, per epoch),
 * gathered, augmented (training only) and written into a ring of upload buffers from
 * host_alloc (pinned on a GPU). Beside a GPU a producer thread makes them ahead of the
 * device; beside the CPU backend, whose threads already use every core, they are made in
 * line. Each ready batch is uploaded into one of two device batches, the next one while
 * the current one computes, and model->input / model->labels point at the current one
 * (the model's own buffers are restored at the end of the epoch). A slot is handed back
 * to the producer only after the backend's fence for its upload has passed, so the host
 * never waits on the step it just queued. */
#ifndef HD_PIPELINE_H
#define HD_PIPELINE_H

#include "hd/augment.h"
#include "hd/backend.h"
#include "hd/dataset_split.h"
#include "hd/model.h"

#include <stdint.h>

#define HD_PIPELINE_SLOTS 4

typedef struct hd_pipeline hd_pipeline;

/* Who makes the batches: by default a producer thread beside a GPU and the consumer itself
 * beside the CPU backend; either can be asked for (the tests run the thread on the CPU). */
typedef enum { HD_PRODUCER_AUTO = 0, HD_PRODUCER_THREAD, HD_PRODUCER_IN_LINE } hd_producer;

typedef struct {
    const hd_float_set *data;
    int batch;
    uint64_t seed;
    int augment;
    hd_augment_ranges ranges;
    hd_producer producer;
    /* The model's input convention (hd_model.input_mean, input_std), applied to each batch after
     * augmentation, which works on pixels in [0, 1]. A config with both 0 (as zeroed) applies none. */
    float norm_mean, norm_std;
} hd_pipeline_config;

int hd_pipeline_create(hd_pipeline **out, hd_backend *be, const hd_pipeline_config *config);
void hd_pipeline_destroy(hd_pipeline *p);
/* Starts producing the batches of `epoch` (0-based); returns the number of steps. */
int hd_pipeline_start_epoch(hd_pipeline *p, uint64_t epoch);
/* The same, from batch `first` on (an epoch a signal stopped, resumed): the batches before it are neither
 * made nor augmented, and the ones after are those the whole epoch would have had. */
int hd_pipeline_start_epoch_at(hd_pipeline *p, uint64_t epoch, int first);
/* Makes the next batch the model's input (model->input / model->labels point at it) and
 * queues the upload of the one after; returns its size (the last batch of an epoch may be
 * smaller), or 0 at the end of the epoch, when the model's own buffers are restored. */
int hd_pipeline_next(hd_pipeline *p, hd_model *model);
/* Points the model back at its own input buffers (for an epoch left early). */
void hd_pipeline_restore(hd_pipeline *p, hd_model *model);
/* Seconds the consumer spent waiting for (or, beside the CPU backend, making) batches. */
double hd_pipeline_wait_seconds(const hd_pipeline *p);

#endif
