
/*
 * ngx_http_registry_module: the worker's Redis connections.
 *
 * Two hiredis 0.14 asynchronous connections per worker: the command
 * connection, and the subscriber of the watches (a connection in
 * subscribe mode takes no other command).  Both are driven by nginx's
 * event loop through the adapter below: the hiredis socket is wrapped in
 * an ngx_connection_t whose read and write handlers call
 * redisAsyncHandleRead() and redisAsyncHandleWrite().  Timeouts and
 * reconnects run on nginx timers.  Nothing here blocks: the connect is
 * non-blocking and the address is an IP or a unix socket path, never a
 * name to resolve.  With a password, AUTH is the first command of
 * either connection.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_http_registry.h"


#define NGX_HTTP_REGISTRY_REDIS_BACKOFF_MIN  100
#define NGX_HTTP_REGISTRY_REDIS_BACKOFF_MAX  5000
#define NGX_HTTP_REGISTRY_REDIS_TIMEOUT      5000


/*
 * One connection, as both kinds have it: the context (its ac->data points
 * back here, which tells the adapter's hooks and the callbacks whose
 * connection it is), the connect timer, and the failure the hooks post.
 * What differs is in the two handlers: what follows a successful
 * connect(2) (the command connection sends PING, the subscriber turns on
 * keepalive) and what a loss means (the command connection reconnects,
 * the subscriber tells its handler).
 */

typedef struct ngx_http_registry_redis_conn_s  ngx_http_registry_redis_conn_t;

typedef void (*ngx_http_registry_redis_connect_pt)(
    ngx_http_registry_redis_conn_t *conn);
typedef void (*ngx_http_registry_redis_lost_pt)(
    ngx_http_registry_redis_conn_t *conn, const char *what,
    const char *detail);

struct ngx_http_registry_redis_conn_s {
    redisAsyncContext                   *ac;    /* NULL: disconnected */

    ngx_event_t                          timer; /* connect */
    ngx_event_t                          fail;  /* posted by the hooks */

    ngx_http_registry_redis_connect_pt   on_connect;
    ngx_http_registry_redis_lost_pt      on_lost;

    const char                          *broken; /* why fail is posted */

    unsigned                             ready:1; /* PING answered, or
                                                     subscribed */
};


/*
 * A command in flight: hiredis's privdata.  It is allocated with
 * ngx_alloc() rather than from the request pool because it must outlive
 * a request finalized before the reply arrives.  hiredis calls the reply
 * callback exactly once for every command it accepted (with a NULL reply
 * when the connection goes away), and that callback is the only place
 * that frees the record.  The request pool cleanup merely detaches the
 * request, so whichever of the two runs first, the record is freed once.
 */

typedef struct {
    ngx_queue_t                      queue;     /* oldest first */
    ngx_msec_t                       start;

    ngx_http_request_t              *request;   /* NULL once r is freed */
    ngx_pool_cleanup_t              *cleanup;   /* valid while request */

    ngx_http_registry_redis_cb_pt    handler;   /* calls not tied to r */
    void                            *data;
} ngx_http_registry_redis_cmd_t;


/*
 * The command connection, and what both connections take from it: the
 * address, the name and the log, the timeout, the worker's exit.
 */

typedef struct {
    ngx_http_registry_redis_conn_t   conn;      /* its timer also times
                                                   the commands */
    ngx_queue_t                      pending;   /* of commands in flight */

    ngx_event_t                      reconnect;

    ngx_msec_t                       timeout;
    ngx_msec_t                       backoff;

    ngx_str_t                        name;      /* for the log */
    char                            *host;
    int                              port;
    char                            *path;      /* unix socket */
    ngx_str_t                        password;  /* empty: no AUTH */

    ngx_log_t                       *log;

    unsigned                         configured:1;
    unsigned                         failed:1;  /* the loss was logged */
    unsigned                         exiting:1;
} ngx_http_registry_redis_t;


/*
 * The subscriber: a connection of its own, since a connection in
 * subscribe mode takes no other command.
 */

typedef struct {
    ngx_http_registry_redis_conn_t   conn;      /* ready: subscribed */

    ngx_str_t                        channel;
    ngx_http_registry_redis_sub_pt   handler;

    ngx_event_t                      lost;      /* tells the handler */

    unsigned                         failed:1;  /* the loss was logged */
} ngx_http_registry_redis_sub_t;


static ngx_uint_t ngx_http_registry_redis_accepting(
    ngx_http_registry_redis_t *rs);
