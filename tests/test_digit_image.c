/* test_digit_image.c: preparing photos/scans of a digit as MNIST images (hd/digit_image.h). */
#include "check.h"
#include "hd/common.h"
#include "hd/digit_image.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef struct {
    float x0, y0, x1, y1;
} segment;

static float distance_to_segment(float px, float py, segment s) {
    float dx = s.x1 - s.x0, dy = s.y1 - s.y0;
    float t = ((px - s.x0) * dx + (py - s.y0) * dy) / (dx * dx + dy * dy);
    t = fminf(fmaxf(t, 0.0f), 1.0f);
    float ex = s.x0 + t * dx - px, ey = s.y0 + t * dy - py;
    return sqrtf(ex * ex + ey * ey);
}

/* A "7" with a crossbar, strokes `thickness` wide, anti-aliased, white on black; its box is
 * (left, top) .. (left + 0.55 size, top + size). */
static void draw_seven(uint8_t *gray, int w, int h, float left, float top, float size, float thickness) {
    segment strokes[3] = {{left, top, left + 0.55f * size, top},
                          {left + 0.55f * size, top, left + 0.2f * size, top + size},
                          {left + 0.15f * size, top + 0.5f * size, left + 0.5f * size, top + 0.5f * size}};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float d = 1e9f;
            for (int k = 0; k < 3; k++)
                d = fminf(d, distance_to_segment((float)x, (float)y, strokes[k]));
            float ink = fminf(fmaxf(0.5f * thickness + 0.5f - d, 0.0f), 1.0f);
            gray[y * w + x] = (uint8_t)lroundf(255.0f * ink);
        }
}

static void invert(uint8_t *gray, size_t n) {
    for (size_t i = 0; i < n; i++)
        gray[i] = (uint8_t)(255 - gray[i]);
}

/* Centre of mass and bounding box (of pixels > 0) of a 28x28 output. */
static void describe_output(const float *img, double *cx, double *cy, int *box_w, int *box_h) {
    double mass = 0, sx = 0, sy = 0;
    int x0 = HD_DIGIT_SIDE, y0 = HD_DIGIT_SIDE, x1 = -1, y1 = -1;
    for (int y = 0; y < HD_DIGIT_SIDE; y++)
        for (int x = 0; x < HD_DIGIT_SIDE; x++) {
            float v = img[y * HD_DIGIT_SIDE + x];
            mass += v;
            sx += v * x;
            sy += v * y;
            if (v > 0.0f) {
                x0 = x < x0 ? x : x0;
                y0 = y < y0 ? y : y0;
                x1 = x > x1 ? x : x1;
                y1 = y > y1 ? y : y1;
            }
        }
    *cx = mass > 0 ? sx / mass : -1;
    *cy = mass > 0 ? sy / mass : -1;
    *box_w = x1 - x0 + 1;
    *box_h = y1 - y0 + 1;
}

static void check_mnist_form(const char *what, const float *img, int want_long_side) {
    double cx, cy;
    int bw, bh;
    describe_output(img, &cx, &cy, &bw, &bh);
    CHECK(fabs(cx - 14.0) <= 0.5 && fabs(cy - 14.0) <= 0.5,
          "%s: centre of mass (%.3f, %.3f), want (14, 14) +-0.5", what, cx, cy);
    int longer = bw > bh ? bw : bh;
    CHECK(bw <= HD_DIGIT_BOX && bh <= HD_DIGIT_BOX && longer >= want_long_side,
          "%s: digit box %dx%d, want at most 20x20 with the longer side >= %d", what, bw, bh, want_long_side);
    float lo = 1, hi = 0;
    for (int i = 0; i < HD_DIGIT_PIXELS; i++) {
        lo = fminf(lo, img[i]);
        hi = fmaxf(hi, img[i]);
    }
    CHECK(lo == 0.0f && hi == 1.0f, "%s: values span %g..%g, want 0..1", what, lo, hi);
}

