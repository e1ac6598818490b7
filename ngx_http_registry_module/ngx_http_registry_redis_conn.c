
/*
 * ngx_http_registry_module: one hiredis 0.14 asynchronous connection to
 * the Redis server, driven by nginx's event loop, as the command
 * connection (redis.c) and the subscriber (redis_sub.c) both have it;
 * and the "registry_redis" directive.
 *
 * The hiredis socket is wrapped in an ngx_connection_t whose read and
 * write handlers call redisAsyncHandleRead() and redisAsyncHandleWrite().
 * The connect runs under an nginx timer.  Nothing here blocks: the
 * connect is non-blocking and the address is an IP or a unix socket
 * path, never a name to resolve.  With a password, AUTH is the first
 * command of the connection.
 *
 * With Redis Sentinel (redis_sentinel.c), connections go to the master
 * named last and send ROLE right after AUTH: one whose answer is not
 * "master" is dropped.  A loss makes the sentinels be asked again.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_http_registry.h"


#define NGX_HTTP_REGISTRY_REDIS_TIMEOUT      5000
#define NGX_HTTP_REGISTRY_REDIS_PORT         6379
#define NGX_HTTP_REGISTRY_SENTINEL_PORT      26379


static char *ngx_http_registry_redis_parse(ngx_conf_t *cf, ngx_str_t *value,
    ngx_int_t port, ngx_http_registry_redis_addr_t *addr);
static void ngx_http_registry_redis_auth_handler(redisAsyncContext *ac,
    void *reply, void *data);
static void ngx_http_registry_redis_role_handler(redisAsyncContext *ac,
    void *reply, void *data);
static void ngx_http_registry_redis_connect_handler(
    const redisAsyncContext *ac, int status);
static void ngx_http_registry_redis_disconnect_handler(
    const redisAsyncContext *ac, int status);
static void ngx_http_registry_redis_fail_handler(ngx_event_t *ev);

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


ngx_http_registry_redis_server_t  ngx_http_registry_redis_server;

/* where connections go; NULL: to the master the sentinels name */
static ngx_http_registry_redis_addr_t  *ngx_http_registry_redis_addr;


/*
 * registry_redis IP[:port] | unix:PATH | sentinel=NAME IP[:port]...
 *
 * Addresses only: hiredis would resolve a name with blocking DNS.
 */