static ngx_http_registry_redis_cmd_t *ngx_http_registry_redis_cmd_create(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_registry_redis_cmd_queued(
    ngx_http_registry_redis_cmd_t *cmd, int rc);
static void ngx_http_registry_redis_cmd_cleanup(void *data);
static void ngx_http_registry_redis_reply(redisAsyncContext *ac,
    void *reply, void *data);
static ngx_int_t ngx_http_registry_eval_reply(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static u_char *ngx_http_registry_script_sha(const char *script);

static void ngx_http_registry_redis_connect(void);
static void ngx_http_registry_redis_ping(
    ngx_http_registry_redis_conn_t *conn);
static void ngx_http_registry_redis_ping_handler(redisAsyncContext *ac,
    void *reply, void *data);
static void ngx_http_registry_redis_outage(
    ngx_http_registry_redis_conn_t *conn, const char *what,
    const char *detail);
static void ngx_http_registry_redis_timer_handler(ngx_event_t *ev);
static void ngx_http_registry_redis_reconnect_handler(ngx_event_t *ev);

static void ngx_http_registry_redis_conn_init(
    ngx_http_registry_redis_conn_t *conn,
    ngx_http_registry_redis_connect_pt on_connect,
    ngx_http_registry_redis_lost_pt on_lost, ngx_log_t *log);
static ngx_int_t ngx_http_registry_redis_open(
    ngx_http_registry_redis_conn_t *conn, const char **detail);
static void ngx_http_registry_redis_auth_handler(redisAsyncContext *ac,
    void *reply, void *data);
static void ngx_http_registry_redis_connect_handler(
    const redisAsyncContext *ac, int status);
static void ngx_http_registry_redis_disconnect_handler(
    const redisAsyncContext *ac, int status);
static void ngx_http_registry_redis_lost(ngx_http_registry_redis_conn_t *conn,
    const char *what, const char *detail);
static void ngx_http_registry_redis_drop(ngx_http_registry_redis_conn_t *conn,
    const char *what);
static void ngx_http_registry_redis_fail(ngx_http_registry_redis_conn_t *conn,
    const char *why);
static void ngx_http_registry_redis_fail_handler(ngx_event_t *ev);
static void ngx_http_registry_redis_connect_timer_handler(ngx_event_t *ev);
static void ngx_http_registry_redis_close(
    ngx_http_registry_redis_conn_t *conn);

static void ngx_http_registry_redis_read_handler(ngx_event_t *rev);
static void ngx_http_registry_redis_write_handler(ngx_event_t *wev);
static void ngx_http_registry_redis_add_read(void *data);
static void ngx_http_registry_redis_del_read(void *data);
static void ngx_http_registry_redis_add_write(void *data);
static void ngx_http_registry_redis_del_write(void *data);
static void ngx_http_registry_redis_add_event(ngx_event_t *ev,
    ngx_int_t event);
static void ngx_http_registry_redis_del_event(ngx_event_t *ev,
    ngx_int_t event);
static void ngx_http_registry_redis_broken(ngx_event_t *ev);
static void ngx_http_registry_redis_cleanup(void *data);

static ngx_int_t ngx_http_registry_redis_sub_connect(void);
static void ngx_http_registry_redis_sub_keepalive(
    ngx_http_registry_redis_conn_t *conn);
static void ngx_http_registry_redis_sub_message(redisAsyncContext *ac,
    void *reply, void *data);
static void ngx_http_registry_redis_sub_lost(
    ngx_http_registry_redis_conn_t *conn, const char *what,
    const char *detail);
static void ngx_http_registry_redis_sub_lost_handler(ngx_event_t *ev);
static void ngx_http_registry_redis_sub_exit(void);


static ngx_http_registry_redis_t      ngx_http_registry_redis_state;
static ngx_http_registry_redis_sub_t  ngx_http_registry_redis_sub;


ngx_int_t
ngx_http_registry_redis_init_worker(ngx_cycle_t *cycle)
{
    ngx_http_registry_redis_t      *rs;
    ngx_http_registry_redis_sub_t  *sub;
    ngx_http_registry_main_conf_t  *mcf;

    rs = &ngx_http_registry_redis_state;
    sub = &ngx_http_registry_redis_sub;

    ngx_memzero(rs, sizeof(ngx_http_registry_redis_t));
    ngx_queue_init(&rs->pending);

    ngx_memzero(sub, sizeof(ngx_http_registry_redis_sub_t));

    /* the cache manager and loader have no use for Redis */

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle,
                                              ngx_http_registry_module);
    if (mcf == NULL) {
        return NGX_OK;
    }

    if (mcf->redis_addr != NULL && mcf->redis_host.len) {
        rs->host = (char *) mcf->redis_host.data;
        rs->port = (int) mcf->redis_port;

    } else if (mcf->redis_unix.len) {
        rs->path = (char *) mcf->redis_unix.data;

    } else {
        return NGX_OK;
    }

    rs->configured = 1;
    rs->name = mcf->redis;
    rs->password = mcf->redis_password;
    rs->log = cycle->log;

    rs->timeout = mcf->redis_timeout;
    if (rs->timeout == 0 || rs->timeout == NGX_CONF_UNSET_MSEC) {
        rs->timeout = NGX_HTTP_REGISTRY_REDIS_TIMEOUT;
    }

    rs->backoff = NGX_HTTP_REGISTRY_REDIS_BACKOFF_MIN;

    ngx_http_registry_redis_conn_init(&rs->conn,
                                      ngx_http_registry_redis_ping,
                                      ngx_http_registry_redis_outage,
                                      cycle->log);

    /* once connected, the connect timer times the commands */

    rs->conn.timer.handler = ngx_http_registry_redis_timer_handler;

    /* waiting to reconnect must not hold back a graceful shutdown */

    rs->reconnect.handler = ngx_http_registry_redis_reconnect_handler;
    rs->reconnect.data = rs;
    rs->reconnect.log = cycle->log;
    rs->reconnect.cancelable = 1;

    /* the subscriber is opened by the first subscribe */

    ngx_http_registry_redis_conn_init(&sub->conn,
                                      ngx_http_registry_redis_sub_keepalive,
                                      ngx_http_registry_redis_sub_lost,
                                      cycle->log);

    sub->lost.handler = ngx_http_registry_redis_sub_lost_handler;
    sub->lost.data = sub;
    sub->lost.log = cycle->log;

    ngx_http_registry_redis_connect();

    return NGX_OK;
}


void
ngx_http_registry_redis_exit_worker(ngx_cycle_t *cycle)
{
    ngx_queue_t                    *q;
    ngx_http_registry_redis_t      *rs;
    ngx_http_registry_redis_cmd_t  *cmd;

    rs = &ngx_http_registry_redis_state;

    if (!rs->configured) {
        return;
    }

    rs->exiting = 1;

    if (rs->reconnect.timer_set) {
        ngx_del_timer(&rs->reconnect);
    }

    ngx_http_registry_redis_sub_exit();

    /*
     * The requests still waiting are abandoned by the exiting worker
     * (a graceful shutdown waits for them: the command timer is not
     * cancelable): they must not be resumed from the callbacks that
     * redisAsyncFree() is about to run.
     */

    for (q = ngx_queue_head(&rs->pending);
         q != ngx_queue_sentinel(&rs->pending);
         q = ngx_queue_next(q))
    {
        cmd = ngx_queue_data(q, ngx_http_registry_redis_cmd_t, queue);

        if (cmd->request) {
            cmd->cleanup->handler = NULL;
            cmd->request = NULL;
        }
    }

    /* frees the pending commands and, via the cleanup hook, the connection */

    ngx_http_registry_redis_close(&rs->conn);
}


/*
 * Commands are taken while connected, and also during the first connect
 * of a worker (hiredis buffers them): a worker just started or reloaded
 * must not answer 503 for its first moments.  After a loss they fail at
 * once until Redis answers again.
 */

static ngx_uint_t
ngx_http_registry_redis_accepting(ngx_http_registry_redis_t *rs)
{
    return rs->conn.ready
           || (rs->conn.ac != NULL && !rs->failed && rs->conn.broken == NULL
               && !rs->exiting);
}


ngx_int_t
ngx_http_registry_redis_command(ngx_http_request_t *r, int argc,
    const char **argv, const size_t *argvlen)
{
    int                             rc;
    ngx_http_registry_redis_t      *rs;
    ngx_http_registry_redis_cmd_t  *cmd;
#if (NGX_DEBUG)
    size_t                          len;
#endif

    rs = &ngx_http_registry_redis_state;

    if (argc < 1) {
        return NGX_ERROR;
    }

#if (NGX_DEBUG)
    len = argvlen ? argvlen[0] : ngx_strlen(argv[0]);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "registry redis command \"%*s\", argc:%d",
                   len, argv[0], argc);
#endif

    if (!ngx_http_registry_redis_accepting(rs)) {
        return NGX_ERROR;
    }

    cmd = ngx_http_registry_redis_cmd_create(r);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    rc = redisAsyncCommandArgv(rs->conn.ac, ngx_http_registry_redis_reply,
                               cmd, argc, argv, argvlen);

    return ngx_http_registry_redis_cmd_queued(cmd, rc);
}


