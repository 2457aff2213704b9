/* serve_api_test.c: `hd-gpu serve` through its HTTP API, with libcurl (and raw sockets where a client
 * must misbehave) on 127.0.0.1. The real program is started with --port 0 and the URL it prints.
 *   serve_api_test HD_GPU_BINARY MODEL_DIR MNIST_DIR HANDDRAWN_DIR
 * Good requests: MNIST test images as 784 raw bytes and as PNG files, and the hand-drawn PNGs, each
 * answered with the probabilities this process computes for the same input (hd_digit_image_load, the
 * checkpoint on the CPU backend) and the label MNIST gives for most. Bad requests, each followed by a
 * good one that must be answered: a declared body over --max-body (413 before the body is sent), a
 * bigger body, a chunked one growing past the limit (connection closed), undecodable bodies (400 JSON),
 * a PNG claiming huge dimensions (400, predict's screen), wrong methods (405), unknown paths (404), a
 * stalled client (closed after --timeout), more connections than --max-connections. Then concurrent
 * clients, /healthz's counters against the requests made, and SIGTERM when idle (to the process, and to
 * a thread other than the main one), and SIGINT under load to a server started with it blocked: a clean
 * exit 0. Last, a second stop signal while the first is handled: the end by that signal, at once. */
#include "check.h"
#include "hd/backend.h"
#include "hd/common.h"
#include "hd/dataset_split.h"
#include "hd/digit_image.h"
#include "hd/idx.h"
#include "hd/model.h"
#include "hd/model_load.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#define MAX_BODY_KIB    256
#define TIMEOUT_S       3 /* above the 1.2 s the connection-limit test needs its idle connections open */
#define MAX_CONNECTIONS 8
#define HTTP_THREADS    4
#define N_MNIST         40
#define N_CLIENTS       6
#define CLIENT_REQUESTS 12
#define PROB_ATOL       2e-5 /* batched vs one-image forward: OpenBLAS rounds rows of a batch by an ulp */

static char base_url[256];
static int port;
static pid_t server_pid;
static FILE *server_out;
static hd_model model;   /* the reference, on the CPU backend */
static long predicts_ok; /* 200 answers of /api/predict, to compare with /healthz */
static int
    expected_label[N_MNIST]; /* the reference's label of each MNIST image, for the concurrent clients */
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- the server ---- */

/* signals_blocked: the server starts with SIGINT and SIGTERM blocked, as a parent that takes them with
 * sigwait may leave them for its children: it must still stop on them. */
static int start_server(const char *binary, const char *model_dir, int signals_blocked) {
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    server_pid = fork();
    if (server_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* a test that dies leaves no server behind */
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        char max_body[32], timeout[32], conns[32], threads[32];
        snprintf(max_body, sizeof max_body, "%d", MAX_BODY_KIB);
        snprintf(timeout, sizeof timeout, "%d", TIMEOUT_S);
        snprintf(conns, sizeof conns, "%d", MAX_CONNECTIONS);
        snprintf(threads, sizeof threads, "%d", HTTP_THREADS);
        /* OpenBLAS (pthreads) starts its pool before main: a thread besides the main one that does not
         * block the stop signals, for stop_server_by(..., 1). */
        setenv("OPENBLAS_NUM_THREADS", "2", 1);
        sigset_t stop;
        sigemptyset(&stop);
        sigaddset(&stop, SIGINT);
        sigaddset(&stop, SIGTERM);
        sigprocmask(signals_blocked ? SIG_BLOCK : SIG_UNBLOCK, &stop, NULL);
        execl(binary, binary, "serve", "--model", model_dir, "--port", "0", "--device", "cpu", "--quiet",
              "--max-body", max_body, "--timeout", timeout, "--max-connections", conns, "--http-threads",
              threads, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    server_out = fdopen(fds[0], "r");
    char line[4096];
    while (server_out && fgets(line, sizeof line, server_out)) {
        if (sscanf(line, "listening on http://127.0.0.1:%d/", &port) == 1) {
            snprintf(base_url, sizeof base_url, "http://127.0.0.1:%d", port);
            printf("server: %s", line);
            return 0;
        }
    }
    return -1;
}

/* ---- HTTP through libcurl ---- */

typedef struct {
    char *data;
    size_t size;
} buffer;

static size_t collect(char *ptr, size_t size, size_t n, void *user) {
    buffer *b = user;
    char *grown = realloc(b->data, b->size + size * n + 1);
    if (!grown)
        return 0;
    memcpy(grown + b->size, ptr, size * n);
    b->data = grown;
    b->size += size * n;
    b->data[b->size] = '\0';
    return size * n;
}

typedef struct {
    long status; /* 0: no answer */
    CURLcode curl;
    json_t *json; /* NULL when the body is not JSON */
    buffer body;
    char allow[64];
} answer;

static size_t header_line(char *ptr, size_t size, size_t n, void *user) {
    answer *a = user;
    size_t len = size * n;
    if (len > 7 && strncasecmp(ptr, "Allow: ", 7) == 0)
        snprintf(a->allow, sizeof a->allow, "%.*s", (int)(len - 9 > 60 ? 60 : len - 9), ptr + 7);
    return len;
}

/* method NULL: GET, or POST when body is given. content_type NULL: none sent. */
static answer http(const char *method, const char *path, const char *content_type, const void *body,
                   size_t size, int chunked) {
    answer a;
    memset(&a, 0, sizeof a);
    CURL *curl = curl_easy_init();
    char url[512];
    snprintf(url, sizeof url, "%s%s", base_url, path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &a.body);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, header_line);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &a);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    struct curl_slist *headers = NULL;
    char type_header[128];
    if (content_type) {
        snprintf(type_header, sizeof type_header, "Content-Type: %s", content_type);
        headers = curl_slist_append(headers, type_header);
    }
    if (chunked)
        headers = curl_slist_append(headers, "Transfer-Encoding: chunked");
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    if (body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)size);
    }
    if (method)
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    a.curl = curl_easy_perform(curl);
    if (a.curl == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &a.status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    if (a.body.data)
        a.json = json_loadb(a.body.data, a.body.size, 0, NULL);
    return a;
}

