/* SPDX-License-Identifier: MIT */
/* whale serve's HTTP layer (see http.h) on libmicrohttpd in
 * thread-per-connection mode: MHD calls on_request in the connection's own
 * thread, first with the headers (route, method, auth and the declared
 * body size are checked there, before any body is read), then with pieces
 * of the body, then once more to answer. Answering submits a job and
 * blocks this thread on it: a non-streamed answer waits for the end, a
 * stream is an MHD callback response whose reader blocks for each delta.
 * Both waits poll the client's socket between deltas, so a client that
 * hangs up cancels its job within a tenth of a second. */
#include "serve/http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/rng.h"
#include "serve/api.h"
#include "serve/page.h"

#define WAIT_SLICE_MS 100       /* how often a waiting connection checks its client */
#define CONN_MEMORY (128 << 10) /* per connection: headers and the read buffer */

/* A job in flight, linked into the server's list so shutdown can cancel it. */
typedef struct Flight {
    Job *job;
    struct Flight *prev, *next;
} Flight;

struct HttpServer {
    struct MHD_Daemon *d;
    Engine *e;
    HttpOpts o;
    char *api_key; /* owned copy */
    int fd;        /* the listening socket (MHD's once it runs) */
    int port;
    long long started;
    pthread_mutex_t mu;  /* guards everything below */
    pthread_cond_t idle; /* signalled when flights becomes empty */
    int stopping;
    Flight *flights;
    atomic_uint_fast64_t counter; /* ids and default seeds */
    uint64_t salt;
};

enum { R_PAGE, R_HEALTH, R_MODELS, R_CHAT, R_COMPLETION, R_N };
static const struct {
    const char *path, *method;
    int api; /* under /v1/: the API key applies */
} routes[R_N] = {
    [R_PAGE] = {"/", "GET", 0},
    [R_HEALTH] = {"/health", "GET", 0},
    [R_MODELS] = {"/v1/models", "GET", 1},
    [R_CHAT] = {"/v1/chat/completions", "POST", 1},
    [R_COMPLETION] = {"/v1/completions", "POST", 1},
};

/* One request's state (MHD's con_cls), from the first call to completion. */
typedef struct Req {
    int route;
    int answered; /* a response is queued: later body bytes are ignored */
    char *body;
    size_t len, cap;
} Req;

/* ---- small helpers -------------------------------------------------------------- */

/* A fresh 64-bit value per call: ids and the seeds of requests without one. */
static uint64_t next_nonce(HttpServer *s) {
    return rng_mix(s->salt + atomic_fetch_add(&s->counter, 1));
}

/* Queue a response of n bytes at body; own: body is malloc'd and MHD frees
 * it; allow: the Allow header of a 405 (else NULL). */