ngx_int_t
ngx_http_registry_redis_call(ngx_http_registry_redis_cb_pt handler,
    void *data, int argc, const char **argv, const size_t *argvlen)
{
    int                             rc;
    ngx_http_registry_redis_t      *rs;
    ngx_http_registry_redis_cmd_t  *cmd;

    rs = &ngx_http_registry_redis_state;

    if (!ngx_http_registry_redis_accepting(rs)) {
        return NGX_ERROR;
    }

    cmd = ngx_alloc(sizeof(ngx_http_registry_redis_cmd_t), rs->log);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    cmd->request = NULL;
    cmd->cleanup = NULL;
    cmd->handler = handler;
    cmd->data = data;

    rc = redisAsyncCommandArgv(rs->conn.ac, ngx_http_registry_redis_reply,
                               cmd, argc, argv, argvlen);

    return ngx_http_registry_redis_cmd_queued(cmd, rc);
}


/*
 * A Lua script run in Redis: several keys read or changed in one round
 * trip and atomically.  args holds the keys, then the arguments.  The
 * script goes by its SHA-1 (EVALSHA), which spares Redis parsing and
 * hashing it per call; Redis answers NOSCRIPT when it does not know it
 * yet (first use, restart, SCRIPT FLUSH), and the call is sent again with
 * the script's text, which caches it.
 */

ngx_int_t
ngx_http_registry_eval(ngx_http_request_t *r, const char *script,
    ngx_uint_t nkeys, ngx_str_t *args, ngx_uint_t nargs)
{
    u_char                   *p;
    size_t                   *lens;
    ngx_uint_t                i;
    const char              **argv;
    ngx_http_registry_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    argv = ngx_palloc(r->pool, (nargs + 3) * sizeof(char *));
    lens = ngx_palloc(r->pool, (nargs + 3) * sizeof(size_t));
    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);

    if (ctx == NULL || argv == NULL || lens == NULL || p == NULL) {
        return NGX_ERROR;
    }

    argv[0] = "EVALSHA";      /* 7 long; EVAL, 4, once it was retried */
    lens[0] = 7;
    argv[1] = (const char *) ngx_http_registry_script_sha(script);
    lens[1] = 40;
    argv[2] = (const char *) p;
    lens[2] = ngx_sprintf(p, "%ui", nkeys) - p;

    /* copies: a retry outlives the replies some arguments came from */

    for (i = 0; i < nargs; i++) {
        p = ngx_pnalloc(r->pool, args[i].len + 1);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (args[i].len) {
            ngx_memcpy(p, args[i].data, args[i].len);
        }

        argv[i + 3] = (const char *) p;
        lens[i + 3] = args[i].len;
    }

    if (ngx_http_registry_redis_command(r, nargs + 3, argv, lens) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->eval_script = script;
    ctx->eval_argv = argv;
    ctx->eval_lens = lens;
    ctx->eval_argc = nargs + 3;
    ctx->eval_next = ctx->next;
    ctx->next = ngx_http_registry_eval_reply;

    return NGX_OK;
}


/* a script as the operation a step waits for: next runs with its reply */

ngx_int_t
ngx_http_registry_run(ngx_http_request_t *r, ngx_http_registry_step_pt next,
    const char *script, ngx_uint_t nkeys, ngx_str_t *args, ngx_uint_t nargs)
{
    ngx_http_registry_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);
    ctx->next = next;

    if (ngx_http_registry_eval(r, script, nkeys, args, nargs) != NGX_OK) {
        ctx->next = NULL;
        return ngx_http_registry_unavailable(r, "redis: not connected");
    }

    return NGX_DONE;
}


static ngx_int_t
ngx_http_registry_eval_reply(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    redisReply  *reply;

    reply = ctx->reply;

    if (reply == NULL || reply->type != REDIS_REPLY_ERROR
        || reply->len < 8 || ngx_strncmp(reply->str, "NOSCRIPT", 8) != 0
        || ctx->eval_lens[0] != 7)
    {
        return ctx->eval_next(r, ctx);
    }

    ctx->eval_argv[0] = "EVAL";
    ctx->eval_lens[0] = 4;
    ctx->eval_argv[1] = ctx->eval_script;
    ctx->eval_lens[1] = ngx_strlen(ctx->eval_script);
    ctx->next = ctx->eval_next;

    if (ngx_http_registry_redis_command(r, ctx->eval_argc, ctx->eval_argv,
                                        ctx->eval_lens)
        != NGX_OK)
    {
        ctx->next = NULL;
        return ngx_http_registry_unavailable(r, "redis: not connected");
    }

    return NGX_DONE;
}


/* the SHA-1 of a script in hex, computed once per script per worker */

