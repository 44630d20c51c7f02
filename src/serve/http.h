/* SPDX-License-Identifier: MIT */
/* The HTTP side of `whale serve`: a libmicrohttpd daemon (one thread per
 * connection, so a connection thread may block waiting for its job's
 * output) that routes the fixed paths, enforces the body limit while
 * receiving, checks the API key, turns requests into engine jobs (api.h
 * parses, engine.h generates) and streams their output as server-sent
 * events. A client that goes away cancels its job at once, so its slot is
 * free for the next request. */
#ifndef WHALE_HTTP_H
#define WHALE_HTTP_H

#include <stddef.h>

#include "base/err.h"
#include "serve/engine.h"

/* Zero means default for every field. */
typedef struct HttpOpts {
    const char *host;    /* address to bind (numeric or a name); NULL: 127.0.0.1 */
    int port;            /* 0: a free port the system picks (http_port says which) */
    const char *api_key; /* non-NULL: the /v1 routes need "Authorization: Bearer KEY" */
    size_t max_body;     /* request body limit in bytes; 0: 1 MiB */
    double time_limit_s; /* per request generation limit; 0: 600; < 0: none */
    int max_connections; /* open connections (each a thread); 0: 256 */
    unsigned idle_s;     /* a connection silent this long is closed; 0: 30 */
} HttpOpts;

typedef struct HttpServer HttpServer;

/* Bind o's address and listen, before the model loads, so that a port in
 * use or a bad --host fails at once; connections wait in the backlog until
 * http_run. 0 with *out, or -1 with err (the address cannot be resolved or
 * bound). */
int http_listen(HttpServer **out, const HttpOpts *o, Err *err);

/* Start answering with e (borrowed: it must outlive the server). 0, or -1
 * with err (then http_stop still frees s). */
int http_run(HttpServer *s, Engine *e, Err *err);

/* The port the server listens on (the chosen one when o->port was 0). */
int http_port(const HttpServer *s);

/* Shut down (after http_listen or http_run): stop accepting connections, answer new requests on open ones
 * with 503, cancel the jobs in flight (a stream gets its last chunk with
 * finish_reason "cancelled" and [DONE], a waiting client 503), wait up to
 * grace_s seconds for their readers to finish, then close every connection
 * and join its thread. The engine is left open (close it after this).
 * NULL allowed. */
void http_stop(HttpServer *s, double grace_s);

#endif
