
/*
 * Watches of a project's image streams: GET .../namespaces/P/imagestreams
 * ?watch=true.
 *
 * A watch is a chunked response of one watch event per line; an event
 * carries the stream's metadata and the one tag that changed
 * (redis/lib.lua), so its size does not grow with the stream's.  Every
 * worker holds one subscribe-mode Redis connection (redis.c) and hands
 * each published change to its watchers of that project; a watch that
 * starts from a resourceVersion is first replayed from the watch log.  A
 * watcher with a backlog's worth unsent takes no more published changes:
 * once its output went out, it reads them from the log, in steps.
 */


#include "ngx_http_registry.h"


/*
 * Unsent bytes a watcher may pile up: beyond, changes are left in the
 * watch log and read from it once the client took the rest; a client
 * that takes nothing for send_timeout is dropped.
 */
#define NGX_HTTP_REGISTRY_WATCH_BACKLOG  (4 * 1024 * 1024)


/* a line waiting to be sent, or being sent, to a watcher */
typedef struct {
    ngx_queue_t                 queue;
    uint64_t                    rv;
    ngx_buf_t                   buf;
    /* the bytes follow */
} ngx_http_registry_watch_line_t;


typedef struct {
    ngx_queue_t                 queue;      /* in the worker's watchers */
    ngx_http_request_t         *request;
    ngx_str_t                   project;
    uint64_t                    from;       /* asked for */
    uint64_t                    rv;         /* nothing older is sent */
    ngx_queue_t                 backlog;    /* published while replaying */
    ngx_queue_t                 sending;    /* lines in r's output */
    ngx_queue_t                 retired;    /* sent, maybe still seen */
    size_t                      unsent;
    ngx_event_t                 timeout;
    unsigned                    initial:1;  /* no resourceVersion given */
    unsigned                    queued:1;
    unsigned                    querying:1;
    unsigned                    live:1;
    unsigned                    behind:1;   /* changes left in the log */
    unsigned                    ended:1;
} ngx_http_registry_watch_t;