static u_char *
ngx_http_registry_script_sha(const char *script)
{
    u_char      hash[SHA_DIGEST_LENGTH];
    ngx_uint_t  i;

    static struct {
        const char  *script;
        u_char       hex[2 * SHA_DIGEST_LENGTH];
    }           cache[64];

    for (i = 0; i < 64 && cache[i].script != NULL; i++) {
        if (cache[i].script == script) {
            return cache[i].hex;
        }
    }

    if (i == 64) {
        /* more scripts than expected: correct, only slower */
        i = 63;
    }

    SHA1((u_char *) script, ngx_strlen(script), hash);
    ngx_hex_dump(cache[i].hex, hash, SHA_DIGEST_LENGTH);
    cache[i].script = script;

    return cache[i].hex;
}


/*
 * A Redis command from strings (a NULL-terminated list): ctx->next runs
 * with the reply.  Answers 503 at once when Redis is not connected.
 */

ngx_int_t
ngx_http_registry_call(ngx_http_request_t *r, ngx_http_registry_step_pt next,
    ngx_uint_t n, ...)
{
    va_list                   ap;
    size_t                   *lens;
    ngx_str_t                *s;
    ngx_uint_t                i;
    const char              **argv;
    ngx_http_registry_ctx_t  *ctx;

    argv = ngx_palloc(r->pool, n * sizeof(char *));
    lens = ngx_palloc(r->pool, n * sizeof(size_t));
    if (argv == NULL || lens == NULL) {
        return NGX_ERROR;
    }

    va_start(ap, n);

    for (i = 0; i < n; i++) {
        s = va_arg(ap, ngx_str_t *);
        argv[i] = (const char *) s->data;
        lens[i] = s->len;
    }

    va_end(ap);

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);
    ctx->next = next;

    if (ngx_http_registry_redis_command(r, n, argv, lens) != NGX_OK) {
        ctx->next = NULL;
        return ngx_http_registry_unavailable(r, "redis: not connected");
    }

    return NGX_DONE;
}


/* element i of an array reply (or the reply itself, i = -1) as a string */

ngx_int_t
ngx_http_registry_reply_str(redisReply *reply, ngx_uint_t i, ngx_str_t *s)
{
    if (reply == NULL) {
        return NGX_ERROR;
    }

    if (i != (ngx_uint_t) -1) {
        if (reply->type != REDIS_REPLY_ARRAY || i >= reply->elements) {
            return NGX_ERROR;
        }

        reply = reply->element[i];
    }

    if (reply->type == REDIS_REPLY_INTEGER) {
        return NGX_DECLINED;
    }

    if (reply->type != REDIS_REPLY_STRING
        && reply->type != REDIS_REPLY_STATUS)
    {
        return NGX_DECLINED;
    }

    s->data = (u_char *) reply->str;
    s->len = reply->len;

    return NGX_OK;
}


/*
 * The pool cleanup is registered before the command is handed to hiredis:
 * once hiredis has it, it cannot be taken back, so nothing may fail after.
 */

static ngx_http_registry_redis_cmd_t *
ngx_http_registry_redis_cmd_create(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t             *cln;
    ngx_http_registry_ctx_t        *ctx;
    ngx_http_registry_redis_cmd_t  *cmd;

    /* the reply is delivered in the module's ctx: without it r would hang */

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);
    if (ctx == NULL) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "registry redis command without module context");
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cmd = ngx_alloc(sizeof(ngx_http_registry_redis_cmd_t), r->connection->log);
    if (cmd == NULL) {
        return NULL;
    }

    cmd->request = r;
    cmd->cleanup = cln;
    cmd->handler = NULL;
    cmd->data = NULL;

    cln->handler = ngx_http_registry_redis_cmd_cleanup;
    cln->data = cmd;

    return cmd;
}


static ngx_int_t
ngx_http_registry_redis_cmd_queued(ngx_http_registry_redis_cmd_t *cmd,
    int rc)
{
    ngx_http_registry_redis_t  *rs;

    rs = &ngx_http_registry_redis_state;

    if (rc != REDIS_OK) {

        /* hiredis did not take the command: its callback will never run */

        if (cmd->request) {
            cmd->cleanup->handler = NULL;
        }

        ngx_free(cmd);

        return NGX_ERROR;
    }

    cmd->start = ngx_current_msec;
    ngx_queue_insert_tail(&rs->pending, &cmd->queue);

    /*
     * Armed for the oldest command only; on expiry the handler moves it
     * on to the next one.  It is not cancelable: a graceful shutdown
     * waits for the replies (or for the timeout) of the requests in
     * flight.
     */

    if (!rs->conn.timer.timer_set) {
        rs->conn.timer.cancelable = 0;
        ngx_add_timer(&rs->conn.timer, rs->timeout);
    }

    return NGX_OK;
}


/* r's pool is being destroyed: r must not be touched again */

static void
ngx_http_registry_redis_cmd_cleanup(void *data)
{
    ngx_http_registry_redis_cmd_t  *cmd = data;

    cmd->request = NULL;
}


static void
ngx_http_registry_redis_reply(redisAsyncContext *ac, void *reply, void *data)
{
    ngx_http_registry_redis_cmd_t  *cmd = data;

    void                           *hdata;
    ngx_connection_t               *c;
    ngx_http_request_t             *r;
    ngx_http_registry_ctx_t        *ctx;
    ngx_http_registry_redis_t      *rs;
    ngx_http_registry_redis_cb_pt   handler;

    rs = &ngx_http_registry_redis_state;

    ngx_queue_remove(&cmd->queue);

    if (reply == NULL) {

        /*
         * hiredis runs the callbacks of a broken connection before its
         * disconnect callback: mark the loss now, so that the steps
         * resumed below answer at once instead of queueing commands on
         * a dying context.  When we dropped the connection ourselves,
         * rs->conn.ac is already NULL.
         */

        if (ac == rs->conn.ac) {
            ngx_http_registry_redis_lost(&rs->conn, "connection lost",
                                         ac->err ? ac->errstr : NULL);
        }

    } else if (ngx_queue_empty(&rs->pending) && rs->conn.timer.timer_set) {
        ngx_del_timer(&rs->conn.timer);
    }

    if (cmd->handler) {
        handler = cmd->handler;
        hdata = cmd->data;

        ngx_free(cmd);

        handler(reply, hdata);
        return;
    }

    r = cmd->request;

    if (r == NULL) {
        /* finalized while the command was in flight */
        ngx_free(cmd);
        return;
    }

    c = r->connection;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "registry redis reply: %p, type:%d",
                   reply, reply ? ((redisReply *) reply)->type : -1);

    if (ctx == NULL) {
        /* the ctx was reset (internal redirect): nobody waits for this */
        cmd->cleanup->handler = NULL;
        ngx_free(cmd);
        return;
    }

    ngx_http_set_log_request(c->log, r);

    ctx->reply = reply;

    ngx_http_registry_resume(r);

    /*
     * The step may have finalized and freed r; the cleanup, still armed
     * during the step, has then detached it.  hiredis frees the reply
     * when this callback returns, so it must not stay in ctx.
     */

    if (cmd->request) {
        ctx->reply = NULL;
        cmd->cleanup->handler = NULL;
    }

    ngx_free(cmd);

    ngx_http_run_posted_requests(c);
}