static void answer_free(answer *a) {
    json_decref(a->json);
    free(a->body.data);
}

static const char *error_of(const answer *a) {
    const char *e = a->json ? json_string_value(json_object_get(a->json, "error")) : NULL;
    return e ? e : "";
}

/* ---- the reference ---- */

static void reference(const float pixels[HD_DIGIT_PIXELS], float probs[10]) {
    float x[HD_DIGIT_PIXELS], logits[10];
    memcpy(x, pixels, sizeof x);
    hd_normalize_pixels(x, HD_DIGIT_PIXELS, model.input_mean, model.input_std);
    model.be->ops->upload(model.be, model.input, x, sizeof x);
    const float *out = hd_model_forward(&model, 1, 0, 0);
    model.be->ops->download(model.be, logits, out, sizeof logits);
    double top = logits[0], sum = 0;
    for (int c = 1; c < 10; c++)
        top = fmax(top, logits[c]);
    for (int c = 0; c < 10; c++)
        sum += exp(logits[c] - top);
    for (int c = 0; c < 10; c++)
        probs[c] = (float)(exp(logits[c] - top) / sum);
}

static int argmax(const float p[10]) {
    int best = 0;
    for (int c = 1; c < 10; c++)
        if (p[c] > p[best])
            best = c;
    return best;
}

static uint8_t *base64_decode(const char *text, size_t *size) {
    size_t len = strlen(text), n = 0;
    uint8_t *out = malloc(len / 4 * 3 + 3);
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len && text[i] != '='; i++) {
        const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *p = strchr(alphabet, text[i]);
        if (!p) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)(p - alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    *size = n;
    return out;
}

/* A 200 answer whose probabilities are the reference's for `pixels`, whose "preprocessed" is the PNG of
 * pixels, label their argmax. Returns the label, or -1. */
static int check_answer(const answer *a, const float pixels[HD_DIGIT_PIXELS], const char *what) {
    CHECK(a->status == 200, "%s: status %ld (curl %d), expected 200: %s", what, a->status, (int)a->curl,
          a->body.data ? a->body.data : "");
    if (a->status != 200 || !a->json)
        return -1;
    pthread_mutex_lock(&count_lock);
    predicts_ok++;
    pthread_mutex_unlock(&count_lock);
    float want[10], got[10];
    reference(pixels, want);
    json_t *probs = json_object_get(a->json, "probabilities");
    CHECK(json_is_array(probs) && json_array_size(probs) == 10, "%s: probabilities is not an array of 10",
          what);
    double sum = 0;
    for (int c = 0; c < 10; c++) {
        got[c] = (float)json_number_value(json_array_get(probs, (size_t)c));
        sum += got[c];
    }
    CHECK(fabs(sum - 1.0) < 1e-5, "%s: probabilities sum to %.8f", what, sum);
    int ok = 1;
    for (int c = 0; c < 10; c++)
        ok &= fabs((double)got[c] - (double)want[c]) <= PROB_ATOL;
    CHECK(ok, "%s: probabilities differ from the in-process forward pass (class %d: %g vs %g)", what,
          argmax(want), (double)got[argmax(want)], (double)want[argmax(want)]);
    int label = (int)json_integer_value(json_object_get(a->json, "label"));
    CHECK(label == argmax(want), "%s: label %d, the reference says %d", what, label, argmax(want));
    double ms = json_number_value(json_object_get(a->json, "ms"));
    CHECK(ms > 0 && ms < 30000, "%s: ms %g", what, ms);
    const char *png64 = json_string_value(json_object_get(a->json, "preprocessed"));
    size_t png_size = 0, want_size = 0;
    uint8_t *png = png64 ? base64_decode(png64, &png_size) : NULL;
    uint8_t gray[HD_DIGIT_PIXELS];
    for (int i = 0; i < HD_DIGIT_PIXELS; i++)
        gray[i] = (uint8_t)lrintf(fminf(fmaxf(pixels[i], 0.0f), 1.0f) * 255.0f);
    uint8_t *want_png = hd_png_gray_encode(gray, HD_DIGIT_SIDE, HD_DIGIT_SIDE, &want_size);
    CHECK(png && want_png && png_size == want_size && memcmp(png, want_png, png_size) == 0,
          "%s: \"preprocessed\" is not the base64 PNG of the 28x28 input (%zu bytes, expected %zu)", what,
          png_size, want_size);
    free(png);
    free(want_png);
    return label;
}

