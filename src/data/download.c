/* download.c: the downloader declared in download.h: libcurl into a temp file in the target directory,
 * gunzip and hash into a second temp file, compare the SHA-256, rename into place. */
#include "hd/download.h"

#include "hd/common.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#ifdef HD_HAVE_CURL
#include <curl/curl.h>
#include <openssl/evp.h>
#endif

#define HD_PATH_MAX 4096
#define SHA256_HEX  65 /* 64 hex digits and the terminating NUL */

void hd_download_options_defaults(hd_download_options *opt) {
    opt->connect_timeout_s = 10;
    opt->low_speed_bytes = 1024;
    opt->low_speed_time_s = 30;
    opt->max_download_bytes = (uint64_t)256 << 20;
    opt->max_file_bytes = (uint64_t)1 << 30;
}

int hd_download_available(void) {
#ifdef HD_HAVE_CURL
    return 1;
#else
    return 0;
#endif
}

#ifndef HD_HAVE_CURL

int hd_download_url(const char *url, const char *dest_path, const hd_download_options *opt) {
    (void)dest_path;
    (void)opt;
    return hd_fail(
        "%s: cannot download: hd-gpu was built without libcurl or OpenSSL's libcrypto (install "
        "libcurl4-openssl-dev and libssl-dev and rebuild, or fetch the files with scripts/fetch-mnist)",
        url);
}

int hd_download_verified(const char *const *mirrors, int n_mirrors, const char *name,
                         const char *expected_sha256_hex, const char *dest_dir,
                         const hd_download_options *opt) {
    (void)mirrors;
    (void)n_mirrors;
    (void)expected_sha256_hex;
    (void)dest_dir;
    (void)opt;
    return hd_fail(
        "%s: cannot download: hd-gpu was built without libcurl or OpenSSL's libcrypto (install "
        "libcurl4-openssl-dev and libssl-dev and rebuild, or fetch the files with scripts/fetch-mnist)",
        name);
}

#else

static int write_all(int fd, const void *data, size_t size) {
    const uint8_t *p = data;
    while (size > 0) {
        ssize_t n = write(fd, p, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        size -= (size_t)n;
    }
    return 0;
}

/* A temp file "DIR/.NAME.part-XXXXXX" next to where NAME will live. */
static int make_temp(const char *dir, const char *name, char *path, size_t path_len) {
    int len = snprintf(path, path_len, "%s/.%s.part-XXXXXX", dir, name);
    if (len < 0 || (size_t)len >= path_len)
        return hd_fail("%s/%s: path too long", dir, name);
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return hd_fail("%s: cannot create temp file: %s", path, strerror(errno));
    return fd;
}

/* fsync, make world-readable like an ordinary file, rename to final, fsync the directory. */
static int commit_file(int fd, const char *temp_path, const char *final_path, const char *dir) {
    if (fchmod(fd, 0644) != 0 || fsync(fd) != 0)
        return hd_fail("%s: cannot sync: %s", temp_path, strerror(errno));
    if (rename(temp_path, final_path) != 0)
        return hd_fail("%s: cannot rename into place: %s", final_path, strerror(errno));
    int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
        fsync(dir_fd);
        close(dir_fd);
    }
    return 0;
}

typedef struct {
    int fd;
    uint64_t written, limit;
    int too_big, write_failed;
} body_sink;

static size_t sink_write(char *data, size_t size, size_t nmemb, void *user) {
    body_sink *sink = user;
    size_t bytes = size * nmemb;
    if (sink->written + bytes > sink->limit) {
        sink->too_big = 1;
        return 0;
    }
    if (write_all(sink->fd, data, bytes) != 0) {
        sink->write_failed = errno ? errno : EIO;
        return 0;
    }
    sink->written += bytes;
    return bytes;
}

enum { FETCH_OK = 0, FETCH_FAILED = -1, FETCH_NOT_FOUND = -2 };

/* GETs url into fd (from offset 0, which must be empty). FETCH_NOT_FOUND for HTTP 404/410. */
static int fetch_to_fd(const char *url, int fd, const hd_download_options *opt) {
    CURL *curl = curl_easy_init();
    if (!curl)
        return hd_fail("%s: curl_easy_init failed", url);
    char curl_message[CURL_ERROR_SIZE] = "";
    body_sink sink = {fd, 0, opt->max_download_bytes, 0, 0};
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_message);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, opt->connect_timeout_s);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, opt->low_speed_bytes);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, opt->low_speed_time_s);
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)opt->max_download_bytes);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "hd-gpu/" HD_VERSION);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    CURLcode rc = curl_easy_perform(curl);
    long http_code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http_code);
    curl_easy_cleanup(curl);
    if (rc == CURLE_OK)
        return FETCH_OK;
    if (sink.too_big || rc == CURLE_FILESIZE_EXCEEDED)
        return hd_fail("%s: response larger than the %" PRIu64 "-byte limit", url, opt->max_download_bytes);
    if (sink.write_failed)
        return hd_fail("%s: cannot write the download: %s", url, strerror(sink.write_failed));
    if (rc == CURLE_HTTP_RETURNED_ERROR) {
        hd_fail("%s: HTTP %ld", url, http_code);
        return http_code == 404 || http_code == 410 ? FETCH_NOT_FOUND : FETCH_FAILED;
    }
    return hd_fail("%s: download failed: %s", url, curl_message[0] ? curl_message : curl_easy_strerror(rc));
}