/* the command connection */

static void
ngx_http_registry_redis_connect(void)
{
    const char                 *detail;
    ngx_http_registry_redis_t  *rs;

    rs = &ngx_http_registry_redis_state;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, rs->log, 0,
                   "registry redis connect to \"%V\"", &rs->name);

    if (ngx_http_registry_redis_open(&rs->conn, &detail) != NGX_OK) {
        ngx_http_registry_redis_lost(&rs->conn, "connect failed", detail);
    }
}


/*
 * A TCP connection says little: the kernel completes it even while Redis
 * is stalled (the very case a command timeout is about), and a Redis
 * loading its data answers -LOADING.  The connection is up only once
 * Redis answers a PING, still under the connect timer; until then
 * commands fail at once instead of each waiting for a timeout.
 */

static void
ngx_http_registry_redis_ping(ngx_http_registry_redis_conn_t *conn)
{
    if (redisAsyncCommand(conn->ac, ngx_http_registry_redis_ping_handler,
                          NULL, "PING")
        != REDIS_OK)
    {
        ngx_http_registry_redis_fail(conn, "event registration failed");
    }
}


static void
ngx_http_registry_redis_ping_handler(redisAsyncContext *ac, void *reply,
    void *data)
{
    redisReply                 *rr;
    ngx_http_registry_redis_t  *rs;

    rs = &ngx_http_registry_redis_state;
    rr = reply;

    if (ac != rs->conn.ac) {
        return;
    }

    if (rr == NULL) {
        ngx_http_registry_redis_lost(&rs->conn, "connect failed",
                                     ac->err ? ac->errstr : NULL);
        return;
    }

    if (rr->type == REDIS_REPLY_ERROR) {
        ngx_http_registry_redis_lost(&rs->conn,
                                     ngx_strncmp(rr->str, "NOAUTH", 6) == 0
                                     ? "wants a password "
                                       "(registry_redis_password or "
                                       "REGISTRY_REDIS_PASSWORD)"
                                     : "not ready",
                                     rr->str);

        /* from a reply callback, hiredis frees the context on return */

        redisAsyncFree(ac);
        return;
    }

    rs->conn.ready = 1;
    rs->backoff = NGX_HTTP_REGISTRY_REDIS_BACKOFF_MIN;

    if (rs->conn.timer.timer_set) {
        ngx_del_timer(&rs->conn.timer);
    }

    /* commands taken during the connect now run on the command timer */

    if (!ngx_queue_empty(&rs->pending)) {
        rs->conn.timer.cancelable = 0;
        ngx_add_timer(&rs->conn.timer, rs->timeout);
    }

    if (rs->failed) {
        rs->failed = 0;
        ngx_log_error(NGX_LOG_NOTICE, rs->log, 0,
                      "registry redis \"%V\" connection restored",
                      &rs->name);
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, rs->log, 0,
                   "registry redis connected to \"%V\"", &rs->name);
}


/*
 * The command connection is gone: logged once per outage (at the first
 * failure, not at every retry), then opened again after a backoff.
 */

static void
ngx_http_registry_redis_outage(ngx_http_registry_redis_conn_t *conn,
    const char *what, const char *detail)
{
    ngx_uint_t                  level;
    ngx_http_registry_redis_t  *rs;

    rs = &ngx_http_registry_redis_state;

    level = rs->failed ? NGX_LOG_DEBUG : NGX_LOG_ERR;
    rs->failed = 1;

    if (detail && detail[0]) {
        ngx_log_error(level, rs->log, 0,
                      "registry redis \"%V\" %s: %s", &rs->name, what,
                      detail);

    } else {
        ngx_log_error(level, rs->log, 0,
                      "registry redis \"%V\" %s", &rs->name, what);
    }

    if (rs->exiting || rs->reconnect.timer_set) {
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, rs->log, 0,
                   "registry redis reconnect in %M ms", rs->backoff);

    ngx_add_timer(&rs->reconnect, rs->backoff);

    rs->backoff = ngx_min(rs->backoff * 2,
                          NGX_HTTP_REGISTRY_REDIS_BACKOFF_MAX);
}


/* the connect timer, which once connected times the oldest command */

static void
ngx_http_registry_redis_timer_handler(ngx_event_t *ev)
{
    ngx_msec_int_t                  left;
    ngx_http_registry_redis_t      *rs;
    ngx_http_registry_redis_cmd_t  *cmd;

    rs = &ngx_http_registry_redis_state;

    if (!rs->conn.ready) {
        ngx_http_registry_redis_connect_timer_handler(ev);
        return;
    }

    if (ngx_queue_empty(&rs->pending)) {
        return;
    }

    cmd = ngx_queue_data(ngx_queue_head(&rs->pending),
                         ngx_http_registry_redis_cmd_t, queue);

    left = (ngx_msec_int_t) (cmd->start + rs->timeout - ngx_current_msec);

    if (left > 0) {
        ev->cancelable = 0;
        ngx_add_timer(ev, (ngx_msec_t) left);
        return;
    }

    ngx_http_registry_redis_drop(&rs->conn, "command timed out");
}


static void
ngx_http_registry_redis_reconnect_handler(ngx_event_t *ev)
{
    ngx_http_registry_redis_t  *rs;

    rs = ev->data;

    if (rs->conn.ac != NULL || rs->exiting) {
        return;
    }

    ngx_http_registry_redis_connect();
}


