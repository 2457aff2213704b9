/* serve_http.c: hd_serve_run (serve.h): the libmicrohttpd daemon of `hd-gpu serve` and its routes:
 *   GET /, /app.js, /style.css   the page, compiled into the program (serve_assets.c): nothing is read
 *                                from disk, so no path can reach a file;
 *   GET /healthz                 JSON: status, model, device, the batcher's counters;
 *   POST /api/predict            an image (or 784 grey bytes) -> JSON answer (serve_json.c).
 * Limits, each answered so that the next request is served: a body over max_body gets 413 as soon as
 * its Content-Length says so (before any of it is read), and a chunked one has its connection closed as
 * soon as it grows past the limit; an undecodable body 400; another method 405 (with Allow); another path
 * 404; an idle or slow connection is closed after timeout_s; at most max_connections at once. Requests
 * run on libmicrohttpd's thread pool; a predict's connection is suspended while its job waits for its
 * batch (serve_batcher.c), so the thread serves other connections meanwhile. SIGINT and SIGTERM wake
 * the main thread (through a pipe its handler writes to), which stops listening, stops the batcher
 * (answering what waits) and then the daemon. */
#include "hd/common.h"
#include "hd/interrupt.h"
#include "hd/json_io.h"
#include "hd/serve.h"

#include <stdio.h>
#include <string.h>

#ifdef HD_HAVE_MHD
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define ROUTE_PREDICT "/api/predict"
#define ROUTE_HEALTH  "/healthz"

typedef struct {
    const hd_serve_config *config;
    hd_batcher *batcher;
    hd_batcher_info info;
    char model_path[4200];
    double test_accuracy; /* from the run's results.txt; -1 when not known */
} server;

/* A request in progress. The answer is given once the request is in (libmicrohttpd closes a connection
 * answered on its first call, before its body could be read), but for a body declared over the limit. */
typedef enum { ROUTE_PAGE, ROUTE_HEALTHZ, ROUTE_API, ROUTE_WRONG_METHOD, ROUTE_NOT_FOUND } route_kind;
typedef struct {
    route_kind kind;
    const hd_serve_asset *asset;
    uint8_t *body; /* ROUTE_API's; any other route's body is counted and dropped */
    size_t size, capacity;
    hd_batcher_job job; /* ROUTE_API's, once its body is in */
    int queued;         /* the job was handed to the batcher (the connection suspended meanwhile) */
    double start;       /* when the body was in */
} request_state;

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *content_type,
                               const void *data, size_t size, enum MHD_ResponseMemoryMode mode,
                               const char *allow) {
    struct MHD_Response *response = MHD_create_response_from_buffer(size, (void *)data, mode);
    if (!response)
        return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (allow)
        MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result rc = MHD_queue_response(conn, status, response);
    MHD_destroy_response(response);
    return rc;
}

static enum MHD_Result respond_json(struct MHD_Connection *conn, unsigned status, char *text,
                                    const char *allow) {
    static const char fallback[] = "{\"error\":\"cannot write the answer (out of memory)\"}";
    if (!text)
        return respond(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json", fallback,
                       sizeof fallback - 1, MHD_RESPMEM_PERSISTENT, NULL);
    return respond(conn, status, "application/json", text, strlen(text), MHD_RESPMEM_MUST_FREE, allow);
}

