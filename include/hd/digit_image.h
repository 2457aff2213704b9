/* digit_image.h: turning a photo or scan of one digit into an MNIST-style 28x28 image.
 *
 * The steps follow the original MNIST preparation:
 *   1. decode (PNG, JPEG, BMP or GIF, through stb_image) to 8-bit grey;
 *      an alpha channel is composited onto the background that contrasts with the strokes;
 *   2. polarity: MNIST is white ink on black. The median of a band along the border is taken
 *      as the background; when it is lighter than the middle of the image's range, the image
 *      is inverted;
 *   3. background noise: values up to the border band's median + 2 x (its 90th percentile -
 *      median) become 0, and the rest is stretched so that the 90th percentile of the ink
 *      pixels maps to 1 (clean images: everything above the background counts as ink);
 *   4. crop to the bounding box of the ink (pixels above HD_DIGIT_BOX_INK, so that a faint
 *      fringe of blur or anti-aliasing does not count), scale it (area averaging down, linear up) so that
 *      its longer side is 20 pixels, keeping the aspect ratio;
 *   5. place it in a 28x28 black image so that its centre of mass lands at pixel (14, 14)
 *      (within half a pixel: the shift is a whole number of pixels, so no extra blur).
 * The result is 784 floats in [0, 1], row-major, ready for the model.
 *
 * Limits: files over HD_DIGIT_MAX_FILE_BYTES, and images larger than HD_DIGIT_MAX_SIDE on a side
 * or HD_DIGIT_MAX_PIXELS in all, are refused before they are decoded, and so are files with the
 * malformations known to reach bugs of the stb_image that Debian ships (src/data/image_screen.h).
 * Errors (return -1) are recorded with hd_fail() and name the file:
 * "scan.png: not a PNG, JPEG, BMP or GIF image". */
#ifndef HD_DIGIT_IMAGE_H
#define HD_DIGIT_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HD_DIGIT_SIDE           28 /* output image side */
#define HD_DIGIT_PIXELS         (HD_DIGIT_SIDE * HD_DIGIT_SIDE)
#define HD_DIGIT_BOX            20 /* the digit's longer side after scaling */
#define HD_DIGIT_CENTRE         14 /* where the centre of mass lands (pixel index) */
#define HD_DIGIT_MAX_SIDE       8192
#define HD_DIGIT_MAX_PIXELS     (64 * 1024 * 1024)
#define HD_DIGIT_MAX_FILE_BYTES (512 << 20) /* a 64-megapixel 32-bit BMP is 256 MiB */
/* Ink level (0..1, after step 3) above which a pixel counts for the bounding box. */
#define HD_DIGIT_BOX_INK 0.1f
/* Ink must stand out from the background by at least this many grey levels (of 255). */
#define HD_DIGIT_MIN_CONTRAST 24

/* Loads an image file and prepares it (steps 1-5). 0, or -1 + hd_fail() naming the file:
 * cannot open, empty file, not a PNG, JPEG, BMP or GIF image, corrupt, too large, cannot decode,
 * blank. */
int hd_digit_image_load(const char *path, float out[HD_DIGIT_PIXELS]);

/* The same for an image already in memory (an HTTP request's body, `hd-gpu serve`); `name` stands for
 * the file in messages. */
int hd_digit_image_from_memory(const uint8_t *data, size_t size, const char *name,
                               float out[HD_DIGIT_PIXELS]);

/* Steps 2-5 on an 8-bit grey image (w x h, row-major, 0 = black). -1 + hd_fail() when the
 * size is out of range or the image holds no digit (blank or too little contrast). */
int hd_digit_from_gray(const uint8_t *gray, int w, int h, float out[HD_DIGIT_PIXELS]);

/* Writes an 8-bit grey image as PNG (for tests and for looking at what predict saw). */
int hd_write_png_gray(const char *path, const uint8_t *gray, int w, int h);

/* An 8-bit grey image as PNG bytes in memory (the caller frees them); NULL + hd_fail() on failure. */
uint8_t *hd_png_gray_encode(const uint8_t *gray, int w, int h, size_t *size);

#ifdef __cplusplus
}
#endif

#endif
