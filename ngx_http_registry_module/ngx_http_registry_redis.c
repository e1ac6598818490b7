
/*
 * ngx_http_registry_module: the Redis client.  The worker's command
 * connection (a connection of redis_conn.c, up once Redis answers a
 * PING, opened again after a backoff when lost, at once when Sentinel
 * names a new master), the commands in flight on it with their timeout,
 * and the functions of the library "registry" (redis/NAME.lua) called
 * through it, loaded on every connect (a master just promoted has them
 * too).  The subscriber of the watches is a connection of its own
 * (redis_sub.c): a connection in subscribe mode takes no other command.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_http_registry.h"


#define NGX_HTTP_REGISTRY_REDIS_BACKOFF_MIN  100
#define NGX_HTTP_REGISTRY_REDIS_BACKOFF_MAX  5000


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
    uint64_t                         sent;      /* for the metrics */

    ngx_http_request_t              *request;   /* NULL once r is freed */
    ngx_pool_cleanup_t              *cleanup;   /* valid while request */

    ngx_http_registry_redis_cb_pt    handler;   /* calls not tied to r */
    void                            *data;
} ngx_http_registry_redis_cmd_t;


/* the command connection */

typedef struct {
    ngx_http_registry_redis_conn_t   conn;      /* its timer also times
                                                   the commands */
    ngx_queue_t                      pending;   /* of commands in flight */

    ngx_event_t                      reconnect;

    ngx_msec_t                       backoff;

    ngx_uint_t                       serial;    /* of the connection */

    unsigned                         failed:1;  /* the loss was logged */
    unsigned                         exiting:1;
} ngx_http_registry_redis_t;


static ngx_uint_t ngx_http_registry_redis_accepting(
    ngx_http_registry_redis_t *rs);
