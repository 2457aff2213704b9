/* safetensors.c: the float32 / int64 safetensors writer and checking reader declared in safetensors.h. */
#include "hd/safetensors.h"

#include "hd/common.h"
#include "hd/json_io.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c stores float32 and int64 data as the host's bytes, which must be little-endian"
#endif

/* The reference implementation refuses headers above 100 MB; so do we. */
#define MAX_HEADER_BYTES (100u << 20)

static uint32_t crc32_of(const void *data, size_t len, uint32_t crc) {
    const unsigned char *p = data;
    while (len > 0) {
        uInt chunk = len > (1u << 30) ? (1u << 30) : (uInt)len;
        crc = (uint32_t)crc32(crc, p, chunk);
        p += chunk;
        len -= chunk;
    }
    return crc;
}

/* Element count of a shape, or -1 when negative, too large or the rank is out of range. */
static int64_t shape_elements(int rank, const int64_t *dims) {
    if (rank < 0 || rank > HD_ST_MAX_RANK)
        return -1;
    int64_t count = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0 || (dims[i] > 0 && count > (INT64_MAX / 8) / dims[i]))
            return -1;
        count *= dims[i];
    }
    return count;
}

const char *hd_st_dtype_name(hd_st_dtype dtype) {
    return dtype == HD_ST_I64 ? "I64" : "F32";
}

/* Bytes per value: both dtypes are 4 or 8 bytes; anything else was refused before. */
static size_t dtype_bytes(hd_st_dtype dtype) {
    return dtype == HD_ST_I64 ? sizeof(int64_t) : sizeof(float);
}

void hd_st_format_shape(int rank, const int64_t *dims, char *buf, size_t buf_len) {
    size_t used = 0;
    if (buf_len == 0)
        return;
    buf[0] = '\0';
    for (int i = 0; i <= rank && used < buf_len; i++) {
        const char *sep = i == 0 ? "[" : ", ";
        int n = i < rank
                    ? snprintf(buf + used, buf_len - used, "%s%" PRId64, sep, dims[i])
                    : snprintf(buf + used, buf_len - used, "%s]", rank == 0 ? "[" : ""); /* a scalar: [] */
        if (n < 0)
            return;
        used += (size_t)n;
    }
}

/* ---- writing ---- */

static int check_write_arguments(const char *path, const hd_st_tensor *tensors, int n, const hd_st_meta *meta,
                                 int n_meta) {
    if (n < 0 || n_meta < 0 || (n > 0 && !tensors) || (n_meta > 0 && !meta))
        return hd_fail("%s: bad tensor or metadata list", path);
    for (int i = 0; i < n; i++) {
        const hd_st_tensor *t = &tensors[i];
        if (!t->name || !t->name[0] || strcmp(t->name, "__metadata__") == 0 || !hd_json_valid_utf8(t->name))
            return hd_fail("%s: tensor %d has an empty, reserved or non-UTF-8 name", path, i);
        int64_t count = shape_elements(t->rank, t->dims);
        if (count < 0)
            return hd_fail("%s: tensor '%s' has a bad shape (rank %d)", path, t->name, t->rank);
        if (t->dtype != HD_ST_F32 && t->dtype != HD_ST_I64)
            return hd_fail("%s: tensor '%s' has an unknown dtype %d", path, t->name, (int)t->dtype);
        if (count > 0 && !t->data)
            return hd_fail("%s: tensor '%s' has no data", path, t->name);
        for (int j = 0; j < i; j++)
            if (strcmp(tensors[j].name, t->name) == 0)
                return hd_fail("%s: tensor name '%s' given twice", path, t->name);
    }
    for (int i = 0; i < n_meta; i++) {
        const hd_st_meta *m = &meta[i];
        if (!m->key || !m->value || !hd_json_valid_utf8(m->key) || !hd_json_valid_utf8(m->value))
            return hd_fail("%s: metadata entry %d is missing or not UTF-8", path, i);
        if (strcmp(m->key, HD_ST_CRC_KEY) == 0 || strcmp(m->key, HD_ST_META_CRC_KEY) == 0)
            return hd_fail("%s: metadata key '%s' is reserved", path, m->key);
        for (int j = 0; j < i; j++)
            if (strcmp(meta[j].key, m->key) == 0)
                return hd_fail("%s: metadata key '%s' given twice", path, m->key);
    }
    return 0;
}

