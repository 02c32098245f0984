/* luaext: the C helpers the scenario runtime gives to Lua — PCRE2 regexes (with a per-state cache
 * of compiled patterns), XPath over HTML/XML (libxml2), URL/HTML/base64 codecs, SHA-256/MD5 and
 * random strings. One call per lua_State; everything it keeps is freed when the state closes. */
#ifndef PARROT_LUAEXT_H
#define PARROT_LUAEXT_H

#include <lua.h>

/* Pushes a table with the functions below; returns 1. Safe to call again on the same state (the
 * functions share one cache per state). Call it once on the main thread before starting load
 * threads, so libxml2's global initialization happens there.
 *   re_match(subject, pattern [, init])  -> captures as strings ("" for unset groups), the whole
 *                                           match when the pattern has no groups, or nil
 *   re_gmatch_all(subject, pattern)      -> { first capture or whole match of every match }
 *   xpath(doc, expr [, html])            -> { string value of each node } (or { result } for a
 *                                           string/number/boolean expression); {} if unparseable
 *   url_encode(s), url_decode(s), html_unescape(s)
 *   base64_encode(s), base64_decode(s)   -> string (decode: nil, message when invalid)
 *   sha256_hex(s), md5_hex(s)            -> lowercase hex digest
 *   random_string(n)                     -> n random [A-Za-z0-9] characters (fast PRNG)
 *   urandom_bytes(n)                     -> n bytes from the kernel's CSPRNG
 *   shared_add(key [, n])                -> adds n (default 1) to the counter named key, shared
 *                                           by every thread of the process; its new value */
int luaext_open(lua_State *L);

#endif
