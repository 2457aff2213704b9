/* idx.c: the IDX reader declared in idx.h: header checks first, then exactly the promised bytes,
 * from a raw file (length known from fstat) or a gzip stream (length known only by reading it). */
#include "hd/idx.h"

#include "hd/common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* An open IDX file: a raw descriptor, or a gzip stream over it. */
typedef struct {
    const char *path;
    int fd;
    gzFile gz;          /* non-NULL for a gzip file (it owns fd then) */
    uint64_t disk_size; /* bytes on disk */
} idx_file;

static int idx_open(idx_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->path = path;
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0)
        return hd_fail("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(f->fd);
        return hd_fail("%s: not a regular file", path);
    }
    f->disk_size = (uint64_t)st.st_size;
    if (f->disk_size == 0) {
        close(f->fd);
        return hd_fail("%s: empty file (0 bytes)", path);
    }
    uint8_t magic[2] = {0, 0};
    if (pread(f->fd, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
        f->gz = gzdopen(f->fd, "rb");
        if (!f->gz) {
            close(f->fd);
            return hd_fail("%s: cannot open gzip stream", path);
        }
        gzbuffer(f->gz, 1u << 18);
    }
    return 0;
}

static void idx_close(idx_file *f) {
    if (f->gz)
        gzclose(f->gz);
    else if (f->fd >= 0)
        close(f->fd);
    f->gz = NULL;
    f->fd = -1;
}

/* zlib's message without the "<fd:N>: " it puts in front for a gzdopen'ed stream. */
static const char *gz_message(const char *msg) {
    if (msg && strncmp(msg, "<fd:", 4) == 0) {
        const char *rest = strstr(msg, ">: ");
        if (rest)
            return rest + 3;
    }
    return msg ? msg : "unknown error";
}

/* Reads up to size bytes (fewer only at end of file) into buf; *got says how many. */
static int idx_read(idx_file *f, void *buf, uint64_t size, uint64_t *got) {
    uint8_t *p = buf;
    *got = 0;
    while (*got < size) {
        uint64_t want = size - *got;
        if (want > (1u << 30))
            want = 1u << 30;
        if (f->gz) {
            int n = gzread(f->gz, p + *got, (unsigned)want);
            int err = Z_OK;
            const char *msg = gzerror(f->gz, &err);
            if (n < 0 || (err != Z_OK && err != Z_STREAM_END))
                return hd_fail("%s: bad gzip data (corrupt or truncated .gz): %s", f->path, gz_message(msg));
            if (n == 0)
                return 0;
            *got += (uint64_t)n;
        } else {
            ssize_t n = read(f->fd, p + *got, (size_t)want);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return hd_fail("%s: read error: %s", f->path, strerror(errno));
            if (n == 0)
                return 0;
            *got += (uint64_t)n;
        }
    }
    return 0;
}

static uint32_t load_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static const char *length_kind(const idx_file *f) {
    return f->gz ? "decompressed file has" : "file has";
}

/* Reads and checks the magic and the rank dimensions; dims[i] are the raw header values. */
static int read_header(idx_file *f, uint32_t expected_magic, int rank, uint32_t dims[3]) {
    uint8_t header[16];
    uint64_t header_len = 4 + 4 * (uint64_t)rank, got = 0;
    if (idx_read(f, header, header_len, &got) != 0)
        return -1;
    if (got == 0)
        return hd_fail("%s: empty after gzip decompression", f->path);
    if (got >= 4) {
        uint32_t magic = load_be32(header);
        if (magic != expected_magic)
            return hd_fail("%s: bad magic 0x%08" PRIx32 " (expected 0x%08" PRIx32
                           ": IDX unsigned bytes, rank %d)",
                           f->path, magic, expected_magic, rank);
    }
    if (got < header_len)
        return hd_fail("%s: truncated: %" PRIu64 " bytes, shorter than the %" PRIu64 "-byte IDX header",
                       f->path, got, header_len);
    for (int i = 0; i < rank; i++)
        dims[i] = load_be32(header + 4 + 4 * i);
    return 0;
}

/* Counts the bytes left in a gzip stream, stopping after limit (no allocation). */
static int count_trailing(idx_file *f, uint64_t limit, uint64_t *extra) {
    uint8_t scratch[65536];
    *extra = 0;
    while (*extra <= limit) {
        uint64_t got = 0;
        if (idx_read(f, scratch, sizeof scratch, &got) != 0)
            return -1;
        if (got == 0)
            break;
        *extra += got;
    }
    return 0;
}