/* CRC32 of metadata entries as key NUL value NUL, in order, the checksum keys left out. */
static uint32_t meta_crc(const hd_st_meta *meta, int n_meta) {
    uint32_t crc = (uint32_t)crc32(0L, Z_NULL, 0);
    for (int i = 0; i < n_meta; i++) {
        if (strcmp(meta[i].key, HD_ST_CRC_KEY) == 0 || strcmp(meta[i].key, HD_ST_META_CRC_KEY) == 0)
            continue;
        crc = crc32_of(meta[i].key, strlen(meta[i].key) + 1, crc);
        crc = crc32_of(meta[i].value, strlen(meta[i].value) + 1, crc);
    }
    return crc;
}

static json_t *crc_string(uint32_t crc) {
    char hex[9];
    snprintf(hex, sizeof hex, "%08" PRIx32, crc);
    return json_string(hex);
}

/* One tensor's entry: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}. */
static json_t *tensor_entry(const hd_st_tensor *t, uint64_t begin, uint64_t end) {
    json_t *shape = json_array();
    for (int d = 0; shape && d < t->rank; d++)
        if (json_array_append_new(shape, json_integer((json_int_t)t->dims[d])) != 0) {
            json_decref(shape);
            shape = NULL;
        }
    return json_pack("{s:s, s:o, s:[I,I]}", "dtype", hd_st_dtype_name(t->dtype), "shape", shape,
                     "data_offsets", (json_int_t)begin, (json_int_t)end);
}

/* The JSON header for the tensors laid out back to back, padded with spaces to a multiple of 8
 * (malloc'd, *len set), or NULL after hd_fail. The metadata comes first, then the tensors in order. */
static char *build_header(const char *path, const hd_st_tensor *tensors, int n, const hd_st_meta *meta,
                          int n_meta, uint32_t crc, size_t *len) {
    json_t *root = json_object(), *metadata = json_object();
    int failed = !root || !metadata;
    for (int i = 0; !failed && i < n_meta; i++)
        failed = json_object_set_new(metadata, meta[i].key, json_string(meta[i].value)) != 0;
    failed = failed ||
             json_object_set_new(metadata, HD_ST_META_CRC_KEY, crc_string(meta_crc(meta, n_meta))) != 0 ||
             json_object_set_new(metadata, HD_ST_CRC_KEY, crc_string(crc)) != 0;
    failed = failed || json_object_set(root, "__metadata__", metadata) != 0;
    uint64_t offset = 0;
    for (int i = 0; !failed && i < n; i++) {
        uint64_t bytes =
            (uint64_t)shape_elements(tensors[i].rank, tensors[i].dims) * dtype_bytes(tensors[i].dtype);
        failed = json_object_set_new(root, tensors[i].name,
                                     tensor_entry(&tensors[i], offset, offset + bytes)) != 0;
        offset += bytes;
    }
    json_decref(metadata);
    char label[4200];
    snprintf(label, sizeof label, "%s: header", path);
    char *text = hd_json_text(label, failed ? NULL : root, JSON_COMPACT);
    if (failed)
        json_decref(root);
    if (!text)
        return NULL;
    size_t used = strlen(text), padded = (used + 7) / 8 * 8;
    char *grown = realloc(text, padded + 1);
    if (!grown) {
        free(text);
        hd_fail("%s: out of memory building the header (%zu bytes)", path, padded);
        return NULL;
    }
    memset(grown + used, ' ', padded - used);
    grown[padded] = '\0';
    *len = padded;
    return grown;
}

