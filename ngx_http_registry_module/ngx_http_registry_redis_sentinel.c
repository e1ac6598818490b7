
/*
 * ngx_http_registry_module: Redis Sentinel.  Which master the Redis
 * connections of a worker (redis_conn.c) go to, and following it.
 *
 * The worker asks one sentinel at a time, on a connection of its own
 * (AUTH with the Redis password, if any, then SENTINEL
 * get-master-addr-by-name), closed once answered.  A sentinel that fails
 * (no connection, an error, no such master) makes it ask the next one
 * at once; when each failed in turn, it asks again after a backoff.  A
 * connection to Redis that is lost has the sentinels asked again.
 *
 * To hear of a failover at once, it also keeps a connection subscribed
 * to +switch-master on every sentinel: each sentinel publishes it when it
 * learns of the new master, the one leading the failover first, the
 * others up to seconds later.  A master that moved drops the connections
 * to the old one and lets the waiting ones open (on_master).  The master
 * must be named by its IP address: a host name would need a blocking
 * lookup.
 *
 * The master named last is also kept in shared memory: a worker started
 * later (a reload, a respawn) goes to it at once and asks a sentinel to
 * confirm, instead of refusing its first requests until one answers.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_http_registry.h"


#define NGX_HTTP_REGISTRY_SENTINEL_MIN       100
#define NGX_HTTP_REGISTRY_SENTINEL_MAX       5000
#define NGX_HTTP_REGISTRY_SENTINEL_USERS     2
#define NGX_HTTP_REGISTRY_SENTINEL_RELISTEN  1000


/* a connection subscribed to +switch-master on one sentinel */

typedef struct {
    ngx_http_registry_redis_conn_t   conn;      /* ready: subscribed */
    ngx_event_t                      retry;     /* subscribes again */
    ngx_http_registry_redis_addr_t  *sentinel;
    unsigned                         failed:1;  /* the loss was logged */
} ngx_http_registry_redis_listener_t;


/* in shared memory: the master named last to any worker */

typedef struct {
    u_char                           host[NGX_INET6_ADDRSTRLEN + 1];
    int                              port;      /* 0: none named yet */
} ngx_http_registry_redis_known_t;


typedef struct {
    ngx_str_t                        master;    /* its name */
    ngx_http_registry_redis_addr_t  *sentinels;
    ngx_uint_t                       nsentinels;
    ngx_uint_t                       current;   /* asked now, or last */
    ngx_uint_t                       tried;     /* failed in a row */

    ngx_http_registry_redis_conn_t   conn;      /* a question in flight */
    ngx_http_registry_redis_listener_t  *listeners;  /* one per sentinel */

    ngx_http_registry_redis_addr_t   addr;      /* the master named last */
    u_char                           host[NGX_INET6_ADDRSTRLEN + 1];
    ngx_uint_t                       gen;       /* 0: none named yet */

    ngx_http_registry_redis_conn_t  *users[NGX_HTTP_REGISTRY_SENTINEL_USERS];
    ngx_uint_t                       nusers;

    ngx_shm_zone_t                  *known;     /* ..._known_t */

    ngx_event_t                      retry;     /* asks again */
    ngx_event_t                      moved;     /* tells the users */
    ngx_msec_t                       backoff;

    unsigned                         failed:1;  /* the outage was logged */
    unsigned                         exiting:1;
} ngx_http_registry_redis_sentinel_t;


static ngx_int_t ngx_http_registry_redis_known_init(ngx_shm_zone_t *zone,
    void *data);
static void ngx_http_registry_redis_known(ngx_uint_t set);
static void ngx_http_registry_redis_ask(void);
static void ngx_http_registry_redis_listen(
    ngx_http_registry_redis_listener_t *l);
static void ngx_http_registry_redis_keepalive(
    ngx_http_registry_redis_conn_t *conn);
static void ngx_http_registry_redis_unheard(
    ngx_http_registry_redis_conn_t *conn, const char *what,
    const char *detail);