/* Reads exactly body_bytes after a header_len-byte header, checking the file ends there. */
static int read_body(idx_file *f, uint64_t header_len, uint64_t body_bytes, uint8_t **out) {
    uint64_t promised = header_len + body_bytes;
    *out = NULL;
    if (!f->gz && f->disk_size < promised)
        return hd_fail("%s: truncated: header promises %" PRIu64 " bytes, file has %" PRIu64, f->path,
                       promised, f->disk_size);
    if (!f->gz && f->disk_size > promised)
        return hd_fail("%s: trailing data: header promises %" PRIu64 " bytes, file has %" PRIu64, f->path,
                       promised, f->disk_size);
    /* A raw file was just shown to hold body_bytes; a gzip stream grows its buffer as data arrives, so a
     * header promising more than the stream holds costs only what the stream really holds. */
    uint64_t capacity = f->gz && body_bytes > (1u << 20) ? (1u << 20) : body_bytes;
    uint8_t *buf = hd_malloc((size_t)capacity);
    if (!buf)
        return -1;
    uint64_t have = 0;
    for (;;) {
        uint64_t got = 0;
        if (idx_read(f, buf + have, capacity - have, &got) != 0) {
            free(buf);
            return -1;
        }
        have += got;
        if (have < capacity || capacity == body_bytes)
            break;
        uint64_t grown = capacity * 2 < body_bytes ? capacity * 2 : body_bytes;
        uint8_t *bigger = realloc(buf, (size_t)grown);
        if (!bigger) {
            free(buf);
            return hd_fail("%s: out of memory growing the buffer to %" PRIu64 " bytes", f->path, grown);
        }
        buf = bigger;
        capacity = grown;
    }
    if (have < body_bytes) {
        free(buf);
        return hd_fail("%s: truncated: header promises %" PRIu64 " bytes, %s %" PRIu64, f->path, promised,
                       length_kind(f), header_len + have);
    }
    uint64_t extra = 0;
    if (f->gz && count_trailing(f, 16u << 20, &extra) != 0) {
        free(buf);
        return -1;
    }
    if (extra > 0) {
        free(buf);
        return hd_fail("%s: trailing data: header promises %" PRIu64 " bytes, %s %s%" PRIu64, f->path,
                       promised, length_kind(f), extra > (16u << 20) ? "more than " : "", promised + extra);
    }
    *out = buf;
    return 0;
}

static int check_dimension(const char *path, const char *what, uint32_t value, uint32_t max) {
    if (value == 0 || value > max)
        return hd_fail("%s: absurd dimensions: %s %" PRIu32 " (must be 1..%" PRIu32 ")", path, what, value,
                       max);
    return 0;
}

int hd_idx_read_images(const char *path, int *count, int *rows, int *cols, uint8_t **pixels) {
    *count = *rows = *cols = 0;
    *pixels = NULL;
    idx_file f;
    if (idx_open(&f, path) != 0)
        return -1;
    uint32_t dims[3] = {0, 0, 0};
    int rc = read_header(&f, HD_IDX_IMAGES_MAGIC, 3, dims);
    if (rc == 0)
        rc = check_dimension(path, "count", dims[0], HD_IDX_MAX_COUNT);
    if (rc == 0)
        rc = check_dimension(path, "rows", dims[1], HD_IDX_MAX_SIDE);
    if (rc == 0)
        rc = check_dimension(path, "cols", dims[2], HD_IDX_MAX_SIDE);
    uint64_t bytes = (uint64_t)dims[0] * dims[1] * dims[2]; /* each factor is bounded: no overflow */
    if (rc == 0 && bytes > HD_IDX_MAX_BYTES)
        rc = hd_fail("%s: absurd dimensions: %" PRIu32 " x %" PRIu32 " x %" PRIu32 " is %" PRIu64
                     " bytes, over the %" PRIu64 "-byte limit",
                     path, dims[0], dims[1], dims[2], bytes, HD_IDX_MAX_BYTES);
    if (rc == 0)
        rc = read_body(&f, 16, bytes, pixels);
    idx_close(&f);
    if (rc != 0)
        return -1;
    *count = (int)dims[0];
    *rows = (int)dims[1];
    *cols = (int)dims[2];
    return 0;
}

int hd_idx_read_labels(const char *path, int *count, uint8_t **labels) {
    *count = 0;
    *labels = NULL;
    idx_file f;
    if (idx_open(&f, path) != 0)
        return -1;
    uint32_t dims[3] = {0, 0, 0};
    int rc = read_header(&f, HD_IDX_LABELS_MAGIC, 1, dims);
    if (rc == 0)
        rc = check_dimension(path, "count", dims[0], HD_IDX_MAX_COUNT);
    if (rc == 0)
        rc = read_body(&f, 8, dims[0], labels);
    idx_close(&f);
    if (rc != 0)
        return -1;
    *count = (int)dims[0];
    return 0;
}

int hd_dataset_load_idx(const char *images_path, const char *labels_path, hd_dataset *out) {
    memset(out, 0, sizeof *out);
    hd_dataset d = {0, 0, 0, NULL, NULL, NULL};
    if (hd_idx_read_images(images_path, &d.count, &d.rows, &d.cols, &d.images) != 0)
        return -1;
    int label_count = 0;
    if (hd_idx_read_labels(labels_path, &label_count, &d.labels) != 0) {
        hd_dataset_free(&d);
        return -1;
    }
    if (label_count != d.count) {
        hd_fail("%s: count mismatch: %d images but %d labels in %s", images_path, d.count, label_count,
                labels_path);
        hd_dataset_free(&d);
        return -1;
    }
    d.source = strdup(images_path);
    if (!d.source) {
        hd_dataset_free(&d);
        return hd_fail("out of memory");
    }
    *out = d;
    return 0;
}

const char *hd_dataset_name(const hd_dataset *d) {
    return d->source ? d->source : "the images";
}

void hd_dataset_free(hd_dataset *d) {
    if (!d)
        return;
    free(d->images);
    free(d->labels);
    free(d->source);
    memset(d, 0, sizeof *d);
}

int hd_dataset_max_label(const hd_dataset *d) {
    int max = -1;
    for (int i = 0; i < d->count; i++)
        max = d->labels[i] > max ? d->labels[i] : max;
    return max;
}

int hd_dataset_check_labels(const hd_dataset *d, int classes) {
    for (int i = 0; i < d->count; i++)
        if (d->labels[i] >= classes)
            return hd_fail("%s: the label of image %d is %d, outside the model's %d classes (0..%d)",
                           d->source ? d->source : "the labels", i, d->labels[i], classes, classes - 1);
    return 0;
}
