/* mpguard: size checks of untrusted msgpack. */
#include "mpguard.h"

#include <stdint.h>

const char *mpguard_check(const unsigned char *p, size_t len, size_t max_items)
{
    enum { SCALAR, RAW, ARRAY, MAP };
    /* 0xc4..0xdf: bytes of the length field, fixed payload bytes, what the length counts */
    /* clang-format off */
    static const struct { unsigned char lenbytes, fixed, what; } fmt[0xe0 - 0xc4] = {
        [0x00] = {1, 0, RAW},    [0x01] = {2, 0, RAW},    [0x02] = {4, 0, RAW},    /* bin 8/16/32 */
        [0x03] = {1, 1, RAW},    [0x04] = {2, 1, RAW},    [0x05] = {4, 1, RAW},    /* ext 8/16/32 */
        [0x06] = {0, 4, SCALAR}, [0x07] = {0, 8, SCALAR},                          /* float 32/64 */
        [0x08] = {0, 1, SCALAR}, [0x09] = {0, 2, SCALAR}, [0x0a] = {0, 4, SCALAR}, /* uint 8..64 */
        [0x0b] = {0, 8, SCALAR}, [0x0c] = {0, 1, SCALAR}, [0x0d] = {0, 2, SCALAR}, /* int 8..64 */
        [0x0e] = {0, 4, SCALAR}, [0x0f] = {0, 8, SCALAR},
        [0x10] = {0, 2, SCALAR}, [0x11] = {0, 3, SCALAR}, [0x12] = {0, 5, SCALAR}, /* fixext */
        [0x13] = {0, 9, SCALAR}, [0x14] = {0, 17, SCALAR},
        [0x15] = {1, 0, RAW},    [0x16] = {2, 0, RAW},    [0x17] = {4, 0, RAW},    /* str 8/16/32 */
        [0x18] = {2, 0, ARRAY},  [0x19] = {4, 0, ARRAY},  [0x1a] = {2, 0, MAP},    [0x1b] = {4, 0, MAP},
    };
    /* clang-format on */
    size_t pos = 0, pending = 1, seen = 0;
    while (pending--) {
        if (pos >= len) return "truncated message";
        if (++seen > max_items) return "message holds too many items";
        unsigned b = p[pos++];
        if (b < 0x80 || b >= 0xe0) continue; /* fixints: most items of a snapshot */
        if (b >= 0xca && b <= 0xd3) {        /* the other numbers: a fixed size */
            static const unsigned char size[10] = {4, 8, 1, 2, 4, 8, 1, 2, 4, 8};
            if (size[b - 0xca] > len - pos) return "truncated message";
            pos += size[b - 0xca];
            continue;
        }
        uint64_t items = 0, skip = 0;
        if (b >= 0x80 && b <= 0x8f)
            items = 2 * (b & 0x0f);
        else if (b >= 0x90 && b <= 0x9f)
            items = b & 0x0f;
        else if (b >= 0xa0 && b <= 0xbf)
            skip = b & 0x1f;
        else if (b >= 0xc4 && b < 0xe0) {
            unsigned n = fmt[b - 0xc4].lenbytes, what = fmt[b - 0xc4].what;
            uint64_t v = 0;
            if (len - pos < n) return "truncated message";
            for (unsigned i = 0; i < n; i++)
                v = v << 8 | p[pos++];
            if (what == ARRAY)
                items = v;
            else if (what == MAP)
                items = 2 * v;
            else
                skip = v + fmt[b - 0xc4].fixed;
        }
        if (skip > len - pos) return "truncated message";
        pos += skip;
        if (items > len - pos || pending + items > len - pos) return "truncated message";
        pending += items;
    }
    return pos == len ? NULL : "trailing bytes after the message";
}