static enum MHD_Result queue(struct MHD_Connection *c, int status, const char *type,
                             const char *body, size_t n, int own, const char *allow) {
    struct MHD_Response *r = MHD_create_response_from_buffer(
        n, (void *)body, own ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        if (own) free((void *)body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == 401) MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (allow) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

/* A built JSON body (taken; NULL: out of memory, answered 500). */
static enum MHD_Result queue_json(struct MHD_Connection *c, int status, char *body,
                                  const char *allow) {
    static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":"
                              "\"server_error\",\"param\":null,\"code\":null}}";
    if (!body) return queue(c, 500, "application/json", oom, sizeof oom - 1, 0, NULL);
    return queue(c, status, "application/json", body, strlen(body), 1, allow);
}

static enum MHD_Result queue_error(struct MHD_Connection *c, const ApiError *e) {
    if (e->status >= 500 || e->status == 429) log_info("whale serve: %d %s", e->status, e->message);
    return queue_json(c, e->status, api_error_body(e, NULL), NULL);
}

/* 405 with the Allow header naming the route's method. */
static enum MHD_Result queue_405(struct MHD_Connection *c, int route, const char *method) {
    ApiError e;
    api_error(&e, 405, NULL, "method %.16s is not allowed on %s (use %s)", method,
              routes[route].path, routes[route].method);
    e.code = "method_not_allowed";
    return queue_json(c, 405, api_error_body(&e, NULL), routes[route].method);
}

/* The connection's idle timeout: 0 while this thread blocks on a job (MHD
 * would otherwise count the wait as client silence and drop the answer);
 * setting it back from 0 restarts MHD's idle clock. */
static void set_idle_timeout(struct MHD_Connection *c, unsigned s) {
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, s);
}

/* 1 when the client has closed its side (or the socket failed): recv
 * peeks 0 bytes on an orderly close, would-block on a live idle client. */
static int client_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 1;
    char b;
    ssize_t n = recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* Constant-time check of "Authorization: Bearer KEY". */
static int auth_ok(const HttpServer *s, struct MHD_Connection *c) {
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7)) return 0;
    h += 7;
    while (*h == ' ') h++;
    size_t a = strlen(h), b = strlen(s->api_key), n = a > b ? a : b;
    unsigned diff = a != b;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(i < a ? h[i] : 0) ^ (unsigned char)(i < b ? s->api_key[i] : 0);
    return diff == 0;
}

/* ---- jobs in flight --------------------------------------------------------- */

/* Link f (its job set) into the server's list; when the server is already
 * stopping the job is cancelled at once. */
static void flight_begin(HttpServer *s, Flight *f) {
    pthread_mutex_lock(&s->mu);
    f->prev = NULL;
    f->next = s->flights;
    if (s->flights) s->flights->prev = f;
    s->flights = f;
    if (s->stopping) job_cancel(f->job);
    pthread_mutex_unlock(&s->mu);
}

/* Unlink f and release its job (which cancels it if it is still running). */
static void flight_end(HttpServer *s, Flight *f) {
    if (!f->job) return;
    pthread_mutex_lock(&s->mu);
    if (f->prev)
        f->prev->next = f->next;
    else
        s->flights = f->next;
    if (f->next) f->next->prev = f->prev;
    if (!s->flights) pthread_cond_broadcast(&s->idle); /* http_stop may be waiting */
    pthread_mutex_unlock(&s->mu);
    job_release(f->job);
    f->job = NULL;
}

/* Wait for the job's next output, checking the client before each wait
 * (a job that produces text all the time never times out, so the check
 * cannot wait for a quiet slice). 1 with *d, 0 when the client is gone
 * (the job is cancelled), -1 out of memory. */
static int wait_delta(HttpServer *s, struct MHD_Connection *c, Job *j, JobDelta *d) {
    set_idle_timeout(c, 0);
    int rc;
    do {
        if (client_gone(c)) {
            job_cancel(j);
            rc = 0;
            break;
        }
    } while ((rc = job_take(j, WAIT_SLICE_MS, d)) == 0);
    set_idle_timeout(c, s->o.idle_s);
    return rc;
}

/* ---- streamed answers --------------------------------------------------------- */

typedef struct Stream {
    HttpServer *s;
    struct MHD_Connection *c;
    Flight f;
    ApiReply reply;
    int include_usage;
    int started, ended; /* role chunk made; [DONE] made */
    char *out;          /* events not yet handed to MHD */
    size_t out_len, out_pos, out_cap;
} Stream;

/* Append an event (a string, taken; NULL is out of memory) to the
 * pending output. */
static int stream_put(Stream *st, char *ev) {
    if (!ev) return -1;
    size_t n = strlen(ev);
    if (st->out_len + n > st->out_cap) {
        size_t cap = (st->out_len + n) * 2;
        char *o = realloc(st->out, cap);
        if (!o) {
            free(ev);
            return -1;
        }
        st->out = o;
        st->out_cap = cap;
    }
    memcpy(st->out + st->out_len, ev, n);
    st->out_len += n;
    free(ev);
    return 0;
}