static void ngx_http_registry_watch_cleanup(void *data);
static void ngx_http_registry_watch_unqueue(ngx_http_registry_watch_t *w);
static ngx_int_t ngx_http_registry_watch_query(ngx_http_registry_watch_t *w);
static ngx_int_t ngx_http_registry_watch_replayed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_watch_replay(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_watch_header(ngx_http_request_t *r);
static ngx_int_t ngx_http_registry_watch_line(ngx_http_registry_watch_t *w,
    ngx_queue_t *q, uint64_t rv, u_char *data, size_t len);
static ngx_int_t ngx_http_registry_watch_send(ngx_http_registry_watch_t *w,
    ngx_http_registry_watch_line_t *line);
static ngx_int_t ngx_http_registry_watch_flush(ngx_http_registry_watch_t *w);
static void ngx_http_registry_watch_writer(ngx_http_request_t *r);
static ngx_int_t ngx_http_registry_watch_catch_up(
    ngx_http_registry_watch_t *w);
static void ngx_http_registry_watch_forget(ngx_http_registry_watch_t *w);
static void ngx_http_registry_watch_timeout(ngx_event_t *ev);
static void ngx_http_registry_watch_end(ngx_http_registry_watch_t *w,
    ngx_int_t rc);
static void ngx_http_registry_watch_free(ngx_queue_t *lines);
static void ngx_http_registry_watch_published(ngx_uint_t event,
    u_char *message, size_t len);


static ngx_queue_t  ngx_http_registry_watchers;

static ngx_str_t  ngx_http_registry_watch_channel =
    ngx_string("imagestreams");




/*
 * Watches.  A watcher is registered (and the worker subscribed) before
 * its replay is read: a change committed before the read is in the
 * replay, one committed after it is published after the subscription,
 * and resourceVersions tell which is which.
 */

ngx_int_t
ngx_http_registry_watch_start(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    size_t                          i;
    ngx_int_t                       n;
    ngx_str_t                       v;
    ngx_msec_t                      timeout;
    ngx_pool_cleanup_t             *cln;
    ngx_http_registry_watch_t      *w;
    ngx_http_registry_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    w = ngx_pcalloc(r->pool, sizeof(ngx_http_registry_watch_t));
    if (w == NULL) {
        return NGX_ERROR;
    }

    w->request = r;
    w->project = ctx->project;
    w->initial = 1;
    ngx_queue_init(&w->backlog);
    ngx_queue_init(&w->sending);
    ngx_queue_init(&w->retired);

    /* "" and "0" ask for the current state first, as Kubernetes does */

    if (ngx_http_arg(r, (u_char *) "resourceVersion", 15, &v) == NGX_OK
        && v.len && !(v.len == 1 && v.data[0] == '0'))
    {
        for (i = 0; i < v.len; i++) {
            if (v.data[i] < '0' || v.data[i] > '9' || i == 18) {
                return ngx_http_registry_api_status(r, NGX_HTTP_BAD_REQUEST,
                                                "invalid resourceVersion");
            }
        }

        w->initial = 0;
        w->from = (uint64_t) ngx_atoof(v.data, v.len);
    }

    timeout = mcf->watch_timeout;

    if (ngx_http_arg(r, (u_char *) "timeoutSeconds", 14, &v) == NGX_OK) {
        n = ngx_atoi(v.data, v.len);

        if (n == NGX_ERROR) {
            return ngx_http_registry_api_status(r, NGX_HTTP_BAD_REQUEST,
                                                "invalid timeoutSeconds");
        }

        if (n > 0 && (ngx_msec_t) n < timeout / 1000) {
            timeout = (ngx_msec_t) n * 1000;
        }
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_registry_watch_cleanup;
    cln->data = w;

    if (ngx_http_registry_watchers.next == NULL) {
        ngx_queue_init(&ngx_http_registry_watchers);
    }

    ngx_queue_insert_tail(&ngx_http_registry_watchers, &w->queue);
    w->queued = 1;
    ctx->watch = 1;

    ngx_http_registry_metrics_add(NGX_HTTP_REGISTRY_METRIC_WATCHES, 0, 1);

    /* a reload must not wait for watches: the timer does not hold it */

    w->timeout.handler = ngx_http_registry_watch_timeout;
    w->timeout.data = w;
    w->timeout.log = r->connection->log;
    w->timeout.cancelable = 1;
    ngx_add_timer(&w->timeout, timeout);

    ctx->data = w;

    /* the client leaving ends the watch */
    r->read_event_handler = ngx_http_test_reading;

    if (ngx_http_registry_redis_subscribe(&ngx_http_registry_watch_channel,
                                          ngx_http_registry_watch_published)
        != NGX_OK
        || (ngx_http_registry_redis_subscribed()
            && ngx_http_registry_watch_query(w) != NGX_OK))
    {
        /* answered at once: no message may reach it any more */
        w->ended = 1;
        ngx_http_registry_watch_cleanup(w);
        w->request = r;

        return ngx_http_registry_unavailable(r, "redis: not connected");
    }

    /* else the subscription's READY starts the query */

    return NGX_DONE;
}


/* r is being freed: nothing may reach it any more */

static void
ngx_http_registry_watch_cleanup(void *data)
{
    ngx_http_registry_watch_t *w = data;

    ngx_http_registry_watch_unqueue(w);

    if (w->timeout.timer_set) {
        ngx_del_timer(&w->timeout);
    }

    ngx_http_registry_watch_free(&w->backlog);
    ngx_http_registry_watch_free(&w->sending);
    ngx_http_registry_watch_free(&w->retired);

    w->request = NULL;
}


/* out of the worker's watchers: an active watch no more */

static void
ngx_http_registry_watch_unqueue(ngx_http_registry_watch_t *w)
{
    if (w->queued) {
        ngx_queue_remove(&w->queue);
        w->queued = 0;

        ngx_http_registry_metrics_add(NGX_HTTP_REGISTRY_METRIC_WATCHES, 0, -1);
    }
}


static ngx_int_t
ngx_http_registry_watch_query(ngx_http_registry_watch_t *w)
{
    ngx_str_t                 args[3];
    ngx_http_request_t       *r;
    ngx_http_registry_ctx_t  *ctx;

    r = w->request;
    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    w->querying = 1;
    ctx->next = ngx_http_registry_watch_replayed;

    args[0] = w->project;

    if (w->initial) {
        if (ngx_http_registry_fcall(r, "imagestreams_list", 0,
                                   args, 1)
            != NGX_OK)
        {
            ctx->next = NULL;
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (ngx_http_registry_keyf(r->pool, &args[1], "%uL", w->from)
        != NGX_OK
        || ngx_http_registry_keyf(r->pool, &args[2], "%uz",
                                  (size_t) NGX_HTTP_REGISTRY_WATCH_BACKLOG)
           != NGX_OK
        || ngx_http_registry_fcall(r, "watch_replay", 0,
                                  args, 3)
           != NGX_OK)
    {
        ctx->next = NULL;
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The state or the replay arrived: sent, then the backlog, then live.  A
 * watch that fails here leaves the watchers at once, before r is
 * finalized: no message may reach it meanwhile.
 */

static ngx_int_t
ngx_http_registry_watch_replayed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_int_t                   rc;
    ngx_http_registry_watch_t  *w;

    w = ctx->data;

    rc = ngx_http_registry_watch_replay(r, ctx);

    if (rc != NGX_DONE && !w->ended) {
        w->ended = 1;

        ngx_http_registry_watch_unqueue(w);

        if (w->timeout.timer_set) {
            ngx_del_timer(&w->timeout);
        }

        r->connection->idle = 0;
    }

    return rc;
}


static ngx_int_t
ngx_http_registry_watch_replay(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    size_t                           i, len;
    u_char                          *p;
    uint64_t                         rv;
    ngx_int_t                        rc;
    ngx_str_t                        line, now;
    ngx_queue_t                     *q;
    redisReply                      *rp;
    ngx_connection_t                *c;
    ngx_http_registry_watch_t       *w;
    ngx_http_registry_watch_line_t  *l;

    w = ctx->data;
    rp = ctx->reply;
    c = r->connection;

    w->querying = 0;

    if (rp == NULL || rp->type == REDIS_REPLY_ERROR
        || ((rp->type != REDIS_REPLY_ARRAY || rp->elements < 1)
            && rp->type != REDIS_REPLY_STATUS
            && rp->type != REDIS_REPLY_STRING))
    {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    rc = ngx_http_registry_watch_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK) {
        return rc;
    }

    if (rp->type != REDIS_REPLY_ARRAY) {
        /* "gone": the log lost changes after the version asked for */

        if (ngx_http_registry_keyf(r->pool, &line,
                "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\","
                "\"apiVersion\":\"v1\",\"metadata\":{},\"status\":"
                "\"Failure\",\"message\":\"too old resource version: %uL\","
                "\"reason\":\"Expired\",\"code\":410}}", w->from)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ngx_http_registry_watch_line(w, NULL, 0, line.data, line.len)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        ngx_http_registry_watch_end(w, NGX_OK);
        return NGX_DONE;
    }

    if (ngx_http_registry_reply_str(rp, 0, &now) != NGX_OK) {
        return NGX_ERROR;
    }

    rv = (uint64_t) ngx_atoof(now.data, now.len);

    if (w->initial) {
        for (i = 1; i < rp->elements; i++) {
            if (ngx_http_registry_reply_str(rp, i, &line) != NGX_OK) {
                return NGX_ERROR;
            }

            len = sizeof("{\"type\":\"ADDED\",\"object\":}") - 1 + line.len;

            p = ngx_pnalloc(r->pool, len);
            if (p == NULL) {
                return NGX_ERROR;
            }

            ngx_sprintf(p, "{\"type\":\"ADDED\",\"object\":%V}", &line);

            if (ngx_http_registry_watch_line(w, NULL, rv, p, len) != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

    } else {
        /* {rv read up to, "1" when more follows, then ID, event, ...} */

        if (ngx_http_registry_reply_str(rp, 1, &line) != NGX_OK) {
            return NGX_ERROR;
        }

        if (line.len == 1 && line.data[0] == '1') {
            w->behind = 1;
        }

        for (i = 2; i + 1 < rp->elements; i += 2) {
            if (ngx_http_registry_reply_str(rp, i, &now) != NGX_OK
                || ngx_http_registry_reply_str(rp, i + 1, &line) != NGX_OK)
            {
                return NGX_ERROR;
            }

            if (ngx_http_registry_watch_line(w, NULL,
                                        (uint64_t) ngx_atoof(now.data,
                                                             now.len),
                                        line.data, line.len)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    /*
     * Published meanwhile: what the replay holds already is dropped, and
     * all of it when the log is to be read again.
     */

    w->rv = rv;
    w->live = 1;

    while (!ngx_queue_empty(&w->backlog)) {
        q = ngx_queue_head(&w->backlog);
        ngx_queue_remove(q);

        l = ngx_queue_data(q, ngx_http_registry_watch_line_t, queue);
        w->unsent -= l->buf.end - l->buf.start;

        if (l->rv <= w->rv || w->behind) {
            ngx_free(l);
            continue;
        }

        w->rv = l->rv;

        if (ngx_http_registry_watch_send(w, l) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_registry_watch_flush(w) != NGX_OK) {
        return NGX_ERROR;
    }

    /* idle for nginx: a graceful shutdown closes the watch */
    c->idle = 1;

    /* all sent at once, more in the log: the next step now */

    if (ngx_http_registry_watch_catch_up(w) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_DONE;
}


static ngx_int_t
ngx_http_registry_watch_header(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    static ngx_str_t  type = ngx_string("application/json");

    if (r->header_sent) {
        return NGX_OK;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_type = type;
    r->headers_out.content_type_len = type.len;
    r->headers_out.content_length_n = -1;

    ngx_http_clear_accept_ranges(r);
    ngx_http_clear_last_modified(r);

    r->write_event_handler = ngx_http_registry_watch_writer;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return rc;
    }

    /* the client learns now that the watch runs, not at the first event */

    return ngx_http_send_special(r, NGX_HTTP_FLUSH);
}


/*
 * A line of the watch: copied into memory of its own, freed once sent,
 * as a watch may last long and see many changes.  q: the backlog, or
 * NULL to send at once.
 */

static ngx_int_t
ngx_http_registry_watch_line(ngx_http_registry_watch_t *w, ngx_queue_t *q,
    uint64_t rv, u_char *data, size_t len)
{
    u_char                          *p;
    ngx_http_registry_watch_line_t  *l;

    l = ngx_alloc(sizeof(ngx_http_registry_watch_line_t) + len + 1,
                  ngx_cycle->log);
    if (l == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&l->buf, sizeof(ngx_buf_t));
    l->rv = rv;

    p = (u_char *) l + sizeof(ngx_http_registry_watch_line_t);
    ngx_memcpy(p, data, len);
    p[len] = '\n';

    l->buf.pos = p;
    l->buf.last = p + len + 1;
    l->buf.start = l->buf.pos;
    l->buf.end = l->buf.last;
    l->buf.memory = 1;
    l->buf.flush = 1;

    if (q != NULL) {
        ngx_queue_insert_tail(q, &l->queue);
        w->unsent += len + 1;
        return NGX_OK;
    }

    return ngx_http_registry_watch_send(w, l);
}


/*
 * A line sent is retired, not freed: the chunked filter keeps its buf in
 * its busy chain until it is called with data again, and reads it then
 * (a freed line of over 128 KB is unmapped: the worker crashed there).
 * So lines retired before a call are freed after it.
 */

static ngx_int_t
ngx_http_registry_watch_send(ngx_http_registry_watch_t *w,
    ngx_http_registry_watch_line_t *l)
{
    ngx_int_t     rc;
    ngx_queue_t   old;
    ngx_chain_t  *cl;

    cl = ngx_alloc_chain_link(w->request->pool);
    if (cl == NULL) {
        ngx_free(l);
        return NGX_ERROR;
    }

    cl->buf = &l->buf;
    cl->next = NULL;

    ngx_queue_insert_tail(&w->sending, &l->queue);
    w->unsent += l->buf.last - l->buf.pos;

    ngx_queue_init(&old);

    if (!ngx_queue_empty(&w->retired)) {
        ngx_queue_add(&old, &w->retired);
        ngx_queue_init(&w->retired);
    }

    rc = ngx_http_output_filter(w->request, cl);

    ngx_http_registry_watch_free(&old);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    return ngx_http_registry_watch_flush(w);
}


/* retires the lines sent; waits for the socket when some are not */

static ngx_int_t
ngx_http_registry_watch_flush(ngx_http_registry_watch_t *w)
{
    ngx_queue_t                     *q;
    ngx_http_request_t              *r;
    ngx_connection_t                *c;
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_registry_watch_line_t  *l;

    r = w->request;
    c = r->connection;

    while (!ngx_queue_empty(&w->sending)) {
        q = ngx_queue_head(&w->sending);
        l = ngx_queue_data(q, ngx_http_registry_watch_line_t, queue);

        if (l->buf.pos != l->buf.last) {
            break;
        }

        ngx_queue_remove(q);
        w->unsent -= l->buf.end - l->buf.start;
        ngx_queue_insert_tail(&w->retired, q);
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (!c->buffered) {
        if (c->write->timer_set) {
            ngx_del_timer(c->write);
        }

        return NGX_OK;
    }

    if (!c->write->timer_set) {
        ngx_add_timer(c->write, clcf->send_timeout);
    }

    if (ngx_handle_write_event(c->write, clcf->send_lowat) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The socket took more: the send timeout starts again (it measures how
 * long the client takes nothing, not how long output stays pending).
 */

static void
ngx_http_registry_watch_writer(ngx_http_request_t *r)
{
    ngx_connection_t           *c;
    ngx_http_registry_ctx_t    *ctx;
    ngx_http_core_loc_conf_t   *clcf;
    ngx_http_registry_watch_t  *w;

    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);
    w = ctx->data;

    if (c->write->timedout) {
        c->timedout = 1;
        ngx_log_error(NGX_LOG_WARN, c->log, NGX_ETIMEDOUT,
                      "registry: watch dropped: the client does not read");
        ngx_http_registry_watch_end(w, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }

    if (ngx_http_output_filter(r, NULL) == NGX_ERROR
        || ngx_http_registry_watch_flush(w) != NGX_OK)
    {
        ngx_http_registry_watch_end(w, NGX_ERROR);
        return;
    }

    if (c->buffered) {
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
        ngx_add_timer(c->write, clcf->send_timeout);
    }

    if (ngx_http_registry_watch_catch_up(w) != NGX_OK) {
        ngx_http_registry_watch_end(w, NGX_OK);
    }
}


/*
 * A watcher behind whose output went out reads the next changes from
 * the log: from its own resourceVersion, at most a backlog's worth.
 */

static ngx_int_t
ngx_http_registry_watch_catch_up(ngx_http_registry_watch_t *w)
{
    if (!w->behind || !w->live || w->querying || w->ended
        || w->request == NULL || w->unsent)
    {
        return NGX_OK;
    }

    w->behind = 0;
    w->live = 0;
    w->initial = 0;
    w->from = w->rv;

    return ngx_http_registry_watch_query(w);
}


/* the backlog given up: the log has it, read once the watcher is live */

static void
ngx_http_registry_watch_forget(ngx_http_registry_watch_t *w)
{
    ngx_queue_t                     *q;
    ngx_http_registry_watch_line_t  *l;

    while (!ngx_queue_empty(&w->backlog)) {
        q = ngx_queue_head(&w->backlog);
        ngx_queue_remove(q);

        l = ngx_queue_data(q, ngx_http_registry_watch_line_t, queue);
        w->unsent -= l->buf.end - l->buf.start;
        ngx_free(l);
    }

    w->behind = 1;
}


static void
ngx_http_registry_watch_timeout(ngx_event_t *ev)
{
    ngx_int_t                   rc;
    ngx_http_registry_watch_t  *w;

    w = ev->data;
    rc = NGX_OK;

    /*
     * timeoutSeconds ran out before the first answer came (a slow Redis):
     * the watch is empty, which is no error
     */

    if (w->request != NULL && !w->ended && !w->request->header_sent) {
        rc = ngx_http_registry_watch_header(w->request);
        if (rc != NGX_ERROR && rc <= NGX_OK) {
            rc = NGX_OK;
        }
    }

    ngx_http_registry_watch_end(w, rc);
}


/*
 * Ends a watch from outside its request's handlers: NGX_OK ends the
 * response, anything else closes it.
 */

static void
ngx_http_registry_watch_end(ngx_http_registry_watch_t *w, ngx_int_t rc)
{
    ngx_connection_t         *c;
    ngx_http_request_t       *r;
    ngx_http_registry_ctx_t  *ctx;

    r = w->request;

    if (r == NULL || w->ended) {
        return;
    }

    w->ended = 1;
    c = r->connection;
    c->idle = 0;

    ngx_http_registry_watch_unqueue(w);

    if (w->timeout.timer_set) {
        ngx_del_timer(&w->timeout);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (w->querying && ctx) {
        /* the pending reply finds nobody waiting */
        ctx->next = NULL;
    }

    if (rc == NGX_OK) {
        rc = r->header_sent ? ngx_http_send_special(r, NGX_HTTP_LAST)
                            : ngx_http_registry_unavailable(r,
                                                  "redis: subscription lost");
    }

    r->write_event_handler = ngx_http_request_empty_handler;

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_registry_watch_free(ngx_queue_t *lines)
{
    ngx_queue_t  *q;

    while (!ngx_queue_empty(lines)) {
        q = ngx_queue_head(lines);
        ngx_queue_remove(q);
        ngx_free(ngx_queue_data(q, ngx_http_registry_watch_line_t, queue));
    }
}


/* the worker's subscription: "<project> <rv> <event>" */

static void
ngx_http_registry_watch_published(ngx_uint_t event, u_char *message,
    size_t len)
{
    u_char                     *p, *last, *sp;
    uint64_t                    rv;
    ngx_str_t                   project;
    ngx_queue_t                *q, *next;
    ngx_http_registry_watch_t  *w;

    if (ngx_http_registry_watchers.next == NULL) {
        return;
    }

    if (event != NGX_HTTP_REGISTRY_SUB_MESSAGE) {
        for (q = ngx_queue_head(&ngx_http_registry_watchers);
             q != ngx_queue_sentinel(&ngx_http_registry_watchers);
             q = next)
        {
            next = ngx_queue_next(q);
            w = ngx_queue_data(q, ngx_http_registry_watch_t, queue);

            if (event == NGX_HTTP_REGISTRY_SUB_LOST) {
                /* changes may have been missed: clients watch again */
                ngx_http_registry_watch_end(w, NGX_OK);

            } else if (!w->live && !w->querying && !w->ended
                       && ngx_http_registry_watch_query(w) != NGX_OK)
            {
                ngx_http_registry_watch_end(w, NGX_OK);
            }
        }

        return;
    }

    last = message + len;

    sp = ngx_strlchr(message, last, ' ');
    if (sp == NULL) {
        return;
    }

    project.data = message;
    project.len = sp - message;

    p = sp + 1;
    sp = ngx_strlchr(p, last, ' ');
    if (sp == NULL) {
        return;
    }

    rv = (uint64_t) ngx_atoof(p, sp - p);
    p = sp + 1;

    for (q = ngx_queue_head(&ngx_http_registry_watchers);
         q != ngx_queue_sentinel(&ngx_http_registry_watchers);
         q = next)
    {
        next = ngx_queue_next(q);
        w = ngx_queue_data(q, ngx_http_registry_watch_t, queue);

        if (w->project.len != project.len
            || ngx_strncmp(w->project.data, project.data, project.len) != 0)
        {
            continue;
        }

        if (!w->live) {
            if (w->behind) {
                continue;
            }

            if (ngx_http_registry_watch_line(w, &w->backlog, rv, p, last - p)
                != NGX_OK)
            {
                ngx_http_registry_watch_end(w, NGX_ERROR);

            } else if (w->unsent > NGX_HTTP_REGISTRY_WATCH_BACKLOG) {
                ngx_http_registry_watch_forget(w);
            }

            continue;
        }

        if (rv <= w->rv) {
            continue;
        }

        if (w->behind) {
            if (ngx_http_registry_watch_catch_up(w) != NGX_OK) {
                ngx_http_registry_watch_end(w, NGX_OK);
            }

            continue;
        }

        if (w->unsent
            && w->unsent + (last - p) + 1 > NGX_HTTP_REGISTRY_WATCH_BACKLOG)
        {
            /* a burst, or a slow client: sent from the log when it read */
            w->behind = 1;
            continue;
        }

        w->rv = rv;

        if (ngx_http_registry_watch_line(w, NULL, rv, p, last - p)
            != NGX_OK)
        {
            ngx_http_registry_watch_end(w, NGX_ERROR);
            continue;
        }

        ngx_http_run_posted_requests(w->request->connection);
    }
}