/* either connection */

static void
ngx_http_registry_redis_conn_init(ngx_http_registry_redis_conn_t *conn,
    ngx_http_registry_redis_connect_pt on_connect,
    ngx_http_registry_redis_lost_pt on_lost, ngx_log_t *log)
{
    conn->on_connect = on_connect;
    conn->on_lost = on_lost;

    conn->timer.handler = ngx_http_registry_redis_connect_timer_handler;
    conn->timer.data = conn;
    conn->timer.log = log;

    conn->fail.handler = ngx_http_registry_redis_fail_handler;
    conn->fail.data = conn;
    conn->fail.log = log;
}


/*
 * Starts connecting conn to the server, under the connect timer.  On
 * failure nothing is left open and *detail tells why.
 */

static ngx_int_t
ngx_http_registry_redis_open(ngx_http_registry_redis_conn_t *conn,
    const char **detail)
{
    ngx_connection_t           *c;
    redisAsyncContext          *ac;
    ngx_http_registry_redis_t  *rs;

    /* ac->errstr goes with ac: a copy outlives it */

    static u_char               errstr[128];

    rs = &ngx_http_registry_redis_state;

    /*
     * Both are non-blocking: connect(2) returns EINPROGRESS and the
     * connect callback tells the outcome.  The host is an IP address
     * (the directive refuses names), which getaddrinfo() converts
     * without any lookup.
     */

    if (rs->path) {
        ac = redisAsyncConnectUnix(rs->path);

    } else {
        ac = redisAsyncConnect(rs->host, rs->port);
    }

    if (ac == NULL) {
        *detail = "out of memory";
        return NGX_ERROR;
    }

    if (ac->err) {
        (void) ngx_cpystrn(errstr, (u_char *) ac->errstr, sizeof(errstr));
        *detail = (const char *) errstr;
        redisAsyncFree(ac);
        return NGX_ERROR;
    }

    c = ngx_get_connection(ac->c.fd, rs->log);
    if (c == NULL) {
        *detail = "no free connection";
        redisAsyncFree(ac);
        return NGX_ERROR;
    }

    c->data = ac;

    c->read->handler = ngx_http_registry_redis_read_handler;
    c->write->handler = ngx_http_registry_redis_write_handler;
    c->read->log = c->log;
    c->write->log = c->log;

    ac->data = conn;
    ac->ev.data = c;
    ac->ev.addRead = ngx_http_registry_redis_add_read;
    ac->ev.delRead = ngx_http_registry_redis_del_read;
    ac->ev.addWrite = ngx_http_registry_redis_add_write;
    ac->ev.delWrite = ngx_http_registry_redis_del_write;
    ac->ev.cleanup = ngx_http_registry_redis_cleanup;

    conn->ac = ac;
    conn->ready = 0;
    conn->broken = NULL;

    /* this asks for the write event that reports the end of connect(2) */

    (void) redisAsyncSetConnectCallback(ac,
                                   ngx_http_registry_redis_connect_handler);
    (void) redisAsyncSetDisconnectCallback(ac,
                                   ngx_http_registry_redis_disconnect_handler);

    if (conn->timer.timer_set) {
        ngx_del_timer(&conn->timer);
    }

    conn->timer.cancelable = 1;
    ngx_add_timer(&conn->timer, rs->timeout);

    /*
     * hiredis sends its buffer in order once connected: AUTH queued now
     * goes before any command taken during the connect.  The password is
     * never logged, nor is the command.
     */

    if (rs->password.len
        && redisAsyncCommand(ac, ngx_http_registry_redis_auth_handler, conn,
                             "AUTH %b", rs->password.data,
                             rs->password.len)
           != REDIS_OK)
    {
        ngx_http_registry_redis_close(conn);
        *detail = "AUTH not queued";
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A refused password fails the connection: the commands queued behind
 * AUTH get NULL replies (503) when hiredis frees the context.  A NULL
 * reply is a loss that the connect or disconnect callback reports.
 */

static void
ngx_http_registry_redis_auth_handler(redisAsyncContext *ac, void *reply,
    void *data)
{
    redisReply                      *rr;
    ngx_http_registry_redis_conn_t  *conn;

    rr = reply;
    conn = data;

    if (rr == NULL || ac != conn->ac || rr->type != REDIS_REPLY_ERROR) {
        return;
    }

    ngx_http_registry_redis_lost(conn, "authentication failed", rr->str);

    /* from a reply callback, hiredis frees the context on return */

    redisAsyncFree(ac);
}


static void
ngx_http_registry_redis_connect_handler(const redisAsyncContext *ac,
    int status)
{
    ngx_http_registry_redis_conn_t  *conn;

    conn = ac->data;

    if (ac != conn->ac) {
        return;
    }

    if (status != REDIS_OK) {
        /* hiredis frees the context when this returns */
        ngx_http_registry_redis_lost(conn, "connect failed",
                                     ac->err ? ac->errstr : NULL);
        return;
    }

    conn->on_connect(conn);
}


/*
 * Runs when a connection that was up goes away.  The callbacks of its
 * pending commands ran before: on the command connection, the first of
 * them, if any, already reported the loss.
 */

static void
ngx_http_registry_redis_disconnect_handler(const redisAsyncContext *ac,
    int status)
{
    ngx_http_registry_redis_conn_t  *conn;

    conn = ac->data;

    if (ac != conn->ac) {
        return;
    }

    ngx_http_registry_redis_lost(conn, "connection lost",
                                 ac->err ? ac->errstr : NULL);
}


/*
 * The connection is gone (or going: hiredis may still be freeing it).
 * What that means, and what the log says, is up to its on_lost.
 */

static void
ngx_http_registry_redis_lost(ngx_http_registry_redis_conn_t *conn,
    const char *what, const char *detail)
{
    conn->ac = NULL;
    conn->ready = 0;

    if (conn->timer.timer_set) {
        ngx_del_timer(&conn->timer);
    }

    conn->on_lost(conn, what, detail);
}


/*
 * Closes the connection from our side: never called from within a
 * hiredis callback, where redisAsyncFree() would be deferred.  The
 * pending commands get their NULL replies before this returns.
 */

static void
ngx_http_registry_redis_drop(ngx_http_registry_redis_conn_t *conn,
    const char *what)
{
    redisAsyncContext  *ac;

    ac = conn->ac;

    if (ac == NULL) {
        return;
    }

    ngx_http_registry_redis_lost(conn, what, NULL);

    redisAsyncFree(ac);
}


/*
 * hiredis calls the event hooks and the connect callback from inside its
 * own functions, where the context cannot be freed: a failure there
 * drops the connection from a posted event.
 */

static void
ngx_http_registry_redis_fail(ngx_http_registry_redis_conn_t *conn,
    const char *why)
{
    if (conn->broken == NULL) {
        conn->broken = why;
    }

    ngx_post_event(&conn->fail, &ngx_posted_events);
}


static void
ngx_http_registry_redis_fail_handler(ngx_event_t *ev)
{
    ngx_http_registry_redis_conn_t  *conn;

    conn = ev->data;

    /* a connection opened since is not the one that failed */

    if (conn->broken) {
        ngx_http_registry_redis_drop(conn, conn->broken);
    }
}


static void
ngx_http_registry_redis_connect_timer_handler(ngx_event_t *ev)
{
    ngx_http_registry_redis_conn_t  *conn;

    conn = ev->data;

    if (conn->ac != NULL && !conn->ready) {
        ngx_http_registry_redis_drop(conn, "connect timed out");
    }
}


/*
 * Closes the connection without reporting a loss: at worker exit, or a
 * connection just opened that cannot be used.
 */

static void
ngx_http_registry_redis_close(ngx_http_registry_redis_conn_t *conn)
{
    redisAsyncContext  *ac;

    if (conn->timer.timer_set) {
        ngx_del_timer(&conn->timer);
    }

    if (conn->fail.posted) {
        ngx_delete_posted_event(&conn->fail);
    }

    ac = conn->ac;

    if (ac == NULL) {
        return;
    }

    conn->ac = NULL;
    conn->ready = 0;

    redisAsyncFree(ac);
}


/*
 * The event library adapter.
 *
 * The events are level-triggered (NGX_LEVEL_EVENT, not the edge-triggered
 * NGX_CLEAR_EVENT that ngx_handle_read_event() would choose with epoll):
 * redisAsyncHandleRead() makes a single read(2) of at most 16 KiB, so
 * with an edge-triggered event the rest of a larger reply would sit in
 * the socket until more data arrived, which it never does when Redis has
 * sent everything.  Looping on the read instead is not possible: hiredis
 * does not tell when read(2) hit EAGAIN, and the context may be freed by
 * the call.  Level-triggered, epoll reports the socket again on the next
 * loop iteration while data remains, 16 KiB at a time, fairly interleaved
 * with the other connections.  Writes follow the same rule: hiredis adds
 * the write event while output is pending and removes it when done.
 */

static void
ngx_http_registry_redis_read_handler(ngx_event_t *rev)
{
    ngx_connection_t  *c;

    c = rev->data;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->log, 0, "registry redis read");

    redisAsyncHandleRead(c->data);
}


static void
ngx_http_registry_redis_write_handler(ngx_event_t *wev)
{
    ngx_connection_t  *c;

    c = wev->data;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->log, 0, "registry redis write");

    redisAsyncHandleWrite(c->data);
}


