/* SPDX-License-Identifier: MIT */
/* whale serve as clients see it, over raw sockets. A real server on a
 * free port (tests/serve_server.h) answers /health, /v1/models, chats and
 * completions, streamed and not, from a model that memorised a few chats
 * (tests/serve_model.sh). A hostile run sends a few hundred malformed,
 * oversized, unauthorised, truncated and stalled requests to a server
 * with --api-key and a 64 KiB body limit: each is answered with its status
 * or dropped, the server answers others meanwhile and after; a client that
 * vanishes mid-stream or while it waits frees the only slot at once; a
 * full queue answers 429; SIGTERM ends the stream in flight with
 * "cancelled" and [DONE], and the process with exit 0.
 * No Criterion .timeout (see test_generate.c): sockets have receive
 * deadlines and every wait has its own. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "serve_cases.h"
#include "serve_server.h"
#include "whale_cli.h"

static char g_dir[64];
static ServeProc g_srv;

static void setup(void) {
    cr_assert_eq(h_tmpdir(g_dir, sizeof g_dir, "serve"), 0, "mkdtemp failed");
    setenv("WHALE_QUIET", "1", 1);
    setenv("OMP_WAIT_POLICY", "passive", 1);
}

static void teardown(void) {
    serve_kill(&g_srv);
    h_rmtree(g_dir);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- a raw HTTP client ------------------------------------------------------ */

/* One answer as read off the socket. */
typedef struct Resp {
    int status; /* 0: none (the server closed the connection without one) */
    char *raw;  /* everything received, NUL-terminated */
    size_t raw_n;
    char *body; /* the body, chunked transfer coding undone, NUL-terminated */
    size_t body_n;
    json_t *json; /* the body parsed, when it is JSON */
} Resp;

static void resp_free(Resp *r) {
    free(r->raw);
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

/* A connection to the server, with 20 s send and receive deadlines so a
 * server that hangs fails the test instead of stalling it. */
static int conn_open(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
    struct timeval tv = {.tv_sec = 20};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "connect to port %d: %s", port,
                 strerror(errno));
    return fd;
}

/* Send everything; -1 when the server closed first (it may answer early). */
static int send_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k <= 0) return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Undo the chunked transfer coding of s (n bytes) into out; -1 if malformed. */
static int dechunk(const char *s, size_t n, char *out, size_t *out_n) {
    size_t i = 0, o = 0;
    for (;;) {
        char *end;
        unsigned long k = strtoul(s + i, &end, 16);
        const char *crlf = strstr(s + i, "\r\n");
        if (end == s + i || !crlf || (size_t)(crlf - s) + 2 + k > n) return -1;
        i = (size_t)(crlf - s) + 2;
        if (!k) break;
        memcpy(out + o, s + i, k);
        o += k;
        i += k + 2;
    }
    out[o] = 0;
    *out_n = o;
    return 0;
}

/* Read until the server closes (or the deadline) and parse what came. */
static void resp_read(int fd, Resp *r) {
    memset(r, 0, sizeof *r);
    size_t cap = 1 << 16;
    r->raw = malloc(cap);
    for (;;) {
        if (r->raw_n + 4096 > cap) r->raw = realloc(r->raw, cap *= 2);
        ssize_t k = recv(fd, r->raw + r->raw_n, cap - r->raw_n - 1, 0);
        if (k <= 0) break;
        r->raw_n += (size_t)k;
    }
    r->raw[r->raw_n] = 0;
    const char *eoh = strstr(r->raw, "\r\n\r\n");
    if (sscanf(r->raw, "HTTP/1.%*d %d", &r->status) != 1 || !eoh) {
        r->status = 0;
        return;
    }
    const char *b = eoh + 4;
    size_t bn = r->raw_n - (size_t)(b - r->raw);
    r->body = malloc(bn + 1);
    if (strcasestr(r->raw, "\r\nTransfer-Encoding: chunked") &&
        strcasestr(r->raw, "\r\nTransfer-Encoding: chunked") < eoh) {
        if (dechunk(b, bn, r->body, &r->body_n) != 0)
            cr_assert_fail("bad chunked body:\n%s", r->raw);
    } else {
        memcpy(r->body, b, bn);
        r->body[bn] = 0;
        r->body_n = bn;
    }
    r->json = json_loads(r->body, 0, NULL);
}

/* Send raw bytes on a fresh connection and read the answer. */
static void http_raw(int port, const void *req, size_t n, Resp *r) {
    int fd = conn_open(port);
    send_all(fd, req, n);
    resp_read(fd, r);
    close(fd);
}

