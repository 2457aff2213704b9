/* test_download.c: hd_download_verified against an HTTP/1.1 server in this process (a thread on an
 * ephemeral 127.0.0.1 port serving fixtures from memory): a good gzipped file is fetched, gunzipped,
 * verified and stored; a corrupted copy, a corrupt gzip and a truncated response are refused and leave
 * nothing behind; 404s fall through to the next URL; redirects are followed; plain files are accepted.
 * Every wait is bounded (poll timeouts, a server deadline, curl timeouts). Skipped without libcurl. */
#include "check.h"
#include "hd/common.h"
#include "hd/download.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define NAME        "tiny-images-idx3-ubyte"
#define MAX_ROUTES  16
#define MAX_LOGGED  64
#define SERVER_LIFE 60.0 /* seconds: the server thread ends by itself after this */

typedef struct {
    char path[128];
    int status;          /* 200, 404, 302 */
    const uint8_t *body; /* for 200 */
    size_t size;
    size_t send_bytes;  /* bytes of the body really sent (< size: a truncated response) */
    char location[128]; /* for 302 */
} route;

typedef struct {
    int listen_fd, port;
    route routes[MAX_ROUTES];
    int n_routes;
    atomic_int stop;
    atomic_int n_logged;
    char logged[MAX_LOGGED][128]; /* request paths in arrival order */
    pthread_t thread;
} http_server;

