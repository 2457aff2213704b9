/* digit_image.c: photo or scan of one digit -> MNIST-style 28x28 floats (see hd/digit_image.h),
 * and a small PNG writer. Decoding and encoding go through stb_image / stb_image_write. */
#include "hd/digit_image.h"
#include "hd/common.h"
#include "image_screen.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HD_HAVE_STB
#include "stb_image.h" /* the implementations are compiled in src/data/stb_impl.c */
#include "stb_image_write.h"
#endif

/* ---- the core: grey image -> 28x28 ---- */

static int too_large(long w, long h) {
    return w > HD_DIGIT_MAX_SIDE || h > HD_DIGIT_MAX_SIDE || (double)w * (double)h > HD_DIGIT_MAX_PIXELS;
}

static int percentile_of_histogram(const size_t hist[256], size_t total, double fraction) {
    size_t rank = (size_t)(fraction * (double)total);
    if (rank >= total)
        rank = total - 1;
    size_t cumulative = 0;
    for (int v = 0; v < 256; v++) {
        cumulative += hist[v];
        if (cumulative > rank)
            return v;
    }
    return 255;
}

/* Histogram of the band of width `band` along the four edges. */
static size_t border_histogram(const uint8_t *gray, int w, int h, int band, size_t hist[256]) {
    memset(hist, 0, 256 * sizeof hist[0]);
    size_t count = 0;
    for (int y = 0; y < h; y++) {
        int whole_row = y < band || y >= h - band;
        for (int x = 0; x < w; x++) {
            if (whole_row || x < band || x >= w - band) {
                hist[gray[(size_t)y * w + x]]++;
                count++;
            }
        }
    }
    return count;
}

/* 1-D resampling of n_in values (stride in_stride) to n_out (stride out_stride): area
 * averaging when shrinking, linear interpolation (edges clamped) when growing. */
static void resample_line(const float *in, int n_in, size_t in_stride, float *out, int n_out,
                          size_t out_stride) {
    double factor = (double)n_in / (double)n_out;
    for (int i = 0; i < n_out; i++) {
        double value = 0.0;
        if (factor >= 1.0) {
            double start = i * factor, end = (i + 1) * factor;
            int last = (int)ceil(end);
            if (last > n_in)
                last = n_in;
            for (int j = (int)floor(start); j < last; j++) {
                double overlap = fmin(end, j + 1.0) - fmax(start, (double)j);
                if (overlap > 0.0)
                    value += overlap * in[(size_t)j * in_stride];
            }
            value /= factor;
        } else {
            double pos = (i + 0.5) * factor - 0.5;
            pos = fmin(fmax(pos, 0.0), (double)(n_in - 1));
            int j = (int)floor(pos);
            int j1 = j + 1 < n_in ? j + 1 : j;
            double frac = pos - j;
            value = (1.0 - frac) * in[(size_t)j * in_stride] + frac * in[(size_t)j1 * in_stride];
        }
        out[(size_t)i * out_stride] = (float)value;
    }
}

typedef struct {
    int x0, y0, w, h;
} pixel_box;

/* The ink bounding box scaled to fit HD_DIGIT_BOX (aspect kept) into patch (nh x nw). */
static int scale_to_box(const uint8_t *gray, int w, const float ink_of[256], pixel_box box, float *patch,
                        int *nw, int *nh) {
    int longer = box.w > box.h ? box.w : box.h;
    double scale = (double)HD_DIGIT_BOX / longer;
    *nw = (int)lround(box.w * scale);
    *nh = (int)lround(box.h * scale);
    if (*nw < 1)
        *nw = 1;
    if (*nh < 1)
        *nh = 1;
    float *row_in = hd_malloc((size_t)box.w * sizeof *row_in);
    float *rows_scaled = hd_malloc((size_t)box.h * (size_t)*nw * sizeof *rows_scaled);
    if (!row_in || !rows_scaled) {
        free(row_in);
        free(rows_scaled);
        return -1;
    }
    for (int y = 0; y < box.h; y++) {
        const uint8_t *src = gray + (size_t)(box.y0 + y) * w + box.x0;
        for (int x = 0; x < box.w; x++)
            row_in[x] = ink_of[src[x]];
        resample_line(row_in, box.w, 1, rows_scaled + (size_t)y * *nw, *nw, 1);
    }
    for (int x = 0; x < *nw; x++)
        resample_line(rows_scaled + x, box.h, (size_t)*nw, patch + x, *nh, (size_t)*nw);
    free(row_in);
    free(rows_scaled);
    return 0;
}