/* The events of one delta: thinking, answer, and at the end the finish
 * chunk (or an error event), the usage chunk when asked, and [DONE]. */
static int stream_events(Stream *st, const JobDelta *d) {
    int rc = 0;
    if (d->reasoning_len)
        rc |= stream_put(st, api_reply_chunk(&st->reply, 0, d->reasoning, d->reasoning_len, NULL, 0,
                                             NULL, NULL));
    if (d->content_len)
        rc |= stream_put(
            st, api_reply_chunk(&st->reply, 0, NULL, 0, d->content, d->content_len, NULL, NULL));
    if (!d->done) return rc;
    if (!strcmp(d->finish_reason, "error")) {
        ApiError e;
        api_error(&e, 500, NULL, "generation failed: %s", d->error);
        rc |= stream_put(st, api_error_chunk(&e, NULL));
    } else {
        rc |= stream_put(st,
                         api_reply_chunk(&st->reply, 0, NULL, 0, NULL, 0, d->finish_reason, NULL));
    }
    if (st->include_usage) rc |= stream_put(st, api_reply_usage_chunk(&st->reply, &d->usage, NULL));
    rc |= stream_put(st, strdup("data: [DONE]\n\n"));
    st->ended = 1;
    return rc;
}

/* MHD's reader: hand out pending bytes, blocking on the job for more. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    Stream *st = cls;
    while (st->out_pos == st->out_len) {
        st->out_pos = st->out_len = 0;
        if (st->ended) return MHD_CONTENT_READER_END_OF_STREAM;
        if (!st->started) {
            st->started = 1;
            if (st->reply.route != API_CHAT) continue;
            if (stream_put(st, api_reply_chunk(&st->reply, 1, NULL, 0, NULL, 0, NULL, NULL)))
                return MHD_CONTENT_READER_END_WITH_ERROR;
            continue;
        }
        JobDelta d;
        if (wait_delta(st->s, st->c, st->f.job, &d) != 1)
            return MHD_CONTENT_READER_END_WITH_ERROR; /* client gone: MHD closes, frees st */
        int rc = stream_events(st, &d);
        if (d.done)
            log_info("whale serve: stream %s %s (%d prompt, %d completion tokens)", st->reply.id,
                     d.finish_reason, d.usage.prompt_tokens, d.usage.completion_tokens);
        job_delta_free(&d);
        if (rc) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = st->out_len - st->out_pos < max ? st->out_len - st->out_pos : max;
    memcpy(buf, st->out + st->out_pos, n);
    st->out_pos += n;
    return (ssize_t)n;
}

/* MHD frees the response when the connection is done with it, whether the
 * stream ended or a write to a vanished client failed: release the job. */
static void stream_free(void *cls) {
    Stream *st = cls;
    flight_end(st->s, &st->f);
    free(st->out);
    free(st);
}

static enum MHD_Result answer_stream(HttpServer *s, struct MHD_Connection *c, Job *j,
                                     const ApiReply *reply, int include_usage) {
    Stream *st = calloc(1, sizeof *st);
    if (!st) {
        job_release(j);
        return MHD_NO;
    }
    *st =
        (Stream){.s = s, .c = c, .f = {.job = j}, .reply = *reply, .include_usage = include_usage};
    flight_begin(s, &st->f);
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 << 10, stream_read, st, stream_free);
    if (!r) {
        stream_free(st);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    enum MHD_Result ok = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ok;
}

/* ---- whole answers -------------------------------------------------------------- */

typedef struct Text {
    char *p;
    size_t n, cap;
} Text;

static int text_add(Text *t, const char *s, size_t n) {
    if (!n) return 0;
    if (t->n + n + 1 > t->cap) {
        size_t cap = (t->n + n + 1) * 2;
        char *p = realloc(t->p, cap);
        if (!p) return -1;
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->n, s, n);
    t->n += n;
    t->p[t->n] = 0;
    return 0;
}

