/* test_byte_view.c: a byte view of a data set (hd_float_set_view_bytes, what the trainer holds so that its
 * sets take 1 byte a pixel, not 4) against the float copy it replaces (hd_float_set_from_bytes), on random
 * bytes and a subset of rows in a shuffled order: the same labels, the same mean and std to the bit, the
 * same floats for every image before and after hd_float_set_normalize, and hd_evaluate giving the same
 * loss, accuracy, predictions and confidences to the bit with a batch that leaves a smaller last chunk;
 * and the same predictions, confidences to 1e-6 and loss to 1e-6 when the whole set is one chunk. */
#include "check.h"
#include "hd/backend.h"
#include "hd/common.h"
#include "hd/dataset_split.h"
#include "hd/evaluate.h"
#include "hd/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SIDE   28
#define PIXELS (SIDE * SIDE)
#define ROWS   97 /* the byte data set */
#define PICKED 61 /* the rows the sets hold */
#define BATCH  16 /* 3 chunks of 16 and one of 13 */

/* Every image of both sets, float for float. */
static void check_images(const hd_float_set *copy, const hd_float_set *view, const char *when) {
    float a[PIXELS], b[PIXELS];
    int differ = 0;
    for (int i = 0; i < copy->count; i++) {
        hd_float_set_image(copy, i, a);
        hd_float_set_image(view, i, b);
        differ += memcmp(a, b, sizeof a) != 0;
    }
    CHECK(differ == 0, "%s: %d of %d images differ between the byte view and the float copy", when, differ,
          copy->count);
}

static void check_evaluate(hd_backend *be, const hd_float_set *copy, const hd_float_set *view) {
    hd_model model;
    CHECK(hd_model_create(&model, be, "conv:4:3:relu,maxpool:2,flatten,dense:10", 1, SIDE, SIDE, BATCH) ==
                  0 &&
              hd_model_init_weights(&model, 5) == 0,
          "model: %s", hd_last_error());
    hd_eval_result r[2];
    int predicted[2][PICKED], confusion[2][100];
    float confidence[2][PICKED];
    const hd_float_set *sets[2] = {copy, view};
    for (int k = 0; k < 2; k++)
        CHECK(hd_evaluate(&model, sets[k], &r[k], confusion[k], predicted[k], confidence[k]) == 0,
              "evaluate: %s", hd_last_error());
    CHECK(r[0].count == PICKED && r[1].count == PICKED, "counts %d, %d", r[0].count, r[1].count);
    CHECK(memcmp(&r[0].loss, &r[1].loss, sizeof r[0].loss) == 0 && r[0].loss > 0.0,
          "loss: copy %.9g, view %.9g", r[0].loss, r[1].loss);
    CHECK(memcmp(&r[0].accuracy, &r[1].accuracy, sizeof r[0].accuracy) == 0, "accuracy: copy %g, view %g",
          r[0].accuracy, r[1].accuracy);
    CHECK(memcmp(predicted[0], predicted[1], sizeof predicted[0]) == 0 &&
              memcmp(confidence[0], confidence[1], sizeof confidence[0]) == 0 &&
              memcmp(confusion[0], confusion[1], sizeof confusion[0]) == 0,
          "per-image results differ between the byte view and the float copy");
    /* The trainer evaluates in chunks of its training batch (it used 1,000): a model sized for the whole
     * set in one chunk, with the same weights, gives every image the same prediction, and the same
     * confidence but for the last float bits (OpenBLAS's SGEMM rounds a short last chunk's rows
     * differently: seen as 1 ulp on 2 of 61 images); the loss sum is rounded per chunk. */
    hd_model whole;
    CHECK(hd_model_create(&whole, be, "conv:4:3:relu,maxpool:2,flatten,dense:10", 1, SIDE, SIDE, PICKED) ==
                  0 &&
              hd_model_init_weights(&whole, 5) == 0,
          "model: %s", hd_last_error());
    hd_eval_result one;
    int one_predicted[PICKED], one_confusion[100];
    float one_confidence[PICKED];
    CHECK(hd_evaluate(&whole, view, &one, one_confusion, one_predicted, one_confidence) == 0, "evaluate: %s",
          hd_last_error());
    int moved = 0;
    for (int i = 0; i < PICKED; i++)
        moved += fabsf(one_confidence[i] - confidence[1][i]) > 1e-6f;
    CHECK(
        memcmp(one_predicted, predicted[1], sizeof one_predicted) == 0 && moved == 0 &&
            one.accuracy == r[1].accuracy,
        "per-image results: %d confidences moved by more than 1e-6 between one chunk of %d and chunks of %d "
        "(or a prediction changed)",
        moved, PICKED, BATCH);
    CHECK(fabs(one.loss - r[1].loss) <= 1e-6 * r[1].loss, "loss: one chunk %.9g, chunks of %d %.9g", one.loss,
          BATCH, r[1].loss);
    hd_model_destroy(&whole);
    hd_model_destroy(&model);
}

