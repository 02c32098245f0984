/* target_routes: internal to `parrot target`: the endpoints. target.c finds the route when a
 * request's headers are in, has it answered when the whole request is in, and sends its own
 * errors through target_resp_simple; the fixed bodies are made once at start. */
#ifndef PARROT_TARGET_ROUTES_H
#define PARROT_TARGET_ROUTES_H

#include "target_conn.h"

/* Makes the fixed bodies (/, /json, /gzip and the fill buffer). Returns 0 or -1. Before the
 * threads start; target_routes_free after they stopped. */
int target_routes_init(void);
void target_routes_free(void);

/* The route of the request target in c->head (-1: none), and whether it keeps the body. */
int target_route_find(conn *c, int *want_body);
/* Answers the complete request (c->route from target_route_find; -1 answers 404). */
void target_route_answer(conn *c);

/* A response whose small body is copied behind the head (no body for 204 and 304, nor for HEAD);
 * extra is more header lines ("Name: value\r\n...") or NULL. */
void target_resp_simple(conn *c, int status, const char *ctype, const char *extra, const char *body,
                        size_t n);

#endif