static void send_all(int fd, const void *data, size_t size) {
    const char *p = data;
    while (size > 0) {
        ssize_t n = send(fd, p, size, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        p += n;
        size -= (size_t)n;
    }
}

static void serve_one(http_server *s, int fd) {
    char request[4096];
    size_t used = 0;
    double deadline = hd_now_seconds() + 2.0;
    while (used < sizeof request - 1 && hd_now_seconds() < deadline) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, 200) <= 0)
            continue;
        ssize_t n = recv(fd, request + used, sizeof request - 1 - used, 0);
        if (n <= 0)
            break;
        used += (size_t)n;
        request[used] = '\0';
        if (strstr(request, "\r\n\r\n"))
            break;
    }
    request[used] = '\0';
    char path[128] = "";
    if (sscanf(request, "GET %127s HTTP/1.1", path) != 1)
        return;
    int slot = atomic_load(&s->n_logged);
    if (slot < MAX_LOGGED) {
        snprintf(s->logged[slot], sizeof s->logged[slot], "%s", path);
        atomic_store(&s->n_logged, slot + 1);
    }
    const route *r = NULL;
    for (int i = 0; i < s->n_routes; i++)
        if (strcmp(s->routes[i].path, path) == 0)
            r = &s->routes[i];
    char header[512];
    if (!r || r->status == 404) {
        static const char body[] = "not found\n";
        int n = snprintf(header, sizeof header,
                         "HTTP/1.1 404 Not Found\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                         sizeof body - 1);
        send_all(fd, header, (size_t)n);
        send_all(fd, body, sizeof body - 1);
    } else if (r->status == 302) {
        int n =
            snprintf(header, sizeof header,
                     "HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                     r->location);
        send_all(fd, header, (size_t)n);
    } else {
        int n =
            snprintf(header, sizeof header,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     r->size);
        send_all(fd, header, (size_t)n);
        send_all(fd, r->body, r->send_bytes);
    }
}

static void *server_main(void *arg) {
    http_server *s = arg;
    double end = hd_now_seconds() + SERVER_LIFE;
    while (!atomic_load(&s->stop) && hd_now_seconds() < end) {
        struct pollfd pfd = {s->listen_fd, POLLIN, 0};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        int fd = accept(s->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        serve_one(s, fd);
        shutdown(fd, SHUT_RDWR);
        close(fd);
    }
    return NULL;
}

static int server_start(http_server *s) {
    s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->listen_fd < 0)
        return -1;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (bind(s->listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(s->listen_fd, 16) != 0 ||
        getsockname(s->listen_fd, (struct sockaddr *)&addr, &len) != 0) {
        close(s->listen_fd);
        return -1;
    }
    s->port = ntohs(addr.sin_port);
    atomic_store(&s->stop, 0);
    atomic_store(&s->n_logged, 0);
    if (pthread_create(&s->thread, NULL, server_main, s) != 0) {
        close(s->listen_fd);
        return -1;
    }
    return 0;
}

static void server_stop(http_server *s) {
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
}

static void add_route(http_server *s, const char *path, int status, const uint8_t *body, size_t size,
                      size_t send_bytes, const char *location) {
    route *r = &s->routes[s->n_routes++];
    snprintf(r->path, sizeof r->path, "%s", path);
    r->status = status;
    r->body = body;
    r->size = size;
    r->send_bytes = send_bytes;
    snprintf(r->location, sizeof r->location, "%s", location ? location : "");
}

/* gzip of data in memory (via a temp file). */
static uint8_t *gzip_bytes(const char *dir, const uint8_t *data, size_t size, size_t *out_size) {
    char path[4200];
    snprintf(path, sizeof path, "%s/fixture.gz", dir);
    gzFile gz = gzopen(path, "wb");
    if (!gz)
        return NULL;
    int ok = gzwrite(gz, data, (unsigned)size) == (int)size;
    ok = gzclose(gz) == Z_OK && ok;
    uint8_t *bytes = NULL;
    if (!ok || hd_read_file(path, &bytes, out_size) != 0)
        return NULL;
    remove(path);
    return bytes;
}

/* A fresh destination directory per case, under root. */
static void fresh_dest(const char *root, const char *tag, char *dest, size_t len) {
    snprintf(dest, len, "%s/%s", root, tag);
    CHECK(hd_mkdir_p(dest) == 0, "mkdir %s", dest);
}

static void expect_stored(const char *what, const char *dest, const uint8_t *content, size_t size) {
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", dest, NAME);
    uint8_t *got = NULL;
    size_t got_size = 0;
    CHECK(hd_read_file(path, &got, &got_size) == 0, "%s: %s not stored: %s", what, path, hd_last_error());
    CHECK(got && got_size == size && memcmp(got, content, size) == 0,
          "%s: stored file differs (%zu vs %zu bytes)", what, got_size, size);
    free(got);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644, "%s: mode %o", what,
          (unsigned)st.st_mode & 0777);
    CHECK(test_count_entries(dest) == 1, "%s: %d entries in %s (temp files left?)", what,
          test_count_entries(dest), dest);
}

static void expect_refused(const char *what, const char *dest, int entries_before, int rc, const char *word1,
                           const char *word2) {
    const char *msg = hd_last_error();
    CHECK(rc == -1, "%s: must fail", what);
    CHECK(strstr(msg, NAME) != NULL, "%s: message must name the file: %s", what, msg);
    CHECK(strstr(msg, word1) != NULL, "%s: message must say \"%s\": %s", what, word1, msg);
    CHECK(!word2 || strstr(msg, word2) != NULL, "%s: message must say \"%s\": %s", what, word2 ? word2 : "",
          msg);
    CHECK(test_count_entries(dest) == entries_before, "%s: %d entries in %s, expected %d", what,
          test_count_entries(dest), dest, entries_before);
    printf("%-24s -> %s\n", what, msg);
}

int main(void) {
    if (!hd_download_available()) {
        int rc = hd_download_verified(NULL, 0, NAME, "00", "/nonexistent", NULL);
        CHECK(rc == -1 && strstr(hd_last_error(), "without libcurl"), "message: %s", hd_last_error());
        test_skip("built without libcurl");
        return test_finish();
    }
    setenv("no_proxy", "*", 1); /* never send these requests to a proxy */
    char *root = test_make_temp_dir("download");
    CHECK(root != NULL, "temp dir");
    if (!root)
        return test_finish();

    /* The fixture: a small IDX images file, its gzip, a gzip of a one-byte-different copy, a damaged gzip. */
    uint8_t content[16 + 3 * 28 * 28];
    static const uint8_t header[16] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 28, 0, 0, 0, 28};
    memcpy(content, header, 16);
    for (size_t i = 16; i < sizeof content; i++)
        content[i] = (uint8_t)((i * 131) >> 3);
    /* SHA-256 of content and of altered, from Python's hashlib (independent of the code under test). */
    const char *expected = "5b25cccf4e40ce17446119b40ce5e09b48e1fa699a98898cb6e5acc6a1fb9cbe";
    const char *altered_digest = "94e09eabfe0df85eb34fd4c1b498b488c36042e68d3ecb3bfa6fa7ae1d67c317";
    uint8_t altered[sizeof content];
    memcpy(altered, content, sizeof content);
    altered[100] ^= 1;
    size_t gz_size = 0, bad_size = 0;
    uint8_t *gz = gzip_bytes(root, content, sizeof content, &gz_size);
    uint8_t *bad_gz = gzip_bytes(root, altered, sizeof altered, &bad_size);
    CHECK(gz && bad_gz && gz_size > 20, "gzip fixtures");
    if (!gz || !bad_gz)
        return test_finish();
    uint8_t *broken_gz = malloc(gz_size);
    CHECK(broken_gz != NULL, "allocation");
    if (!broken_gz)
        return test_finish();
    memcpy(broken_gz, gz, gz_size);
    broken_gz[gz_size - 8] ^= 0x5a; /* CRC-32 in the trailer */

    static http_server server;
    add_route(&server, "/good/" NAME ".gz", 200, gz, gz_size, gz_size, NULL);
    add_route(&server, "/bad/" NAME ".gz", 200, bad_gz, bad_size, bad_size, NULL);
    add_route(&server, "/badgz/" NAME ".gz", 200, broken_gz, gz_size, gz_size, NULL);
    add_route(&server, "/trunc/" NAME ".gz", 200, gz, gz_size, gz_size / 2, NULL);
    add_route(&server, "/plain/" NAME, 200, content, sizeof content, sizeof content, NULL);
    add_route(&server, "/moved/" NAME ".gz", 302, NULL, 0, 0, "/good/" NAME ".gz");
    /* A million 'a's: FIPS 180-2's long SHA-256 example, hashed across many of the downloader's reads. */
    enum { MILLION = 1000000 };
    uint8_t *million = malloc(MILLION);
    CHECK(million != NULL, "allocation");
    if (!million)
        return test_finish();
    memset(million, 'a', MILLION);
    add_route(&server, "/big/" NAME, 200, million, MILLION, MILLION, NULL);
    CHECK(server_start(&server) == 0, "server start");
    char url[8][128];
    const char *tags[8] = {"good", "bad", "badgz", "trunc", "plain", "moved", "missing", "good/"};
    for (int i = 0; i < 8; i++)
        snprintf(url[i], sizeof url[i], "http://127.0.0.1:%d/%s", server.port, tags[i]);
    const char *good = url[0], *bad = url[1], *badgz = url[2], *trunc = url[3], *plain = url[4],
               *moved = url[5], *missing = url[6], *good_slash = url[7];
    hd_download_options opt;
    hd_download_options_defaults(&opt);
    CHECK(opt.connect_timeout_s == 10 && opt.low_speed_time_s > 0, "default timeouts");
    opt.connect_timeout_s = 5;
    opt.low_speed_bytes = 1;
    opt.low_speed_time_s = 5;
    char dest[4200];

    fresh_dest(root, "good", dest, sizeof dest);
    const char *m_good[1] = {good};
    CHECK(hd_download_verified(m_good, 1, NAME, expected, dest, &opt) == 0, "good: %s", hd_last_error());
    expect_stored("good", dest, content, sizeof content);

    fresh_dest(root, "corrupted", dest, sizeof dest);
    const char *m_bad[1] = {bad};
    expect_refused("corrupted copy", dest, 0, hd_download_verified(m_bad, 1, NAME, expected, dest, &opt),
                   "SHA-256 mismatch", expected);

    /* A bad download never disturbs a file already there. */
    char kept[4300];
    snprintf(kept, sizeof kept, "%s/%s", dest, NAME);
    CHECK(hd_write_file_atomic(kept, "old", 3) == 0, "write old");
    expect_refused("corrupted over old", dest, 1, hd_download_verified(m_bad, 1, NAME, expected, dest, &opt),
                   "SHA-256 mismatch", altered_digest);
    uint8_t *old = NULL;
    size_t old_size = 0;
    CHECK(hd_read_file(kept, &old, &old_size) == 0 && old_size == 3 && memcmp(old, "old", 3) == 0,
          "old file untouched");
    free(old);

    fresh_dest(root, "truncated", dest, sizeof dest);
    const char *m_trunc[1] = {trunc};
    expect_refused("truncated response", dest, 0,
                   hd_download_verified(m_trunc, 1, NAME, expected, dest, &opt), "/trunc/", NULL);

    fresh_dest(root, "badgz", dest, sizeof dest);
    const char *m_badgz[1] = {badgz};
    expect_refused("corrupt gzip", dest, 0, hd_download_verified(m_badgz, 1, NAME, expected, dest, &opt),
                   "gzip", NULL);

    fresh_dest(root, "missing", dest, sizeof dest);
    const char *m_missing[1] = {missing};
    expect_refused("404 everywhere", dest, 0, hd_download_verified(m_missing, 1, NAME, expected, dest, &opt),
                   "not found", "404");

    /* 404s and bad copies fall through to the next mirror; the request log shows the order. */
    fresh_dest(root, "fallthrough", dest, sizeof dest);
    const char *m_chain[4] = {missing, trunc, bad, good_slash};
    int before = atomic_load(&server.n_logged);
    CHECK(hd_download_verified(m_chain, 4, NAME, expected, dest, &opt) == 0, "fallthrough: %s",
          hd_last_error());
    expect_stored("fallthrough", dest, content, sizeof content);
    static const char *const order[] = {"/missing/" NAME ".gz", "/missing/" NAME,   "/trunc/" NAME ".gz",
                                        "/trunc/" NAME,         "/bad/" NAME ".gz", "/bad/" NAME,
                                        "/good/" NAME ".gz"};
    int n_order = (int)(sizeof order / sizeof order[0]);
    CHECK(atomic_load(&server.n_logged) - before == n_order, "%d requests, expected %d",
          atomic_load(&server.n_logged) - before, n_order);
    for (int i = 0; i < n_order && before + i < atomic_load(&server.n_logged); i++)
        CHECK(strcmp(server.logged[before + i], order[i]) == 0, "request %d was %s, expected %s", i,
              server.logged[before + i], order[i]);

    fresh_dest(root, "plain", dest, sizeof dest);
    const char *m_plain[1] = {plain};
    CHECK(hd_download_verified(m_plain, 1, NAME, expected, dest, &opt) == 0, "plain: %s", hd_last_error());
    expect_stored("uncompressed mirror", dest, content, sizeof content);

    fresh_dest(root, "moved", dest, sizeof dest);
    const char *m_moved[1] = {moved};
    CHECK(hd_download_verified(m_moved, 1, NAME, expected, dest, &opt) == 0, "redirect: %s", hd_last_error());
    expect_stored("redirect", dest, content, sizeof content);

    fresh_dest(root, "big", dest, sizeof dest);
    char big_url[128];
    snprintf(big_url, sizeof big_url, "http://127.0.0.1:%d/big", server.port);
    const char *m_big[1] = {big_url};
    CHECK(hd_download_verified(m_big, 1, NAME,
                               "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", dest,
                               &opt) == 0,
          "a million 'a's: %s", hd_last_error());
    expect_stored("a million 'a's", dest, million, MILLION);

    /* A destination directory that does not exist yet is created. */
    snprintf(dest, sizeof dest, "%s/new/sub/dir", root);
    CHECK(hd_download_verified(m_good, 1, NAME, expected, dest, &opt) == 0, "new dir: %s", hd_last_error());
    expect_stored("new directory", dest, content, sizeof content);

    CHECK(hd_download_verified(m_good, 1, NAME, "abc", dest, &opt) == -1 && strstr(hd_last_error(), "64 hex"),
          "a malformed digest is refused: %s", hd_last_error());

    /* hd_download_url stores the bytes as served. */
    char raw_url[256], raw_path[4300];
    snprintf(raw_url, sizeof raw_url, "%s/%s.gz", good, NAME);
    snprintf(raw_path, sizeof raw_path, "%s/raw/copy.gz", root);
    fresh_dest(root, "raw", dest, sizeof dest);
    CHECK(hd_download_url(raw_url, raw_path, &opt) == 0, "download_url: %s", hd_last_error());
    uint8_t *copy = NULL;
    size_t copy_size = 0;
    CHECK(hd_read_file(raw_path, &copy, &copy_size) == 0 && copy_size == gz_size &&
              memcmp(copy, gz, gz_size) == 0,
          "download_url bytes");
    free(copy);
    snprintf(raw_url, sizeof raw_url, "%s/%s.gz", missing, NAME);
    CHECK(hd_download_url(raw_url, raw_path, &opt) == -1 && strstr(hd_last_error(), "HTTP 404"),
          "download_url 404: %s", hd_last_error());
    CHECK(test_count_entries(dest) == 1, "download_url leaves only its file");

    server_stop(&server);
    free(gz);
    free(bad_gz);
    free(broken_gz);
    free(million);
    test_remove_tree(root);
    free(root);
    return test_finish();
}