static enum MHD_Result answer_whole(HttpServer *s, struct MHD_Connection *c, Job *j,
                                    const ApiReply *reply) {
    Flight f = {.job = j};
    flight_begin(s, &f);
    Text th = {0}, an = {0};
    JobDelta d;
    enum MHD_Result ok = MHD_NO;
    for (;;) {
        if (wait_delta(s, c, j, &d) != 1) goto done; /* client gone: close */
        int rc =
            text_add(&th, d.reasoning, d.reasoning_len) | text_add(&an, d.content, d.content_len);
        if (rc || d.done) break;
        job_delta_free(&d);
    }
    ApiError e;
    if (!d.done) {
        api_error(&e, 500, NULL, "out of memory");
        ok = queue_error(c, &e);
    } else if (!strcmp(d.finish_reason, "error")) {
        api_error(&e, 500, NULL, "generation failed: %s", d.error);
        ok = queue_error(c, &e);
    } else if (!strcmp(d.finish_reason, "cancelled")) {
        api_error(&e, 503, NULL, "the server is stopping; the request was cancelled");
        ok = queue_error(c, &e);
    } else {
        char *body = api_reply_full(reply, th.p, an.p, d.finish_reason, &d.usage, NULL);
        log_info("whale serve: %s %s (%d prompt, %d completion tokens)", reply->id, d.finish_reason,
                 d.usage.prompt_tokens, d.usage.completion_tokens);
        ok = queue_json(c, 200, body, NULL);
    }
    job_delta_free(&d);
done:
    flight_end(s, &f);
    free(th.p);
    free(an.p);
    return ok;
}

/* ---- requests ------------------------------------------------------------------- */

static int refusal_status(EngineRefusal why) {
    return why == ENGINE_BUSY       ? 429
           : why == ENGINE_STOPPING ? 503
           : why == ENGINE_INVALID  ? 400
                                    : 500;
}

/* The whole body is in: parse it, make the prompt, submit, answer. */
static enum MHD_Result answer_post(HttpServer *s, struct MHD_Connection *c, Req *r) {
    ApiRoute route = r->route == R_CHAT ? API_CHAT : API_COMPLETION;
    ApiRequest q;
    ApiError e;
    if (api_parse(route, r->body ? r->body : "", r->len, &q, &e) != 0) return queue_error(c, &e);
    const char *name = engine_model_name(s->e);
    EnginePrompt p = {0};
    Err err = {0};
    Job *j = NULL;
    int prc;
    if (q.model && strcmp(q.model, name)) {
        api_error(&e, 404, "model", "the model '%.200s' does not exist; this server has '%.200s'",
                  q.model, name);
        e.code = "model_not_found";
    } else if (q.suffix && !engine_has_fim(s->e)) {
        api_error(&e, 400, "suffix",
                  "request: 'suffix' (fill-in-the-middle) is not supported by this model's "
                  "vocabulary");
    } else if ((prc = route == API_CHAT ? engine_prompt_chat(s->e, q.msgs, q.n_msgs, &p, &err)
                                        : engine_prompt_text(s->e, q.prompt, q.suffix, &p, &err)) !=
               0) {
        api_error(&e, 400, route == API_CHAT ? "messages" : "prompt", "%s", err.msg);
        if (prc == ENGINE_TOO_LONG) e.code = "context_length_exceeded"; /* OpenAI's code */
    } else {
        q.params.time_limit_s = s->o.time_limit_s;
        if (!q.has_seed) q.params.sampling.seed = next_nonce(s);
        EngineRefusal why = ENGINE_OK;
        j = engine_submit(s->e, &p, &q.params, &why, &err);
        if (!j) api_error(&e, refusal_status(why), NULL, "%s", err.msg);
    }
    engine_prompt_free(&p);
    int stream = q.stream, include_usage = q.include_usage;
    api_request_free(&q);
    if (!j) return queue_error(c, &e);
    ApiReply reply;
    api_reply_init(&reply, route, name, route == API_CHAT && engine_is_reasoning(s->e),
                   (long long)time(NULL), next_nonce(s));
    return stream ? answer_stream(s, c, j, &reply, include_usage) : answer_whole(s, c, j, &reply);
}