static enum MHD_Result respond_error(struct MHD_Connection *conn, unsigned status, const char *allow,
                                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum MHD_Result respond_error(struct MHD_Connection *conn, unsigned status, const char *allow,
                                     const char *fmt, ...) {
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    return respond_json(conn, status, hd_serve_error_json(message), allow);
}

static enum MHD_Result respond_health(server *s, struct MHD_Connection *conn) {
    uint64_t requests, batches;
    int largest;
    hd_batcher_stats(s->batcher, &requests, &batches, &largest);
    json_t *accuracy = s->test_accuracy >= 0 ? json_real(s->test_accuracy) : json_null();
    /* The classes the probabilities stand for, in order: the model's names, or the class numbers. */
    json_t *names = json_array();
    for (int c = 0; names && c < s->info.classes; c++) {
        char buf[64];
        json_array_append_new(names, json_string(hd_class_name(s->info.class_names, c, buf, sizeof buf)));
    }
    json_t *root =
        json_pack("{s:s, s:{s:s, s:s, s:I, s:o, s:[i,i,i], s:i, s:o}, s:s, s:f, s:{s:i, s:f, s:I, s:I, s:i}}",
                  "status", "ok", "model", "path", s->model_path, "spec", s->info.spec, "parameters",
                  (json_int_t)s->info.parameters, "test_accuracy", accuracy, "input", 1, HD_DIGIT_SIDE,
                  HD_DIGIT_SIDE, "classes", s->info.classes, "class_names", names, "device", s->info.device,
                  "low_confidence", s->config->low_confidence, "batching", "max_batch", s->config->max_batch,
                  "wait_ms", s->config->batch_wait_ms, "requests", (json_int_t)requests, "batches",
                  (json_int_t)batches, "largest_batch", largest);
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return respond_json(conn, MHD_HTTP_OK, text, NULL);
}

/* The batcher ran the job (or stopped): the connection goes on, and its handler is called again. */
static void job_done(hd_batcher_job *job, void *connection) {
    (void)job;
    MHD_resume_connection(connection);
}

/* A predict whose body is in. First call: decode it, queue it for the batcher and suspend the connection,
 * so that this HTTP thread serves others meanwhile (and a batch can hold more requests than there are
 * HTTP threads). Second call, once the batcher has resumed it: the answer. */
static enum MHD_Result answer_predict(server *s, struct MHD_Connection *conn, request_state *r) {
    if (r->queued) {
        if (r->job.batch == 0)
            return respond_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, NULL, "the server is stopping");
        double ms = 1e3 * (hd_now_seconds() - r->start);
        return respond_json(
            conn, MHD_HTTP_OK,
            hd_serve_predict_json(r->job.probabilities, s->info.classes, r->job.pixels, ms, r->job.batch),
            NULL);
    }
    r->start = hd_now_seconds();
    const char *type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    hd_batcher_expect(s->batcher);
    if (hd_serve_decode_body(type, r->body, r->size, r->job.pixels) != 0) {
        hd_batcher_abandon(s->batcher);
        return respond_error(conn, MHD_HTTP_BAD_REQUEST, NULL, "%s", hd_last_error());
    }
    if (!(r->job.probabilities = hd_malloc((size_t)s->info.classes * sizeof *r->job.probabilities))) {
        hd_batcher_abandon(s->batcher);
        return respond_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "%s", hd_last_error());
    }
    r->job.done = job_done;
    r->job.arg = conn;
    r->queued = 1;
    /* suspended before it is queued: the batcher may resume it as soon as it is */
    MHD_suspend_connection(conn);
    if (hd_batcher_submit(s->batcher, &r->job) != 0) {
        r->job.batch = 0;
        MHD_resume_connection(conn);
    }
    return MHD_YES;
}

static int is_get(const char *method) {
    return strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
}

/* The first call for a request (headers in, no body yet): which route it takes; 413 at once for a
 * predict whose declared length is over the limit. */
static enum MHD_Result begin(server *s, struct MHD_Connection *conn, const char *url, const char *method,
                             void **state) {
    request_state *r = hd_calloc(1, sizeof *r);
    if (!r)
        return MHD_NO;
    *state = r;
    if (strcmp(url, ROUTE_PREDICT) == 0) {
        r->kind = strcmp(method, MHD_HTTP_METHOD_POST) == 0 ? ROUTE_API : ROUTE_WRONG_METHOD;
    } else if (strcmp(url, ROUTE_HEALTH) == 0 || (r->asset = hd_serve_find_asset(url)) != NULL) {
        r->kind = !is_get(method) ? ROUTE_WRONG_METHOD : r->asset ? ROUTE_PAGE : ROUTE_HEALTHZ;
    } else {
        r->kind = ROUTE_NOT_FOUND;
    }
    if (r->kind != ROUTE_API)
        return MHD_YES;
    const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length) {
        char *end;
        errno = 0;
        unsigned long long declared = strtoull(length, &end, 10);
        if (errno || end == length || *end != '\0')
            return respond_error(conn, MHD_HTTP_BAD_REQUEST, NULL, "bad Content-Length: %s", length);
        if (declared > s->config->max_body)
            return respond_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
                                 "a body of %llu bytes is over the limit of %zu (--max-body)", declared,
                                 s->config->max_body);
        if (declared > 0 && !(r->body = hd_malloc((size_t)declared)))
            return MHD_NO;
        r->capacity = (size_t)declared;
    }
    return MHD_YES;
}

