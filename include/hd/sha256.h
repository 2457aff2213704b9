/* sha256.h: SHA-256 (FIPS 180-4), one-shot and streaming, plus hex and whole-file helpers.
 *
 * Used to verify downloaded MNIST files against their published digests. */
#ifndef HD_SHA256_H
#define HD_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define HD_SHA256_BYTES 32
#define HD_SHA256_HEX   65 /* 64 hex digits and the terminating NUL */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint32_t state[8];
    uint64_t total_bytes; /* message length so far */
    uint8_t block[64];    /* bytes waiting for a full 64-byte block */
    size_t block_used;
} hd_sha256_ctx;

void hd_sha256_init(hd_sha256_ctx *ctx);
void hd_sha256_update(hd_sha256_ctx *ctx, const void *data, size_t size);
/* Writes the digest; the context must be re-initialised before reuse. */
void hd_sha256_final(hd_sha256_ctx *ctx, uint8_t digest[HD_SHA256_BYTES]);

/* One-shot digest of a buffer. */
void hd_sha256(const void *data, size_t size, uint8_t digest[HD_SHA256_BYTES]);
/* Lower-case hex of a digest, NUL-terminated. */
void hd_sha256_hex(const uint8_t digest[HD_SHA256_BYTES], char hex[HD_SHA256_HEX]);
/* Digest of a whole file as lower-case hex; 0, or -1 with hd_fail("PATH: ..."). */
int hd_sha256_file(const char *path, char hex[HD_SHA256_HEX]);

#ifdef __cplusplus
}
#endif

#endif
