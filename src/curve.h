/* curve: security for the cluster. `parrot keygen DIR` key pairs, reading keys, the ZAP handler
 * with which a queen admits only listed worker keys, and a socket monitor that turns a failed
 * CURVE handshake into one clear line instead of a silent hang. */
#ifndef PARROT_CURVE_H
#define PARROT_CURVE_H

#include <stddef.h>

#define CURVE_KEY_LEN 40 /* Z85 text of a 32-byte key */

typedef struct curve_keys {
    char pub[CURVE_KEY_LEN + 1];
    char sec[CURVE_KEY_LEN + 1];
} curve_keys;

/* Write DIR/parrot.key (public, Z85, one line) and DIR/parrot.secret (0600), creating DIR (0700).
 * Refuses to overwrite an existing pair. Returns 0 or -1 with a reason. */
int curve_keygen(const char *dir, char *err, size_t errlen);
/* Read the pair written by curve_keygen. */
int curve_load(const char *dir, curve_keys *k, char *err, size_t errlen);
/* A public key given as 40 Z85 characters, or as the path of a file holding one (first line). */
int curve_read_public(const char *key_or_file, char out[CURVE_KEY_LEN + 1], char *err, size_t errlen);

/* Make `sock` a CURVE server with keys `k` (call before bind); a client pinning `server_pub`
 * (call before connect). 0 or -1 (zmq errno). */
int curve_server(void *sock, const curve_keys *k);
int curve_client(void *sock, const curve_keys *k, const char *server_pub);

/* The ZAP handler of `zmq_ctx`: a thread answering on inproc://zeromq.zap.01 that admits
 * CURVE clients whose public key is listed in `allow_file` (one Z85 key per line, '#' comments,
 * blank lines ignored) and refuses every other one, calling `on_deny(ud, key)` (from its
 * thread) for each refusal. Returns NULL with a reason in err. */
typedef struct curve_zap curve_zap;
curve_zap *curve_zap_start(void *zmq_ctx, const char *allow_file, void (*on_deny)(void *ud, const char *key),
                           void *ud, char *err, size_t errlen);
void curve_zap_stop(curve_zap *z); /* before zmq_ctx_term */

/* Watch `sock`'s handshakes (zmq_socket_monitor on a thread): calls `on_event(ud, line)` from
 * that thread with one line for each failed handshake ("the queen refused this worker's key",
 * "the queen's key does not match --queen-key", ...) and for the first success. `flags`:
 * CURVE_MON_SERVER for the queen's socket, CURVE_MON_KEYLESS for a socket without CURVE (its
 * lines then say that the other side wants keys). */
#define CURVE_MON_SERVER 1
#define CURVE_MON_KEYLESS 2
typedef struct curve_monitor curve_monitor;
curve_monitor *curve_monitor_start(void *zmq_ctx, void *sock, int flags,
                                   void (*on_event)(void *ud, const char *line, int ok), void *ud);
void curve_monitor_stop(curve_monitor *m); /* before closing `sock` */

#endif
