/* download.h: fetching files over HTTP(S) with libcurl, atomically and verified.
 *
 * A download goes into a temp file in the target directory (".NAME.part-XXXXXX"), is decompressed if it
 * is gzip (by magic bytes 1f 8b) into a second temp file while its SHA-256 is computed, and is renamed to
 * its final name only once the digest of the UNCOMPRESSED content matches. A failed, truncated or
 * corrupted download leaves nothing behind. Redirects are followed (http and https only), the connect
 * times out after 10 s, a transfer slower than 1 KiB/s for 30 s is aborted, and HTTP errors fail.
 *
 * Built without libcurl or OpenSSL's libcrypto (HD_HAVE_CURL undefined), every function here fails with a
 * message saying so. */
#ifndef HD_DOWNLOAD_H
#define HD_DOWNLOAD_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    long connect_timeout_s;      /* give up connecting after this long (10) */
    long low_speed_bytes;        /* abort when slower than this many bytes/s ... (1024) */
    long low_speed_time_s;       /* ... for this many seconds (30) */
    uint64_t max_download_bytes; /* refuse a response body larger than this (256 MiB) */
    uint64_t max_file_bytes;     /* refuse a file that decompresses to more than this (1 GiB) */
} hd_download_options;

void hd_download_options_defaults(hd_download_options *opt);

/* 1 when downloads are compiled in (libcurl), 0 otherwise. */
int hd_download_available(void);

/* Fetch url to dest_path atomically, as is (no decompression, no verification). opt may be NULL. */
int hd_download_url(const char *url, const char *dest_path, const hd_download_options *opt);

/* Fetch NAME into dest_dir/NAME (created if needed), verified: for each mirror in order (a base URL,
 * with or without a trailing '/'), try MIRROR/NAME.gz then MIRROR/NAME, until one gives content whose
 * uncompressed SHA-256 is expected_sha256_hex (64 hex digits). A 404 or a bad copy moves on to the next
 * URL; if none succeeds the message names NAME, how many URLs were tried and the most telling problem,
 * e.g. "...: SHA-256 mismatch: expected 0fa7..., got 5e3c...". opt may be NULL (defaults). */
int hd_download_verified(const char *const *mirrors, int n_mirrors, const char *name,
                         const char *expected_sha256_hex, const char *dest_dir,
                         const hd_download_options *opt);

#ifdef __cplusplus
}
#endif

#endif