/* A request with an optional bearer key and JSON body. */
static void http_req(int port, const char *method, const char *path, const char *key,
                     const char *body, Resp *r) {
    size_t bn = body ? strlen(body) : 0;
    char *req = malloc(bn + 512);
    int k = snprintf(req, 512, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method,
                     path);
    if (key) k += snprintf(req + k, 512 - (size_t)k, "Authorization: Bearer %s\r\n", key);
    if (body)
        k += snprintf(req + k, 512 - (size_t)k,
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n", bn);
    k += snprintf(req + k, 512 - (size_t)k, "\r\n");
    if (bn) memcpy(req + k, body, bn);
    http_raw(port, req, (size_t)k + bn, r);
    free(req);
}

/* The error object of an error answer: its message (asserted present). */
static const char *err_message(const Resp *r) {
    const char *m = jstr(r->json, "error.message");
    cr_assert(m, "status %d without an OpenAI error body:\n%s", r->status, r->raw);
    return m;
}

/* The data of each SSE event of a stream body (up to max), in order. */
static int sse_events(const char *body, char **ev, int max) {
    int n = 0;
    for (const char *p = body; *p && n < max;) {
        const char *end = strstr(p, "\n\n");
        cr_assert(end, "an SSE event without its blank line: %s", p);
        cr_assert(!strncmp(p, "data: ", 6), "an SSE event that is not data: %.*s", (int)(end - p),
                  p);
        ev[n++] = strndup(p + 6, (size_t)(end - p - 6));
        p = end + 2;
    }
    return n;
}

/* ---- the server -------------------------------------------------------------- */

static const char *chat_body(const char *extra, const char *user) {
    static char b[4096];
    snprintf(b, sizeof b,
             "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],\"temperature\":0%s%s}", user,
             extra[0] ? "," : "", extra);
    return b;
}

Test(serve, answers_chats_and_completions_streamed_and_not, .init = setup, .fini = teardown) {
    const char *model = serve_fixture_model(g_dir);
    serve_start(&g_srv, g_dir, model, (const char *const[]){"--parallel", "2", "-t", "1", NULL});
    int port = g_srv.port;
    Resp r;

    http_req(port, "GET", "/health", NULL, NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_expect_str_eq(jstr(r.json, "status"), "ok");
    cr_expect_str_eq(jstr(r.json, "model"), "model");
    cr_expect_eq(jint(r.json, "slots", "parallel"), 2);
    resp_free(&r);
    http_req(port, "GET", "/v1/models", NULL, NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_expect_str_eq(jstr(r.json, "data.0.id"), "model");
    resp_free(&r);

    /* a whole answer: thinking apart from the answer, usage adds up */
    http_req(port, "POST", "/v1/chat/completions", NULL, chat_body("\"model\":\"model\"", "Hi"),
             &r);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_expect_str_eq(jstr(r.json, "object"), "chat.completion");
    cr_expect_str_eq(jstr(r.json, "choices.0.message.reasoning_content"), "I should greet back.");
    cr_expect_str_eq(jstr(r.json, "choices.0.message.content"), "Hello! How can I help?");
    cr_expect_str_eq(jstr(r.json, "choices.0.finish_reason"), "stop");
    json_t *u = json_object_get(r.json, "usage");
    long long pt = jint(u, "prompt_tokens", NULL), ct = jint(u, "completion_tokens", NULL);
    cr_expect(pt > 0 && ct > 0 && jint(u, "total_tokens", NULL) == pt + ct, "usage: %s", r.body);
    long long rt = jint(u, "completion_tokens_details", "reasoning_tokens");
    cr_expect(rt > 0 && rt < ct, "reasoning tokens %lld of %lld", rt, ct);
    cr_expect_eq(
        jint(u, "prompt_cache_hit_tokens", NULL) + jint(u, "prompt_cache_miss_tokens", NULL), pt);
    resp_free(&r);

    http_req(port, "POST", "/v1/chat/completions", NULL, chat_body("\"model\":\"other\"", "Hi"),
             &r);
    cr_expect_eq(r.status, 404, "%s", r.raw);
    cr_expect_str_eq(jstr(r.json, "error.code"), "model_not_found");
    cr_expect_str_eq(jstr(r.json, "error.param"), "model");
    resp_free(&r);

    /* a stream: role first, thinking, answer, finish, usage, [DONE] last */
    http_req(
        port, "POST", "/v1/chat/completions", NULL,
        chat_body("\"stream\":true,\"stream_options\":{\"include_usage\":true}", "What is 2+2?"),
        &r);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_expect(strcasestr(r.raw, "Content-Type: text/event-stream"), "%s", r.raw);
    char *ev[512];
    int n = sse_events(r.body, ev, 512);
    cr_assert_geq(n, 5, "%d events:\n%s", n, r.body);
    cr_expect_str_eq(ev[n - 1], "[DONE]");
    char thinking[256] = "", answer[256] = "", id[64] = "";
    int finishes = 0, usage_at = -1;
    for (int i = 0; i < n - 1; i++) {
        json_t *j = json_loads(ev[i], 0, NULL);
        cr_assert(j, "event %d is not JSON: %s", i, ev[i]);
        cr_expect_str_eq(jstr(j, "object"), "chat.completion.chunk");
        const char *id_i = jstr(j, "id");
        if (!i) snprintf(id, sizeof id, "%s", id_i ? id_i : "");
        cr_expect_str_eq(jstr(j, "id"), id, "one id for the whole stream");
        if (!i) cr_expect_str_eq(jstr(j, "choices.0.delta.role"), "assistant");
        const char *t = jstr(j, "choices.0.delta.reasoning_content");
        const char *c = jstr(j, "choices.0.delta.content");
        if (t) strncat(thinking, t, sizeof thinking - strlen(thinking) - 1);
        if (c) strncat(answer, c, sizeof answer - strlen(answer) - 1);
        cr_expect(!(t && answer[0]), "thinking after the answer began (event %d)", i);
        if (jstr(j, "choices.0.finish_reason")) {
            finishes++;
            cr_expect_str_eq(jstr(j, "choices.0.finish_reason"), "stop");
        }
        if (json_object_get(j, "usage")) {
            usage_at = i;
            cr_expect_eq(json_array_size(json_object_get(j, "choices")), 0);
            cr_expect_gt(jint(j, "usage", "completion_tokens"), 0);
        }
        json_decref(j);
    }
    cr_expect_str_eq(thinking, "2 plus 2 makes 4.");
    cr_expect_str_eq(answer, "It is 4.");
    cr_expect_eq(finishes, 1);
    cr_expect_eq(usage_at, n - 2, "the usage chunk comes last before [DONE]");
    for (int i = 0; i < n; i++) free(ev[i]);
    resp_free(&r);

    /* the second turn, the earlier thinking sent back (and dropped); the
     * shared start of the conversation comes from the prefix cache */
    http_req(port, "POST", "/v1/chat/completions", NULL,
             "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\","
             "\"content\":\"Hello! How can I help?\",\"reasoning_content\":\"I should greet "
             "back.\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What is "
             "2+2?\"}]}],\"temperature\":0}",
             &r);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_expect_str_eq(jstr(r.json, "choices.0.message.content"), "It is 4.");
    cr_expect_gt(jint(r.json, "usage", "prompt_cache_hit_tokens"), 0, "%s", r.body);
    resp_free(&r);

    /* a completion cut at a stop string */
    http_req(port, "POST", "/v1/completions", NULL,
             "{\"prompt\":\"Once upon a time\",\"temperature\":0,\"stop\":[\".\"]}", &r);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_expect_str_eq(jstr(r.json, "object"), "text_completion");
    cr_expect_str_eq(jstr(r.json, "choices.0.text"), " there was a whale");
    cr_expect_str_eq(jstr(r.json, "choices.0.finish_reason"), "stop");
    resp_free(&r);

    /* keep-alive: two requests on one connection, both answered */
    const char two[] = "GET /health HTTP/1.1\r\nHost: a\r\n\r\n"
                       "GET /v1/models HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    http_raw(port, two, sizeof two - 1, &r);
    const char *second = strstr(r.raw + 1, "HTTP/1.1 200");
    cr_expect(r.status == 200 && second && strstr(second, "\"list\""), "%s", r.raw);
    resp_free(&r);
    serve_stop(&g_srv);
}

/* ---- hostile clients ---------------------------------------------------------- */

#define KEY "sk-hostile"
#define MAX_BODY 65536
#define NUL_IN_PATH "GET /he\0lth HTTP/1.1\r\nHost: a\r\n\r\n"

typedef struct Tally {
    int requests;
    int port;
} Tally;

/* Send raw bytes on a fresh connection; expect_answer reads the answer. */
static int send_raw(Tally *t, const void *req, size_t n) {
    int fd = conn_open(t->port);
    send_all(fd, req, n);
    t->requests++;
    return fd;
}

/* The answer on fd must have one of the statuses (0 in the list: being
 * dropped without an answer is fine too). Requests too broken to route get
 * libmicrohttpd's own HTML error page; the statuses only whale gives carry
 * the OpenAI error object. */
static void expect_answer(int fd, const char *what, const int *statuses) {
    Resp r;
    resp_read(fd, &r);
    close(fd);
    int ok = 0;
    for (const int *s = statuses; *s >= 0 && !ok; s++) ok = r.status == *s;
    cr_expect(ok, "%s: unexpected status %d:\n%.400s", what, r.status, r.raw);
    if (r.status == 401 || r.status == 404 || r.status == 405 || (r.status >= 400 && r.json))
        err_message(&r);
    resp_free(&r);
}

static void expect_one_of(Tally *t, const char *what, const void *req, size_t n,
                          const int *statuses) {
    expect_answer(send_raw(t, req, n), what, statuses);
}

/* A request that must be answered status with an error naming needle. */
static void expect_error(Tally *t, const char *method, const char *path, const char *key,
                         const char *body, int status, const char *needle) {
    Resp r;
    http_req(t->port, method, path, key, body, &r);
    t->requests++;
    cr_expect_eq(r.status, status, "%s %s %.200s: status %d, expected %d:\n%.400s", method, path,
                 body ? body : "", r.status, status, r.raw);
    if (r.status >= 400 && needle)
        cr_expect(strstr(err_message(&r), needle), "%s %s: \"%s\" lacks \"%s\"", method, path,
                  err_message(&r), needle);
    resp_free(&r);
}

/* Every refusal of the schema table, over HTTP on both the route it names
 * and with the body bytes as sent. */
static void hostile_bodies(Tally *t) {
    for (int i = 0; i < N_BAD; i++) {
        const BadBody *b = &bad_bodies[i];
        Resp r;
        http_req(t->port, "POST", b->route == API_CHAT ? "/v1/chat/completions" : "/v1/completions",
                 KEY, b->body, &r);
        t->requests++;
        char why[1024];
        const char *param = jstr(r.json, "error.param");
        cr_expect_eq(bad_matches(b, r.status, param ? param : "", r.json ? err_message(&r) : r.raw,
                                 why, sizeof why),
                     0, "over HTTP, case %d (%s): %s", i, b->body, why);
        resp_free(&r);
    }
    /* invalid UTF-8 outside strings, and bodies the engine refuses */
    static const char *const more[] = {"{\"messages\"\xff:[]}", "\xef\xbb\xbf{}",
                                       "{\"a\":\"\xf8\"}"};
    for (int i = 0; i < 3; i++)
        for (int route = 0; route < 2; route++)
            expect_error(t, "POST", route ? "/v1/completions" : "/v1/chat/completions", KEY,
                         more[i], 400, i == 1 ? "JSON" : "UTF-8");
    char stop[400];
    snprintf(stop, sizeof stop, "\"stop\":\"%0300d\"", 7);
    expect_error(t, "POST", "/v1/chat/completions", KEY, chat_body(stop, "hi"), 400, "stop");
    expect_error(t, "POST", "/v1/completions", KEY, "{\"prompt\":\"a\",\"model\":\"gpt-4\"}", 404,
                 "gpt-4");
    expect_error(t, "POST", "/v1/completions", KEY, "{\"prompt\":\"a\",\"suffix\":\"b\"}", 400,
                 "suffix");
    /* a prompt longer than the context (under the body limit) */
    size_t n = 40000;
    char *big = malloc(n + 64);
    int k = snprintf(big, 64, "{\"prompt\":\"");
    for (size_t i = 0; i < n - 64; i++) big[k++] = (char)('a' + (i * 7 + i / 26) % 26);
    strcpy(big + k, "\"}");
    expect_error(t, "POST", "/v1/completions", KEY, big, 400, "context");
    Resp r;
    http_req(t->port, "POST", "/v1/completions", KEY, big, &r);
    t->requests++;
    const char *code = jstr(r.json, "error.code");
    cr_expect(code && !strcmp(code, "context_length_exceeded"), "error.code: %s",
              code ? code : "(none)");
    resp_free(&r);
    free(big);
}

/* Methods, paths and keys. */
static void hostile_routes(Tally *t) {
    static const struct {
        const char *method, *path;
        int status;
    } routes[] = {
        {"GET", "/v1/chat/completions", 405},
        {"PUT", "/v1/chat/completions", 405},
        {"DELETE", "/v1/completions", 405},
        {"GET", "/v1/completions", 405},
        {"POST", "/health", 405},
        {"DELETE", "/health", 405},
        {"POST", "/v1/models", 405},
        {"PATCH", "/", 405},
        {"OPTIONS", "/v1/models", 405},
        {"BREW", "/health", 405},
        {"GET", "/v2/models", 404},
        {"GET", "/../etc/passwd", 404},
        {"GET", "/%2e%2e/%2e%2e/etc/passwd", 404},
        {"GET", "/health/", 404},
        {"GET", "//health", 404},
        {"GET", "/index.html", 404},
        {"GET", "/v1/chat/completions/x", 404},
        {"POST", "/v1/chat", 404},
        {"GET", "/src/serve/page.html", 404},
        {"GET", "/v1/models/../../health", 404},
        {"HEAD", "/health", 200},
        {"GET", "/", 200},
        {"GET", "/health?x=1", 200},
    };
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++)
        expect_error(t, routes[i].method, routes[i].path, KEY, NULL, routes[i].status, NULL);
    /* the key: only /v1 needs it, and it is checked before the body */
    static const char *const wrong[] = {
        "Bearer sk-wrong",        "Bearer sk-hostil", "Bearer sk-hostile2", "Bearer ",
        "Basic c2staG9zdGlsZQ==", "sk-hostile",       "Bearer\tsk-hostile"};
    for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++) {
        char req[256];
        int n = snprintf(req, sizeof req,
                         "GET /v1/models HTTP/1.1\r\nHost: a\r\nAuthorization: %s\r\n"
                         "Connection: close\r\n\r\n",
                         wrong[i]);
        expect_one_of(t, wrong[i], req, (size_t)n, (const int[]){401, -1});
    }
    expect_error(t, "GET", "/v1/models", NULL, NULL, 401, "API key");
    expect_error(t, "POST", "/v1/chat/completions", NULL, chat_body("", "hi"), 401, "API key");
    expect_error(t, "POST", "/v1/completions", NULL, "{not json", 401, "API key");
    expect_error(t, "GET", "/health", NULL, NULL, 200, NULL);
    expect_error(t, "GET", "/", NULL, NULL, 200, NULL);
    expect_error(t, "GET", "/v1/models", "sk-hostile", NULL, 200, NULL);
}

/* Bodies over the limit, declared or chunked, and a body exactly at it. */
static void hostile_sizes(Tally *t) {
    char head[256];
    /* declared too large: 413 before a byte of the body is sent */
    static const char *const sizes[] = {"65537", "1048576", "99999999999", "18446744073709551615"};
    for (int i = 0; i < 4; i++) {
        int n =
            snprintf(head, sizeof head,
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " KEY
                     "\r\nContent-Length: %s\r\n\r\n",
                     sizes[i]);
        expect_one_of(t, sizes[i], head, (size_t)n, (const int[]){413, 400, -1});
    }
    int n = snprintf(head, sizeof head,
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " KEY
                     "\r\nExpect: 100-continue\r\nContent-Length: 5000000\r\n\r\n");
    expect_one_of(t, "expect 100-continue", head, (size_t)n, (const int[]){413, -1});
    /* ... and sent in full anyway (the server may close while we send) */
    size_t big = 300000;
    char *req = malloc(big + 256);
    n = snprintf(req, 256,
                 "POST /v1/completions HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " KEY
                 "\r\nContent-Length: %zu\r\n\r\n",
                 big);
    memset(req + n, ' ', big);
    expect_one_of(t, "huge body", req, (size_t)n + big, (const int[]){413, 0, -1});
    /* chunked past the limit: dropped (no status can be sent mid-body) or 413 */
    n = snprintf(req, 256,
                 "POST /v1/completions HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " KEY
                 "\r\nTransfer-Encoding: chunked\r\n\r\n");
    size_t at = (size_t)n;
    for (int c = 0; c < 20; c++) {
        at += (size_t)sprintf(req + at, "2710\r\n");
        memset(req + at, ' ', 10000);
        at += 10000;
        at += (size_t)sprintf(req + at, "\r\n");
    }
    at += (size_t)sprintf(req + at, "0\r\n\r\n");
    expect_one_of(t, "chunked huge body", req, at, (const int[]){413, 0, -1});
    free(req);
    /* exactly at the limit: accepted (spaces after the JSON) */
    char *body = malloc(MAX_BODY + 1);
    const char *json = "{\"prompt\":\"a\",\"max_tokens\":1}";
    memset(body, ' ', MAX_BODY);
    memcpy(body, json, strlen(json));
    body[MAX_BODY] = 0;
    expect_error(t, "POST", "/v1/completions", KEY, body, 200, NULL);
    body[MAX_BODY - 1] = 0; /* and a small chunked one */
    free(body);
    static const char chunked[] =
        "POST /v1/completions HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " KEY
        "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        "a\r\n{\"prompt\":\r\n13\r\n\"a\",\"max_tokens\":1}\r\n0\r\n\r\n";
    expect_one_of(t, "small chunked body", chunked, sizeof chunked - 1, (const int[]){200, -1});
}

/* Requests that are not HTTP, or not quite. */
static void hostile_garbage(Tally *t) {
    /* the POSTs carry no key: 401 before the body is looked at is right too */
    static const struct {
        const char *req;
        size_t n;    /* 0: strlen */
        int lenient; /* libmicrohttpd may accept it: 200 is right too */
    } junk[] = {
        {"GARBAGE\r\n\r\n", 0, 0},
        {"GET\r\n\r\n", 0, 0},
        {"GET / HTTP/1.1\r\nHost a\r\n\r\n", 0, 1},
        {"GET /health HTTP/7.0\r\nHost: a\r\n\r\n", 0, 0},
        {"GET /health HTTP/1.1 extra\r\nHost: a\r\n\r\n", 0, 0},
        {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15, 0}, /* a TLS hello */
        {"POST /v1/completions HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n", 0, 0},
        {"POST /v1/completions HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", 0, 0},
        {"POST /v1/completions HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: "
         "6\r\n\r\n",
         0, 0},
        {"POST /v1/completions HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
         0, 0},
        {"POST /v1/completions HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 0, 0},
        {"GET /health HTTP/1.1\r\nHost: a\r\n folded: header\r\n\r\n", 0, 1},
        {"GET /health HTTP/1.1\r\n: empty-name\r\nHost: a\r\n\r\n", 0, 1},
        {NUL_IN_PATH, sizeof NUL_IN_PATH - 1, 0},
        {"\r\n\r\n\r\n\r\n", 0, 0},
    };
    /* all sent first, then all read: the ones the server waits on to
     * complete end together at the idle timeout */
    enum { NJ = sizeof junk / sizeof *junk, NR = 40 };
    int fd[NJ + NR];
    for (size_t i = 0; i < NJ; i++)
        fd[i] = send_raw(t, junk[i].req, junk[i].n ? junk[i].n : strlen(junk[i].req));
    /* random bytes (fixed seed) */
    unsigned s = 12345;
    char b[600];
    for (int k = 0; k < NR; k++) {
        for (size_t i = 0; i < sizeof b; i++) b[i] = (char)((s = s * 1103515245u + 12345u) >> 16);
        memcpy(b + sizeof b - 4, "\r\n\r\n", 4);
        fd[NJ + k] = send_raw(t, b, sizeof b);
    }
    static const int any_error[] = {400, 401, 404, 405, 411, 413, 414, 431, 501, 505, 0, -1};
    for (size_t i = 0; i < NJ; i++)
        expect_answer(fd[i], junk[i].req,
                      junk[i].lenient ? (const int[]){200, 400, 404, 0, -1} : any_error);
    for (int k = 0; k < NR; k++) expect_answer(fd[NJ + k], "random bytes", any_error);
    /* a header and a URL far past the connection's memory */
    size_t big = 300000;
    char *req = malloc(big + 128);
    int n = sprintf(req, "GET /health HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(req + n, 'x', big);
    strcpy(req + n + big, "\r\n\r\n");
    expect_one_of(t, "huge header", req, strlen(req), (const int[]){400, 413, 431, 0, -1});
    n = sprintf(req, "GET /");
    memset(req + n, 'a', big);
    strcpy(req + n + big, " HTTP/1.1\r\nHost: a\r\n\r\n");
    expect_one_of(t, "huge URL", req, strlen(req), (const int[]){400, 404, 414, 431, 0, -1});
    free(req);
}

/* Clients that stop part way: the server must go on answering others
 * meanwhile, and close the stalled connections after the idle timeout. */
static void hostile_stalls(Tally *t) {
    static const char *const partial[] = {
        "GET /hea",
        "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\n",
        "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " KEY
        "\r\nContent-Length: 100\r\n\r\n{\"messages\":",
        "POST /v1/completions HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " KEY
        "\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"pr",
        "G",
    };
    enum { N = 5 };
    int fd[N];
    for (int i = 0; i < N; i++) {
        fd[i] = conn_open(t->port);
        send_all(fd[i], partial[i], strlen(partial[i]));
        t->requests++;
    }
    double t0 = now_s();
    Resp r;
    http_req(t->port, "GET", "/health", NULL, NULL, &r);
    cr_expect_eq(r.status, 200, "/health while clients stall: %s", r.raw);
    cr_expect_lt(now_s() - t0, 2.0, "/health waited behind stalled clients");
    resp_free(&r);
    /* idle timeout 1 s: each is closed (EOF) well within 5 s */
    for (int i = 0; i < N; i++) {
        struct pollfd p = {.fd = fd[i], .events = POLLIN};
        int ready = poll(&p, 1, 5000);
        char buf[512];
        ssize_t k = ready == 1 ? recv(fd[i], buf, sizeof buf, 0) : -1;
        cr_expect(ready == 1 && k >= 0, "stalled client %d (%s) still open after 5 s", i,
                  partial[i]);
        close(fd[i]);
    }
    /* bodies cut short: the client closes its side before the end */
    static const char *const cut[] = {
        "POST /v1/completions HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " KEY
        "\r\nContent-Length: 100\r\n\r\n{\"prompt\":\"a\"",
        "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " KEY
        "\r\nContent-Length: 50\r\n\r\n",
        "POST /v1/completions HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " KEY
        "\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"pro",
        "POST /v1/completions HTTP/1.1\r\nHost: a\r\nAuthor",
    };
    for (int i = 0; i < 4; i++) {
        int c = conn_open(t->port);
        send_all(c, cut[i], strlen(cut[i]));
        shutdown(c, SHUT_WR);
        resp_read(c, &r);
        t->requests++;
        cr_expect(r.status == 0 || r.status == 400, "cut body %d: status %d", i, r.status);
        resp_free(&r);
        close(c);
    }
}

/* A stream opened on c (a request sent): read until its first thinking
 * or answer text. */
static void read_until_text(int c) {
    char buf[4096];
    size_t n = 0;
    while (n < sizeof buf - 1) {
        ssize_t k = recv(c, buf + n, sizeof buf - 1 - n, 0);
        cr_assert_gt(k, 0, "the stream ended before any text");
        n += (size_t)k;
        buf[n] = 0;
        if (strstr(buf, "reasoning_content\":\"") || strstr(buf, "\"content\":\"\\u") ||
            strstr(buf, "delta\":{\"content\":\""))
            return;
    }
}

/* Send a chat request with no token limit that ignores end-of-text (it
 * runs to the full context) and return its socket. Each has a prompt of its own:
 * greedy decoding of one prompt twice would store no new rows in the
 * prefix cache, which abandon() counts. */
static int long_request(int port, int stream) {
    static int k;
    char body[256], req[512];
    snprintf(body, sizeof body,
             "{\"messages\":[{\"role\":\"user\",\"content\":\"go %d\"}],\"temperature\":0,"
             "\"ignore_eos\":true,\"stream\":%s}",
             k++, stream ? "true" : "false");
    int n = snprintf(req, sizeof req,
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " KEY
                     "\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    int c = conn_open(port);
    cr_assert_eq(send_all(c, req, (size_t)n), 0);
    return c;
}

/* A stream opened with long_request: return once text flows. */
static int long_stream(int port) {
    int c = long_request(port, 1);
    read_until_text(c);
    return c;
}

/* /health's JSON (asserted 200). */
static json_t *health(int port) {
    Resp r;
    http_req(port, "GET", "/health", NULL, NULL, &r);
    cr_assert_eq(r.status, 200, "/health: %s", r.raw);
    json_t *j = json_incref(r.json);
    resp_free(&r);
    return j;
}

/* Poll /health until no slot is active and nothing waits (5 s at most). */
static void wait_idle(int port, const char *what) {
    for (int i = 0; i < 500; i++) {
        json_t *h = health(port);
        int idle = jint(h, "slots", "active") == 0 && jint(h, "queued", NULL) == 0;
        json_decref(h);
        if (idle) return;
        usleep(10000);
    }

    cr_assert_fail("%s: a slot is still busy 5 s later", what);
}

static long long cached_tokens(int port) {
    json_t *h = health(port);
    long long n = jint(h, "prefix_cache", "tokens");
    json_decref(h);
    return n;
}

/* Start a long job (streamed or not), hang up once it runs, and check
 * that it stopped within a few hundred tokens of the 4096 it would run to
 * (a finished job's rows go to the prefix cache, which counts them). */
static void abandon(int port, int stream) {
    long long cached0 = cached_tokens(port), cached = cached0;
    int c = stream ? long_stream(port) : long_request(port, 0);
    for (int i = 0; !stream && i < 500; i++, usleep(10000)) {
        json_t *h = health(port);
        int active = (int)jint(h, "slots", "active");
        json_decref(h);
        if (active) break;
    }
    close(c);
    const char *what = stream ? "a client gone mid-stream" : "a client gone while waiting";
    wait_idle(port, what);
    for (int i = 0; i < 500 && cached == cached0; i++, usleep(10000)) cached = cached_tokens(port);
    cr_expect(cached > cached0 && cached - cached0 < 2048, "%s: its job ran on to %lld tokens",
              what, cached - cached0);
}

Test(serve, survives_hostile_clients, .init = setup, .fini = teardown) {
    const char *model = h_path(g_dir, "tiny");
    HRun run;
    WHALE(&run, "init", "--preset", "tiny", "--out", model, "--seed", "1");
    expect_ok(&run);
    h_run_free(&run);
    serve_start(&g_srv, g_dir, model,
                (const char *const[]){"--parallel", "1", "--queue", "1", "--api-key", KEY,
                                      "--max-body", "65536", "--idle-timeout", "1", "--ctx", "4096",
                                      "-t", "1", NULL});
    int port = g_srv.port;
    Tally t = {.port = port};
    double t0 = now_s();
    hostile_bodies(&t);
    hostile_routes(&t);
    hostile_sizes(&t);
    hostile_garbage(&t);
    hostile_stalls(&t);
    fprintf(stderr, "serve: %d hostile requests in %.2f s\n", t.requests, now_s() - t0);
    cr_expect_geq(t.requests, 200);
    wait_idle(port, "after the hostile requests");

    /* a client that vanishes mid-stream, or while it waits for a whole
     * answer, frees the only slot at once */
    abandon(port, 1);
    abandon(port, 0);
    Resp r;
    double t1 = now_s();
    http_req(port, "POST", "/v1/completions", KEY,
             "{\"prompt\":\"a\",\"max_tokens\":4,\"temperature\":0}", &r);
    cr_expect_eq(r.status, 200, "%s", r.raw);
    long long got = jint(r.json, "usage", "completion_tokens");
    cr_expect(got >= 1 && got <= 4, "%lld tokens: %s", got, r.body);
    cr_expect_lt(now_s() - t1, 3.0, "the next request waited %.1f s", now_s() - t1);
    resp_free(&r);

    /* the slot and the one queue place taken: the next request gets 429 */
    int a = long_stream(port);
    int b = long_request(port, 1);
    for (int i = 0; i < 500; i++) { /* b is queued */
        json_t *h = health(port);
        int queued = (int)jint(h, "queued", NULL);
        json_decref(h);
        if (queued == 1) break;
        usleep(10000);
    }
    expect_error(&t, "POST", "/v1/completions", KEY, "{\"prompt\":\"a\",\"max_tokens\":1}", 429,
                 "busy");
    close(b);

    /* SIGTERM with a stream in flight: it ends with "cancelled" and [DONE] */
    /* (and promptly: the server waits for the streams it cancels, not for
     * its 5 s grace) */
    double t2 = now_s();
    kill(g_srv.pid, SIGTERM);
    resp_read(a, &r);
    close(a);
    cr_expect(strstr(r.raw, "\"finish_reason\":\"cancelled\""), "no cancelled finish:\n%.300s",
              r.raw + (r.raw_n > 300 ? r.raw_n - 300 : 0));
    cr_expect(strstr(r.raw, "data: [DONE]"), "no [DONE] after SIGTERM");
    resp_free(&r);
    serve_stop(&g_srv);
    cr_expect_lt(now_s() - t2, 3.0, "SIGTERM took %.1f s", now_s() - t2);
}

/* `whale init --preset tiny` into g_dir/tiny; returns the path. */
static const char *tiny_model(void) {
    const char *model = h_path(g_dir, "tiny");
    HRun run;
    WHALE(&run, "init", "--preset", "tiny", "--out", model, "--seed", "1");
    expect_ok(&run);
    h_run_free(&run);
    return model;
}

Test(serve, time_limit_ends_a_long_answer, .init = setup, .fini = teardown) {
    const char *model = tiny_model();
    serve_start(&g_srv, g_dir, model,
                (const char *const[]){"--timeout", "0.3", "--parallel", "1", "-t", "1", NULL});
    /* with no limit and ignore_eos the random model runs to the full
     * context (4095 tokens, about 1.4 s here) unless the time limit cuts it */
    Resp r;
    double t0 = now_s();
    http_req(g_srv.port, "POST", "/v1/completions", NULL,
             "{\"prompt\":\"a\",\"temperature\":0,\"ignore_eos\":true}", &r);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_expect_str_eq(jstr(r.json, "choices.0.finish_reason"), "length");
    long long n = jint(r.json, "usage", "completion_tokens");
    cr_expect(n > 0 && n < 4000, "%lld tokens in %.2f s: the time limit did not cut it", n,
              now_s() - t0);
    resp_free(&r);
    serve_stop(&g_srv);
}

Test(serve, bad_flags_are_named, .init = setup, .fini = teardown) {
    HRun r;
    WHALE(&r, "serve", "--port", "0");
    EXPECT_FAIL(&r, "-m");
    h_run_free(&r);
    WHALE(&r, "serve", "-m", h_path(g_dir, "nosuch"), "--port", "0");
    EXPECT_FAIL(&r, "nosuch");
    h_run_free(&r);
    static const char *const bad[][3] = {
        {"--port", "70000", "--port"},      {"--parallel", "0", "--parallel"},
        {"--queue", "0", "--queue"},        {"--kv-type", "f16", "--kv-type"},
        {"--max-body", "10", "--max-body"}, {"--idle-timeout", "0", "--idle-timeout"},
        {"--timeout", "-1", "--timeout"},   {"--cache-mb", "-5", "--cache-mb"},
        {"--port", "x", "--port"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        WHALE(&r, "serve", "-m", "m", bad[i][0], bad[i][1]);
        EXPECT_FAIL(&r, bad[i][2]);
        h_run_free(&r);
    }
    /* a port already taken: named with the reason, before the model loads
     * (this one does not exist) */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 1) == 0 &&
              getsockname(fd, (struct sockaddr *)&a, &al) == 0);
    char port[16];
    snprintf(port, sizeof port, "%d", ntohs(a.sin_port));
    WHALE(&r, "serve", "-m", h_path(g_dir, "nosuch"), "--port", port, "-t", "1");
    EXPECT_FAIL(&r, port, "in use");
    h_run_free(&r);
    close(fd);
}
