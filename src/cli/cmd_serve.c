/* cmd_serve.c: `hd-gpu serve --model FILE|RUN_DIR [options]`: a web page where a digit drawn with mouse,
 * pen or finger is recognised while it is drawn, and its HTTP API (hd/serve.h, src/serve/). This file is
 * the command line; serve_http.c runs the server. */
#include "hd/cli.h"
#include "hd/common.h"
#include "hd/serve.h"

#include <stdio.h>
#include <string.h>

#define S(s) ((hd_serve_config *)(s))
static int set_model(void *s, const char *v) {
    return S(s)->model = v, 0;
}
static int set_host(void *s, const char *v) {
    return S(s)->host = v, 0;
}
static int set_port(void *s, const char *v) {
    return hd_cli_int(v, 0, 65535, &S(s)->port);
}
static int set_max_body(void *s, const char *v) {
    int kib;
    if (hd_cli_int(v, 1, 1 << 20, &kib) != 0)
        return -1;
    S(s)->max_body = (size_t)kib << 10;
    return 0;
}
static int set_timeout(void *s, const char *v) {
    return hd_cli_int(v, 1, 3600, &S(s)->timeout_s);
}
static int set_max_connections(void *s, const char *v) {
    return hd_cli_int(v, 1, 65536, &S(s)->max_connections);
}
static int set_http_threads(void *s, const char *v) {
    return hd_cli_int(v, 1, 1024, &S(s)->http_threads);
}
static int set_max_batch(void *s, const char *v) {
    return hd_cli_int(v, 1, 4096, &S(s)->max_batch);
}
static int set_batch_wait(void *s, const char *v) {
    return hd_cli_real(v, 0, 1000, &S(s)->batch_wait_ms);
}
static int set_low(void *s, const char *v) {
    return hd_cli_real(v, 0, 1, &S(s)->low_confidence);
}
static int set_quiet(void *s, const char *v) {
    return (void)v, S(s)->dev.quiet = 1, 0;
}
#undef S

static const hd_cli_option serve_options[] = {
    HD_CLI_OPTION("model", "FILE", set_model,
                  "checkpoint written by hd-gpu train, or its run directory (required)"),
    HD_CLI_OPTION("host", "ADDR", set_host,
                  "address to listen on (default 127.0.0.1, this machine only); 0.0.0.0 or ::\n"
                  "lets every machine that reaches this one use the model, without authentication"),
    HD_CLI_OPTION("port", "N", set_port, "TCP port (default 8080; 0: any free port, printed)"),
    HD_CLI_OPTION("max-body", "KIB", set_max_body,
                  "largest request body in KiB (default 4096); a larger one gets 413 unread"),
    HD_CLI_OPTION("timeout", "SECONDS", set_timeout,
                  "close a connection idle or stalled for this long (default 10)"),
    HD_CLI_OPTION("max-connections", "N", set_max_connections, "connections at once (default 64)"),
    HD_CLI_OPTION("http-threads", "N", set_http_threads,
                  "libmicrohttpd's thread pool: requests decoded at once (default 16)"),
    HD_CLI_OPTION("max-batch", "N", set_max_batch, "requests in one forward pass at most (default 64)"),
    HD_CLI_OPTION("batch-wait", "MS", set_batch_wait,
                  "how long a request may wait for others to join its batch (default 2)"),
    HD_CLI_OPTION("low-confidence", "P", set_low,
                  "the page says it is unsure below this probability (default 0.5)"),
    HD_CLI_OPTION("quiet", NULL, set_quiet, "no notice when falling back to the CPU"),
};
static const hd_cli_group serve_groups[] = {
    HD_CLI_GROUP_WHOLE(NULL, serve_options),
    HD_CLI_GROUP("Device:", hd_device_cli_options, hd_serve_config, dev),
};
const hd_cli_command hd_cli_serve = {
    .name = "serve",
    .summary = "a web page that recognises a digit while you draw it (--model FILE)",
    .synopsis = "--model FILE|RUN_DIR [options]",
    .description =
        "Serves a page where a digit drawn with mouse, pen or finger is recognised as it is drawn, and its\n"
        "HTTP API: GET / (the page), GET /healthz (JSON: model, device), POST /api/predict (an image file,\n"
        "or 784 grey bytes as application/octet-stream) -> {\"label\", \"probabilities\", \"preprocessed\"\n"
        "(base64 PNG of the 28x28 input), \"ms\"}. Images are prepared as predict prepares them. Requests\n"
        "that arrive together run as one batch on the device (on the CPU, on one thread unless --threads\n"
        "says otherwise). Prints the URL; Ctrl-C or SIGTERM stops it (a second one at once).",
    .groups = serve_groups,
    .n_groups = sizeof serve_groups / sizeof serve_groups[0],
    .epilog = "Exit code: 0 stopped by a signal, 1 the model could not be loaded or the port not bound, 2 "
              "bad usage; 128 + the signal when a second one ended it at once.\n",
    .run = hd_cmd_serve,
};

int hd_cmd_serve(int argc, char **argv) {
    hd_serve_config config;
    hd_serve_config_defaults(&config);
    int first_operand;
    int parsed = hd_cli_parse(&hd_cli_serve, &config, argc, argv, &first_operand);
    if (parsed != 0)
        return parsed > 0 ? HD_EXIT_OK : HD_EXIT_USAGE;
    if (!config.model) {
        fprintf(stderr, "hd-gpu serve: --model FILE is required (see --help)\n");
        return HD_EXIT_USAGE;
    }
    return hd_serve_run(&config);
}