static void ngx_http_registry_redis_relisten_handler(ngx_event_t *ev);
static void ngx_http_registry_redis_master_handler(redisAsyncContext *ac,
    void *reply, void *data);
static void ngx_http_registry_redis_switch_handler(redisAsyncContext *ac,
    void *reply, void *data);
static void ngx_http_registry_redis_master_is(u_char *host, size_t len,
    u_char *port, size_t plen, const char *who);
static void ngx_http_registry_redis_sentinel_lost(
    ngx_http_registry_redis_conn_t *conn, const char *what,
    const char *detail);
static void ngx_http_registry_redis_retry_handler(ngx_event_t *ev);
static void ngx_http_registry_redis_moved_handler(ngx_event_t *ev);


static ngx_http_registry_redis_sentinel_t  ngx_http_registry_redis_sentinel;

static ngx_str_t  ngx_http_registry_redis_known_name =
    ngx_string("registry_redis_sentinel");


/* from the "registry_redis sentinel=" directive */

char *
ngx_http_registry_redis_sentinel_conf(ngx_conf_t *cf,
    ngx_http_registry_main_conf_t *mcf)
{
    ngx_shm_zone_t  *zone;

    zone = ngx_shared_memory_add(cf, &ngx_http_registry_redis_known_name,
                                 8 * ngx_pagesize, &ngx_http_registry_module);
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    zone->init = ngx_http_registry_redis_known_init;
    mcf->redis_known = zone;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_registry_redis_known_init(ngx_shm_zone_t *zone, void *data)
{
    ngx_slab_pool_t                  *shpool;
    ngx_http_registry_redis_known_t  *known;

    /* a reload: the master named before is still the best guess */

    if (data) {
        zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (zone->shm.exists) {
        zone->data = shpool->data;
        return NGX_OK;
    }

    known = ngx_slab_calloc(shpool, sizeof(ngx_http_registry_redis_known_t));
    if (known == NULL) {
        return NGX_ERROR;
    }

    shpool->data = known;
    zone->data = known;

    return NGX_OK;
}


/* from ngx_http_registry_redis_configure(), at worker start */

ngx_int_t
ngx_http_registry_redis_sentinel_init(ngx_http_registry_main_conf_t *mcf,
    ngx_cycle_t *cycle)
{
    ngx_uint_t                           i;
    ngx_http_registry_redis_listener_t  *l;
    ngx_http_registry_redis_sentinel_t  *st;

    st = &ngx_http_registry_redis_sentinel;

    ngx_memzero(st, sizeof(ngx_http_registry_redis_sentinel_t));

    st->master = mcf->redis_master;
    st->sentinels = mcf->redis_addrs->elts;
    st->nsentinels = mcf->redis_addrs->nelts;
    st->addr.host = (char *) st->host;
    st->backoff = NGX_HTTP_REGISTRY_SENTINEL_MIN;

    st->conn.sentinel = 1;
    ngx_http_registry_redis_conn_init(&st->conn,
                                      ngx_http_registry_redis_keepalive,
                                      ngx_http_registry_redis_sentinel_lost,
                                      cycle->log);

    /* waiting for the next round must not hold back a graceful shutdown */

    st->retry.handler = ngx_http_registry_redis_retry_handler;
    st->retry.log = cycle->log;
    st->retry.cancelable = 1;

    st->moved.handler = ngx_http_registry_redis_moved_handler;
    st->moved.log = cycle->log;

    st->known = mcf->redis_known;
    ngx_http_registry_redis_known(0);

    st->listeners = ngx_pcalloc(cycle->pool, st->nsentinels
                                * sizeof(ngx_http_registry_redis_listener_t));
    if (st->listeners == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < st->nsentinels; i++) {
        l = &st->listeners[i];
        l->sentinel = &st->sentinels[i];

        l->conn.sentinel = 1;
        ngx_http_registry_redis_conn_init(&l->conn,
                                          ngx_http_registry_redis_keepalive,
                                          ngx_http_registry_redis_unheard,
                                          cycle->log);

        l->retry.handler = ngx_http_registry_redis_relisten_handler;
        l->retry.data = l;
        l->retry.log = cycle->log;
        l->retry.cancelable = 1;

        ngx_http_registry_redis_listen(l);
    }

    /* the master named before: confirmed (or corrected) at once */

    if (st->gen) {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "registry redis \"%V\": master %s:%d as named last, "
                      "asking a sentinel", &st->master, st->host,
                      st->addr.port);

        ngx_http_registry_redis_ask();
    }

    return NGX_OK;
}


/* at worker exit, once the connections to Redis are closed */

void
ngx_http_registry_redis_sentinel_exit(void)
{
    ngx_uint_t                           i;
    ngx_http_registry_redis_listener_t  *l;
    ngx_http_registry_redis_sentinel_t  *st;

    st = &ngx_http_registry_redis_sentinel;

    if (st->master.len == 0) {
        return;
    }

    st->exiting = 1;

    if (st->retry.timer_set) {
        ngx_del_timer(&st->retry);
    }

    if (st->moved.posted) {
        ngx_delete_posted_event(&st->moved);
    }

    ngx_http_registry_redis_close(&st->conn);

    for (i = 0; st->listeners && i < st->nsentinels; i++) {
        l = &st->listeners[i];

        if (l->retry.timer_set) {
            ngx_del_timer(&l->retry);
        }

        ngx_http_registry_redis_close(&l->conn);
    }
}


/* conn is told when the master moves */

void
ngx_http_registry_redis_sentinel_watch(ngx_http_registry_redis_conn_t *conn)
{
    ngx_http_registry_redis_sentinel_t  *st;

    st = &ngx_http_registry_redis_sentinel;

    if (st->nusers < NGX_HTTP_REGISTRY_SENTINEL_USERS) {
        st->users[st->nusers++] = conn;
    }
}


/* where conn goes now; NULL: none known yet, asked (conn->on_master) */

ngx_http_registry_redis_addr_t *
ngx_http_registry_redis_master(ngx_http_registry_redis_conn_t *conn)
{
    ngx_http_registry_redis_sentinel_t  *st;

    st = &ngx_http_registry_redis_sentinel;

    if (st->gen == 0) {
        conn->waiting = 1;
        ngx_http_registry_redis_ask();
        return NULL;
    }

    conn->waiting = 0;
    conn->master = st->gen;

    return &st->addr;
}


/*
 * conn was lost: the master may have moved, unless conn went to one
 * already known to be the old one.
 */

void
ngx_http_registry_redis_sentinel_check(ngx_http_registry_redis_conn_t *conn)
{
    if (conn->master == ngx_http_registry_redis_sentinel.gen) {
        ngx_http_registry_redis_ask();
    }
}


/*
 * Asks the current sentinel for the master, unless a question is in
 * flight or the next round waits.
 */

static void
ngx_http_registry_redis_ask(void)
{
    const char                          *detail;
    ngx_http_registry_redis_sentinel_t  *st;

    st = &ngx_http_registry_redis_sentinel;

    if (st->exiting || st->retry.timer_set || st->conn.ac != NULL) {
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, st->retry.log, 0,
                   "registry redis: asking sentinel %V for \"%V\"",
                   &st->sentinels[st->current].name, &st->master);

    if (ngx_http_registry_redis_connect_to(&st->conn,
                                           &st->sentinels[st->current],
                                           &detail)
        != NGX_OK)
    {
        ngx_http_registry_redis_sentinel_lost(&st->conn, "connect failed",
                                              detail);
        return;
    }

    if (redisAsyncCommand(st->conn.ac, ngx_http_registry_redis_master_handler,
                          NULL, "SENTINEL get-master-addr-by-name %b",
                          st->master.data, st->master.len)
        != REDIS_OK)
    {
        ngx_http_registry_redis_close(&st->conn);
        ngx_http_registry_redis_sentinel_lost(&st->conn, "not queued", NULL);
    }
}


/* a listener subscribes, on a connection of its own */

static void
ngx_http_registry_redis_listen(ngx_http_registry_redis_listener_t *l)
{
    const char  *detail;

    if (ngx_http_registry_redis_connect_to(&l->conn, l->sentinel, &detail)
        != NGX_OK)
    {
        ngx_http_registry_redis_unheard(&l->conn, "connect failed", detail);
        return;
    }

    if (redisAsyncCommand(l->conn.ac, ngx_http_registry_redis_switch_handler,
                          l, "SUBSCRIBE +switch-master")
        != REDIS_OK)
    {
        ngx_http_registry_redis_close(&l->conn);
        ngx_http_registry_redis_unheard(&l->conn, "not queued", NULL);
    }
}


/* also for a sentinel: TCP keepalive finds one that vanished */

static void
ngx_http_registry_redis_keepalive(ngx_http_registry_redis_conn_t *conn)
{
    (void) redisEnableKeepAlive((redisContext *) &conn->ac->c);
}


static void
ngx_http_registry_redis_master_handler(redisAsyncContext *ac, void *reply,
    void *data)
{
    redisReply                          *rr, **e;
    ngx_http_registry_redis_sentinel_t  *st;

    st = &ngx_http_registry_redis_sentinel;
    rr = reply;

    if (ac != st->conn.ac) {
        return;
    }

    if (rr == NULL) {
        ngx_http_registry_redis_lost(&st->conn, "connection lost",
                                     ac->err ? ac->errstr : NULL);
        return;
    }

    e = rr->element;

    if (rr->type == REDIS_REPLY_ERROR) {
        ngx_http_registry_redis_lost(&st->conn, "refused", rr->str);

    } else if (rr->type != REDIS_REPLY_ARRAY || rr->elements != 2
               || e[0]->type != REDIS_REPLY_STRING
               || e[1]->type != REDIS_REPLY_STRING)
    {
        ngx_http_registry_redis_lost(&st->conn, "does not know the master",
                                     NULL);

    } else {
        st->tried = 0;
        st->backoff = NGX_HTTP_REGISTRY_SENTINEL_MIN;

        /* answered: closed, hiredis frees the context on return */

        ngx_http_registry_redis_close(&st->conn);

        if (st->failed) {
            st->failed = 0;
            ngx_log_error(NGX_LOG_NOTICE, st->retry.log, 0,
                          "registry redis \"%V\": sentinel %V answers",
                          &st->master, &st->sentinels[st->current].name);
        }

        ngx_http_registry_redis_master_is((u_char *) e[0]->str, e[0]->len,
                                          (u_char *) e[1]->str, e[1]->len,
                                          "named by a sentinel");
        return;
    }

    /* from a reply callback, hiredis frees the context on return */

    redisAsyncFree(ac);
}


/* a listener's subscription: its confirmation, then each failover */

static void
ngx_http_registry_redis_switch_handler(redisAsyncContext *ac, void *reply,
    void *data)
{
    ngx_http_registry_redis_listener_t *l = data;

    u_char                              *p, *last, *f[5];
    size_t                               n[5];
    redisReply                          *rr, **e;
    ngx_uint_t                           i;
    ngx_http_registry_redis_sentinel_t  *st;

    st = &ngx_http_registry_redis_sentinel;
    rr = reply;

    if (ac != l->conn.ac) {
        return;
    }

    if (rr == NULL) {
        ngx_http_registry_redis_lost(&l->conn, "connection lost",
                                     ac->err ? ac->errstr : NULL);
        return;
    }

    if (rr->type == REDIS_REPLY_ERROR) {
        ngx_http_registry_redis_lost(&l->conn, "refused to subscribe",
                                     rr->str);
        redisAsyncFree(ac);
        return;
    }

    e = rr->element;

    if (rr->type != REDIS_REPLY_ARRAY || rr->elements != 3
        || e[0]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    if (e[0]->len == sizeof("subscribe") - 1
        && ngx_strncmp(e[0]->str, "subscribe", e[0]->len) == 0)
    {
        l->conn.ready = 1;

        if (l->conn.timer.timer_set) {
            ngx_del_timer(&l->conn.timer);
        }

        if (l->failed) {
            l->failed = 0;
            ngx_log_error(NGX_LOG_NOTICE, st->retry.log, 0,
                          "registry redis \"%V\": sentinel %V tells of "
                          "failovers again", &st->master, &l->sentinel->name);
        }

        return;
    }

    if (e[0]->len != sizeof("message") - 1
        || ngx_strncmp(e[0]->str, "message", e[0]->len) != 0
        || e[2]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    /* "<master name> <old ip> <old port> <new ip> <new port>" */

    p = (u_char *) e[2]->str;
    last = p + e[2]->len;

    for (i = 0; i < 5; i++) {
        f[i] = p;
        p = ngx_strlchr(p, last, ' ');
        n[i] = (p ? p : last) - f[i];
        p = p ? p + 1 : last;
    }

    if (n[0] != st->master.len
        || ngx_strncmp(f[0], st->master.data, n[0]) != 0)
    {
        return;
    }

    ngx_http_registry_redis_master_is(f[3], n[3], f[4], n[4],
                                      "after a failover");
}


/*
 * The master named: a new one is taken if it is an IP address (a host
 * name would need a blocking lookup), and the connections are told.
 */

static void
ngx_http_registry_redis_master_is(u_char *host, size_t len, u_char *port,
    size_t plen, const char *who)
{
    u_char                               text[NGX_INET6_ADDRSTRLEN + 1];
    ngx_int_t                            n;
    ngx_uint_t                           level;
    struct in6_addr                      in6;
    ngx_http_registry_redis_sentinel_t  *st;

    st = &ngx_http_registry_redis_sentinel;

    n = ngx_atoi(port, plen);

    if (len == 0 || len >= sizeof(text) || n < 1 || n > 65535) {
        goto invalid;
    }

    (void) ngx_cpystrn(text, host, len + 1);

    if (inet_pton(AF_INET, (char *) text, &in6) != 1
        && inet_pton(AF_INET6, (char *) text, &in6) != 1)
    {
        goto invalid;
    }

    if (st->gen == 0 || n != st->addr.port
        || ngx_strcmp(text, st->host) != 0)
    {
        level = st->gen ? NGX_LOG_NOTICE : NGX_LOG_INFO;

        ngx_log_error(level, st->retry.log, 0,
                      "registry redis \"%V\": master %s:%i %s",
                      &st->master, text, n, who);

        ngx_memcpy(st->host, text, len + 1);
        st->addr.port = (int) n;
        st->gen++;

        ngx_http_registry_redis_known(1);
    }

    /* even the same one: a connection waiting for it may go now */

    if (!st->moved.posted) {
        ngx_post_event(&st->moved, &ngx_posted_events);
    }

    return;

invalid:

    ngx_log_error(NGX_LOG_ERR, st->retry.log, 0,
                  "registry redis \"%V\": the master %s is \"%*s:%*s\", "
                  "not an IP address and a port (Sentinel's "
                  "announce-hostnames and resolve-hostnames must be no)",
                  &st->master, who, len, host, plen, port);
}


/*
 * The master in shared memory: set there (set), or, at worker start,
 * taken from there.
 */

static void
ngx_http_registry_redis_known(ngx_uint_t set)
{
    ngx_slab_pool_t                     *shpool;
    ngx_http_registry_redis_known_t     *known;
    ngx_http_registry_redis_sentinel_t  *st;

    st = &ngx_http_registry_redis_sentinel;

    if (st->known == NULL) {
        return;
    }

    shpool = (ngx_slab_pool_t *) st->known->shm.addr;
    known = st->known->data;

    ngx_shmtx_lock(&shpool->mutex);

    if (set) {
        ngx_memcpy(known->host, st->host, sizeof(known->host));
        known->port = st->addr.port;

    } else if (known->port) {
        ngx_memcpy(st->host, known->host, sizeof(st->host));
        st->addr.port = known->port;
        st->gen = 1;
    }

    ngx_shmtx_unlock(&shpool->mutex);
}


/*
 * The current sentinel failed (or its connection went): the next one is
 * asked at once, or, when each failed in turn, after a backoff.
 */

static void
ngx_http_registry_redis_sentinel_lost(ngx_http_registry_redis_conn_t *conn,
    const char *what, const char *detail)
{
    ngx_uint_t                           level;
    ngx_http_registry_redis_sentinel_t  *st;

    st = &ngx_http_registry_redis_sentinel;

    if (st->exiting) {
        return;
    }

    level = st->failed ? NGX_LOG_DEBUG : NGX_LOG_WARN;

    ngx_log_error(level, st->retry.log, 0,
                  "registry redis \"%V\": sentinel %V %s%s%s", &st->master,
                  &st->sentinels[st->current].name, what,
                  detail ? ": " : "", detail ? detail : "");

    st->current = (st->current + 1) % st->nsentinels;

    if (st->retry.timer_set) {
        return;
    }

    if (++st->tried < st->nsentinels) {
        ngx_add_timer(&st->retry, 1);
        return;
    }

    if (!st->failed) {
        ngx_log_error(NGX_LOG_ERR, st->retry.log, 0,
                      "registry redis \"%V\": no sentinel answers",
                      &st->master);
        st->failed = 1;
    }

    st->tried = 0;

    ngx_add_timer(&st->retry, st->backoff);

    st->backoff = ngx_min(st->backoff * 2, NGX_HTTP_REGISTRY_SENTINEL_MAX);
}


/* a listener lost: logged once, subscribed again a second later */

static void
ngx_http_registry_redis_unheard(ngx_http_registry_redis_conn_t *conn,
    const char *what, const char *detail)
{
    ngx_uint_t                           level;
    ngx_http_registry_redis_listener_t  *l;
    ngx_http_registry_redis_sentinel_t  *st;

    st = &ngx_http_registry_redis_sentinel;
    l = (ngx_http_registry_redis_listener_t *) conn;

    if (st->exiting) {
        return;
    }

    level = l->failed ? NGX_LOG_DEBUG : NGX_LOG_WARN;
    l->failed = 1;

    ngx_log_error(level, st->retry.log, 0,
                  "registry redis \"%V\": sentinel %V %s%s%s, not told of "
                  "failovers", &st->master, &l->sentinel->name, what,
                  detail ? ": " : "", detail ? detail : "");

    if (!l->retry.timer_set) {
        ngx_add_timer(&l->retry, NGX_HTTP_REGISTRY_SENTINEL_RELISTEN);
    }
}


static void
ngx_http_registry_redis_relisten_handler(ngx_event_t *ev)
{
    ngx_http_registry_redis_listener_t  *l;

    l = ev->data;

    if (l->conn.ac == NULL && !ngx_http_registry_redis_sentinel.exiting) {
        ngx_http_registry_redis_listen(l);
    }
}


static void
ngx_http_registry_redis_retry_handler(ngx_event_t *ev)
{
    ngx_http_registry_redis_ask();
}


/*
 * The master was named: connections to another one are dropped, and
 * those that may open now are told, out of hiredis's callbacks.
 */

static void
ngx_http_registry_redis_moved_handler(ngx_event_t *ev)
{
    ngx_uint_t                           i;
    ngx_http_registry_redis_conn_t      *conn;
    ngx_http_registry_redis_sentinel_t  *st;

    st = &ngx_http_registry_redis_sentinel;

    for (i = 0; i < st->nusers; i++) {
        conn = st->users[i];

        if (conn->ac != NULL && conn->master != st->gen) {
            ngx_http_registry_redis_drop(conn, "dropped: the master moved");
        }

        if (conn->ac == NULL && conn->on_master
            && (conn->waiting || conn->master != st->gen))
        {
            conn->on_master(conn);
        }
    }
}