/* Places the patch so that its centre of mass lands on pixel (HD_DIGIT_CENTRE, HD_DIGIT_CENTRE). */
static int place_by_centre_of_mass(const float *patch, int nw, int nh, float out[HD_DIGIT_PIXELS]) {
    double mass = 0.0, sum_x = 0.0, sum_y = 0.0;
    for (int y = 0; y < nh; y++)
        for (int x = 0; x < nw; x++) {
            double v = patch[y * nw + x];
            mass += v;
            sum_x += v * x;
            sum_y += v * y;
        }
    if (!(mass > 0.0))
        return hd_fail("blank image: no digit found");
    int offset_x = (int)lround(HD_DIGIT_CENTRE - sum_x / mass);
    int offset_y = (int)lround(HD_DIGIT_CENTRE - sum_y / mass);
    memset(out, 0, HD_DIGIT_PIXELS * sizeof out[0]);
    for (int y = 0; y < nh; y++) {
        int oy = y + offset_y;
        if (oy < 0 || oy >= HD_DIGIT_SIDE)
            continue;
        for (int x = 0; x < nw; x++) {
            int ox = x + offset_x;
            if (ox >= 0 && ox < HD_DIGIT_SIDE)
                out[oy * HD_DIGIT_SIDE + ox] = fminf(fmaxf(patch[y * nw + x], 0.0f), 1.0f);
        }
    }
    return 0;
}

int hd_digit_from_gray(const uint8_t *gray, int w, int h, float out[HD_DIGIT_PIXELS]) {
    if (w <= 0 || h <= 0)
        return hd_fail("empty image (%dx%d)", w, h);
    if (too_large(w, h))
        return hd_fail("image too large (%dx%d; at most %dx%d and %d megapixels)", w, h, HD_DIGIT_MAX_SIDE,
                       HD_DIGIT_MAX_SIDE, HD_DIGIT_MAX_PIXELS / (1024 * 1024));
    size_t npixels = (size_t)w * (size_t)h;

    /* Polarity: background (border median) lighter than the middle of the range -> invert. */
    size_t hist[256] = {0};
    for (size_t i = 0; i < npixels; i++)
        hist[gray[i]]++;
    int darkest = percentile_of_histogram(hist, npixels, 0.0);
    int lightest = percentile_of_histogram(hist, npixels, 1.0);
    int band = (w < h ? w : h) / 50;
    if (band < 1)
        band = 1;
    size_t border_hist[256];
    size_t border_count = border_histogram(gray, w, h, band, border_hist);
    int border_median = percentile_of_histogram(border_hist, border_count, 0.5);
    int invert = 2 * border_median > darkest + lightest;

    /* Ink levels after inversion: background and its noise -> 0, strong ink -> 1. */
    int ink_level_of[256];
    for (int v = 0; v < 256; v++)
        ink_level_of[v] = invert ? 255 - v : v;
    int background = invert ? 255 - border_median : border_median;
    int noisy_edge = invert ? 255 - percentile_of_histogram(border_hist, border_count, 0.1)
                            : percentile_of_histogram(border_hist, border_count, 0.9);
    int floor_level = background + 2 * (noisy_edge - background);
    if (floor_level > 254)
        floor_level = 254;
    size_t ink_hist[256] = {0}, ink_count = 0;
    for (int v = 0; v < 256; v++) {
        int level = ink_level_of[v];
        if (level > floor_level) {
            ink_hist[level] += hist[v];
            ink_count += hist[v];
        }
    }
    if (ink_count == 0)
        return hd_fail("blank image: no digit found (background level %d of 255)", border_median);
    int strong_ink = percentile_of_histogram(ink_hist, ink_count, 0.9);
    if (strong_ink - background < HD_DIGIT_MIN_CONTRAST)
        return hd_fail("blank image: no digit found (ink stands out by %d grey levels, need %d)",
                       strong_ink - background, HD_DIGIT_MIN_CONTRAST);
    float ink_of[256];
    for (int v = 0; v < 256; v++) {
        float t = (float)(ink_level_of[v] - floor_level) / (float)(strong_ink - floor_level);
        ink_of[v] = fminf(fmaxf(t, 0.0f), 1.0f);
    }

    /* Bounding box of the ink, leaving out the faint fringe (anti-aliasing, blur, specks). */
    pixel_box box = {w, h, 0, 0};
    int x1 = -1, y1 = -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (ink_of[gray[(size_t)y * w + x]] > HD_DIGIT_BOX_INK) {
                if (x < box.x0)
                    box.x0 = x;
                if (y < box.y0)
                    box.y0 = y;
                if (x > x1)
                    x1 = x;
                if (y > y1)
                    y1 = y;
            }
    if (x1 < 0)
        return hd_fail("blank image: no digit found");
    box.w = x1 - box.x0 + 1;
    box.h = y1 - box.y0 + 1;

    float patch[HD_DIGIT_BOX * HD_DIGIT_BOX];
    int nw, nh;
    if (scale_to_box(gray, w, ink_of, box, patch, &nw, &nh) != 0)
        return -1;
    return place_by_centre_of_mass(patch, nw, nh, out);
}