/* Same digit, both polarities, off centre in a non-square image: identical MNIST form. */
static void test_polarity_and_centring(void) {
    const int w = 200, h = 200;
    uint8_t *white_on_black = malloc((size_t)w * h), *black_on_white = malloc((size_t)w * h);
    float a[HD_DIGIT_PIXELS], b[HD_DIGIT_PIXELS];
    draw_seven(white_on_black, w, h, 40.0f, 30.0f, 120.0f, 14.0f);
    memcpy(black_on_white, white_on_black, (size_t)w * h);
    invert(black_on_white, (size_t)w * h);
    CHECK(hd_digit_from_gray(white_on_black, w, h, a) == 0, "white on black: %s", hd_last_error());
    CHECK(hd_digit_from_gray(black_on_white, w, h, b) == 0, "black on white: %s", hd_last_error());
    check_tensor("black on white vs white on black", b, a, HD_DIGIT_PIXELS, 1e-6, 0.0);
    check_mnist_form("200x200 seven", a, 20);

    /* The same digit drawn smaller, elsewhere, in a wide image, gives nearly the same. */
    const int w2 = 300, h2 = 150;
    uint8_t *other = malloc((size_t)w2 * h2);
    float c[HD_DIGIT_PIXELS];
    draw_seven(other, w2, h2, 170.0f, 20.0f, 100.0f, 14.0f * 100.0f / 120.0f);
    invert(other, (size_t)w2 * h2);
    CHECK(hd_digit_from_gray(other, w2, h2, c) == 0, "300x150 seven: %s", hd_last_error());
    check_mnist_form("300x150 seven", c, 20);
    double r = test_correlation(a, c, HD_DIGIT_PIXELS);
    CHECK(r > 0.95, "the seven at another size and place correlates %.4f with the first (want > 0.95)", r);

    /* Background noise of +-6 grey levels on the black-on-white image barely matters. */
    uint64_t state = 12345;
    for (int i = 0; i < w * h; i++) {
        int noisy = black_on_white[i] + (int)(test_rand_u64(&state) % 13) - 6;
        black_on_white[i] = (uint8_t)(noisy < 0 ? 0 : noisy > 255 ? 255 : noisy);
    }
    CHECK(hd_digit_from_gray(black_on_white, w, h, b) == 0, "noisy: %s", hd_last_error());
    r = test_correlation(a, b, HD_DIGIT_PIXELS);
    CHECK(r > 0.98, "noisy background: correlation %.4f with the clean digit (want > 0.98)", r);
    free(white_on_black);
    free(black_on_white);
    free(other);
}

/* A tall thin bar keeps its aspect ratio: 20 high, about 20 * 12 / 120 = 2 wide. */
static void test_aspect_ratio(void) {
    const int w = 100, h = 160;
    uint8_t *gray = malloc((size_t)w * h);
    memset(gray, 255, (size_t)w * h);
    for (int y = 20; y < 140; y++)
        for (int x = 44; x < 56; x++)
            gray[y * w + x] = 0;
    float out[HD_DIGIT_PIXELS];
    CHECK(hd_digit_from_gray(gray, w, h, out) == 0, "bar: %s", hd_last_error());
    double cx, cy;
    int bw, bh;
    describe_output(out, &cx, &cy, &bw, &bh);
    CHECK(bh == 20 && bw == 2, "a 12x120 bar became %dx%d, want 2x20", bw, bh);
    CHECK(fabs(cx - 14.0) <= 0.5 && fabs(cy - 14.0) <= 0.5, "bar centre of mass (%.3f, %.3f)", cx, cy);
    free(gray);
}

static void test_rejects_blank_and_huge(void) {
    float out[HD_DIGIT_PIXELS];
    uint8_t flat[64 * 64];
    memset(flat, 255, sizeof flat);
    CHECK(hd_digit_from_gray(flat, 64, 64, out) != 0 && strstr(hd_last_error(), "blank"),
          "all-white image: '%s'", hd_last_error());
    memset(flat, 0, sizeof flat);
    CHECK(hd_digit_from_gray(flat, 64, 64, out) != 0 && strstr(hd_last_error(), "blank"),
          "all-black image: '%s'", hd_last_error());
    uint64_t state = 99; /* faint noise, no digit */
    for (size_t i = 0; i < sizeof flat; i++)
        flat[i] = (uint8_t)(240 + test_rand_u64(&state) % 12);
    CHECK(hd_digit_from_gray(flat, 64, 64, out) != 0 && strstr(hd_last_error(), "blank"),
          "faint noise only: '%s'", hd_last_error());
    /* The size is checked before any pixel is read (gray is NULL here). */
    CHECK(hd_digit_from_gray(NULL, 100000, 100000, out) != 0 && strstr(hd_last_error(), "too large"),
          "100000x100000: '%s'", hd_last_error());
}

static char *path_in(const char *dir, const char *name) {
    char *path = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(path, "%s/%s", dir, name);
    return path;
}