int hd_safetensors_write(const char *path, const hd_st_tensor *tensors, int n, const hd_st_meta *meta,
                         int n_meta) {
    if (check_write_arguments(path, tensors, n, meta, n_meta) != 0)
        return -1;
    size_t data_bytes = 0;
    uint32_t crc = (uint32_t)crc32(0L, Z_NULL, 0);
    for (int i = 0; i < n; i++) {
        size_t bytes =
            (size_t)shape_elements(tensors[i].rank, tensors[i].dims) * dtype_bytes(tensors[i].dtype);
        if (bytes > SIZE_MAX / 2 - data_bytes)
            return hd_fail("%s: tensors too large to write", path);
        crc = crc32_of(tensors[i].data, bytes, crc);
        data_bytes += bytes;
    }
    size_t header_len = 0;
    char *header = build_header(path, tensors, n, meta, n_meta, crc, &header_len);
    if (!header)
        return -1;
    size_t total = 8 + header_len + data_bytes;
    unsigned char *file = hd_malloc(total);
    if (!file) {
        free(header);
        return -1;
    }
    for (int i = 0; i < 8; i++)
        file[i] = (unsigned char)((uint64_t)header_len >> (8 * i));
    memcpy(file + 8, header, header_len);
    size_t at = 8 + header_len;
    for (int i = 0; i < n; i++) {
        size_t bytes =
            (size_t)shape_elements(tensors[i].rank, tensors[i].dims) * dtype_bytes(tensors[i].dtype);
        if (bytes)
            memcpy(file + at, tensors[i].data, bytes);
        at += bytes;
    }
    free(header);
    int rc = hd_write_file_atomic(path, file, total);
    free(file);
    return rc;
}

/* ---- reading ---- */

typedef struct {
    const char *name;
    hd_st_dtype dtype;
    int rank;
    int64_t dims[HD_ST_MAX_RANK];
    uint64_t begin, end;
} st_entry;

struct hd_safetensors {
    json_t *header;    /* owns the names and metadata strings */
    st_entry *entries; /* sorted by name */
    int n_entries;
    hd_st_meta *meta; /* in file order */
    int n_meta;
    float *data;
    size_t data_len;
};

static int compare_entries_by_name(const void *a, const void *b) {
    return strcmp(((const st_entry *)a)->name, ((const st_entry *)b)->name);
}

static int compare_entries_by_offset(const void *a, const void *b) {
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : (x->end > y->end);
}

static int read_metadata(const char *path, json_t *object, hd_safetensors *f) {
    if (!json_is_object(object))
        return hd_fail("%s: __metadata__ is a JSON %s, not an object", path, hd_json_type_name(object));
    f->meta = hd_calloc(json_object_size(object), sizeof *f->meta);
    if (!f->meta)
        return -1;
    for (void *it = json_object_iter(object); it; it = json_object_iter_next(object, it)) {
        const char *key = json_object_iter_key(it);
        const json_t *value = json_object_iter_value(it);
        if (!json_is_string(value))
            return hd_fail("%s: metadata '%s' is a JSON %s; values must be strings", path, key,
                           hd_json_type_name(value));
        f->meta[f->n_meta++] = (hd_st_meta){key, json_string_value(value)};
    }
    return 0;
}

/* An array of at most max_count non-negative integers. */
static int read_u64_array(const json_t *array, uint64_t *values, int max_count, int *count) {
    if (!json_is_array(array) || json_array_size(array) > (size_t)max_count)
        return -1;
    int n = 0;
    for (size_t i = 0; i < json_array_size(array); i++)
        if (hd_json_get_u64(json_array_get(array, i), &values[n++]) != 0)
            return -1;
    *count = n;
    return 0;
}