/* ---- files ---- */

#ifdef HD_HAVE_STB
/* Grey + alpha -> grey, composited onto the background that contrasts with the strokes:
 * white behind dark strokes, black behind light ones. */
static void composite_gray_alpha(const uint8_t *gray_alpha, size_t npixels, uint8_t *gray) {
    double weighted = 0.0, opacity = 0.0;
    for (size_t i = 0; i < npixels; i++) {
        weighted += (double)gray_alpha[2 * i] * gray_alpha[2 * i + 1];
        opacity += gray_alpha[2 * i + 1];
    }
    int background = (opacity > 0.0 && weighted / opacity > 127.5) ? 0 : 255;
    for (size_t i = 0; i < npixels; i++) {
        int g = gray_alpha[2 * i], a = gray_alpha[2 * i + 1];
        gray[i] = (uint8_t)((g * a + background * (255 - a) + 127) / 255);
    }
}

static int fail_too_large(const char *path, long w, long h) {
    return hd_fail("%s: image too large (%ldx%ld; at most %dx%d and %d megapixels)", path, w, h,
                   HD_DIGIT_MAX_SIDE, HD_DIGIT_MAX_SIDE, HD_DIGIT_MAX_PIXELS / (1024 * 1024));
}

static int prepare_file_bytes(const uint8_t *data, size_t size, const char *path,
                              float out[HD_DIGIT_PIXELS]) {
    if (size == 0)
        return hd_fail("%s: empty file (0 bytes)", path);
    const char *why;
    if (hd_image_screen(data, size, HD_DIGIT_MAX_SIDE, HD_DIGIT_MAX_PIXELS, &why) != 0)
        return hd_fail("%s: %s", path, why);
    long png_w, png_h;
    if (hd_image_png_size(data, size, &png_w, &png_h) && too_large(png_w, png_h))
        return fail_too_large(path, png_w, png_h);
    int w, h, channels;
    if (!stbi_info_from_memory(data, (int)size, &w, &h, &channels))
        return hd_fail("%s: unsupported or corrupt %s file (%s)", path,
                       hd_image_format_name(hd_image_format_of(data, size)), stbi_failure_reason());
    /* stb_image 2.27 reports a top-down BMP's height as the file has it, negative; it decodes |h| rows. */
    long rows = labs((long)h), cols = labs((long)w);
    if (too_large(cols, rows))
        return fail_too_large(path, cols, rows);
    w = (int)cols;
    h = (int)rows;
    int want = (channels == 2 || channels == 4) ? 2 : 1;
    int got_w, got_h, got_channels;
    stbi_uc *pixels = stbi_load_from_memory(data, (int)size, &got_w, &got_h, &got_channels, want);
    if (!pixels)
        return hd_fail("%s: cannot decode image, corrupt or truncated (%s)", path, stbi_failure_reason());
    if (got_w != w || got_h != h) {
        stbi_image_free(pixels);
        return hd_fail("%s: decoded size %dx%d differs from the header's %dx%d", path, got_w, got_h, w, h);
    }
    int rc = 0;
    uint8_t *gray = pixels;
    if (want == 2) {
        gray = hd_malloc((size_t)w * (size_t)h);
        if (gray)
            composite_gray_alpha(pixels, (size_t)w * (size_t)h, gray);
        else
            rc = -1;
    }
    if (rc == 0 && hd_digit_from_gray(gray, w, h, out) != 0) {
        char reason[512];
        snprintf(reason, sizeof reason, "%s", hd_last_error());
        rc = hd_fail("%s: %s", path, reason);
    }
    if (gray != pixels)
        free(gray);
    stbi_image_free(pixels);
    return rc;
}

