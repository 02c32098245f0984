/* mpguard: a check of untrusted msgpack bytes before libmsgpack-c sees them. libmsgpack-c
 * allocates an array's or map's objects from the count in its header before it reads them, so a
 * few hostile bytes could ask for gigabytes; this walk over the item headers decodes nothing. */
#ifndef PARROT_MPGUARD_H
#define PARROT_MPGUARD_H

#include <stddef.h>

/* NULL when `p` holds exactly one msgpack item whose every container promises no more items than
 * bytes remain (each item takes at least one), with no more than `max_items` items in all and
 * nothing running past the end or left after it; else the reason ("truncated message", ...). */
const char *mpguard_check(const unsigned char *p, size_t len, size_t max_items);

#endif