static int write_bytes(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t written = fwrite(data, 1, size, f);
    return (fclose(f) == 0 && written == size) ? 0 : -1;
}

static void put_chunk(uint8_t *at, const char type[4], const uint8_t *data, uint32_t length) {
    for (int b = 0; b < 4; b++)
        at[b] = (uint8_t)(length >> (24 - 8 * b));
    memcpy(at + 4, type, 4);
    if (length)
        memcpy(at + 8, data, length);
    uint32_t crc = (uint32_t)crc32(0L, at + 4, length + 4);
    for (int b = 0; b < 4; b++)
        at[8 + length + b] = (uint8_t)(crc >> (24 - 8 * b));
}

/* An 8-bit grey + alpha PNG (colour type 4), rows unfiltered, deflated with zlib. */
static int write_png_gray_alpha(const char *path, const uint8_t *gray, const uint8_t *alpha, int w, int h) {
    size_t raw_size = (size_t)h * (1 + 2 * (size_t)w);
    uint8_t *raw = malloc(raw_size);
    uLongf packed_size = compressBound((uLong)raw_size);
    uint8_t *file = malloc(8 + 25 + 12 + packed_size + 12);
    for (int y = 0; y < h; y++) {
        uint8_t *row = raw + (size_t)y * (1 + 2 * (size_t)w);
        row[0] = 0; /* filter: none */
        for (int x = 0; x < w; x++) {
            row[1 + 2 * x] = gray[y * w + x];
            row[2 + 2 * x] = alpha[y * w + x];
        }
    }
    const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    uint8_t ihdr[13] = {0};
    for (int b = 0; b < 4; b++) {
        ihdr[b] = (uint8_t)((uint32_t)w >> (24 - 8 * b));
        ihdr[4 + b] = (uint8_t)((uint32_t)h >> (24 - 8 * b));
    }
    ihdr[8] = 8; /* bit depth */
    ihdr[9] = 4; /* grey + alpha */
    int rc = -1;
    memcpy(file, signature, 8);
    put_chunk(file + 8, "IHDR", ihdr, 13);
    if (compress(file + 8 + 25 + 8, &packed_size, raw, (uLong)raw_size) == Z_OK) {
        put_chunk(file + 8 + 25, "IDAT", file + 8 + 25 + 8, (uint32_t)packed_size);
        put_chunk(file + 8 + 25 + 12 + packed_size, "IEND", NULL, 0);
        rc = write_bytes(path, file, 8 + 25 + 12 + packed_size + 12);
    }
    free(raw);
    free(file);
    return rc;
}

/* A 24-bit BMP (bottom-up rows padded to 4 bytes), colour tinted to check the grey conversion. */
static int write_bmp_tinted(const char *path, const uint8_t *gray, int w, int h) {
    int row_bytes = (3 * w + 3) & ~3;
    size_t size = 54 + (size_t)row_bytes * h;
    uint8_t *bmp = calloc(1, size);
    uint32_t fields[] = {(uint32_t)size, 0, 54, 40, (uint32_t)w, (uint32_t)h};
    bmp[0] = 'B';
    bmp[1] = 'M';
    for (int k = 0; k < 6; k++)
        for (int b = 0; b < 4; b++)
            bmp[2 + 4 * k + b] = (uint8_t)(fields[k] >> (8 * b));
    bmp[26] = 1;  /* planes */
    bmp[28] = 24; /* bits per pixel */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = bmp + 54 + (size_t)(h - 1 - y) * row_bytes + 3 * x;
            p[0] = p[1] = p[2] = gray[y * w + x]; /* B, G, R */
        }
    int rc = write_bytes(path, bmp, size);
    free(bmp);
    return rc;
}

/* A PNG whose IHDR claims width x height (8-bit grey), with valid CRC, and no pixel data. */
static int write_png_header_only(const char *path, uint32_t width, uint32_t height) {
    uint8_t png[8 + 25 + 12] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    for (int b = 0; b < 4; b++) {
        png[16 + b] = (uint8_t)(width >> (24 - 8 * b));
        png[20 + b] = (uint8_t)(height >> (24 - 8 * b));
    }
    png[24] = 8; /* bit depth; colour type 0, compression 0, filter 0, interlace 0 follow */
    uint32_t crc = (uint32_t)crc32(0L, png + 12, 17);
    for (int b = 0; b < 4; b++)
        png[29 + b] = (uint8_t)(crc >> (24 - 8 * b));
    /* then an IEND chunk */
    const uint8_t iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
    memcpy(png + 33, iend, sizeof iend);
    return write_bytes(path, png, sizeof png);
}