/* ---- the test data ---- */

static uint8_t *mnist_pixels, *mnist_labels;

static void mnist_float(int i, float pixels[HD_DIGIT_PIXELS]) {
    for (int p = 0; p < HD_DIGIT_PIXELS; p++)
        pixels[p] = mnist_pixels[(size_t)i * HD_DIGIT_PIXELS + p] / 255.0f;
}

static int good_request(const char *after) {
    float pixels[HD_DIGIT_PIXELS];
    mnist_float(0, pixels);
    answer a = http(NULL, "/api/predict", "application/octet-stream", mnist_pixels, HD_DIGIT_PIXELS, 0);
    char what[256];
    snprintf(what, sizeof what, "the good request after %s", after);
    int label = check_answer(&a, pixels, what);
    answer_free(&a);
    return label;
}

/* ---- raw sockets, for clients libcurl will not imitate ---- */

static int connect_raw(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Reads until the server closes or `seconds` pass; returns the bytes read (-1: still open then). */
static long read_until_closed(int fd, char *out, size_t cap, double seconds) {
    size_t n = 0;
    double end = hd_now_seconds() + seconds;
    for (;;) {
        double left = end - hd_now_seconds();
        if (left <= 0)
            return -1;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
            continue;
        ssize_t got = recv(fd, out + n, cap - 1 - n, 0);
        if (got <= 0) {
            out[n] = '\0';
            return (long)n;
        }
        n += (size_t)got;
        if (n >= cap - 1) {
            out[n] = '\0';
            return (long)n;
        }
    }
}

static void test_declared_too_large(void) {
    int fd = connect_raw();
    CHECK(fd >= 0, "connect for the 413 test");
    if (fd < 0)
        return;
    const char *head = "POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                       "Content-Length: 100000000\r\n\r\n0123456789";
    CHECK(send(fd, head, strlen(head), MSG_NOSIGNAL) == (ssize_t)strlen(head), "send the 413 request's head");
    char reply[4096];
    long n = read_until_closed(fd, reply, sizeof reply, 10);
    CHECK(n > 0 && strncmp(reply, "HTTP/1.1 413", 12) == 0,
          "a declared 100 MB body: expected 413 with 10 of its bytes sent, got %.40s",
          n > 0 ? reply : "(nothing)");
    CHECK(n > 0 && strstr(reply, "{\"error\":") && strstr(reply, "--max-body"),
          "the 413 answer names --max-body: %s", n > 0 ? reply : "");
    close(fd);
    good_request("a declared body over the limit");
}

static void test_sent_too_large(void) {
    size_t size = (size_t)MAX_BODY_KIB * 1024 + 1;
    uint8_t *body = malloc(size);
    memset(body, 'x', size);
    answer a = http(NULL, "/api/predict", "image/png", body, size, 0);
    CHECK(a.status == 413 && strstr(error_of(&a), "limit"), "a body one byte over --max-body: %ld %s",
          a.status, error_of(&a));
    answer_free(&a);
    /* without a declared length: the connection is closed once it passes the limit, no 200 */
    a = http(NULL, "/api/predict", "image/png", body, size, 1);
    CHECK(a.status != 200 && a.curl != CURLE_OK,
          "a chunked body over the limit: status %ld, curl %d (expected the "
          "connection closed)",
          a.status, (int)a.curl);
    answer_free(&a);
    free(body);
    good_request("bodies over the limit");
}

static void expect_400(const char *what, const char *type, const void *body, size_t size,
                       const char *phrase) {
    answer a = http(NULL, "/api/predict", type, body, size, 0);
    CHECK(a.status == 400, "%s: status %ld, expected 400", what, a.status);
    CHECK(a.json && strstr(error_of(&a), phrase), "%s: error \"%s\" does not say \"%s\"", what, error_of(&a),
          phrase);
    answer_free(&a);
    good_request(what);
}

/* A PNG that is only a signature, an IHDR claiming w x h, and IEND. */
static size_t png_claiming(uint8_t *out, uint32_t w, uint32_t h) {
    static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    uint8_t ihdr[4 + 4 + 13] = {0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    for (int i = 0; i < 4; i++) {
        ihdr[8 + i] = (uint8_t)(w >> (24 - 8 * i));
        ihdr[12 + i] = (uint8_t)(h >> (24 - 8 * i));
    }
    ihdr[16] = 8; /* bit depth; colour type 0 (grey) */
    uint32_t crc = (uint32_t)crc32(0, ihdr + 4, 17);
    memcpy(out, signature, 8);
    memcpy(out + 8, ihdr, sizeof ihdr);
    for (int i = 0; i < 4; i++)
        out[8 + sizeof ihdr + i] = (uint8_t)(crc >> (24 - 8 * i));
    static const uint8_t iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
    memcpy(out + 8 + sizeof ihdr + 4, iend, sizeof iend);
    return 8 + sizeof ihdr + 4 + sizeof iend;
}

static void test_bad_bodies(const char *handdrawn) {
    expect_400("a text body", "image/png", "hello, not an image", 19, "not a PNG, JPEG, BMP or GIF");
    expect_400("an empty body", "image/png", "", 0, "request body: empty");
    expect_400("783 raw bytes", "application/octet-stream", mnist_pixels, 783, "expected exactly 784");
    uint8_t png[64];
    size_t size = png_claiming(png, 100000, 100000);
    expect_400("a PNG claiming 100000x100000", "image/png", png, size, "too large");
    char *path = test_path_join(handdrawn, "seven.png");
    uint8_t *file;
    size_t file_size;
    if (hd_read_file(path, &file, &file_size) == 0) {
        expect_400("a truncated PNG", "image/png", file, file_size / 3, "request body");
        free(file);
    }
    free(path);
    uint8_t white[HD_DIGIT_PIXELS];
    memset(white, 255, sizeof white);
    size_t blank_size;
    uint8_t *blank = hd_png_gray_encode(white, 28, 28, &blank_size);
    expect_400("a blank image", "image/png", blank, blank_size, "blank image");
    free(blank);
}

static void test_methods_and_paths(void) {
    struct {
        const char *method, *path;
        long status;
        const char *allow;
    } cases[] = {
        {"GET", "/api/predict", 405, "POST"},  {"PUT", "/api/predict", 405, "POST"},
        {"POST", "/", 405, "GET, HEAD"},       {"DELETE", "/healthz", 405, "GET, HEAD"},
        {"GET", "/nope", 404, NULL},           {"GET", "/../etc/passwd", 404, NULL},
        {"GET", "/web/index.html", 404, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        answer a = http(cases[i].method, cases[i].path, NULL, NULL, 0, 0);
        CHECK(a.status == cases[i].status && a.json && *error_of(&a),
              "%s %s: %ld, expected %ld with a JSON error", cases[i].method, cases[i].path, a.status,
              cases[i].status);
        if (cases[i].allow)
            CHECK(strncmp(a.allow, cases[i].allow, strlen(cases[i].allow)) == 0,
                  "%s %s: Allow '%s', expected '%s'", cases[i].method, cases[i].path, a.allow,
                  cases[i].allow);
        answer_free(&a);
        good_request("a wrong method or path");
    }
    /* the page and its contract */
    answer page = http(NULL, "/", NULL, NULL, 0, 0);
    CHECK(page.status == 200 && page.body.data && strstr(page.body.data, "id=\"pad\"") &&
              strstr(page.body.data, "id=\"prediction\"") && strstr(page.body.data, "name=\"viewport\""),
          "GET /: %ld, expected the page with #pad, #prediction and a viewport meta tag", page.status);
    answer_free(&page);
    answer js = http(NULL, "/app.js", NULL, NULL, 0, 0);
    CHECK(js.status == 200 && js.body.data && strstr(js.body.data, "prob-") &&
              strstr(js.body.data, "pointermove"),
          "GET /app.js: %ld", js.status);
    answer_free(&js);
}

static void test_slow_client(void) {
    int fd = connect_raw();
    CHECK(fd >= 0, "connect for the slow client");
    if (fd < 0)
        return;
    const char *head =
        "POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
        "Content-Length: 784\r\n\r\n0123456789";
    CHECK(send(fd, head, strlen(head), MSG_NOSIGNAL) == (ssize_t)strlen(head), "send the slow client's head");
    char reply[4096];
    long n = read_until_closed(fd, reply, sizeof reply, TIMEOUT_S + 8);
    CHECK(n >= 0, "a client that stalls mid-body: still connected %d s after --timeout %d", 8, TIMEOUT_S);
    CHECK(n <= 0 || strncmp(reply, "HTTP/1.1 200", 12) != 0, "a stalled request was answered 200");
    close(fd);
    good_request("a stalled client");
}

static void test_connection_limit(void) {
    int fds[MAX_CONNECTIONS];
    for (int i = 0; i < MAX_CONNECTIONS; i++)
        fds[i] = connect_raw();
    usleep(200 * 1000); /* the server accepts them */
    CURL *curl = curl_easy_init();
    char url[512];
    snprintf(url, sizeof url, "%s/healthz", base_url);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 1000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    buffer sink = {NULL, 0};
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    CHECK(status != 200, "a connection beyond --max-connections %d was served (curl %d)", MAX_CONNECTIONS,
          (int)rc);
    curl_easy_cleanup(curl);
    free(sink.data);
    for (int i = 0; i < MAX_CONNECTIONS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    usleep(200 * 1000);
    good_request("more connections than --max-connections");
}

/* ---- good requests ---- */

static void test_good_images(const char *handdrawn) {
    int correct = 0;
    for (int i = 0; i < N_MNIST; i++) {
        float pixels[HD_DIGIT_PIXELS];
        mnist_float(i, pixels);
        char what[64];
        snprintf(what, sizeof what, "MNIST test image %d (raw bytes)", i);
        answer a = http(NULL, "/api/predict", "application/octet-stream",
                        mnist_pixels + (size_t)i * HD_DIGIT_PIXELS, HD_DIGIT_PIXELS, 0);
        correct += check_answer(&a, pixels, what) == mnist_labels[i];
        answer_free(&a);
        if (i % 4 == 0) { /* the same image as a PNG file: prepared as predict prepares it */
            size_t size;
            uint8_t *png = hd_png_gray_encode(mnist_pixels + (size_t)i * HD_DIGIT_PIXELS, 28, 28, &size);
            char path[64];
            snprintf(what, sizeof what, "MNIST test image %d (PNG)", i);
            snprintf(path, sizeof path, "MNIST image %d", i);
            float prepared[HD_DIGIT_PIXELS];
            CHECK(hd_digit_image_from_memory(png, size, path, prepared) == 0, "%s: %s", what,
                  hd_last_error());
            a = http(NULL, "/api/predict", "image/png", png, size, 0);
            check_answer(&a, prepared, what);
            answer_free(&a);
            free(png);
        }
    }
    printf("MNIST test images 0..%d: %d right by their labels\n", N_MNIST - 1, correct);
    CHECK(correct >= N_MNIST * 3 / 4, "only %d of %d MNIST test images recognised", correct, N_MNIST);
    const char *names[] = {"zero.png", "one.png", "three.png", "four.png", "seven.png"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *path = test_path_join(handdrawn, names[i]);
        uint8_t *file;
        size_t size;
        float prepared[HD_DIGIT_PIXELS];
        if (hd_read_file(path, &file, &size) == 0 && hd_digit_image_load(path, prepared) == 0) {
            answer a = http(NULL, "/api/predict", "image/png", file, size, 0);
            int label = check_answer(&a, prepared, names[i]);
            printf("%s: %d\n", names[i], label);
            answer_free(&a);
            free(file);
        } else {
            CHECK(0, "%s: %s", path, hd_last_error());
        }
        free(path);
    }
}

/* One concurrent client: its requests, and what came back (checked by the main thread: CHECK is not
 * thread-safe). */
typedef struct {
    int id, requests, answered, wrong_label, unexpected; /* unexpected: a status but 200 and 503 */
    long last_status;
} client_run;

static void *client(void *arg) {
    client_run *c = arg;
    for (int r = 0; r < c->requests; r++) {
        int i = (c->id * c->requests + r) % N_MNIST;
        answer a = http(NULL, "/api/predict", "application/octet-stream",
                        mnist_pixels + (size_t)i * HD_DIGIT_PIXELS, HD_DIGIT_PIXELS, 0);
        if (a.status == 200) {
            c->answered++;
            pthread_mutex_lock(&count_lock);
            predicts_ok++;
            pthread_mutex_unlock(&count_lock);
            json_int_t label = json_integer_value(json_object_get(a.json, "label"));
            c->wrong_label += label != expected_label[i];
        } else {
            c->last_status = a.status;
            c->unexpected += a.status != 503 && a.status != 0;
        }
        answer_free(&a);
    }
    return NULL;
}

static int mnist_answers_match(void) {
    /* after the concurrent clients, each image still gets the reference's answer */
    int ok = 0;
    for (int i = 0; i < 4; i++) {
        float pixels[HD_DIGIT_PIXELS];
        mnist_float(i, pixels);
        answer a = http(NULL, "/api/predict", "application/octet-stream",
                        mnist_pixels + (size_t)i * HD_DIGIT_PIXELS, HD_DIGIT_PIXELS, 0);
        ok += check_answer(&a, pixels, "after the concurrent clients") >= 0;
        answer_free(&a);
    }
    return ok;
}

static void test_concurrent_clients(void) {
    /* the label each image must get, from the reference, before the clients start */
    for (int i = 0; i < N_MNIST; i++) {
        float pixels[HD_DIGIT_PIXELS], probs[10];
        mnist_float(i, pixels);
        reference(pixels, probs);
        expected_label[i] = argmax(probs);
    }
    pthread_t threads[N_CLIENTS];
    client_run runs[N_CLIENTS];
    for (int i = 0; i < N_CLIENTS; i++) {
        memset(&runs[i], 0, sizeof runs[i]);
        runs[i].id = i;
        runs[i].requests = CLIENT_REQUESTS;
        pthread_create(&threads[i], NULL, client, &runs[i]);
    }
    for (int i = 0; i < N_CLIENTS; i++) {
        pthread_join(threads[i], NULL);
        CHECK(runs[i].answered == CLIENT_REQUESTS,
              "client %d: %d of %d requests answered 200 (last status %ld)", i, runs[i].answered,
              CLIENT_REQUESTS, runs[i].last_status);
        CHECK(runs[i].wrong_label == 0, "client %d: %d answers with another label than the reference's", i,
              runs[i].wrong_label);
    }
    CHECK(mnist_answers_match() == 4, "answers after the concurrent clients");
}

static void test_health(void) {
    answer a = http(NULL, "/healthz", NULL, NULL, 0, 0);
    CHECK(a.status == 200 && a.json, "GET /healthz: %ld", a.status);
    if (!a.json) {
        answer_free(&a);
        return;
    }
    CHECK(strcmp(json_string_value(json_object_get(a.json, "status")), "ok") == 0, "healthz status");
    json_t *m = json_object_get(a.json, "model");
    CHECK((size_t)json_integer_value(json_object_get(m, "parameters")) == model.param_count,
          "healthz parameters %lld, the checkpoint has %zu",
          (long long)json_integer_value(json_object_get(m, "parameters")), model.param_count);
    CHECK(strcmp(json_string_value(json_object_get(m, "spec")), model.spec_text) == 0, "healthz spec");
    /* The classes the page draws bars for: the model's count, named by number when it has no names. */
    json_t *names = json_object_get(m, "class_names");
    CHECK(json_integer_value(json_object_get(m, "classes")) == model.classes &&
              json_array_size(names) == (size_t)model.classes,
          "healthz classes %lld and %zu names, the model has %d",
          (long long)json_integer_value(json_object_get(m, "classes")), json_array_size(names),
          model.classes);
    for (size_t c = 0; c < json_array_size(names); c++) {
        char want[24];
        snprintf(want, sizeof want, "%zu", c);
        const char *got = json_string_value(json_array_get(names, c));
        CHECK(got && strcmp(got, want) == 0, "class %zu named %s", c, got ? got : "(not a string)");
    }
    double accuracy = json_number_value(json_object_get(m, "test_accuracy"));
    CHECK(accuracy > 0.5 && accuracy <= 1.0, "healthz test_accuracy %g (the run's results.txt)", accuracy);
    CHECK(strncmp(json_string_value(json_object_get(a.json, "device")), "cpu", 3) == 0, "healthz device");
    json_t *b = json_object_get(a.json, "batching");
    long long requests = json_integer_value(json_object_get(b, "requests"));
    long long batches = json_integer_value(json_object_get(b, "batches"));
    long long largest = json_integer_value(json_object_get(b, "largest_batch"));
    printf("healthz: %lld requests in %lld forward passes, the largest batch %lld\n", requests, batches,
           largest);
    CHECK(requests == predicts_ok, "healthz counts %lld requests, the test had %ld answered", requests,
          predicts_ok);
    CHECK(batches >= 1 && batches <= requests && largest >= 1 && largest <= N_CLIENTS,
          "healthz batches %lld, largest %lld (at most one request per client at a time)", batches, largest);
    answer_free(&a);
}

/* Waits (up to `seconds`) for the server to end; 0 when it did not. */
static pid_t wait_server(int *status, double seconds) {
    double end = hd_now_seconds() + seconds;
    pid_t done = 0;
    while ((done = waitpid(server_pid, status, WNOHANG)) == 0 && hd_now_seconds() < end)
        usleep(50 * 1000);
    if (done == 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, status, 0);
    }
    return done;
}

/* The kernel hands a process-directed signal to any thread that does not block it: the main thread, or
 * one that a library started before main (OpenBLAS's pool). This finds such a thread other than the main
 * one, so that a test can send the signal there, as the kernel may (a flake once: only the main thread
 * waited for it). 0 when the server has none. */
static pid_t thread_taking(int signo) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)server_pid);
    DIR *dir = opendir(path);
    pid_t found = 0;
    for (struct dirent *e; dir && !found && (e = readdir(dir));) {
        pid_t tid = (pid_t)atoi(e->d_name);
        if (tid <= 0 || tid == server_pid)
            continue;
        char status_path[96], line[256];
        snprintf(status_path, sizeof status_path, "%s/%d/status", path, (int)tid);
        FILE *f = fopen(status_path, "r");
        unsigned long long blocked = ~0ULL;
        while (f && fgets(line, sizeof line, f))
            if (sscanf(line, "SigBlk: %llx", &blocked) == 1)
                break;
        if (f)
            fclose(f);
        if (!(blocked & (1ULL << (signo - 1))))
            found = tid;
    }
    if (dir)
        closedir(dir);
    return found;
}