static int read_entry(const char *path, const char *name, const json_t *t, st_entry *e) {
    e->name = name;
    const json_t *dtype = json_object_get(t, "dtype");
    const json_t *shape = json_object_get(t, "shape");
    const json_t *offsets = json_object_get(t, "data_offsets");
    if (!json_is_object(t) || json_object_size(t) != 3 || !dtype || !shape || !offsets)
        return hd_fail("%s: tensor '%s' must be an object with exactly dtype, shape and data_offsets", path,
                       e->name);
    if (!json_is_string(dtype))
        return hd_fail("%s: tensor '%s' has a dtype that is not a string", path, e->name);
    if (strcmp(json_string_value(dtype), "F32") == 0)
        e->dtype = HD_ST_F32;
    else if (strcmp(json_string_value(dtype), "I64") == 0)
        e->dtype = HD_ST_I64;
    else
        return hd_fail("%s: tensor '%s' has dtype %s; only F32 and I64 are supported", path, e->name,
                       json_string_value(dtype));
    uint64_t dims[HD_ST_MAX_RANK], range[2];
    int n_range = 0;
    if (json_is_array(shape) && json_array_size(shape) > HD_ST_MAX_RANK)
        return hd_fail("%s: tensor '%s' has rank %zu; at most %d is supported", path, e->name,
                       json_array_size(shape), HD_ST_MAX_RANK);
    if (read_u64_array(shape, dims, HD_ST_MAX_RANK, &e->rank) != 0)
        return hd_fail("%s: tensor '%s' has a shape that is not a list of non-negative integers", path,
                       e->name);
    if (read_u64_array(offsets, range, 2, &n_range) != 0 || n_range != 2)
        return hd_fail("%s: tensor '%s' has data_offsets that are not two non-negative integers", path,
                       e->name);
    for (int d = 0; d < e->rank; d++)
        e->dims[d] = (int64_t)dims[d]; /* jansson's integers are int64_t, so these fit */
    int64_t count = shape_elements(e->rank, e->dims);
    if (count < 0)
        return hd_fail("%s: tensor '%s' has a shape too large to address", path, e->name);
    e->begin = range[0];
    e->end = range[1];
    char shape_text[96];
    hd_st_format_shape(e->rank, e->dims, shape_text, sizeof shape_text);
    uint64_t need = (uint64_t)count * dtype_bytes(e->dtype);
    if (e->end < e->begin || e->end - e->begin != need)
        return hd_fail("%s: tensor '%s' of shape %s needs %" PRIu64 " bytes but data_offsets are [%" PRIu64
                       ", %" PRIu64 "]",
                       path, e->name, shape_text, need, e->begin, e->end);
    /* F32 data is read in place as floats: its offset must be a multiple of 4 (I64 is copied out). */
    if (e->dtype == HD_ST_F32 && e->begin % sizeof(float) != 0)
        return hd_fail("%s: tensor '%s' (F32) starts at byte %" PRIu64 " of the data, not a multiple of 4",
                       path, e->name, e->begin);
    return 0;
}

/* Ranges: exactly as long as the data section, inside it, no two overlapping (so the
 * tensors tile the data section with no gaps). */
static int check_ranges(const char *path, hd_safetensors *f) {
    uint64_t needed = 0;
    for (int i = 0; i < f->n_entries; i++) {
        uint64_t bytes = f->entries[i].end - f->entries[i].begin;
        if (bytes > UINT64_MAX - needed)
            return hd_fail("%s: tensor sizes overflow", path);
        needed += bytes;
    }
    if (needed > f->data_len)
        return hd_fail("%s: file is truncated: the data section has %zu bytes but the tensors need %" PRIu64,
                       path, f->data_len, needed);
    if (needed < f->data_len)
        return hd_fail("%s: the data section has %zu bytes but the tensors cover only %" PRIu64
                       " (extra bytes or a gap)",
                       path, f->data_len, needed);
    const st_entry **order = hd_calloc((size_t)f->n_entries, sizeof(const st_entry *));
    if (!order)
        return -1;
    for (int i = 0; i < f->n_entries; i++) {
        const st_entry *e = &f->entries[i];
        order[i] = e;
        if (e->end > f->data_len) {
            free(order);
            return hd_fail("%s: tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64
                           "] are outside the data section (%zu bytes)",
                           path, e->name, e->begin, e->end, f->data_len);
        }
    }
    qsort(order, (size_t)f->n_entries, sizeof(const st_entry *), compare_entries_by_offset);
    for (int i = 1; i < f->n_entries; i++) {
        if (order[i]->begin < order[i - 1]->end) {
            int rc = hd_fail("%s: tensors '%s' and '%s' overlap in the data section", path,
                             order[i - 1]->name, order[i]->name);
            free(order);
            return rc;
        }
    }
    free(order);
    return 0;
}