static void check_load_fails(const char *path, const char *want_phrase) {
    float out[HD_DIGIT_PIXELS];
    int rc = hd_digit_image_load(path, out);
    const char *msg = hd_last_error();
    CHECK(rc != 0 && strstr(msg, path) && strstr(msg, want_phrase),
          "%s: want an error with '%s', got rc %d '%s'", path, want_phrase, rc, rc ? msg : "");
    if (rc != 0)
        printf("  rejected as expected: %s\n", msg);
}

static void test_files(const char *dir) {
    const int w = 120, h = 120;
    uint8_t *gray = malloc((size_t)w * h);
    float from_memory[HD_DIGIT_PIXELS], from_file[HD_DIGIT_PIXELS];
    draw_seven(gray, w, h, 25.0f, 15.0f, 90.0f, 10.0f);
    invert(gray, (size_t)w * h); /* dark on light, as a scan */
    CHECK(hd_digit_from_gray(gray, w, h, from_memory) == 0, "seven: %s", hd_last_error());

    char *png = path_in(dir, "seven.png");
    CHECK(hd_write_png_gray(png, gray, w, h) == 0, "write %s: %s", png, hd_last_error());
    CHECK(hd_digit_image_load(png, from_file) == 0, "load %s: %s", png, hd_last_error());
    check_tensor("PNG file vs memory", from_file, from_memory, HD_DIGIT_PIXELS, 1e-6, 0.0);

    char *bmp = path_in(dir, "seven.bmp");
    CHECK(write_bmp_tinted(bmp, gray, w, h) == 0, "write %s", bmp);
    CHECK(hd_digit_image_load(bmp, from_file) == 0, "load %s: %s", bmp, hd_last_error());
    check_tensor("BMP file vs memory", from_file, from_memory, HD_DIGIT_PIXELS, 1e-6, 0.0);

    /* Grey + alpha: dark strokes on a transparent background (composited on white), and
     * light strokes on a transparent background (composited on black), both as the scan. */
    uint8_t *alpha = malloc((size_t)w * h), *ink = malloc((size_t)w * h);
    for (int i = 0; i < w * h; i++) {
        alpha[i] = (uint8_t)(255 - gray[i]); /* opaque where the ink is */
        ink[i] = 0;
    }
    char *dark_alpha = path_in(dir, "dark-on-transparent.png");
    CHECK(write_png_gray_alpha(dark_alpha, ink, alpha, w, h) == 0, "write %s", dark_alpha);
    CHECK(hd_digit_image_load(dark_alpha, from_file) == 0, "load %s: %s", dark_alpha, hd_last_error());
    check_tensor("dark strokes on transparent vs memory", from_file, from_memory, HD_DIGIT_PIXELS, 2e-2, 0.0);
    memset(ink, 255, (size_t)w * h);
    char *light_alpha = path_in(dir, "light-on-transparent.png");
    CHECK(write_png_gray_alpha(light_alpha, ink, alpha, w, h) == 0, "write %s", light_alpha);
    CHECK(hd_digit_image_load(light_alpha, from_file) == 0, "load %s: %s", light_alpha, hd_last_error());
    check_tensor("light strokes on transparent vs memory", from_file, from_memory, HD_DIGIT_PIXELS, 2e-2,
                 0.0);
    free(alpha);
    free(ink);

    /* Truncated PNG: the header reads, the pixel data does not. */
    uint8_t *bytes = NULL;
    size_t size = 0;
    CHECK(hd_read_file(png, &bytes, &size) == 0 && size > 100, "read back %s", png);
    char *truncated = path_in(dir, "truncated.png");
    CHECK(write_bytes(truncated, bytes, size / 2) == 0, "write %s", truncated);
    check_load_fails(truncated, "truncated or corrupt PNG");
    /* A PNG with its signature damaged. */
    char *damaged = path_in(dir, "damaged.png");
    bytes[1] = 'X';
    CHECK(write_bytes(damaged, bytes, size) == 0, "write %s", damaged);
    check_load_fails(damaged, "not a PNG, JPEG, BMP or GIF image");
    free(bytes);

    char *text = path_in(dir, "notes.txt");
    const char *words = "this is not an image\n";
    CHECK(write_bytes(text, words, strlen(words)) == 0, "write %s", text);
    check_load_fails(text, "not a PNG, JPEG, BMP or GIF image");

    char *empty = path_in(dir, "empty.png");
    CHECK(write_bytes(empty, "", 0) == 0, "write %s", empty);
    check_load_fails(empty, "empty file");

    char *blank = path_in(dir, "blank.png");
    memset(gray, 255, (size_t)w * h);
    CHECK(hd_write_png_gray(blank, gray, w, h) == 0, "write %s", blank);
    check_load_fails(blank, "blank image");

    char *huge = path_in(dir, "huge.png");
    CHECK(write_png_header_only(huge, 100000, 100000) == 0, "write %s", huge);
    check_load_fails(huge, "too large");
    /* A BMP header claiming 100000 x 100000 (8 bytes of pixels follow). */
    char *huge_bmp = path_in(dir, "huge.bmp");
    uint8_t bmp_header[62] = {'B', 'M'};
    const uint32_t bmp_fields[] = {62, 0, 54, 40, 100000, 100000};
    for (int k = 0; k < 6; k++)
        for (int b = 0; b < 4; b++)
            bmp_header[2 + 4 * k + b] = (uint8_t)(bmp_fields[k] >> (8 * b));
    bmp_header[26] = 1;
    bmp_header[28] = 24;
    CHECK(write_bytes(huge_bmp, bmp_header, sizeof bmp_header) == 0, "write %s", huge_bmp);
    check_load_fails(huge_bmp, "too large");

    char *missing = path_in(dir, "no-such-file.png");
    check_load_fails(missing, "cannot open");

    char *paths[] = {png,  bmp,   dark_alpha, light_alpha, truncated, damaged,
                     text, empty, blank,      huge,        huge_bmp,  missing};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        free(paths[i]);
    free(gray);
}