/* Sends signo to the server (to_thread: to a thread other than the main one that takes it, where there is
 * one) and expects a clean exit 0 that says so. */
static void stop_server_by(int signo, int to_thread) {
    const char *name = signo == SIGINT ? "SIGINT" : "SIGTERM";
    pid_t tid = to_thread ? thread_taking(signo) : 0;
    if (to_thread && tid)
        printf("%s to a thread other than the server's main one\n", name);
    else if (to_thread) /* an OpenBLAS without its own pool (OpenMP's starts no thread before main) */
        printf("SKIPPED: %s to a thread other than the main one: the server has none that takes it; "
               "sent to the process\n",
               name);
    if (tid)
        CHECK(syscall(SYS_tgkill, server_pid, tid, signo) == 0, "%s to thread %d", name, (int)tid);
    else
        CHECK(kill(server_pid, signo) == 0, "%s", name);
    int status = 0;
    pid_t done = wait_server(&status, 20);
    CHECK(done == server_pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "hd-gpu serve after %s: expected exit 0 within 20 s (status %d)", name, status);
    char line[1024];
    int said = 0;
    while (fgets(line, sizeof line, server_out))
        said |= strstr(line, name) && strstr(line, ": stopping");
    CHECK(said, "hd-gpu serve did not say it was stopping on %s", name);
    fclose(server_out);
}