int hd_download_url(const char *url, const char *dest_path, const hd_download_options *opt) {
    hd_download_options defaults;
    if (!opt) {
        hd_download_options_defaults(&defaults);
        opt = &defaults;
    }
    char dir[HD_PATH_MAX], base[HD_PATH_MAX], temp[HD_PATH_MAX];
    if (strlen(dest_path) >= sizeof dir)
        return hd_fail("%s: path too long", dest_path);
    snprintf(dir, sizeof dir, "%s", dest_path);
    snprintf(base, sizeof base, "%s", dest_path);
    const char *dir_name = dirname(dir), *base_name = basename(base);
    int fd = make_temp(dir_name, base_name, temp, sizeof temp);
    if (fd < 0)
        return -1;
    int rc = fetch_to_fd(url, fd, opt) == FETCH_OK ? 0 : -1;
    if (rc == 0)
        rc = commit_file(fd, temp, dest_path, dir_name);
    close(fd);
    if (rc != 0)
        unlink(temp);
    return rc;
}

/* zlib's message without the "<fd:N>: " it puts in front for a gzdopen'ed stream. */
static const char *gz_message(const char *msg) {
    const char *rest = msg && strncmp(msg, "<fd:", 4) == 0 ? strstr(msg, ">: ") : NULL;
    return rest ? rest + 3 : msg ? msg : "unknown error";
}

/* Copies fd_in (from its start) to fd_out, gunzipping if it starts with 1f 8b, hashing what is written.
 * *plain_input is 1 when fd_in is not gzip: it is hashed where it is and nothing is written to fd_out. */
