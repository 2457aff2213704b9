/* image_screen.h: what an image file must pass before stb_image decodes it (digit_image.c).
 *
 * Debian 12's stb_image is version 2.27, which fuzzing (tests/fuzz/fuzz_digit_image.c) showed writing
 * past its buffers on some malformed files. The decoder is built for the four formats a user's digit
 * comes in (PNG, JPEG, BMP, GIF), and each file is screened for the malformations known to reach those
 * bugs, so that a bad file gets a one-line error instead of memory corruption or a request for
 * gigabytes: JPEG Huffman tables of more than 256 codes (stb_image writes past its tables), PNG
 * chunks longer than the file (it allocates what a chunk declares before reading it), uncompressed
 * BMP rows missing from the file (it decodes them as zeros, slowly for a huge header). Its
 * allocations are zeroed (src/data/stb_impl.c): a JPEG scan may name a Huffman table no DHT defined,
 * which 2.27 reads as the allocator left it. One known
 * weakness is left: on some corrupt JPEG entropy-coded data its bit reader shifts by 32 (undefined
 * behaviour, no memory error seen under ASan); only decoding can tell, so it is not screened. */
#ifndef HD_IMAGE_SCREEN_H
#define HD_IMAGE_SCREEN_H

#include <stddef.h>
#include <stdint.h>

typedef enum { HD_IMAGE_UNKNOWN, HD_IMAGE_PNG, HD_IMAGE_JPEG, HD_IMAGE_BMP, HD_IMAGE_GIF } hd_image_format;

/* The format named by the file's first bytes (HD_IMAGE_UNKNOWN for anything else). */
hd_image_format hd_image_format_of(const uint8_t *data, size_t size);

/* "PNG", "JPEG", "BMP", "GIF", or "image". */
const char *hd_image_format_name(hd_image_format format);

/* A PNG's width and height from its IHDR, read directly (stb_image refuses PNGs over 1 GiB decoded as
 * "unknown image type", which would hide the real reason): 1, or 0 if not a PNG with an IHDR. */
int hd_image_png_size(const uint8_t *data, size_t size, long *w, long *h);

/* 0 when the file passes the checks above (not a proof that stb_image will decode it safely: see
 * the weakness left); -1 with *why set to a static phrase (e.g. "corrupt JPEG: a Huffman table
 * declares more than 256 codes") when it does not. An image over the caller's limits (max_side on a
 * side, max_pixels in all) is left to the caller, which refuses it with its size once it is known. */
int hd_image_screen(const uint8_t *data, size_t size, uint64_t max_side, uint64_t max_pixels,
                    const char **why);

#endif
