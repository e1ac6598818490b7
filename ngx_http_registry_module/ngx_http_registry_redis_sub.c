
/*
 * ngx_http_registry_module: the subscriber of the watches, a Redis
 * connection of its own per worker (redis_conn.c), in subscribe mode,
 * which takes no other command.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_http_registry.h"


typedef struct {
    ngx_http_registry_redis_conn_t   conn;      /* ready: subscribed */

    ngx_str_t                        channel;
    ngx_http_registry_redis_sub_pt   handler;

    ngx_event_t                      lost;      /* tells the handler */

    unsigned                         failed:1;  /* the loss was logged */
    unsigned                         exiting:1;
} ngx_http_registry_redis_sub_t;


static ngx_int_t ngx_http_registry_redis_sub_connect(void);
static void ngx_http_registry_redis_sub_keepalive(
    ngx_http_registry_redis_conn_t *conn);
static void ngx_http_registry_redis_sub_message(redisAsyncContext *ac,
    void *reply, void *data);
static void ngx_http_registry_redis_sub_lost(
    ngx_http_registry_redis_conn_t *conn, const char *what,
    const char *detail);
static void ngx_http_registry_redis_sub_lost_handler(ngx_event_t *ev);


static ngx_http_registry_redis_sub_t  ngx_http_registry_redis_sub;


/* after ngx_http_registry_redis_init_worker(), which knows the server */

ngx_int_t
ngx_http_registry_redis_sub_init_worker(ngx_cycle_t *cycle)
{
    ngx_http_registry_redis_sub_t  *sub;

    sub = &ngx_http_registry_redis_sub;

    ngx_memzero(sub, sizeof(ngx_http_registry_redis_sub_t));

    if (!ngx_http_registry_redis_server.configured) {
        return NGX_OK;
    }

    /* the subscriber is opened by the first subscribe */

    ngx_http_registry_redis_conn_init(&sub->conn,
                                      ngx_http_registry_redis_sub_keepalive,
                                      ngx_http_registry_redis_sub_lost,
                                      cycle->log);

    sub->lost.handler = ngx_http_registry_redis_sub_lost_handler;
    sub->lost.data = sub;
    sub->lost.log = cycle->log;

    return NGX_OK;
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
    ngx_http_registry_redis_server_t  *rs;
    ngx_http_registry_redis_sub_t     *sub;

    rs = &ngx_http_registry_redis_server;
    sub = &ngx_http_registry_redis_sub;

    if (!rs->configured || sub->exiting) {
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
    ngx_uint_t                         level;
    const char                        *detail;
    ngx_http_registry_redis_server_t  *rs;
    ngx_http_registry_redis_sub_t     *sub;

    rs = &ngx_http_registry_redis_server;
    sub = &ngx_http_registry_redis_sub;

    /* failing here, it is the caller who is told, not the handler */

    if (ngx_http_registry_redis_open(&sub->conn, &detail) != NGX_OK) {
        if (!sub->failed) {
            ngx_http_registry_metrics_add(
                NGX_HTTP_REGISTRY_METRIC_REDIS_LOSSES,
                NGX_HTTP_REGISTRY_REDIS_CONN_SUB, 1);
        }

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
            ngx_http_registry_metrics_add(
                NGX_HTTP_REGISTRY_METRIC_REDIS_RECONNECTS,
                NGX_HTTP_REGISTRY_REDIS_CONN_SUB, 1);
            ngx_log_error(NGX_LOG_NOTICE, ngx_http_registry_redis_server.log,
                          0, "registry redis \"%V\" subscriber restored",
                          &ngx_http_registry_redis_server.name);
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_http_registry_redis_server.log,
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
    ngx_uint_t                         level;
    ngx_http_registry_redis_server_t  *rs;
    ngx_http_registry_redis_sub_t     *sub;

    rs = &ngx_http_registry_redis_server;
    sub = &ngx_http_registry_redis_sub;

    if (sub->exiting) {
        return;
    }

    if (!sub->failed) {
        ngx_http_registry_metrics_add(NGX_HTTP_REGISTRY_METRIC_REDIS_LOSSES,
                                      NGX_HTTP_REGISTRY_REDIS_CONN_SUB, 1);
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


void
ngx_http_registry_redis_sub_exit_worker(ngx_cycle_t *cycle)
{
    ngx_http_registry_redis_sub_t  *sub;

    sub = &ngx_http_registry_redis_sub;

    sub->exiting = 1;

    if (sub->lost.posted) {
        ngx_delete_posted_event(&sub->lost);
    }

    ngx_http_registry_redis_close(&sub->conn);
}