/* Parses a stored CRC (8 hex digits). */
static int parse_crc(const char *path, const char *key, const char *stored, uint32_t *crc) {
    char *end = NULL;
    errno = 0;
    unsigned long value = strtoul(stored, &end, 16);
    if (strlen(stored) != 8 || errno != 0 || *end != '\0' || stored[0] == '-' || stored[0] == '+' ||
        stored[0] == ' ')
        return hd_fail("%s: metadata %s is '%s', not 8 hex digits", path, key, stored);
    *crc = (uint32_t)value;
    return 0;
}

static int check_meta_checksum(const char *path, const hd_safetensors *f) {
    const char *stored = hd_safetensors_meta(f, HD_ST_META_CRC_KEY);
    uint32_t expected = 0;
    if (!stored)
        return 0;
    if (parse_crc(path, HD_ST_META_CRC_KEY, stored, &expected) != 0)
        return -1;
    uint32_t actual = meta_crc(f->meta, f->n_meta);
    if (expected != actual)
        return hd_fail("%s: checksum mismatch: metadata is corrupted (%s says %08" PRIx32
                       ", the metadata gives %08" PRIx32 ")",
                       path, HD_ST_META_CRC_KEY, expected, actual);
    return 0;
}

static int check_checksum(const char *path, const hd_safetensors *f) {
    if (check_meta_checksum(path, f) != 0)
        return -1;
    const char *stored = hd_safetensors_meta(f, HD_ST_CRC_KEY);
    if (!stored)
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long expected = strtoul(stored, &end, 16);
    if (strlen(stored) != 8 || errno != 0 || *end != '\0' || stored[0] == '-' || stored[0] == '+' ||
        stored[0] == ' ')
        return hd_fail("%s: metadata %s is '%s', not 8 hex digits", path, HD_ST_CRC_KEY, stored);
    uint32_t actual = crc32_of(f->data, f->data_len, (uint32_t)crc32(0L, Z_NULL, 0));
    if ((uint32_t)expected != actual)
        return hd_fail("%s: checksum mismatch: data is corrupted (%s says %08lx, the data gives %08" PRIx32
                       ")",
                       path, HD_ST_CRC_KEY, expected, actual);
    return 0;
}

/* Everything in the parsed header, against the data already read. Duplicate keys (a tensor or
 * __metadata__ twice, a metadata key twice) were refused by the JSON reader. */
static int check_header(const char *path, hd_safetensors *f) {
    json_t *root = f->header;
    if (!json_is_object(root))
        return hd_fail("%s: header is a JSON %s, not an object", path, hd_json_type_name(root));
    f->entries = hd_calloc(json_object_size(root), sizeof *f->entries);
    if (!f->entries)
        return -1;
    /* In document order: jansson keeps the members of an object in the order they were read. */
    for (void *it = json_object_iter(root); it; it = json_object_iter_next(root, it)) {
        const char *key = json_object_iter_key(it);
        json_t *value = json_object_iter_value(it);
        if (strcmp(key, "__metadata__") == 0) {
            if (read_metadata(path, value, f) != 0)
                return -1;
        } else if (read_entry(path, key, value, &f->entries[f->n_entries++]) != 0) {
            return -1;
        }
    }
    qsort(f->entries, (size_t)f->n_entries, sizeof *f->entries, compare_entries_by_name);
    if (check_ranges(path, f) != 0)
        return -1;
    return check_checksum(path, f);
}

static int read_exactly(FILE *file, void *buf, size_t n) {
    return n == 0 || fread(buf, 1, n, file) == n ? 0 : -1;
}