static uint32_t read_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The fuzz corpus's small "1" in each format, against the same drawing as PNG: the JPEG and GIF decoders
 * are built in; PNM is not (one of the formats left out, see src/data/image_screen.h); and a JPEG whose
 * Huffman table declares 4080 codes, which stb_image 2.27 would write past its tables for, is refused. */
static void test_formats(const char *dir) {
    const char *source = getenv("HD_SOURCE_DIR");
    CHECK(source != NULL, "HD_SOURCE_DIR is not set (ctest sets it)");
    if (!source)
        return;
    char seeds[4096];
    snprintf(seeds, sizeof seeds, "%s/tests/fuzz/corpus/fuzz_digit_image", source);
    char *png = path_in(seeds, "seed-one-gray.png");
    float reference[HD_DIGIT_PIXELS], got[HD_DIGIT_PIXELS];
    CHECK(hd_digit_image_load(png, reference) == 0, "load %s: %s", png, hd_last_error());
    const char *same_drawing[] = {"seed-one.jpg", "seed-one.gif", "seed-one.bmp", "seed-one-24bit.bmp",
                                  "seed-one-interlaced.png"};
    for (size_t i = 0; i < sizeof same_drawing / sizeof same_drawing[0]; i++) {
        char *path = path_in(seeds, same_drawing[i]);
        int rc = hd_digit_image_load(path, got);
        CHECK(rc == 0, "load %s: %s", path, hd_last_error());
        if (rc == 0) {
            double r = test_correlation(got, reference, HD_DIGIT_PIXELS);
            CHECK(r > 0.95, "%s: correlation with the PNG %.3f (want > 0.95)", same_drawing[i], r);
        }
        free(path);
    }
    char *pgm = path_in(seeds, "seed-one-binary.pgm");
    check_load_fails(pgm, "not a PNG, JPEG, BMP or GIF image");
    char *rle = path_in(seeds, "seed-one-rle8.bmp"); /* run-length coded: stb_image reads no such BMP */
    check_load_fails(rle, "unsupported or corrupt BMP file");
    free(rle);

    /* The 24-bit BMP stored top-down (negative height, rows reversed) must read the same. */
    char *bmp24 = path_in(seeds, "seed-one-24bit.bmp");
    uint8_t *bmp = NULL;
    size_t bmp_size = 0;
    CHECK(hd_read_file(bmp24, &bmp, &bmp_size) == 0 && bmp_size > 54, "read %s: %s", bmp24, hd_last_error());
    if (bmp && bmp_size > 54) {
        float bottom_up[HD_DIGIT_PIXELS];
        CHECK(hd_digit_image_load(bmp24, bottom_up) == 0, "load %s: %s", bmp24, hd_last_error());
        uint32_t offset = read_le32(bmp + 10);
        int32_t bw = (int32_t)read_le32(bmp + 18), bh = (int32_t)read_le32(bmp + 22);
        size_t row = ((size_t)bw * 3 + 3) / 4 * 4;
        CHECK(bmp[28] == 24 && bh > 0 && offset + row * (size_t)bh <= bmp_size, "%s is not 24-bit bottom-up",
              bmp24);
        if (bmp[28] == 24 && bh > 0 && offset + row * (size_t)bh <= bmp_size) {
            uint8_t *swap = malloc(row);
            for (int32_t y = 0; swap && y < bh / 2; y++) {
                memcpy(swap, bmp + offset + row * (size_t)y, row);
                memcpy(bmp + offset + row * (size_t)y, bmp + offset + row * (size_t)(bh - 1 - y), row);
                memcpy(bmp + offset + row * (size_t)(bh - 1 - y), swap, row);
            }
            free(swap);
            uint32_t negative = (uint32_t)-bh;
            for (int b = 0; b < 4; b++)
                bmp[22 + b] = (uint8_t)(negative >> (8 * b));
            char *top_down = path_in(dir, "top-down.bmp");
            CHECK(write_bytes(top_down, bmp, bmp_size) == 0, "write %s", top_down);
            int rc = hd_digit_image_load(top_down, got);
            CHECK(rc == 0, "load %s: %s", top_down, hd_last_error());
            if (rc == 0)
                check_tensor("top-down BMP vs bottom-up", got, bottom_up, HD_DIGIT_PIXELS, 1e-6, 0.0);
            free(top_down);
            /* Half of its rows gone: stb_image would decode them as black. */
            char *cut = path_in(dir, "cut.bmp");
            CHECK(write_bytes(cut, bmp, bmp_size / 2) == 0, "write %s", cut);
            check_load_fails(cut, "truncated BMP");
            free(cut);
        }
    }
    free(bmp);
    free(bmp24);

    /* A PNG whose first IDAT chunk claims 2 GiB: stb_image 2.27 would allocate that before reading. */
    uint8_t *png_bytes = NULL;
    size_t png_size = 0;
    CHECK(hd_read_file(png, &png_bytes, &png_size) == 0, "read %s: %s", png, hd_last_error());
    for (size_t i = 12; png_bytes && i + 4 <= png_size; i++)
        if (memcmp(png_bytes + i, "IDAT", 4) == 0) {
            memcpy(png_bytes + i - 4, "\x7f\xff\xff\xf0", 4);
            char *greedy = path_in(dir, "greedy-idat.png");
            CHECK(write_bytes(greedy, png_bytes, png_size) == 0, "write %s", greedy);
            check_load_fails(greedy, "a chunk runs past the end of the file");
            free(greedy);
            break;
        }
    free(png_bytes);

    char *jpg = path_in(seeds, "seed-one.jpg");
    uint8_t *bytes = NULL;
    size_t size = 0;
    CHECK(hd_read_file(jpg, &bytes, &size) == 0, "read %s: %s", jpg, hd_last_error());
    size_t dht = 0;
    for (size_t i = 2; bytes && i + 21 < size && !dht; i++)
        if (bytes[i] == 0xff && bytes[i + 1] == 0xc4)
            dht = i;
    CHECK(dht != 0, "%s has no DHT segment", jpg);
    if (dht) {
        memset(bytes + dht + 5, 0xff, 16); /* the first table's 16 code counts */
        char *bad = path_in(dir, "huffman-overflow.jpg");
        CHECK(write_bytes(bad, bytes, size) == 0, "write %s", bad);
        check_load_fails(bad, "Huffman table declares more than 256 codes");
        free(bad);
    }
    free(bytes);
    free(jpg);
    free(pgm);
    free(png);
}

int main(void) {
    test_polarity_and_centring();
    test_aspect_ratio();
    test_rejects_blank_and_huge();
#ifndef HD_HAVE_STB
    printf("built without stb: image files not tested\n");
    return test_finish();
#endif
    char *dir = test_make_temp_dir("digit_image");
    if (dir) {
        test_files(dir);
        test_formats(dir);
        test_remove_tree(dir);
        free(dir);
    } else {
        CHECK(0, "cannot make a temporary directory");
    }
    return test_finish();
}