static int unpack_and_hash(const char *label, int fd_in, int fd_out, uint64_t limit, char hex[SHA256_HEX],
                           int *plain_input) {
    uint8_t magic[2] = {0, 0};
    ssize_t head = pread(fd_in, magic, 2, 0);
    *plain_input = !(head == 2 && magic[0] == 0x1f && magic[1] == 0x8b);
    if (lseek(fd_in, 0, SEEK_SET) != 0)
        return hd_fail("%s: cannot rewind the download: %s", label, strerror(errno));
    int read_fd = dup(fd_in);
    if (read_fd < 0)
        return hd_fail("%s: dup failed: %s", label, strerror(errno));
    gzFile gz = gzdopen(read_fd, "rb"); /* reads plain files unchanged */
    if (!gz) {
        close(read_fd);
        return hd_fail("%s: cannot open the download", label);
    }
    gzbuffer(gz, 1u << 18);
    /* SHA-256 from OpenSSL's libcrypto (EVP picks SHA-NI or AVX2 code where the CPU has it). */
    EVP_MD_CTX *sha = EVP_MD_CTX_new();
    static const size_t chunk = 1u << 16;
    uint8_t *buf = hd_malloc(chunk);
    uint64_t total = 0;
    int rc = buf ? 0 : -1;
    if (rc == 0 && (!sha || EVP_DigestInit_ex(sha, EVP_sha256(), NULL) != 1))
        rc = hd_fail("%s: cannot start SHA-256 (OpenSSL's EVP_DigestInit failed)", label);
    while (rc == 0) {
        int n = gzread(gz, buf, (unsigned)chunk);
        int err = Z_OK;
        const char *msg = gzerror(gz, &err);
        if (n < 0 || (err != Z_OK && err != Z_STREAM_END)) {
            rc = hd_fail("%s: bad gzip data (corrupt or truncated .gz): %s", label, gz_message(msg));
            break;
        }
        if (n == 0)
            break;
        total += (uint64_t)n;
        if (total > limit) {
            rc = hd_fail("%s: decompresses to more than the %" PRIu64 "-byte limit", label, limit);
            break;
        }
        if (EVP_DigestUpdate(sha, buf, (size_t)n) != 1) {
            rc = hd_fail("%s: SHA-256 failed (OpenSSL's EVP_DigestUpdate)", label);
            break;
        }
        if (!*plain_input && write_all(fd_out, buf, (size_t)n) != 0)
            rc = hd_fail("%s: cannot write the uncompressed file: %s", label, strerror(errno));
    }
    free(buf);
    gzclose(gz);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    if (rc == 0 && (EVP_DigestFinal_ex(sha, digest, &digest_len) != 1 || digest_len != 32))
        rc = hd_fail("%s: SHA-256 failed (OpenSSL's EVP_DigestFinal)", label);
    EVP_MD_CTX_free(sha);
    hex[0] = '\0';
    for (unsigned int i = 0; rc == 0 && i < digest_len; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    return rc;
}

/* One URL: fetch, unpack, verify, rename into dest_dir/name. Returns FETCH_*. */
static int try_url(const char *url, const char *name, const char *expected, const char *dest_dir,
                   const hd_download_options *opt) {
    char download_path[HD_PATH_MAX], plain_path[HD_PATH_MAX], final_path[HD_PATH_MAX];
    int len = snprintf(final_path, sizeof final_path, "%s/%s", dest_dir, name);
    if (len < 0 || (size_t)len >= sizeof final_path)
        return hd_fail("%s/%s: path too long", dest_dir, name);
    int download_fd = make_temp(dest_dir, name, download_path, sizeof download_path);
    if (download_fd < 0)
        return FETCH_FAILED;
    int plain_fd = make_temp(dest_dir, name, plain_path, sizeof plain_path);
    if (plain_fd < 0) {
        close(download_fd);
        unlink(download_path);
        return FETCH_FAILED;
    }
    int rc = fetch_to_fd(url, download_fd, opt);
    char got[SHA256_HEX] = "";
    int plain_input = 0;
    if (rc == FETCH_OK &&
        unpack_and_hash(url, download_fd, plain_fd, opt->max_file_bytes, got, &plain_input) != 0)
        rc = FETCH_FAILED;
    if (rc == FETCH_OK && strcmp(got, expected) != 0)
        rc = hd_fail("%s from %s: SHA-256 mismatch: expected %s, got %s", name, url, expected, got);
    if (rc == FETCH_OK) {
        int keep_fd = plain_input ? download_fd : plain_fd;
        const char *keep_path = plain_input ? download_path : plain_path;
        rc = commit_file(keep_fd, keep_path, final_path, dest_dir) == 0 ? FETCH_OK : FETCH_FAILED;
    }
    close(download_fd);
    close(plain_fd);
    unlink(download_path); /* no-op for whichever was renamed away */
    unlink(plain_path);
    return rc;
}

static int normalize_hex(const char *in, char out[SHA256_HEX]) {
    if (!in || strlen(in) != 64)
        return -1;
    for (int i = 0; i < 64; i++) {
        if (!isxdigit((unsigned char)in[i]))
            return -1;
        out[i] = (char)tolower((unsigned char)in[i]);
    }
    out[64] = '\0';
    return 0;
}

int hd_download_verified(const char *const *mirrors, int n_mirrors, const char *name,
                         const char *expected_sha256_hex, const char *dest_dir,
                         const hd_download_options *opt) {
    hd_download_options defaults;
    if (!opt) {
        hd_download_options_defaults(&defaults);
        opt = &defaults;
    }
    char expected[SHA256_HEX];
    if (normalize_hex(expected_sha256_hex, expected) != 0)
        return hd_fail("%s: expected SHA-256 is not 64 hex digits", name);
    if (n_mirrors <= 0 || !mirrors)
        return hd_fail("%s: no mirrors to download from", name);
    if (hd_mkdir_p(dest_dir) != 0)
        return -1;
    char problem[1024] = ""; /* the first failure other than "not found": the most telling one */
    char last[1024] = "";    /* the latest failure (copied: hd_fail must not read its own buffer) */
    int tried = 0;
    for (int m = 0; m < n_mirrors; m++) {
        const char *base = mirrors[m];
        size_t base_len = strlen(base);
        const char *slash = base_len > 0 && base[base_len - 1] == '/' ? "" : "/";
        for (int plain = 0; plain < 2; plain++) {
            char url[HD_PATH_MAX];
            int len = snprintf(url, sizeof url, "%s%s%s%s", base, slash, name, plain ? "" : ".gz");
            if (len < 0 || (size_t)len >= sizeof url)
                continue;
            tried++;
            int rc = try_url(url, name, expected, dest_dir, opt);
            if (rc == FETCH_OK)
                return 0;
            snprintf(last, sizeof last, "%s", hd_last_error());
            if (rc != FETCH_NOT_FOUND && !problem[0])
                snprintf(problem, sizeof problem, "%s", last);
        }
    }
    if (problem[0])
        return hd_fail("%s: no good copy from %d URL%s: %s", name, tried, tried == 1 ? "" : "s", problem);
    return hd_fail("%s: not found on any mirror (%d URL%s tried, last %s)", name, tried,
                   tried == 1 ? "" : "s", last);
}

#endif