/* Appends a piece of the body (or counts it, for a route that takes none). A body that grows past the
 * limit without having declared its length (chunked) closes the connection: libmicrohttpd 0.9.75 takes
 * no answer while a body is coming in, and reading it all to say 413 could take forever. */
static enum MHD_Result receive(server *s, request_state *r, const char *data, size_t *size) {
    size_t n = *size;
    *size = 0;
    if (n > s->config->max_body - r->size)
        return MHD_NO;
    if (r->kind == ROUTE_API && r->size + n > r->capacity) {
        size_t grown = r->capacity ? r->capacity : 65536;
        while (grown < r->size + n)
            grown *= 2;
        if (grown > s->config->max_body)
            grown = s->config->max_body;
        uint8_t *body = realloc(r->body, grown);
        if (!body)
            return MHD_NO;
        r->body = body;
        r->capacity = grown;
    }
    if (r->kind == ROUTE_API)
        memcpy(r->body + r->size, data, n);
    r->size += n;
    return MHD_YES;
}

/* The request is in: its answer. */
static enum MHD_Result finish(server *s, struct MHD_Connection *conn, const char *url, const char *method,
                              request_state *r) {
    switch (r->kind) {
    case ROUTE_PAGE:
        return respond(conn, MHD_HTTP_OK, r->asset->content_type, r->asset->data, r->asset->size,
                       MHD_RESPMEM_PERSISTENT, NULL);
    case ROUTE_HEALTHZ:
        return respond_health(s, conn);
    case ROUTE_API:
        return answer_predict(s, conn, r);
    case ROUTE_WRONG_METHOD: {
        int api = strcmp(url, ROUTE_PREDICT) == 0;
        return respond_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, api ? "POST" : "GET, HEAD",
                             "%s takes %s, not %s", url, api ? "POST" : "GET", method);
    }
    case ROUTE_NOT_FOUND:
    default:
        return respond_error(conn, MHD_HTTP_NOT_FOUND, NULL,
                             "no such path: %s (the API: GET /, GET %s, POST %s)", url, ROUTE_HEALTH,
                             ROUTE_PREDICT);
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **state) {
    (void)version;
    server *s = cls;
    request_state *r = *state;
    if (!r)
        return begin(s, conn, url, method, state);
    if (*upload_data_size > 0)
        return receive(s, r, upload_data, upload_data_size);
    return finish(s, conn, url, method, r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **state,
                         enum MHD_RequestTerminationCode why) {
    (void)cls;
    (void)conn;
    (void)why;
    request_state *r = *state;
    if (r) {
        free(r->body);
        free(r->job.probabilities);
        free(r);
        *state = NULL;
    }
}

/* The run's test accuracy, when the checkpoint is the kept weights (best.safetensors) of a run directory
 * whose results.txt has it: that figure is of those weights, not of last.safetensors or a copy. */
static double run_test_accuracy(const char *model_path) {
    char path[4300];
    const char *slash = strrchr(model_path, '/');
    if (strcmp(slash ? slash + 1 : model_path, "best.safetensors") != 0)
        return -1;
    int dir_len = slash ? (int)(slash - model_path) : 1;
    snprintf(path, sizeof path, "%.*s/results.txt", dir_len, slash ? model_path : ".");
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[512];
    double percent = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "test accuracy %lf%%", &percent) == 1)
            break;
    fclose(f);
    return percent >= 0 && percent <= 100 ? percent / 100 : -1;
}

