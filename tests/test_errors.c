/* test_errors.c: hd_fail's messages (common.h): one line whatever they quote, control characters written
 * as C escapes, UTF-8 kept, long messages cut at the buffer without a broken escape, and a message that
 * quotes hd_last_error() itself. */
#include "check.h"
#include "hd/common.h"

#include <string.h>

static void test_escapes(void) {
    CHECK(hd_fail("spec: bad layer 'conv\n:3\r\t%c%c'", 0x1b, 0x7f) == -1, "hd_fail returns -1");
    const char *expected = "spec: bad layer 'conv\\n:3\\r\\t\\x1b\\x7f'";
    CHECK(strcmp(hd_last_error(), expected) == 0, "escaped: got \"%s\", expected \"%s\"", hd_last_error(),
          expected);

    hd_fail("%s: not found", "caf\xc3\xa9/\xe6\x95\xb0\xe5\xad\x97.png");
    CHECK(strcmp(hd_last_error(), "caf\xc3\xa9/\xe6\x95\xb0\xe5\xad\x97.png: not found") == 0,
          "UTF-8 name changed: %s", hd_last_error());

    hd_clear_error();
    CHECK(hd_last_error()[0] == '\0', "hd_clear_error left \"%s\"", hd_last_error());
}

static void test_long_and_nested(void) {
    char newlines[3000];
    memset(newlines, '\n', sizeof newlines - 1);
    newlines[sizeof newlines - 1] = '\0';
    hd_fail("x%s", newlines);
    const char *message = hd_last_error();
    size_t len = strlen(message);
    CHECK(len < 1024 && len >= 1020, "a long message is %zu bytes (the buffer holds 1023)", len);
    CHECK(message[0] == 'x' && strchr(message, '\n') == NULL, "long message not one line");
    /* Cut only between escapes: after "x", whole "\n" pairs. */
    CHECK((len - 1) % 2 == 0 && message[len - 2] == '\\' && message[len - 1] == 'n',
          "long message ends with a broken escape: ...%s", message + (len > 8 ? len - 8 : 0));

    hd_fail("inner\treason");
    hd_fail("outer.bin: %s", hd_last_error());
    CHECK(strcmp(hd_last_error(), "outer.bin: inner\\treason") == 0, "nested: %s", hd_last_error());
}

int main(void) {
    test_escapes();
    test_long_and_nested();
    return test_finish();
}