static void
ngx_http_registry_redis_add_read(void *data)
{
    ngx_connection_t  *c = data;

    ngx_http_registry_redis_add_event(c->read, NGX_READ_EVENT);
}


static void
ngx_http_registry_redis_del_read(void *data)
{
    ngx_connection_t  *c = data;

    ngx_http_registry_redis_del_event(c->read, NGX_READ_EVENT);
}


static void
ngx_http_registry_redis_add_write(void *data)
{
    ngx_connection_t  *c = data;

    ngx_http_registry_redis_add_event(c->write, NGX_WRITE_EVENT);
}


static void
ngx_http_registry_redis_del_write(void *data)
{
    ngx_connection_t  *c = data;

    ngx_http_registry_redis_del_event(c->write, NGX_WRITE_EVENT);
}


static void
ngx_http_registry_redis_add_event(ngx_event_t *ev, ngx_int_t event)
{
    if (ev->active) {
        return;
    }

    if (ngx_add_event(ev, event, NGX_LEVEL_EVENT) == NGX_OK) {
        return;
    }

    ngx_http_registry_redis_broken(ev);
}


static void
ngx_http_registry_redis_del_event(ngx_event_t *ev, ngx_int_t event)
{
    if (!ev->active) {
        return;
    }

    if (ngx_del_event(ev, event, 0) == NGX_OK) {
        return;
    }

    ngx_http_registry_redis_broken(ev);
}


/* an event call failed for the connection of ev */

static void
ngx_http_registry_redis_broken(ngx_event_t *ev)
{
    ngx_connection_t   *c;
    redisAsyncContext  *ac;

    c = ev->data;
    ac = c->data;

    ngx_http_registry_redis_fail(ac->data, "event registration failed");
}


/*
 * hiredis is freeing the context and closes the socket itself right after
 * this: the events are removed explicitly (not with NGX_CLOSE_EVENT) as
 * the descriptor is still open here, then the connection is released.
 */

static void
ngx_http_registry_redis_cleanup(void *data)
{
    ngx_connection_t  *c = data;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->log, 0, "registry redis cleanup");

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    c->read->closed = 1;
    c->write->closed = 1;

    ngx_free_connection(c);

    /* the epoll loop tests it to skip the stale write half of an event */

    c->fd = (ngx_socket_t) -1;
}


/*
 * The subscriber.  Opened by the first subscribe, it stays for the
 * worker's life; a lost one is opened again by the next subscribe, not
 * behind the subscribers' backs: they are told it was lost and decide.
 * No command timeout applies (it waits for messages forever), TCP
 * keepalive finds a vanished peer.
 */

