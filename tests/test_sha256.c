/* test_sha256.c: SHA-256 against the FIPS 180-4 example vectors and coreutils' sha256sum, one-shot,
 * streamed in uneven pieces, and over a file. */
#include "check.h"
#include "hd/common.h"
#include "hd/sha256.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check_digest(const char *label, const void *data, size_t size, const char *expected) {
    uint8_t digest[HD_SHA256_BYTES];
    char hex[HD_SHA256_HEX];
    hd_sha256(data, size, digest);
    hd_sha256_hex(digest, hex);
    CHECK(strcmp(hex, expected) == 0, "%s: one-shot got %s, expected %s", label, hex, expected);

    /* The same message fed in pieces of 1, 2, 3, ... bytes must give the same digest. */
    hd_sha256_ctx ctx;
    hd_sha256_init(&ctx);
    const uint8_t *p = data;
    size_t done = 0, piece = 1;
    while (done < size) {
        size_t take = piece < size - done ? piece : size - done;
        hd_sha256_update(&ctx, p + done, take);
        done += take;
        piece = piece % 97 + 1;
    }
    hd_sha256_final(&ctx, digest);
    hd_sha256_hex(digest, hex);
    CHECK(strcmp(hex, expected) == 0, "%s: streamed got %s, expected %s", label, hex, expected);
}

static char *repeated(char c, size_t n) {
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

int main(void) {
    /* FIPS 180-4 / NIST CSRC examples. */
    check_digest("abc", "abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check_digest("empty", "", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check_digest("448-bit", m448, strlen(m448),
                 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const char *m896 =
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopq"
        "rsmnopqrstnopqrstu";
    check_digest("896-bit", m896, strlen(m896),
                 "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");

    char *million = repeated('a', 1000000);
    CHECK(million != NULL, "allocation");
    if (million)
        check_digest("million a", million, 1000000,
                     "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

    /* Lengths around the padding boundaries (digests from coreutils sha256sum). */
    static const struct {
        size_t length;
        const char *hex;
    } boundary[] = {
        {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
        {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
        {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
        {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
        {65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
        {119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
        {120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
    };
    for (size_t i = 0; million && i < sizeof boundary / sizeof boundary[0]; i++) {
        char label[32];
        snprintf(label, sizeof label, "%zu x 'a'", boundary[i].length);
        check_digest(label, million, boundary[i].length, boundary[i].hex);
    }

    /* hd_sha256_file over a file holding the million 'a's, and its error for a missing file. */
    char *dir = test_make_temp_dir("sha256");
    CHECK(dir != NULL, "temp dir");
    if (dir && million) {
        char path[4200];
        snprintf(path, sizeof path, "%s/million", dir);
        CHECK(hd_write_file_atomic(path, million, 1000000) == 0, "write: %s", hd_last_error());
        char hex[HD_SHA256_HEX];
        CHECK(hd_sha256_file(path, hex) == 0, "hash file: %s", hd_last_error());
        CHECK(strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0,
              "file digest %s", hex);
        snprintf(path, sizeof path, "%s/absent", dir);
        CHECK(hd_sha256_file(path, hex) == -1, "missing file must fail");
        CHECK(strstr(hd_last_error(), "absent") && strstr(hd_last_error(), "cannot open"),
              "message names the file: %s", hd_last_error());
    }
    test_remove_tree(dir);
    free(dir);
    free(million);
    return test_finish();
}