char *
ngx_http_registry_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_registry_main_conf_t *mcf = conf;

    ngx_str_t                       *value;
    ngx_uint_t                       i;
    ngx_http_registry_redis_addr_t  *addr;

    if (mcf->redis.len) {
        return "is duplicate";
    }

    value = cf->args->elts;
    mcf->redis = value[1];

    if (value[1].len > 9
        && ngx_strncmp(value[1].data, "sentinel=", 9) == 0)
    {
        if (cf->args->nelts < 3) {
            return "needs at least one sentinel address after "
                   "\"sentinel=NAME\"";
        }

        mcf->redis_master.data = value[1].data + 9;
        mcf->redis_master.len = value[1].len - 9;
        mcf->redis.data += 9;
        mcf->redis.len -= 9;
        i = 2;

    } else if (cf->args->nelts > 2) {
        return "takes one address, or \"sentinel=NAME\" and sentinels";

    } else {
        i = 1;
    }

    mcf->redis_addrs = ngx_array_create(cf->pool, cf->args->nelts - i,
                                    sizeof(ngx_http_registry_redis_addr_t));
    if (mcf->redis_addrs == NULL) {
        return NGX_CONF_ERROR;
    }

    for ( /* void */ ; i < cf->args->nelts; i++) {
        addr = ngx_array_push(mcf->redis_addrs);
        if (addr == NULL) {
            return NGX_CONF_ERROR;
        }

        if (ngx_http_registry_redis_parse(cf, &value[i],
                                          mcf->redis_master.len
                                          ? NGX_HTTP_REGISTRY_SENTINEL_PORT
                                          : NGX_HTTP_REGISTRY_REDIS_PORT,
                                          addr)
            != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }

        if (addr->path && mcf->redis_master.len) {
            return "takes sentinels by IP address and port only";
        }
    }

    if (mcf->redis_master.len) {
        return ngx_http_registry_redis_sentinel_conf(cf, mcf);
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_registry_redis_parse(ngx_conf_t *cf, ngx_str_t *value,
    ngx_int_t port, ngx_http_registry_redis_addr_t *addr)
{
    u_char      *p;
    ngx_str_t    host;
    ngx_addr_t   a;

    ngx_memzero(addr, sizeof(ngx_http_registry_redis_addr_t));
    addr->name = *value;

    if (ngx_strncmp(value->data, "unix:", 5) == 0) {
        if (value->len == 5) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "registry_redis needs a socket path after "
                               "\"unix:\"");
            return NGX_CONF_ERROR;
        }

        /* the arguments are null-terminated */
        addr->path = (char *) value->data + 5;
        return NGX_CONF_OK;
    }

    host = *value;

    p = ngx_strlchr(host.data, host.data + host.len, ']');
    p = ngx_strlchr(p ? p : host.data, host.data + host.len, ':');

    if (p != NULL && ngx_strlchr(p + 1, host.data + host.len, ':') == NULL) {
        port = ngx_atoi(p + 1, host.data + host.len - p - 1);
        if (port < 1 || port > 65535) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid port in registry_redis \"%V\"",
                               value);
            return NGX_CONF_ERROR;
        }

        host.len = p - host.data;
    }

    if (host.len > 2 && host.data[0] == '[') {
        host.data++;
        host.len -= 2;
    }

    if (ngx_parse_addr(cf->pool, &a, host.data, host.len) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "registry_redis \"%V\" must be an IP address "
                           "with an optional port, or unix:PATH", value);
        return NGX_CONF_ERROR;
    }

    addr->host = ngx_pnalloc(cf->pool, host.len + 1);
    if (addr->host == NULL) {
        return NGX_CONF_ERROR;
    }

    (void) ngx_cpystrn((u_char *) addr->host, host.data, host.len + 1);
    addr->port = (int) port;

    return NGX_CONF_OK;
}


/*
 * The worker's server, from "registry_redis"; NGX_DECLINED: none,
 * NGX_ERROR: no memory.
 */

ngx_int_t
ngx_http_registry_redis_configure(ngx_cycle_t *cycle)
{
    ngx_http_registry_main_conf_t     *mcf;
    ngx_http_registry_redis_server_t  *rs;

    rs = &ngx_http_registry_redis_server;

    ngx_memzero(rs, sizeof(ngx_http_registry_redis_server_t));
    ngx_http_registry_redis_addr = NULL;

    /* the cache manager and loader have no use for Redis */

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_DECLINED;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle,
                                              ngx_http_registry_module);
    if (mcf == NULL || mcf->redis_addrs == NULL
        || mcf->redis_addrs->nelts == 0)
    {
        return NGX_DECLINED;
    }

    rs->configured = 1;
    rs->name = mcf->redis;
    rs->password = mcf->redis_password;
    rs->log = cycle->log;

    rs->timeout = mcf->redis_timeout;
    if (rs->timeout == 0 || rs->timeout == NGX_CONF_UNSET_MSEC) {
        rs->timeout = NGX_HTTP_REGISTRY_REDIS_TIMEOUT;
    }

    if (mcf->redis_master.len) {
        return ngx_http_registry_redis_sentinel_init(mcf, cycle);
    }

    ngx_http_registry_redis_addr = mcf->redis_addrs->elts;

    return NGX_OK;
}


/*
 * Also registers conn with the sentinels' watch (redis_sentinel.c): set
 * conn->sentinel before for a connection to a sentinel.
 */

void
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

    if (!conn->sentinel) {
        ngx_http_registry_redis_sentinel_watch(conn);
    }
}


/*
 * Starts connecting conn to the server (with Sentinel, to the master
 * named last), under the connect timer.
 */