static void stop_server(int signo) {
    stop_server_by(signo, 0);
}

/* SIGINT (Ctrl-C) while clients keep sending: every request gets 200, 503 or a closed connection, the clients
 * finish, and the server exits 0 (requests waiting for a batch are answered before it stops). This server
 * was started with the stop signals blocked. */
static void test_stop_under_load(const char *binary, const char *model_dir) {
    if (start_server(binary, model_dir, 1) != 0) {
        CHECK(0, "the second hd-gpu serve printed no URL");
        return;
    }
    pthread_t threads[N_CLIENTS];
    client_run runs[N_CLIENTS];
    for (int i = 0; i < N_CLIENTS; i++) {
        memset(&runs[i], 0, sizeof runs[i]);
        runs[i].id = i;
        runs[i].requests = 200;
        pthread_create(&threads[i], NULL, client, &runs[i]);
    }
    usleep(300 * 1000);
    stop_server(SIGINT);
    int answered = 0;
    for (int i = 0; i < N_CLIENTS; i++) {
        pthread_join(threads[i], NULL);
        answered += runs[i].answered;
        CHECK(runs[i].unexpected == 0 && runs[i].wrong_label == 0,
              "stopping under load: client %d got %d answers but 200 and 503 (last %ld), %d wrong labels", i,
              runs[i].unexpected, runs[i].last_status, runs[i].wrong_label);
    }
    printf("stopping under load: %d requests answered before SIGINT took effect\n", answered);
    CHECK(answered > 0, "no request answered before SIGINT");
}