static enum MHD_Result answer_get(HttpServer *s, struct MHD_Connection *c, int route) {
    if (route == R_PAGE) {
        size_t n = 0;
        const char *page = serve_page(&n);
        return queue(c, 200, "text/html; charset=utf-8", page, n, 0, NULL);
    }
    const char *name = engine_model_name(s->e);
    if (route == R_MODELS) return queue_json(c, 200, api_models_body(name, s->started, NULL), NULL);
    EngineStats st;
    engine_stats(s->e, &st);
    return queue_json(c, 200, api_health_body(name, &st, NULL), NULL);
}

/* The first call, headers only: route, method, stopping, auth, declared
 * size. Errors are answered now, before a byte of the body is read (MHD
 * then closes the connection instead of reading the rest). */
static enum MHD_Result first_call(HttpServer *s, struct MHD_Connection *c, const char *url,
                                  const char *method, Req *r) {
    ApiError e;
    int route = -1;
    for (int i = 0; i < R_N && route < 0; i++)
        if (!strcmp(url, routes[i].path)) route = i;
    r->answered = 1;
    if (route < 0) {
        api_error(&e, 404, NULL, "no such path: %.200s", url);
        e.code = "not_found";
        return queue_error(c, &e);
    }
    r->route = route;
    int get = !strcmp(routes[route].method, "GET");
    if (strcmp(method, routes[route].method) && !(get && !strcmp(method, "HEAD")))
        return queue_405(c, route, method);
    pthread_mutex_lock(&s->mu);
    int stopping = s->stopping;
    pthread_mutex_unlock(&s->mu);
    if (stopping) {
        api_error(&e, 503, NULL, "the server is stopping");
        return queue_error(c, &e);
    }
    if (routes[route].api && s->api_key && !auth_ok(s, c)) {
        api_error(&e, 401, NULL, "missing or wrong API key (send \"Authorization: Bearer KEY\")");
        e.code = "invalid_api_key";
        return queue_error(c, &e);
    }
    /* a GET is answered on the next call: an answer queued on the first
     * call makes MHD close the connection (no keep-alive) */
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!get && cl && strtoull(cl, NULL, 10) > s->o.max_body) {
        api_error(&e, 413, NULL, "request body of %.20s bytes is over the limit of %zu", cl,
                  s->o.max_body);
        return queue_error(c, &e);
    }
    r->answered = 0;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_n, void **con_cls) {
    (void)version;
    HttpServer *s = cls;
    Req *r = *con_cls;
    if (!r) {
        if (!(r = calloc(1, sizeof *r))) return MHD_NO;
        *con_cls = r;
        return first_call(s, c, url, method, r);
    }
    if (r->answered) {
        *upload_n = 0; /* a body after an early answer: ignored */
        return MHD_YES;
    }
    if (*upload_n) {
        /* a chunked body (no Content-Length) past the limit: no status can be
         * sent while the client is still sending, so the connection is dropped */
        if (*upload_n > s->o.max_body - r->len) return MHD_NO;
        if (r->len + *upload_n > r->cap) {
            size_t cap = (r->len + *upload_n) * 2;
            if (cap > s->o.max_body) cap = s->o.max_body;
            char *b = realloc(r->body, cap);
            if (!b) return MHD_NO;
            r->body = b;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload, *upload_n);
        r->len += *upload_n;
        *upload_n = 0;
        return MHD_YES;
    }
    r->answered = 1;
    if (!strcmp(routes[r->route].method, "GET")) return answer_get(s, c, r->route);
    return answer_post(s, c, r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode why) {
    (void)cls;
    (void)c;
    (void)why;
    Req *r = *con_cls;
    if (!r) return;
    free(r->body);
    free(r);
    *con_cls = NULL;
}

/* MHD's own messages (a client's malformed request, a failed send) are
 * progress-level noise for a server facing the network. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    if (log_quiet()) return;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    if (n && line[n - 1] == '\n') line[n - 1] = 0;
    log_info("whale serve: http: %s", line);
}

/* ---- the daemon ------------------------------------------------------------- */

/* A listening socket on host:port; the caller closes it. -1 with err. */
static int listen_on(const char *host, int port, int *bound_port, Err *err) {
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE},
                    *ai = NULL;
    int rc = getaddrinfo(host, ps, &hints, &ai);
    if (rc) return err_set(err, "cannot resolve --host '%s': %s", host, gai_strerror(rc));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        freeaddrinfo(ai);
        return err_set(err, "cannot listen on %s port %d: %s", host, port, strerror(e));
    }
    freeaddrinfo(ai);
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        close(fd);
        return err_set(err, "getsockname: %s", strerror(errno));
    }
    *bound_port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                                 : ((struct sockaddr_in *)&sa)->sin_port);
    return fd;
}