ngx_int_t
ngx_http_registry_redis_open(ngx_http_registry_redis_conn_t *conn,
    const char **detail)
{
    ngx_http_registry_redis_addr_t  *master;

    if (ngx_http_registry_redis_addr) {
        return ngx_http_registry_redis_connect_to(conn,
                                              ngx_http_registry_redis_addr,
                                              detail);
    }

    master = ngx_http_registry_redis_master(conn);

    if (master == NULL) {
        *detail = "no master known yet: asking the sentinels";
        return NGX_DECLINED;
    }

    if (ngx_http_registry_redis_connect_to(conn, master, detail) != NGX_OK) {
        return NGX_ERROR;
    }

    /* before anything else: a subscriber takes no other command after */

    if (redisAsyncCommand(conn->ac, ngx_http_registry_redis_role_handler,
                          conn, "ROLE")
        != REDIS_OK)
    {
        ngx_http_registry_redis_close(conn);
        *detail = "ROLE not queued";
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A connection to addr (a Redis or a sentinel).  On failure nothing is
 * left open and *detail tells why.
 */

ngx_int_t
ngx_http_registry_redis_connect_to(ngx_http_registry_redis_conn_t *conn,
    ngx_http_registry_redis_addr_t *addr, const char **detail)
{
    ngx_connection_t                  *c;
    redisAsyncContext                 *ac;
    ngx_http_registry_redis_server_t  *rs;

    /* ac->errstr goes with ac: a copy outlives it */

    static u_char                      errstr[128];

    rs = &ngx_http_registry_redis_server;

    /*
     * Both are non-blocking: connect(2) returns EINPROGRESS and the
     * connect callback tells the outcome.  The host is an IP address
     * (the directive and the sentinels' answers are checked), which
     * getaddrinfo() converts without any lookup.
     */

    ac = addr->path ? redisAsyncConnectUnix(addr->path)
                    : redisAsyncConnect(addr->host, addr->port);

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

    /*
     * The password is Redis's; sentinels without one of their own are
     * asked without it (the question that follows says if they want one).
     */

    if (conn->sentinel
        && (ngx_strstr(rr->str, "without any password") != NULL
            || ngx_strstr(rr->str, "no password is set") != NULL))
    {
        return;
    }

    ngx_http_registry_redis_lost(conn, "authentication failed", rr->str);

    /* from a reply callback, hiredis frees the context on return */

    redisAsyncFree(ac);
}


/*
 * With Sentinel: the server connected to is the master, or the
 * connection goes (and the sentinels are asked again).  An error (a
 * missing password) is left to the next reply, which says it better.
 */

static void
ngx_http_registry_redis_role_handler(redisAsyncContext *ac, void *reply,
    void *data)
{
    redisReply                      *rr, *role;
    ngx_http_registry_redis_conn_t  *conn;

    rr = reply;
    conn = data;

    if (rr == NULL || ac != conn->ac || rr->type != REDIS_REPLY_ARRAY) {
        return;
    }

    role = rr->elements ? rr->element[0] : NULL;

    if (role != NULL && role->type == REDIS_REPLY_STRING
        && role->len == sizeof("master") - 1
        && ngx_strncmp(role->str, "master", role->len) == 0)
    {
        return;
    }

    ngx_http_registry_redis_lost(conn, "is not a master: ROLE says",
                                 role && role->type == REDIS_REPLY_STRING
                                 ? role->str : "?");

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

void
ngx_http_registry_redis_lost(ngx_http_registry_redis_conn_t *conn,
    const char *what, const char *detail)
{
    conn->ac = NULL;
    conn->ready = 0;

    if (conn->timer.timer_set) {
        ngx_del_timer(&conn->timer);
    }

    /* the master may have moved */

    if (ngx_http_registry_redis_addr == NULL && !conn->sentinel) {
        ngx_http_registry_redis_sentinel_check(conn);
    }

    conn->on_lost(conn, what, detail);
}


/*
 * Closes the connection from our side: never called from within a
 * hiredis callback, where redisAsyncFree() would be deferred.  The
 * pending commands get their NULL replies before this returns.
 */

void
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

void
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


void
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

void
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