/* The address to listen on: an IPv4 or IPv6 literal (names are not looked up). */
static int listen_address(const hd_serve_config *c, struct sockaddr_storage *addr, int *ipv6) {
    memset(addr, 0, sizeof *addr);
    struct sockaddr_in *in4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)addr;
    if (inet_pton(AF_INET, c->host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)c->port);
        *ipv6 = 0;
        return 0;
    }
    if (inet_pton(AF_INET6, c->host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)c->port);
        *ipv6 = 1;
        return 0;
    }
    return hd_fail("--host '%s': expected an IPv4 or IPv6 address (127.0.0.1, 0.0.0.0, ::1, ::)", c->host);
}

static int is_loopback(const char *host) {
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0;
}

static struct MHD_Daemon *start_daemon(server *s, const struct sockaddr_storage *addr, int ipv6) {
    const hd_serve_config *c = s->config;
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME | (ipv6 ? MHD_USE_IPv6 : 0);
    return MHD_start_daemon(flags, (uint16_t)c->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, addr,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)c->http_threads,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)c->max_connections,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)c->timeout_s,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
}

/* The stop signals. Threads that the libraries start before main (OpenBLAS's pool) have them unblocked,
 * so a process-directed SIGTERM may land on any of them: a handler, not sigwait in one thread, is what
 * catches it wherever it lands. The first signal's handler writes its number to a pipe that the main
 * thread reads; a second one ends the process at once by its default action, as in `train`
 * (interrupt.c), for a stop that hangs. Only the first handler writes, so the pipe can be closed once the
 * main thread has read its byte. */
static int stop_pipe[2] = {-1, -1};
static atomic_int stop_taken;

static void on_stop_signal(int signo) {
    if (atomic_exchange(&stop_taken, 1))
        hd_interrupt_die_by(signo); /* the second one: end now */
    int saved = errno;
    unsigned char byte = (unsigned char)signo;
    ssize_t ignored = write(stop_pipe[1], &byte, 1);
    (void)ignored;
    errno = saved;
}

/* The pipe (close-on-exec) and the handler for SIGINT and SIGTERM; the actions they replace go to
 * previous[2]. 0, or -1 with errno. */
static int install_stop_signals(struct sigaction previous[2]) {
    if (pipe2(stop_pipe, O_CLOEXEC) != 0)
        return -1;
    atomic_store(&stop_taken, 0);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    /* No SA_RESTART: the main thread's read returns EINTR and reads again. ThreadSanitizer runs a handler
     * only when the call it interrupted returns, and a restarted read never would. */
    action.sa_flags = 0;
    int saved = 0;
    if (sigaction(SIGINT, &action, &previous[0]) != 0) {
        saved = errno;
    } else if (sigaction(SIGTERM, &action, &previous[1]) != 0) {
        saved = errno;
        sigaction(SIGINT, &previous[0], NULL);
    }
    if (saved) {
        close(stop_pipe[0]);
        close(stop_pipe[1]);
        errno = saved;
        return -1;
    }
    return 0;
}

/* Blocks until the first stop signal: its number, or 0 with errno if the pipe cannot be read. */
static int wait_stop_signal(void) {
    unsigned char byte = 0;
    ssize_t n;
    while ((n = read(stop_pipe[0], &byte, 1)) != 1)
        if (n == 0 || errno != EINTR)
            return 0;
    return byte;
}

/* The actions install_stop_signals replaced, and the pipe closed. */
static void remove_stop_signals(const struct sigaction previous[2]) {
    sigaction(SIGINT, &previous[0], NULL);
    sigaction(SIGTERM, &previous[1], NULL);
    close(stop_pipe[0]);
    close(stop_pipe[1]);
}