/* Header length, header text and data section; the header is not yet checked. */
static int read_parts(const char *path, FILE *file, hd_safetensors *f) {
    struct stat st;
    if (fstat(fileno(file), &st) != 0)
        return hd_fail("%s: cannot stat: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return hd_fail("%s: is a directory, not a safetensors file", path);
    if (!S_ISREG(st.st_mode))
        return hd_fail("%s: not a regular file", path);
    uint64_t size = (uint64_t)st.st_size;
    if (size == 0)
        return hd_fail("%s: empty file (0 bytes), not a safetensors file", path);
    if (size < 8)
        return hd_fail("%s: file is truncated: %" PRIu64 " bytes, shorter than the 8-byte header length",
                       path, size);
    unsigned char length_field[8];
    if (read_exactly(file, length_field, 8) != 0)
        return hd_fail("%s: read error (file truncated while reading?)", path);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--)
        header_len = (header_len << 8) | length_field[i];
    if (header_len > size - 8)
        return hd_fail("%s: header length %" PRIu64 " exceeds the %" PRIu64
                       " bytes after the length field: file is truncated or not safetensors",
                       path, header_len, size - 8);
    if (header_len > MAX_HEADER_BYTES)
        return hd_fail("%s: header length %" PRIu64 " is larger than the %u-byte limit", path, header_len,
                       MAX_HEADER_BYTES);
    char *text = hd_malloc((size_t)header_len);
    if (!text)
        return -1;
    if (read_exactly(file, text, (size_t)header_len) != 0) {
        free(text);
        return hd_fail("%s: read error in the header (file truncated while reading?)", path);
    }
    if (header_len == 0 || text[0] != '{') {
        free(text);
        return hd_fail("%s: header does not start with '{': not a safetensors file", path);
    }
    char label[4200];
    snprintf(label, sizeof label, "%s: header", path);
    int rc = hd_json_load(label, text, (size_t)header_len, MAX_HEADER_BYTES, &f->header);
    free(text);
    if (rc != 0)
        return -1;
    f->data_len = (size_t)(size - 8 - header_len);
    f->data = hd_malloc(f->data_len);
    if (!f->data)
        return -1;
    if (read_exactly(file, f->data, f->data_len) != 0)
        return hd_fail("%s: read error in the data (file truncated while reading?)", path);
    return 0;
}

int hd_safetensors_read(const char *path, hd_safetensors **out) {
    *out = NULL;
    FILE *file = fopen(path, "rb");
    if (!file)
        return hd_fail("%s: cannot open: %s", path, strerror(errno));
    hd_safetensors *f = hd_calloc(1, sizeof *f);
    if (!f) {
        fclose(file);
        return -1;
    }
    int rc = read_parts(path, file, f);
    fclose(file);
    if (rc == 0)
        rc = check_header(path, f);
    if (rc != 0) {
        hd_safetensors_free(f);
        return -1;
    }
    *out = f;
    return 0;
}

void hd_safetensors_free(hd_safetensors *file) {
    if (!file)
        return;
    json_decref(file->header);
    free(file->entries);
    free(file->meta);
    free(file->data);
    free(file);
}

const void *hd_safetensors_find_any(const hd_safetensors *file, const char *name, hd_st_dtype *dtype,
                                    int *rank, int64_t dims[HD_ST_MAX_RANK]) {
    st_entry key = {.name = name};
    const st_entry *e =
        bsearch(&key, file->entries, (size_t)file->n_entries, sizeof key, compare_entries_by_name);
    if (!e)
        return NULL;
    if (dtype)
        *dtype = e->dtype;
    if (rank)
        *rank = e->rank;
    if (dims)
        for (int d = 0; d < HD_ST_MAX_RANK; d++)
            dims[d] = d < e->rank ? e->dims[d] : 0;
    return (const unsigned char *)file->data + e->begin;
}

const float *hd_safetensors_find(const hd_safetensors *file, const char *name, int *rank,
                                 int64_t dims[HD_ST_MAX_RANK]) {
    hd_st_dtype dtype = HD_ST_F32;
    const void *data = hd_safetensors_find_any(file, name, &dtype, rank, dims);
    return data && dtype == HD_ST_F32 ? (const float *)data : NULL;
}

int hd_safetensors_count(const hd_safetensors *file) {
    return file->n_entries;
}

const char *hd_safetensors_name(const hd_safetensors *file, int index) {
    return index >= 0 && index < file->n_entries ? file->entries[index].name : NULL;
}

const char *hd_safetensors_meta(const hd_safetensors *file, const char *key) {
    for (int i = 0; i < file->n_meta; i++)
        if (strcmp(file->meta[i].key, key) == 0)
            return file->meta[i].value;
    return NULL;
}

int hd_safetensors_meta_count(const hd_safetensors *file) {
    return file->n_meta;
}