int main(void) {
    uint64_t rng = test_fresh_seed();
    uint8_t *bytes = malloc((size_t)ROWS * PIXELS), labels[ROWS];
    int indices[PICKED];
    CHECK(bytes != NULL, "malloc");
    if (!bytes)
        return test_finish();
    for (size_t i = 0; i < (size_t)ROWS * PIXELS; i++)
        bytes[i] = (uint8_t)test_rand_u64(&rng);
    for (int i = 0; i < ROWS; i++)
        labels[i] = (uint8_t)(test_rand_u64(&rng) % 10);
    for (int i = 0; i < PICKED; i++)
        indices[i] = (int)(test_rand_u64(&rng) % ROWS); /* repeats and any order: the view keeps them */

    hd_float_set copy = {0}, view = {0};
    CHECK(hd_float_set_from_bytes(&copy, bytes, labels, SIDE, SIDE, indices, PICKED) == 0 &&
              hd_float_set_view_bytes(&view, bytes, labels, SIDE, SIDE, indices, PICKED) == 0,
          "sets: %s", hd_last_error());
    CHECK(view.images == NULL && view.count == PICKED && view.rows == SIDE && view.cols == SIDE,
          "the view holds no float copy (images %p, count %d)", (void *)view.images, view.count);
    CHECK(memcmp(copy.labels, view.labels, sizeof(int32_t) * PICKED) == 0 &&
              view.labels[PICKED - 1] == labels[indices[PICKED - 1]],
          "labels");
    check_images(&copy, &view, "raw");

    float mean[2], std[2];
    hd_float_set_mean_std(&copy, &mean[0], &std[0]);
    hd_float_set_mean_std(&view, &mean[1], &std[1]);
    CHECK(mean[0] == mean[1] && std[0] == std[1] && mean[0] > 0.4f && mean[0] < 0.6f,
          "mean and std: copy %.9g %.9g, view %.9g %.9g (uniform bytes: mean near 0.5)", (double)mean[0],
          (double)std[0], (double)mean[1], (double)std[1]);
    hd_float_set_normalize(&copy, mean[0], std[0]);
    hd_float_set_normalize(&view, mean[0], std[0]);
    check_images(&copy, &view, "normalised");
    float first[PIXELS];
    hd_float_set_image(&view, 0, first);
    float expect = ((float)bytes[(size_t)indices[0] * PIXELS] * (1.0f / 255.0f) - mean[0]) / std[0];
    CHECK(first[0] == expect, "first pixel %.9g, expected %.9g", (double)first[0], (double)expect);

    hd_cpu_options options = {.threads = 2};
    hd_backend *be = hd_cpu_backend_create(&options);
    CHECK(be != NULL, "CPU backend: %s", hd_last_error());
    if (be)
        check_evaluate(be, &copy, &view);
    hd_backend_destroy(be);
    hd_float_set_free(&copy);
    hd_float_set_free(&view);
    CHECK(view.index == NULL && view.labels == NULL && view.count == 0, "free clears the view");
    free(bytes);
    return test_finish();
}