ngx_int_t
ngx_http_registry_redis_subscribe(ngx_str_t *channel,
    ngx_http_registry_redis_sub_pt handler)
{
    ngx_http_registry_redis_t      *rs;
    ngx_http_registry_redis_sub_t  *sub;

    rs = &ngx_http_registry_redis_state;
    sub = &ngx_http_registry_redis_sub;

    if (!rs->configured || rs->exiting) {
        return NGX_ERROR;
    }

    if (sub->handler == NULL) {
        sub->channel.data = ngx_alloc(channel->len, rs->log);
        if (sub->channel.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(sub->channel.data, channel->data, channel->len);
        sub->channel.len = channel->len;
        sub->handler = handler;

    } else if (sub->handler != handler
               || sub->channel.len != channel->len
               || ngx_strncmp(sub->channel.data, channel->data,
                              channel->len)
                  != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, rs->log, 0,
                      "registry redis: one subscription per worker");
        return NGX_ERROR;
    }

    if (sub->conn.ac != NULL) {
        /* subscribed, or about to be */
        return NGX_OK;
    }

    return ngx_http_registry_redis_sub_connect();
}


ngx_uint_t
ngx_http_registry_redis_subscribed(void)
{
    return ngx_http_registry_redis_sub.conn.ready;
}


static ngx_int_t
ngx_http_registry_redis_sub_connect(void)
{
    ngx_uint_t                      level;
    const char                     *detail;
    ngx_http_registry_redis_t      *rs;
    ngx_http_registry_redis_sub_t  *sub;

    rs = &ngx_http_registry_redis_state;
    sub = &ngx_http_registry_redis_sub;

    /* failing here, it is the caller who is told, not the handler */

    if (ngx_http_registry_redis_open(&sub->conn, &detail) != NGX_OK) {
        level = sub->failed ? NGX_LOG_DEBUG : NGX_LOG_ERR;
        ngx_log_error(level, rs->log, 0,
                      "registry redis \"%V\" subscriber: %s",
                      &rs->name, detail);
        sub->failed = 1;
        return NGX_ERROR;
    }

    /* hiredis buffers it until the connection is up */

    if (redisAsyncCommand(sub->conn.ac, ngx_http_registry_redis_sub_message,
                          NULL, "SUBSCRIBE %b", sub->channel.data,
                          sub->channel.len)
        != REDIS_OK)
    {
        ngx_http_registry_redis_close(&sub->conn);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_registry_redis_sub_keepalive(ngx_http_registry_redis_conn_t *conn)
{
    (void) redisEnableKeepAlive((redisContext *) &conn->ac->c);
}


/* every reply of the subscription: its confirmation, then messages */

static void
ngx_http_registry_redis_sub_message(redisAsyncContext *ac, void *reply,
    void *data)
{
    redisReply                     *rr, **e;
    ngx_http_registry_redis_sub_t  *sub;

    sub = &ngx_http_registry_redis_sub;
    rr = reply;

    if (ac != sub->conn.ac) {
        return;
    }

    if (rr == NULL) {
        ngx_http_registry_redis_lost(&sub->conn, "connection lost",
                                     ac->err ? ac->errstr : NULL);
        return;
    }

    if (rr->type != REDIS_REPLY_ARRAY || rr->elements < 3
        || rr->element[0]->type != REDIS_REPLY_STRING)
    {
        if (rr->type == REDIS_REPLY_ERROR) {
            ngx_http_registry_redis_lost(&sub->conn, "subscribe failed",
                                         rr->str);

            /* from a reply callback, hiredis frees the context on return */

            redisAsyncFree(ac);
        }

        return;
    }

    e = rr->element;

    if (e[0]->len == sizeof("message") - 1
        && ngx_strncmp(e[0]->str, "message", e[0]->len) == 0)
    {
        if (e[2]->type == REDIS_REPLY_STRING) {
            sub->handler(NGX_HTTP_REGISTRY_SUB_MESSAGE, (u_char *) e[2]->str,
                         e[2]->len);
        }

        return;
    }

    if (e[0]->len == sizeof("subscribe") - 1
        && ngx_strncmp(e[0]->str, "subscribe", e[0]->len) == 0)
    {
        sub->conn.ready = 1;

        if (sub->conn.timer.timer_set) {
            ngx_del_timer(&sub->conn.timer);
        }

        if (sub->failed) {
            sub->failed = 0;
            ngx_log_error(NGX_LOG_NOTICE, ngx_http_registry_redis_state.log,
                          0, "registry redis \"%V\" subscriber restored",
                          &ngx_http_registry_redis_state.name);
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_http_registry_redis_state.log,
                       0, "registry redis subscribed to \"%V\"",
                       &sub->channel);

        sub->handler(NGX_HTTP_REGISTRY_SUB_READY, NULL, 0);
    }
}


/*
 * The subscriber is gone: logged once per outage (each watch during it
 * tries again), and the handler learns it from a posted event, out of
 * hiredis's callbacks.
 */

static void
ngx_http_registry_redis_sub_lost(ngx_http_registry_redis_conn_t *conn,
    const char *what, const char *detail)
{
    ngx_uint_t                      level;
    ngx_http_registry_redis_t      *rs;
    ngx_http_registry_redis_sub_t  *sub;

    rs = &ngx_http_registry_redis_state;
    sub = &ngx_http_registry_redis_sub;

    if (rs->exiting) {
        return;
    }

    level = sub->failed ? NGX_LOG_DEBUG : NGX_LOG_ERR;
    ngx_log_error(level, rs->log, 0,
                  "registry redis \"%V\" subscriber %s%s%s", &rs->name, what,
                  detail ? ": " : "", detail ? detail : "");

    sub->failed = 1;

    if (!sub->lost.posted) {
        ngx_post_event(&sub->lost, &ngx_posted_events);
    }
}


static void
ngx_http_registry_redis_sub_lost_handler(ngx_event_t *ev)
{
    ngx_http_registry_redis_sub_t  *sub;

    sub = ev->data;

    if (sub->handler) {
        sub->handler(NGX_HTTP_REGISTRY_SUB_LOST, NULL, 0);
    }
}


static void
ngx_http_registry_redis_sub_exit(void)
{
    ngx_http_registry_redis_sub_t  *sub;

    sub = &ngx_http_registry_redis_sub;

    if (sub->lost.posted) {
        ngx_delete_posted_event(&sub->lost);
    }

    ngx_http_registry_redis_close(&sub->conn);
}