int hd_serve_run(const hd_serve_config *c) {
    server s;
    memset(&s, 0, sizeof s);
    s.config = c;
    struct sockaddr_storage addr;
    int ipv6 = 0;
    if (hd_resolve_model_path(c->model, s.model_path, sizeof s.model_path) != 0 ||
        listen_address(c, &addr, &ipv6) != 0) {
        fprintf(stderr, "hd-gpu serve: %s\n", hd_last_error());
        return HD_EXIT_RUNTIME;
    }
    s.test_accuracy = run_test_accuracy(s.model_path);
    struct sigaction previous_actions[2];
    if (install_stop_signals(previous_actions) != 0) {
        fprintf(stderr, "hd-gpu serve: cannot set up the stop signals (%s)\n", strerror(errno));
        return HD_EXIT_RUNTIME;
    }

    /* The threads started from here on (the batcher, libmicrohttpd's pool) keep SIGINT and SIGTERM
     * blocked, so their system calls are not interrupted; the main thread unblocks them once they run. */
    sigset_t stop_signals, previous;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, &previous);
    signal(SIGPIPE, SIG_IGN);

    hd_batcher_config bc = {&c->dev, s.model_path, c->max_batch, c->batch_wait_ms / 1e3};
    int rc = hd_batcher_start(&s.batcher, &bc, &s.info);
    if (rc != 0) {
        if (rc == -1)
            fprintf(stderr, "hd-gpu serve: %s\n", hd_last_error());
        pthread_sigmask(SIG_SETMASK, &previous, NULL);
        remove_stop_signals(previous_actions);
        return HD_EXIT_RUNTIME;
    }
    struct MHD_Daemon *daemon = start_daemon(&s, &addr, ipv6);
    if (!daemon) {
        fprintf(stderr, "hd-gpu serve: cannot listen on %s port %d (%s)\n", c->host, c->port,
                errno ? strerror(errno) : "libmicrohttpd could not start");
        hd_batcher_free(s.batcher);
        pthread_sigmask(SIG_SETMASK, &previous, NULL);
        remove_stop_signals(previous_actions);
        return HD_EXIT_RUNTIME;
    }
    const union MHD_DaemonInfo *bound = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    int port = bound ? bound->port : c->port;
    printf("hd-gpu serve: %s (%s, %zu parameters) on %s\n", s.model_path, s.info.spec, s.info.parameters,
           s.info.device);
    if (!is_loopback(c->host))
        printf("hd-gpu serve: listening beyond this machine: anyone who reaches %s port %d can use the model "
               "(no authentication, no TLS)\n",
               c->host, port);
    printf("listening on http://%s%s%s:%d/ (Ctrl-C stops)\n", ipv6 ? "[" : "", c->host, ipv6 ? "]" : "",
           port);
    fflush(stdout);

    /* Unblocked, not the mask as it was: a parent may have started us with them blocked. */
    pthread_sigmask(SIG_UNBLOCK, &stop_signals, NULL);
    int signo = wait_stop_signal();
    if (signo)
        printf("hd-gpu serve: %s: stopping (again to quit at once)\n",
               signo == SIGINT ? "SIGINT" : "SIGTERM");
    else
        printf("hd-gpu serve: cannot wait for a stop signal (%s): stopping\n", strerror(errno));
    fflush(stdout);
    /* No new connections; then the batcher, which answers (and so resumes) every suspended request, since
     * libmicrohttpd must not be stopped with a connection suspended (a request that comes in between on an
     * open connection is answered 503); then the daemon, and only then is the batcher freed. */
    MHD_quiesce_daemon(daemon);
    hd_batcher_stop(s.batcher);
    MHD_stop_daemon(daemon);
    hd_batcher_free(s.batcher);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    remove_stop_signals(previous_actions);
    return HD_EXIT_OK;
}
#else
int hd_serve_run(const hd_serve_config *c) {
    (void)c;
    fprintf(stderr, "hd-gpu serve: built without libmicrohttpd (install libmicrohttpd-dev and rebuild)\n");
    return HD_EXIT_RUNTIME;
}
#endif

void hd_serve_config_defaults(hd_serve_config *c) {
    memset(c, 0, sizeof *c);
    hd_device_options_defaults(&c->dev);
    /* One CPU thread for the forward passes: the HTTP threads decode in parallel, and a 2-thread OpenMP
     * team on a busy CPU waits at every barrier for a descheduled thread (bench/results: p99 650 ms with
     * two threads, 16 ms with one, on a shared 2-core machine). --threads N overrides it. */
    c->dev.threads = 1;
    c->host = "127.0.0.1";
    c->port = 8080;
    c->max_body = (size_t)4 << 20;
    c->timeout_s = 10;
    c->max_connections = 64;
    c->http_threads = 16;
    c->max_batch = 64;
    c->batch_wait_ms = 2.0;
    c->low_confidence = 0.5;
}