int hd_digit_image_load(const char *path, float out[HD_DIGIT_PIXELS]) {
    uint8_t *data;
    size_t size;
    if (hd_read_file_at_most(path, HD_DIGIT_MAX_FILE_BYTES, &data, &size) != 0)
        return -1;
    int rc = prepare_file_bytes(data, size, path, out);
    free(data);
    return rc;
}

int hd_digit_image_from_memory(const uint8_t *data, size_t size, const char *name,
                               float out[HD_DIGIT_PIXELS]) {
    if (size > HD_DIGIT_MAX_FILE_BYTES)
        return hd_fail("%s: %zu bytes, more than an image may (%d)", name, size, HD_DIGIT_MAX_FILE_BYTES);
    return prepare_file_bytes(data, size, name, out);
}

/* stb_image_write hands the PNG over in one or more pieces: appended here. */
typedef struct {
    uint8_t *data;
    size_t size;
    int failed;
} png_buffer;

static void append_png(void *context, void *data, int size) {
    png_buffer *b = context;
    uint8_t *grown = b->failed || size < 0 ? NULL : realloc(b->data, b->size + (size_t)size);
    if (!grown) {
        b->failed = 1;
        return;
    }
    memcpy(grown + b->size, data, (size_t)size);
    b->data = grown;
    b->size += (size_t)size;
}

uint8_t *hd_png_gray_encode(const uint8_t *gray, int w, int h, size_t *size) {
    png_buffer b = {NULL, 0, 0};
    if (w <= 0 || h <= 0 || !stbi_write_png_to_func(append_png, &b, w, h, 1, gray, w) || b.failed) {
        free(b.data);
        hd_fail("cannot encode a %dx%d PNG", w, h);
        return NULL;
    }
    *size = b.size;
    return b.data;
}

int hd_write_png_gray(const char *path, const uint8_t *gray, int w, int h) {
    if (w <= 0 || h <= 0)
        return hd_fail("%s: cannot write a %dx%d image", path, w, h);
    if (!stbi_write_png(path, w, h, 1, gray, w))
        return hd_fail("%s: cannot write PNG: %s", path, strerror(errno));
    return 0;
}
#else
int hd_digit_image_load(const char *path, float out[HD_DIGIT_PIXELS]) {
    (void)out;
    return hd_fail("%s: cannot read images: built without stb_image (install libstb-dev)", path);
}

int hd_digit_image_from_memory(const uint8_t *data, size_t size, const char *name,
                               float out[HD_DIGIT_PIXELS]) {
    (void)data;
    (void)size;
    (void)out;
    return hd_fail("%s: cannot read images: built without stb_image (install libstb-dev)", name);
}

uint8_t *hd_png_gray_encode(const uint8_t *gray, int w, int h, size_t *size) {
    (void)gray;
    (void)size;
    hd_fail("cannot encode a %dx%d PNG: built without stb_image_write (install libstb-dev)", w, h);
    return NULL;
}

int hd_write_png_gray(const char *path, const uint8_t *gray, int w, int h) {
    (void)gray;
    (void)w;
    (void)h;
    return hd_fail("%s: cannot write PNG: built without stb_image_write (install libstb-dev)", path);
}
#endif