static ngx_http_registry_redis_cmd_t *ngx_http_registry_redis_cmd_create(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_registry_redis_cmd_queued(
    ngx_http_registry_redis_cmd_t *cmd, int rc);
static void ngx_http_registry_redis_cmd_cleanup(void *data);
static void ngx_http_registry_redis_count(ngx_http_registry_redis_cmd_t *cmd,
    redisReply *reply);
static void ngx_http_registry_redis_reply(redisAsyncContext *ac,
    void *reply, void *data);
static void ngx_http_registry_redis_loaded(redisAsyncContext *ac,
    void *reply, void *data);

static void ngx_http_registry_redis_connect(void);
static void ngx_http_registry_redis_moved(
    ngx_http_registry_redis_conn_t *conn);
static void ngx_http_registry_redis_ping(
    ngx_http_registry_redis_conn_t *conn);
static void ngx_http_registry_redis_ping_handler(redisAsyncContext *ac,
    void *reply, void *data);
static void ngx_http_registry_redis_outage(
    ngx_http_registry_redis_conn_t *conn, const char *what,
    const char *detail);
static void ngx_http_registry_redis_timer_handler(ngx_event_t *ev);
static void ngx_http_registry_redis_reconnect_handler(ngx_event_t *ev);

static ngx_http_registry_redis_t  ngx_http_registry_redis_state;


ngx_int_t
ngx_http_registry_redis_init_worker(ngx_cycle_t *cycle)
{
    ngx_int_t                   rc;
    ngx_http_registry_redis_t  *rs;

    rs = &ngx_http_registry_redis_state;

    ngx_memzero(rs, sizeof(ngx_http_registry_redis_t));
    ngx_queue_init(&rs->pending);

    rc = ngx_http_registry_redis_configure(cycle);

    if (rc != NGX_OK) {
        return rc == NGX_DECLINED ? NGX_OK : NGX_ERROR;
    }

    rs->backoff = NGX_HTTP_REGISTRY_REDIS_BACKOFF_MIN;

    ngx_http_registry_redis_conn_init(&rs->conn,
                                      ngx_http_registry_redis_ping,
                                      ngx_http_registry_redis_outage,
                                      cycle->log);

    /* once connected, the connect timer times the commands */

    rs->conn.timer.handler = ngx_http_registry_redis_timer_handler;
    rs->conn.on_master = ngx_http_registry_redis_moved;

    /* waiting to reconnect must not hold back a graceful shutdown */

    rs->reconnect.handler = ngx_http_registry_redis_reconnect_handler;
    rs->reconnect.data = rs;
    rs->reconnect.log = cycle->log;
    rs->reconnect.cancelable = 1;

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

    if (!ngx_http_registry_redis_server.configured) {
        return;
    }

    rs->exiting = 1;

    if (rs->reconnect.timer_set) {
        ngx_del_timer(&rs->reconnect);
    }

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

    ngx_http_registry_redis_sentinel_exit();
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
        ngx_http_registry_metrics_add(NGX_HTTP_REGISTRY_METRIC_REDIS_ERRORS,
                                      NGX_HTTP_REGISTRY_REDIS_NOT_CONNECTED,
                                      1);
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
    int                                rc;
    ngx_http_registry_redis_t         *rs;
    ngx_http_registry_redis_cmd_t     *cmd;
    ngx_http_registry_redis_server_t  *srv;

    rs = &ngx_http_registry_redis_state;
    srv = &ngx_http_registry_redis_server;

    if (!ngx_http_registry_redis_accepting(rs)) {
        ngx_http_registry_metrics_add(NGX_HTTP_REGISTRY_METRIC_REDIS_ERRORS,
                                      NGX_HTTP_REGISTRY_REDIS_NOT_CONNECTED,
                                      1);
        return NGX_ERROR;
    }

    cmd = ngx_alloc(sizeof(ngx_http_registry_redis_cmd_t), srv->log);
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
 * Which connection a reply came on (ctx->reply_conn): 0 when none is up.
 * A WAIT (redis_wait.c) vouches only for writes of the same connection.
 */

ngx_uint_t
ngx_http_registry_redis_serial(void)
{
    ngx_http_registry_redis_t  *rs;

    rs = &ngx_http_registry_redis_state;

    return rs->conn.ready ? rs->serial : 0;
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
    ngx_http_registry_redis_t         *rs;
    ngx_http_registry_redis_server_t  *srv;

    rs = &ngx_http_registry_redis_state;
    srv = &ngx_http_registry_redis_server;

    if (rc != REDIS_OK) {

        /* hiredis did not take the command: its callback will never run */

        if (cmd->request) {
            cmd->cleanup->handler = NULL;
        }

        ngx_free(cmd);

        return NGX_ERROR;
    }

    cmd->start = ngx_current_msec;
    cmd->sent = ngx_http_registry_metrics_usec();
    ngx_queue_insert_tail(&rs->pending, &cmd->queue);

    ngx_http_registry_metrics_add(NGX_HTTP_REGISTRY_METRIC_REDIS_COMMANDS, 0,
                                  1);

    /*
     * Armed for the oldest command only; on expiry the handler moves it
     * on to the next one.  It is not cancelable: a graceful shutdown
     * waits for the replies (or for the timeout) of the requests in
     * flight.
     */

    if (!rs->conn.timer.timer_set) {
        rs->conn.timer.cancelable = 0;
        ngx_add_timer(&rs->conn.timer, srv->timeout);
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


/* a command's end, for the metrics: its round trip, or why it failed */

static void
ngx_http_registry_redis_count(ngx_http_registry_redis_cmd_t *cmd,
    redisReply *reply)
{
    if (reply == NULL) {
        ngx_http_registry_metrics_add(NGX_HTTP_REGISTRY_METRIC_REDIS_ERRORS,
                                      NGX_HTTP_REGISTRY_REDIS_NO_REPLY, 1);
        return;
    }

    ngx_http_registry_metrics_observe(NGX_HTTP_REGISTRY_METRIC_REDIS_DURATION,
                                   0, ngx_http_registry_metrics_usec()
                                      - cmd->sent);

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_http_registry_metrics_add(NGX_HTTP_REGISTRY_METRIC_REDIS_ERRORS,
                                      NGX_HTTP_REGISTRY_REDIS_ERROR_REPLY, 1);
    }
}


static void
ngx_http_registry_redis_reply(redisAsyncContext *ac, void *reply, void *data)
{
    ngx_http_registry_redis_cmd_t  *cmd = data;

    void                           *hdata;
    redisReply                     *rr;
    ngx_connection_t               *c;
    ngx_http_request_t             *r;
    ngx_http_registry_ctx_t        *ctx;
    ngx_http_registry_redis_t      *rs;
    ngx_http_registry_redis_cb_pt   handler;

    rs = &ngx_http_registry_redis_state;

    ngx_queue_remove(&cmd->queue);

    ngx_http_registry_redis_count(cmd, reply);

    rr = reply;

    if (rr == NULL) {

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

    } else if (rr->type == REDIS_REPLY_ERROR && rr->len >= 8
               && ngx_strncmp(rr->str, "READONLY", 8) == 0)
    {
        /*
         * The master became a replica (a failover): the write is not
         * done, the request gets 503 as for a loss, and the connection
         * goes to whichever master the sentinels name now.
         */

        if (ac == rs->conn.ac) {
            ngx_http_registry_redis_fail(&rs->conn,
                                         "is a replica now (READONLY)");
        }

        reply = NULL;

    } else {
        if (ngx_queue_empty(&rs->pending) && rs->conn.timer.timer_set) {
            ngx_del_timer(&rs->conn.timer);
        }

        /* flushed behind our back: a new connection loads them again */

        if (rr->type == REDIS_REPLY_ERROR
            && ngx_strncmp(rr->str, "ERR Function not found", 22) == 0
            && ac == rs->conn.ac && rs->conn.broken == NULL)
        {
            ngx_http_registry_redis_fail(&rs->conn,
                                         "function library missing");
        }
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
    ctx->reply_conn = rs->serial;

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
    ngx_int_t                          rc;
    const char                        *detail;
    ngx_http_registry_redis_t         *rs;
    ngx_http_registry_redis_server_t  *srv;

    rs = &ngx_http_registry_redis_state;
    srv = &ngx_http_registry_redis_server;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, srv->log, 0,
                   "registry redis connect to \"%V\"", &srv->name);

    rs->serial++;

    rc = ngx_http_registry_redis_open(&rs->conn, &detail);

    /* NGX_DECLINED: the sentinels are asked, ..._moved() follows */

    if (rc == NGX_ERROR) {
        ngx_http_registry_redis_lost(&rs->conn, "connect failed", detail);
    }
}


/* Sentinel named a new master, or the one it waited for: go now */

static void
ngx_http_registry_redis_moved(ngx_http_registry_redis_conn_t *conn)
{
    ngx_http_registry_redis_t  *rs;

    rs = &ngx_http_registry_redis_state;

    if (rs->exiting) {
        return;
    }

    if (rs->reconnect.timer_set) {
        ngx_del_timer(&rs->reconnect);
    }

    rs->backoff = NGX_HTTP_REGISTRY_REDIS_BACKOFF_MIN;

    ngx_http_registry_redis_connect();
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
    size_t       lens[4];
    const char  *argv[4];

    /*
     * The function library goes with every connect, in the same write as
     * the PING: whatever Redis this is (restarted empty, a replica
     * promoted, a FUNCTION FLUSH), the commands that follow find the
     * functions of this very module.  It is small, and replaced only
     * when its text differs in effect (Redis compiles it each time).
     */

    argv[0] = "FUNCTION";
    argv[1] = "LOAD";
    argv[2] = "REPLACE";
    argv[3] = ngx_http_registry_redis_library;

    lens[0] = sizeof("FUNCTION") - 1;
    lens[1] = sizeof("LOAD") - 1;
    lens[2] = sizeof("REPLACE") - 1;
    lens[3] = ngx_strlen(ngx_http_registry_redis_library);

    if (redisAsyncCommand(conn->ac, ngx_http_registry_redis_ping_handler,
                          NULL, "PING")
        != REDIS_OK
        || redisAsyncCommandArgv(conn->ac, ngx_http_registry_redis_loaded,
                                 NULL, 4, argv, lens)
           != REDIS_OK)
    {
        ngx_http_registry_redis_fail(conn, "event registration failed");
    }
}


/*
 * A library that does not load (Redis out of memory, a replica) leaves
 * the functions Redis has, if any: the calls say what is wrong.
 */

static void
ngx_http_registry_redis_loaded(redisAsyncContext *ac, void *reply,
    void *data)
{
    redisReply                        *rr;
    ngx_http_registry_redis_server_t  *srv;

    rr = reply;
    srv = &ngx_http_registry_redis_server;

    if (rr != NULL && rr->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, srv->log, 0,
                      "registry redis \"%V\" function library not loaded: %s",
                      &srv->name, rr->str);
    }
}


static void
ngx_http_registry_redis_ping_handler(redisAsyncContext *ac, void *reply,
    void *data)
{
    redisReply                        *rr;
    ngx_http_registry_redis_t         *rs;
    ngx_http_registry_redis_server_t  *srv;

    rs = &ngx_http_registry_redis_state;
    srv = &ngx_http_registry_redis_server;
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
        ngx_add_timer(&rs->conn.timer, srv->timeout);
    }

    if (rs->failed) {
        rs->failed = 0;
        ngx_http_registry_metrics_add(
            NGX_HTTP_REGISTRY_METRIC_REDIS_RECONNECTS,
            NGX_HTTP_REGISTRY_REDIS_CONN_COMMAND, 1);
        ngx_log_error(NGX_LOG_NOTICE, srv->log, 0,
                      "registry redis \"%V\" connection restored",
                      &srv->name);
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, srv->log, 0,
                   "registry redis connected to \"%V\"", &srv->name);
}


/*
 * The command connection is gone: logged once per outage (at the first
 * failure, not at every retry), then opened again after a backoff.
 */

static void
ngx_http_registry_redis_outage(ngx_http_registry_redis_conn_t *conn,
    const char *what, const char *detail)
{
    ngx_uint_t                         level;
    ngx_http_registry_redis_t         *rs;
    ngx_http_registry_redis_server_t  *srv;

    rs = &ngx_http_registry_redis_state;
    srv = &ngx_http_registry_redis_server;

    if (!rs->failed && !rs->exiting) {
        ngx_http_registry_metrics_add(NGX_HTTP_REGISTRY_METRIC_REDIS_LOSSES,
                                      NGX_HTTP_REGISTRY_REDIS_CONN_COMMAND,
                                      1);
    }

    level = rs->failed ? NGX_LOG_DEBUG : NGX_LOG_ERR;
    rs->failed = 1;

    if (detail && detail[0]) {
        ngx_log_error(level, srv->log, 0,
                      "registry redis \"%V\" %s: %s", &srv->name, what,
                      detail);

    } else {
        ngx_log_error(level, srv->log, 0,
                      "registry redis \"%V\" %s", &srv->name, what);
    }

    if (rs->exiting || rs->reconnect.timer_set) {
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, srv->log, 0,
                   "registry redis reconnect in %M ms", rs->backoff);

    ngx_add_timer(&rs->reconnect, rs->backoff);

    rs->backoff = ngx_min(rs->backoff * 2,
                          NGX_HTTP_REGISTRY_REDIS_BACKOFF_MAX);
}


/* the connect timer, which once connected times the oldest command */

static void
ngx_http_registry_redis_timer_handler(ngx_event_t *ev)
{
    ngx_msec_int_t                     left;
    ngx_http_registry_redis_t         *rs;
    ngx_http_registry_redis_cmd_t     *cmd;
    ngx_http_registry_redis_server_t  *srv;

    rs = &ngx_http_registry_redis_state;
    srv = &ngx_http_registry_redis_server;

    if (!rs->conn.ready) {
        ngx_http_registry_redis_connect_timer_handler(ev);
        return;
    }

    if (ngx_queue_empty(&rs->pending)) {
        return;
    }

    cmd = ngx_queue_data(ngx_queue_head(&rs->pending),
                         ngx_http_registry_redis_cmd_t, queue);

    left = (ngx_msec_int_t) (cmd->start + srv->timeout - ngx_current_msec);

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