/* The server's state letter in /proc/PID/stat ('T' once SIGSTOP has stopped it), 0 where unreadable. */
static char server_state(void) {
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)server_pid);
    FILE *f = fopen(path, "r");
    char state = 0;
    if (f && fgets(line, sizeof line, f)) {
        const char *after_name = strrchr(line, ')'); /* the name, in parentheses, may hold spaces */
        if (after_name && after_name[1] == ' ')
            state = after_name[2];
    }
    if (f)
        fclose(f);
    return state;
}

/* A second stop signal ends the server at once, by that signal's default action, while the first is still
 * being handled. Two kills of the same signal sent back to back may reach the process as one, so the server
 * is stopped, sent SIGINT and then SIGTERM (two different signals are both kept pending), and continued:
 * the first handled asks for a clean stop, the second must end the process by its signal, not by exit 0. */
static void test_second_signal(const char *binary, const char *model_dir) {
    if (start_server(binary, model_dir, 0) != 0) {
        CHECK(0, "hd-gpu serve (second signal) printed no URL");
        return;
    }
    CHECK(kill(server_pid, SIGSTOP) == 0, "SIGSTOP to the server");
    double end = hd_now_seconds() + 10;
    while (server_state() != 'T' && hd_now_seconds() < end)
        usleep(10 * 1000);
    CHECK(server_state() == 'T', "the server did not stop on SIGSTOP (state %c)", server_state());
    CHECK(kill(server_pid, SIGINT) == 0 && kill(server_pid, SIGTERM) == 0 && kill(server_pid, SIGCONT) == 0,
          "SIGINT, SIGTERM and SIGCONT to the stopped server");
    int status = 0;
    pid_t done = wait_server(&status, 20);
    CHECK(
        done == server_pid && WIFSIGNALED(status) &&
            (WTERMSIG(status) == SIGINT || WTERMSIG(status) == SIGTERM),
        "hd-gpu serve after two stop signals: expected the end by SIGINT or SIGTERM within 20 s (status %d: "
        "%s %d)",
        status, WIFEXITED(status) ? "exit" : "signal",
        WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    fclose(server_out);
}

/* Serving the run's last.safetensors: /healthz has no test accuracy (results.txt's is of best's weights). */
static void test_health_of_last(const char *binary, const char *model_dir) {
    char last[4200];
    snprintf(last, sizeof last, "%s/last.safetensors", model_dir);
    if (start_server(binary, last, 0) != 0) {
        CHECK(0, "hd-gpu serve --model %s printed no URL", last);
        return;
    }
    answer a = http(NULL, "/healthz", NULL, NULL, 0, 0);
    json_t *accuracy = a.json ? json_object_get(json_object_get(a.json, "model"), "test_accuracy") : NULL;
    CHECK(a.status == 200 && accuracy && json_is_null(accuracy),
          "healthz of last.safetensors: status %ld, test_accuracy %s (want null)", a.status,
          !accuracy                ? "absent"
          : json_is_null(accuracy) ? "null"
                                   : "a number");
    answer_free(&a);
    stop_server_by(SIGTERM, 1);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: serve_api_test HD_GPU MODEL_DIR MNIST_DIR HANDDRAWN_DIR\n");
        return 2;
    }
    char images[4096], labels[4096];
    snprintf(images, sizeof images, "%s/t10k-images-idx3-ubyte", argv[3]);
    snprintf(labels, sizeof labels, "%s/t10k-labels-idx1-ubyte", argv[3]);
    int count, rows, cols, n_labels;
    if (access(images, R_OK) != 0) {
        test_skip("no MNIST test set (HD_TEST_DATA_DIR)");
        return test_finish();
    }
    if (hd_idx_read_images(images, &count, &rows, &cols, &mnist_pixels) != 0 ||
        hd_idx_read_labels(labels, &n_labels, &mnist_labels) != 0 || count < N_MNIST || rows != 28 ||
        cols != 28) {
        fprintf(stderr, "serve_api_test: %s\n", hd_last_error());
        return 1;
    }
    hd_cpu_options cpu = {1};
    hd_backend *be = hd_cpu_backend_create(&cpu);
    char model_path[4200];
    snprintf(model_path, sizeof model_path, "%s/best.safetensors", argv[2]);
    if (!be || hd_model_load_checkpoint(&model, be, model_path, 1) != 0) {
        fprintf(stderr, "serve_api_test: %s\n", hd_last_error());
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (start_server(argv[1], argv[2], 0) != 0) {
        CHECK(0, "hd-gpu serve printed no URL");
        return test_finish();
    }
    test_good_images(argv[4]);
    test_bad_bodies(argv[4]);
    test_declared_too_large();
    test_sent_too_large();
    test_methods_and_paths();
    test_slow_client();
    test_connection_limit();
    test_concurrent_clients();
    test_health();
    stop_server(SIGTERM);
    test_stop_under_load(argv[1], argv[2]);
    test_health_of_last(argv[1], argv[2]);
    test_second_signal(argv[1], argv[2]);
    curl_global_cleanup();
    hd_model_destroy(&model);
    hd_backend_destroy(be);
    free(mnist_pixels);
    free(mnist_labels);
    return test_finish();
}
