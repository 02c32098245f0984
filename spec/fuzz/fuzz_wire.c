/* fuzz_wire: libFuzzer target for wire_decode. Every input must decode or be refused with an
 * empty message; a decoded message is re-encoded and must decode again (spec/fuzz/fuzz.sh builds and
 * runs it over spec/fuzz/corpus/wire/). */
/* fuzz-sources: src/wire.c src/mpguard.c */
#include "wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static volatile size_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wire_msg m, again;
    char err[160];
    if (wire_decode((const char *)data, size, &m, err, sizeof err) != 0) {
        static const wire_msg zero;
        if (memcmp(&m, &zero, sizeof m) || !err[0]) abort(); /* refusals leave *m empty, with a reason */
        return 0;
    }
    sink += (size_t)m.type + m.data_len + m.nhashes + m.nenv + m.nheaders + m.nresolve;
    if (m.id) sink += strlen(m.id);
    char *buf;
    size_t len;
    if (wire_encode(&m, &buf, &len) == 0) {
        if (wire_decode(buf, len, &again, err, sizeof err) != 0 || again.type != m.type ||
            again.data_len != m.data_len || again.nhashes != m.nhashes)
            abort(); /* what we decoded we must be able to send back */
        wire_msg_free(&again);
        free(buf);
    }
    wire_msg_free(&m);
    return 0;
}
