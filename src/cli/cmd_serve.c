/* SPDX-License-Identifier: MIT */
/* whale serve: the OpenAI / DeepSeek-compatible HTTP API and the web chat
 * page for one model. The engine (serve/engine.h) owns the model on one
 * worker thread; the HTTP layer (serve/http.h) runs a thread per
 * connection. The main thread only waits for SIGINT / SIGTERM, then stops
 * the server (in-flight jobs cancelled) and the engine, and exits 0. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "serve/engine.h"
#include "serve/http.h"

typedef struct ServeFlags {
    const char *model, *host, *api_key, *kv_type, *tmpl;
    int port, parallel, ctx, cache_mb, queue, max_body, threads, idle;
    float timeout;
} ServeFlags;

/* Flags into engine and server options; 2 after an error line. */
static int serve_options(const ServeFlags *f, EngineOpts *eo, HttpOpts *ho) {
    const char *cmd = "serve";
    if (!f->model) return cli_fail(cmd, "-m PATH is required"), 2;
    if (f->port < 0 || f->port > 65535)
        return cli_fail(cmd, "--port must be 0..65535 (0: any free port), got %d", f->port), 2;
    if (f->parallel < 1 || f->parallel > 256)
        return cli_fail(cmd, "--parallel must be 1..256, got %d", f->parallel), 2;
    if (f->queue < 1 || f->queue > 100000)
        return cli_fail(cmd, "--queue must be 1..100000, got %d", f->queue), 2;
    if (f->ctx < 0) return cli_fail(cmd, "--ctx must be positive, got %d", f->ctx), 2;
    if (f->cache_mb < -1) return cli_fail(cmd, "--cache-mb must be >= 0, got %d", f->cache_mb), 2;
    if (f->max_body < 1024)
        return cli_fail(cmd, "--max-body must be at least 1024 bytes, got %d", f->max_body), 2;
    if (!(f->timeout >= 0)) return cli_fail(cmd, "--timeout must be >= 0 (0: none)"), 2;
    if (f->idle < 1 || f->idle > 3600)
        return cli_fail(cmd, "--idle-timeout must be 1..3600 seconds, got %d", f->idle), 2;
    if (cli_threads(cmd, f->threads) != 0) return 2;
    memset(eo, 0, sizeof *eo);
    if (!strcmp(f->kv_type, "f32"))
        eo->kv_type = DTYPE_F32;
    else if (!strcmp(f->kv_type, "bf16"))
        eo->kv_type = DTYPE_BF16;
    else
        return cli_fail(cmd, "--kv-type must be f32 or bf16, not '%s'", f->kv_type), 2;
    eo->parallel = f->parallel;
    eo->queue = f->queue;
    eo->n_ctx = f->ctx;
    eo->cache_mb = f->cache_mb < 0 ? 0 : f->cache_mb == 0 ? -1 : f->cache_mb;
    eo->threads = f->threads;
    eo->template_name = f->tmpl;
    *ho = (HttpOpts){.host = f->host,
                     .port = f->port,
                     .api_key = f->api_key,
                     .max_body = (size_t)f->max_body,
                     .time_limit_s = f->timeout > 0 ? f->timeout : -1,
                     .max_connections = 2 * (f->parallel + f->queue) + 64,
                     .idle_s = (unsigned)f->idle};
    return 0;
}

int cmd_serve(int argc, char **argv) {
    ServeFlags f = {.host = "127.0.0.1",
                    .kv_type = "f32",
                    .port = 8080,
                    .parallel = 4,
                    .cache_mb = -1,
                    .queue = 64,
                    .max_body = 1 << 20,
                    .idle = 30,
                    .timeout = 600};
    const ArgSpec specs[] = {
        {"model", 'm', ARG_STR, &f.model, "PATH: model directory or .gguf"},
        {"host", 0, ARG_STR, &f.host, "ADDR: address to listen on (default 127.0.0.1)"},
        {"port", 0, ARG_INT, &f.port, "N: port (default 8080; 0: any free port)"},
        {"api-key", 0, ARG_STR, &f.api_key, "KEY: require \"Authorization: Bearer KEY\" on /v1"},
        {"parallel", 0, ARG_INT, &f.parallel, "N: requests generated together (default 4)"},
        {"ctx", 'c', ARG_INT, &f.ctx,
         "N: context per request in tokens (default min(4096, the model's))"},
        {"cache-mb", 0, ARG_INT, &f.cache_mb,
         "N: prefix cache budget in MiB (default 256; 0: off)"},
        {"queue", 0, ARG_INT, &f.queue, "N: requests waiting for a slot before 429 (default 64)"},
        {"timeout", 0, ARG_FLOAT, &f.timeout,
         "S: per-request generation limit (default 600; 0: none)"},
        {"idle-timeout", 0, ARG_INT, &f.idle,
         "S: close a connection silent this long (default 30)"},
        {"max-body", 0, ARG_INT, &f.max_body, "BYTES: request body limit (default 1048576)"},
        {"kv-type", 0, ARG_STR, &f.kv_type, "f32|bf16: KV cache storage (default f32)"},
        {"chat-template", 0, ARG_STR, &f.tmpl,
         "NAME: deepseek-v3 deepseek-r1 r1-distill-qwen r1-distill-llama chatml"},
        {"threads", 't', ARG_INT, &f.threads, "N: threads (default: all cores)"},
    };
    int r = args_parse("serve",
                       "-m PATH [--host 127.0.0.1] [--port 8080] [--api-key K] "
                       "[--parallel N] [flags]",
                       specs, (int)(sizeof specs / sizeof *specs), argc, argv);
    if (r) return r > 0 ? 0 : 2;
    EngineOpts eo;
    HttpOpts ho;
    if ((r = serve_options(&f, &eo, &ho)) != 0) return r;

    /* Every thread the engine and the server start inherits this mask, so
     * the signals reach only the sigwait below. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    Err err = {0};
    HttpServer *s = NULL;
    if (http_listen(&s, &ho, &err) != 0) return cli_fail("serve", "%s", err.msg);
    Engine *e = NULL;
    if (engine_open(&e, f.model, &eo, &err) != 0) {
        http_stop(s, 0);
        return cli_fail("serve", "%s", err.msg);
    }
    if (http_run(s, e, &err) != 0) {
        http_stop(s, 0);
        engine_close(e);
        return cli_fail("serve", "%s", err.msg);
    }
    int v6 = strchr(f.host, ':') != NULL;
    log_info("whale serve: model %s, %d slots of %d tokens", engine_model_name(e),
             engine_parallel(e), engine_n_ctx(e));
    /* always printed: scripts and tests read the port from this line */
    fprintf(stderr, "whale serve: listening on http://%s%s%s:%d\n", v6 ? "[" : "", f.host,
            v6 ? "]" : "", http_port(s));
    fflush(stderr);
    int sig = 0;
    while (sigwait(&stop, &sig) != 0) {
    }
    log_info("whale serve: %s, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    http_stop(s, 5.0);
    engine_close(e);
    log_info("whale serve: stopped");
    return 0;
}
