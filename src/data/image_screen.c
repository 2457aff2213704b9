/* image_screen.c: format detection and the checks of image_screen.h. */
#include "image_screen.h"

#include <string.h>

hd_image_format hd_image_format_of(const uint8_t *data, size_t size) {
    static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (size >= 8 && memcmp(data, png_signature, 8) == 0)
        return HD_IMAGE_PNG;
    if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        return HD_IMAGE_JPEG;
    if (size >= 2 && data[0] == 'B' && data[1] == 'M')
        return HD_IMAGE_BMP;
    if (size >= 6 && (memcmp(data, "GIF87a", 6) == 0 || memcmp(data, "GIF89a", 6) == 0))
        return HD_IMAGE_GIF;
    return HD_IMAGE_UNKNOWN;
}

const char *hd_image_format_name(hd_image_format format) {
    switch (format) {
    case HD_IMAGE_PNG:
        return "PNG";
    case HD_IMAGE_JPEG:
        return "JPEG";
    case HD_IMAGE_BMP:
        return "BMP";
    case HD_IMAGE_GIF:
        return "GIF";
    default:
        return "image";
    }
}

/* The tables of one DHT segment, read the way stb_image reads them: a class/slot byte, 16 code counts,
 * then that many symbols, while the segment's declared length lasts, even when a table runs past it (the
 * bytes are then the file's next ones; past the file's end, zeros). stb_image 2.27 builds each table into
 * arrays of 257 code sizes and 256 symbols without checking the counts' sum. */
static int huffman_tables_fit(const uint8_t *segment, size_t available, size_t length) {
    size_t at = 0;
    while (at < length) {
        size_t codes = 0;
        for (size_t i = at + 1; i <= at + 16 && i < available; i++)
            codes += segment[i];
        if (codes > 256)
            return 0;
        at += 17 + codes;
    }
    return 1;
}

/* Walks a JPEG's markers as a decoder meets them, skipping each segment by its length and entropy-coded
 * data byte by byte (in it, 0xff is followed by 0x00 or a restart marker), and checks every DHT segment.
 * DHT segments may follow any scan of a progressive JPEG, so the walk goes to the end of the file. */
static int jpeg_huffman_tables_fit(const uint8_t *data, size_t size) {
    size_t at = 2; /* after SOI */
    while (at < size) {
        if (data[at] != 0xff) {
            at++;
            continue;
        }
        while (at < size && data[at] == 0xff) /* fill bytes */
            at++;
        if (at >= size)
            break;
        uint8_t marker = data[at++];
        int standalone = marker == 0x00 || marker == 0x01 || (marker >= 0xd0 && marker <= 0xd8);
        if (standalone)
            continue;
        if (marker == 0xd9) /* EOI */
            break;
        if (size - at < 2)
            break;
        size_t length = (size_t)data[at] << 8 | data[at + 1];
        if (length < 2)
            break; /* stb_image refuses it */
        if (marker == 0xc4 && !huffman_tables_fit(data + at + 2, size - at - 2, length - 2))
            return 0;
        at += length;
    }
    return 1;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int hd_image_png_size(const uint8_t *data, size_t size, long *w, long *h) {
    if (size < 24 || hd_image_format_of(data, size) != HD_IMAGE_PNG || memcmp(data + 12, "IHDR", 4) != 0)
        return 0;
    *w = (long)be32(data + 16);
    *h = (long)be32(data + 20);
    return 1;
}

/* A PNG's chunks, each within the file, up to IEND: stb_image 2.27 grows its buffer to an IDAT chunk's
 * declared length (up to 2 GiB) before it reads the data, so a few bytes could ask for gigabytes. */
static int png_chunks_fit(const uint8_t *data, size_t size) {
    size_t at = 8; /* after the signature */
    while (size - at >= 8) {
        uint32_t length = be32(data + at);
        if (memcmp(data + at + 4, "IEND", 4) == 0) /* stb_image stops here, CRC or not */
            return 1;
        if (length > size - at - 8 || size - at - 8 - length < 4) /* data and CRC */
            return 0;
        at += 12 + (size_t)length;
    }
    return 0; /* no IEND: truncated */
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* An uncompressed BMP's rows, all in the file: stb_image reads past the end as zeros, so a header of a
 * few bytes could make it decode (slowly) a 50-megapixel black image, which would then be classified. */
static int bmp_pixels_present(const uint8_t *data, size_t size, uint64_t max_side, uint64_t max_pixels) {
    if (size < 34 || le32(data + 14) < 40)
        return 1; /* an OS/2 header or one too short: stb_image's own checks decide */
    uint64_t offset = le32(data + 10);
    int64_t width = (int32_t)le32(data + 18), height = (int32_t)le32(data + 22);
    uint32_t bits = (uint32_t)data[28] | (uint32_t)data[29] << 8, compression = le32(data + 30);
    if (compression == 1 || compression == 2) /* run-length coded rows: stb_image refuses them */
        return 1;
    /* stb_image reads any other value (BI_RGB 0, BI_BITFIELDS 3, or garbage) as rows of fixed size. */
    uint64_t w = (uint64_t)(width < 0 ? -width : width), h = (uint64_t)(height < 0 ? -height : height);
    if (w > max_side || h > max_side || w * h > max_pixels)
        return 1; /* refused as too large, with its size, after stb_image has read the header */
    uint64_t stride = (w * bits + 31) / 32 * 4;
    return offset + stride * h <= size;
}

int hd_image_screen(const uint8_t *data, size_t size, uint64_t max_side, uint64_t max_pixels,
                    const char **why) {
    switch (hd_image_format_of(data, size)) {
    case HD_IMAGE_UNKNOWN:
        *why = "not a PNG, JPEG, BMP or GIF image";
        return -1;
    case HD_IMAGE_JPEG:
        if (!jpeg_huffman_tables_fit(data, size)) {
            *why = "corrupt JPEG: a Huffman table declares more than 256 codes";
            return -1;
        }
        return 0;
    case HD_IMAGE_BMP:
        if (!bmp_pixels_present(data, size, max_side, max_pixels)) {
            *why = "truncated BMP: the header promises more pixel rows than the file holds";
            return -1;
        }
        return 0;
    case HD_IMAGE_PNG:
        if (!png_chunks_fit(data, size)) {
            *why = "truncated or corrupt PNG: a chunk runs past the end of the file";
            return -1;
        }
        return 0;
    default:
        return 0;
    }
}