int http_listen(HttpServer **out, const HttpOpts *o, Err *err) {
    *out = NULL;
    HttpServer *s = calloc(1, sizeof *s);
    if (!s) return err_set(err, "out of memory");
    s->o = *o;
    if (!s->o.host) s->o.host = "127.0.0.1";
    if (!s->o.max_body) s->o.max_body = 1 << 20;
    if (s->o.time_limit_s == 0) s->o.time_limit_s = 600;
    if (!s->o.max_connections) s->o.max_connections = 256;
    if (!s->o.idle_s) s->o.idle_s = 30;
    if (o->api_key && !(s->api_key = strdup(o->api_key))) {
        free(s);
        return err_set(err, "out of memory");
    }
    if ((s->fd = listen_on(s->o.host, o->port, &s->port, err)) < 0) {
        free(s->api_key);
        free(s);
        return -1;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->idle, NULL);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    s->salt = rng_mix((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid());
    atomic_init(&s->counter, 0);
    *out = s;
    return 0;
}

int http_run(HttpServer *s, Engine *e, Err *err) {
    s->e = e;
    s->started = (long long)time(NULL);
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                MHD_USE_ITC | MHD_USE_ERROR_LOG,
                            0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
                            NULL, MHD_OPTION_LISTEN_SOCKET, s->fd, MHD_OPTION_NOTIFY_COMPLETED,
                            on_completed, s, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)s->o.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
                            s->o.idle_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
                            MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_END);
    if (!s->d)
        return err_set(err, "cannot start the HTTP server on %s port %d", s->o.host, s->port);
    return 0;
}

int http_port(const HttpServer *s) { return s->port; }

void http_stop(HttpServer *s, double grace_s) {
    if (!s) return;
    /* no new connections (MHD hands the listening socket back) */
    MHD_socket lfd = s->d ? MHD_quiesce_daemon(s->d) : s->fd;
    if (lfd != MHD_INVALID_SOCKET) close(lfd);
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    for (Flight *f = s->flights; f; f = f->next) job_cancel(f->job);
    /* let the cancelled jobs' readers write their last chunk or their 503 */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long long ns = (long long)until.tv_nsec + (long long)(grace_s * 1e9);
    until.tv_sec += (time_t)(ns / 1000000000);
    until.tv_nsec = (long)(ns % 1000000000);
    while (s->flights && pthread_cond_timedwait(&s->idle, &s->mu, &until) == 0) {
    }
    pthread_mutex_unlock(&s->mu);
    if (s->d) MHD_stop_daemon(s->d); /* shuts every connection's socket, joins its thread */
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->idle);
    free(s->api_key);
    free(s);
}
