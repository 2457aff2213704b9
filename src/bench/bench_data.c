/* bench_data.c: the images the benchmark trains on, made once on the host: synthetic
 * (uniform [0,1) pixels and uniform labels of the model's classes, drawn with Philox from the seed) or
 * the first images of the MNIST training set, scaled to [0,1] as the trainer does, their labels checked
 * against the model's class count. */
#include "hd/bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hd/common.h"
#include "hd/mnist.h"
#include "hd/model.h"
#include "hd/shared_math.h"

#define BENCH_RNG_STREAM 0x7Eu /* a stream of its own, apart from augmentation and dropout */
#define MNIST_SIDE       28

static int load_mnist(hd_bench_data *data, const char *data_dir, int n_images, int classes, double *load_s) {
    hd_mnist_options options;
    hd_mnist_options_defaults(&options);
    options.data_dir = data_dir;
    options.allow_download = 0;
    options.quiet = 1;
    hd_dataset train, test;
    double start = hd_now_seconds();
    if (hd_mnist_load(&options, &train, &test) != 0)
        return -1;
    *load_s = hd_now_seconds() - start;
    int rc = 0;
    if (train.rows != MNIST_SIDE || train.cols != MNIST_SIDE || train.count < 1) {
        rc = hd_fail("MNIST training images are %dx%d, expected %dx%d", train.rows, train.cols, MNIST_SIDE,
                     MNIST_SIDE);
    } else if (hd_dataset_check_labels(&train, classes) != 0) { /* the loss indexes the logits by label */
        rc = -1;
    } else {
        size_t image_size = (size_t)data->image_size;
        for (int i = 0; i < n_images; i++) {
            int source = i % train.count; /* more images than the set holds: cycle */
            const uint8_t *pixels = train.images + (size_t)source * image_size;
            for (size_t p = 0; p < image_size; p++)
                data->images[(size_t)i * image_size + p] = (float)pixels[p] * (1.0f / 255.0f);
            data->labels[i] = train.labels[source];
        }
    }
    hd_dataset_free(&train);
    hd_dataset_free(&test);
    return rc;
}

static void make_synthetic(hd_bench_data *data, int n_images, int classes, uint64_t seed) {
    size_t image_size = (size_t)data->image_size;
    for (int i = 0; i < n_images; i++) {
        for (size_t p = 0; p < image_size; p++) {
            size_t element = (size_t)i * image_size + p;
            data->images[element] = hd_random_unit(seed, BENCH_RNG_STREAM, 0, element);
        }
        int label = (int)(hd_random_unit(seed, BENCH_RNG_STREAM, 1, (uint64_t)i) * (float)classes);
        data->labels[i] = label > classes - 1 ? classes - 1 : label;
    }
}

int hd_bench_data_make(hd_bench_data *data, const hd_bench_config *config, int n_images, double *load_s) {
    memset(data, 0, sizeof(*data));
    *load_s = NAN;
    if (n_images < 1)
        return hd_fail("bench data: need at least one image, got %d", n_images);
    hd_model layout; /* the class count of the model the labels are for (shapes only, nothing allocated) */
    if (hd_model_layout(&layout, config->spec, 1, MNIST_SIDE, MNIST_SIDE, 1) != 0)
        return -1;
    data->n_images = n_images;
    data->image_size = MNIST_SIDE * MNIST_SIDE;
    data->images = hd_malloc((size_t)n_images * (size_t)data->image_size * sizeof(float));
    data->labels = hd_malloc((size_t)n_images * sizeof(int32_t));
    if (!data->images || !data->labels) {
        hd_bench_data_free(data);
        return -1;
    }
    if (!config->real_data) {
        make_synthetic(data, n_images, layout.classes, config->seed);
        return 0;
    }
    if (load_mnist(data, config->data_dir, n_images, layout.classes, load_s) != 0) {
        hd_bench_data_free(data);
        return -1;
    }
    return 0;
}

void hd_bench_data_free(hd_bench_data *data) {
    free(data->images);
    free(data->labels);
    memset(data, 0, sizeof(*data));
}
