/* fuzz_http: libFuzzer target for the response reader (http_msg over llhttp) and the head search
 * (http_head_next, http_res_header, http_res_reason). The first byte of an input chooses the
 * request (HEAD or not, compression, a kept body or not) and where the bytes are cut into two
 * reads; the rest is what the server sent. Every input must end as a response or an error kind,
 * and a head that was taken must be the bytes as received, every header found inside it
 * (spec/fuzz/fuzz.sh builds and runs it over spec/fuzz/corpus/http/; make test replays the corpus
 * through test_http_corpus). */
/* fuzz-sources: src/http_msg.c src/cookie.c llhttp */
#include "fuzz_http.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_http_result r;
    if (fuzz_http_read(data, size, &r) != 0) abort();
    return 0;
}
