
/*
 * Events: what distribution's notifications say, for consumers that
 * already parse them.  Each blob commit, manifest push, mount and
 * delete (and pull, with "registry_events_pull on") makes one event in
 * the envelope
 *
 *     {"events":[{"id", "timestamp", "action", "target", "request",
 *                 "actor", "source"}]}
 *
 * (application/vnd.docker.distribution.events.v2+json).  It is added to
 * the Redis stream "events", bounded by registry_events_maxlen, and
 * POSTed to every registry_event_webhook location by a background
 * subrequest, retried with a growing delay up to the location's
 * attempts.  Nothing here fails or delays the request: the Redis
 * command runs in the background and errors are only logged.
 *
 * A background subrequest keeps its main request, and so the client's
 * connection, until it ends: a request that posts to webhooks answers
 * with "Connection: close", so that the client's next request goes on
 * a new connection instead of waiting behind the webhook.
 */


#include "ngx_http_registry.h"


#define NGX_HTTP_REGISTRY_EVENTS_TYPE                                         \
    "application/vnd.docker.distribution.events.v2+json"

/* the first retry waits this long, each next one twice as long */
#define NGX_HTTP_REGISTRY_WEBHOOK_DELAY      1000
#define NGX_HTTP_REGISTRY_WEBHOOK_DELAY_MAX  30000


/* an event waiting for the size of its blob */
typedef struct {
    ngx_http_request_t             *request;   /* NULL once r is freed */
    ngx_pool_cleanup_t             *cleanup;
    ngx_http_registry_event_t       ev;
} ngx_http_registry_event_wait_t;


/* the deliveries of one event to one webhook */
typedef struct {
    ngx_http_request_t             *request;   /* the main request */
    ngx_http_registry_webhook_t    *hook;
    ngx_str_t                       body;
    ngx_uint_t                      attempt;   /* made so far */
    ngx_event_t                     retry;
} ngx_http_registry_webhook_post_t;


/* one attempt: its post_subrequest handler may run twice */
typedef struct {
    ngx_http_registry_webhook_post_t  *post;
    ngx_uint_t                         answered;
} ngx_http_registry_webhook_try_t;


static void ngx_http_registry_event_sized(redisReply *reply, void *data);
static void ngx_http_registry_event_wait_cleanup(void *data);
static void ngx_http_registry_event_emit(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_event_t *ev);
static json_t *ngx_http_registry_event_json(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_event_t *ev);
static ngx_int_t ngx_http_registry_event_source(ngx_http_request_t *r,
    ngx_str_t *addr, ngx_str_t *instance);
static void ngx_http_registry_event_added(redisReply *reply, void *data);
static ngx_int_t ngx_http_registry_webhook_post(
    ngx_http_registry_webhook_post_t *post);
static ngx_int_t ngx_http_registry_webhook_done(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);
static void ngx_http_registry_webhook_retry(ngx_event_t *ev);
static void ngx_http_registry_webhook_cleanup(void *data);


static const char  *ngx_http_registry_event_actions[] = {
    NULL, "push", "pull", "mount", "delete"
};


/* the worker's identity in "source", as a registry instance's */
static u_char      ngx_http_registry_instance_id[36];
static ngx_str_t   ngx_http_registry_instance;


void
ngx_http_registry_event(ngx_http_request_t *r, ngx_http_registry_ctx_t *ctx,
    ngx_http_registry_event_t *ev)
{
    ngx_str_t                        key;
    const char                      *argv[3];
    size_t                           lens[3];
    ngx_pool_cleanup_t              *cln;
    ngx_http_registry_main_conf_t   *mcf;
    ngx_http_registry_event_wait_t  *wait;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (ev->action == NGX_HTTP_REGISTRY_EVENT_PULL && !mcf->events_pull) {
        return;
    }

    if (mcf->events_maxlen == 0
        && (mcf->event_webhooks == NULL || mcf->event_webhooks->nelts == 0))
    {
        return;
    }

    if (mcf->event_webhooks && mcf->event_webhooks->nelts) {
        /* decided now: the answer may be sent before the event is made */
        r->main->keepalive = 0;
    }

    if (ev->size >= 0 || ev->action == NGX_HTTP_REGISTRY_EVENT_DELETE) {
        ngx_http_registry_event_emit(r, ctx, ev);
        return;
    }

    /*
     * The size is blob:D's.  The request is held until it is known: the
     * webhooks' subrequests are its own.  A request freed meanwhile
     * (terminated) loses its event.
     */

    if (ngx_http_registry_keyf(r->pool, &key, "blob:%V", &ev->digest)
        != NGX_OK)
    {
        return;
    }

    wait = ngx_alloc(sizeof(ngx_http_registry_event_wait_t),
                     r->connection->log);
    if (wait == NULL) {
        return;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        ngx_free(wait);
        return;
    }

    wait->request = r;
    wait->cleanup = cln;
    wait->ev = *ev;

    argv[0] = "HGET";
    lens[0] = 4;
    argv[1] = (const char *) key.data;
    lens[1] = key.len;
    argv[2] = "size";
    lens[2] = 4;

    if (ngx_http_registry_redis_call(ngx_http_registry_event_sized, wait,
                                     3, argv, lens)
        != NGX_OK)
    {
        ngx_free(wait);
        ngx_http_registry_event_emit(r, ctx, ev);
        return;
    }

    cln->handler = ngx_http_registry_event_wait_cleanup;
    cln->data = wait;

    ngx_http_registry_hold(r);
}


void
ngx_http_registry_event_blob(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_uint_t action, off_t size)
{
    ngx_str_t                  v;
    ngx_http_registry_event_t  ev;

    if (action == NGX_HTTP_REGISTRY_EVENT_PULL && r->method != NGX_HTTP_GET)
    {
        return;
    }

    if (action == NGX_HTTP_REGISTRY_EVENT_PUSH
        && r->method == NGX_HTTP_POST
        && ngx_http_arg(r, (u_char *) "mount", 5, &v) == NGX_OK)
    {
        action = NGX_HTTP_REGISTRY_EVENT_MOUNT;
    }

    ngx_memzero(&ev, sizeof(ngx_http_registry_event_t));
    ev.action = action;
    ev.digest = ctx->digest;
    ev.size = size;

    if (action != NGX_HTTP_REGISTRY_EVENT_DELETE) {
        ngx_str_set(&ev.media_type, "application/octet-stream");
    }

    ngx_http_registry_event(r, ctx, &ev);
}


static void
ngx_http_registry_event_sized(redisReply *reply, void *data)
{
    ngx_http_registry_event_wait_t *wait = data;

    ngx_connection_t         *c;
    ngx_http_request_t       *r;
    ngx_http_registry_ctx_t  *ctx;

    r = wait->request;

    /* no reply at a fast shutdown: the worker leaves, r must stay as is */

    if (r == NULL || (reply == NULL && (ngx_terminate || ngx_exiting))) {
        ngx_free(wait);
        return;
    }

    wait->cleanup->handler = NULL;

    if (reply && reply->type == REDIS_REPLY_STRING) {
        wait->ev.size = ngx_atoof((u_char *) reply->str, reply->len);
    }

    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (ctx != NULL) {
        ngx_http_registry_event_emit(r, ctx, &wait->ev);
    }

    ngx_free(wait);

    /* the hold taken above */
    ngx_http_registry_release(r);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_registry_event_wait_cleanup(void *data)
{
    ngx_http_registry_event_wait_t *wait = data;

    wait->request = NULL;
}


static void
ngx_http_registry_event_emit(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_event_t *ev)
{
    char                              *text;
    size_t                             lens[15];
    json_t                            *json;
    ngx_str_t                          body, maxlen;
    ngx_uint_t                         i, n;
    const char                        *argv[15];
    ngx_pool_cleanup_t                *cln;
    ngx_http_registry_webhook_t       *hooks;
    ngx_http_registry_main_conf_t     *mcf;
    ngx_http_registry_webhook_post_t  *post;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    json = ngx_http_registry_event_json(r, ctx, ev);
    if (json == NULL) {
        goto failed;
    }

    json = json_pack("{s:[o]}", "events", json);
    if (json == NULL) {
        goto failed;
    }

    text = json_dumps(json, JSON_COMPACT);
    json_decref(json);

    if (text == NULL) {
        goto failed;
    }

    body.len = ngx_strlen(text);
    body.data = ngx_pnalloc(r->pool, body.len);
    if (body.data == NULL) {
        free(text);
        goto failed;
    }

    ngx_memcpy(body.data, text, body.len);
    free(text);

    ngx_http_registry_metrics_add(NGX_HTTP_REGISTRY_METRIC_EVENTS,
                                  ev->action - 1, 1);

    if (mcf->events_maxlen) {
        if (ngx_http_registry_keyf(r->pool, &maxlen, "%ui",
                                   mcf->events_maxlen)
            != NGX_OK)
        {
            goto failed;
        }

#define ngx_http_registry_arg_set(s, l)                                       \
        argv[n] = (const char *) (s); lens[n++] = (l)

        n = 0;
        ngx_http_registry_arg_set("XADD", 4);
        ngx_http_registry_arg_set("events", 6);
        ngx_http_registry_arg_set("MAXLEN", 6);
        ngx_http_registry_arg_set(maxlen.data, maxlen.len);
        ngx_http_registry_arg_set("*", 1);
        ngx_http_registry_arg_set("action", 6);
        ngx_http_registry_arg_set(ngx_http_registry_event_actions[ev->action],
                              ngx_strlen(
                                ngx_http_registry_event_actions[ev->action]));
        ngx_http_registry_arg_set("repository", 10);
        ngx_http_registry_arg_set(ctx->repo.data, ctx->repo.len);
        ngx_http_registry_arg_set("digest", 6);
        ngx_http_registry_arg_set(ev->digest.data ? ev->digest.data
                                                  : (u_char *) "",
                                  ev->digest.len);

        if (ev->tag.len) {
            ngx_http_registry_arg_set("tag", 3);
            ngx_http_registry_arg_set(ev->tag.data, ev->tag.len);
        }

        ngx_http_registry_arg_set("envelope", 8);
        ngx_http_registry_arg_set(body.data, body.len);

#undef ngx_http_registry_arg_set

        if (ngx_http_registry_redis_call(ngx_http_registry_event_added, NULL,
                                         (int) n, argv, lens)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "registry: event not stored: redis not connected");
        }
    }

    if (mcf->event_webhooks == NULL) {
        return;
    }

    hooks = mcf->event_webhooks->elts;

    for (i = 0; i < mcf->event_webhooks->nelts; i++) {
        post = ngx_pcalloc(r->pool, sizeof(ngx_http_registry_webhook_post_t));
        cln = ngx_pool_cleanup_add(r->pool, 0);

        if (post == NULL || cln == NULL) {
            goto failed;
        }

        post->request = r->main;
        post->hook = &hooks[i];
        post->body = body;

        post->retry.handler = ngx_http_registry_webhook_retry;
        post->retry.data = post;
        post->retry.log = r->connection->log;
        post->retry.cancelable = 1;

        cln->handler = ngx_http_registry_webhook_cleanup;
        cln->data = post;

        if (ngx_http_registry_webhook_post(post) != NGX_OK) {
            ngx_http_registry_metrics_add(
                NGX_HTTP_REGISTRY_METRIC_WEBHOOK_DROPS, 0, 1);
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "registry: event not posted to \"%V\"",
                          &hooks[i].location);
        }
    }

    return;

failed:

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "registry: %s event of %V in \"%V\" lost",
                  ngx_http_registry_event_actions[ev->action], &ev->digest,
                  &ctx->repo);
}


/* one event of distribution's format */

static json_t *
ngx_http_registry_event_json(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_event_t *ev)
{
    json_t                     *json, *target, *v;
    ngx_str_t                   id, ts, host, url, addr, instance, from;
    ngx_str_t                   request_id, agent;
    ngx_http_variable_value_t  *vv;

    static ngx_str_t  request_id_name = ngx_string("request_id");

    if (ngx_http_registry_uuid(r->pool, &id) != NGX_OK
        || ngx_http_registry_timestamp(r->pool, &ts, 1) != NGX_OK
        || ngx_http_registry_public_host(r, &host) != NGX_OK
        || ngx_http_registry_event_source(r, &addr, &instance) != NGX_OK)
    {
        return NULL;
    }

    target = json_pack("{s:s%,s:s%}",
                       "digest", ev->digest.data ? (char *) ev->digest.data
                                                 : "",
                       ev->digest.len,
                       "repository", ctx->repo.data, ctx->repo.len);
    if (target == NULL) {
        return NULL;
    }

    if (ev->action != NGX_HTTP_REGISTRY_EVENT_DELETE) {
        if (ngx_http_registry_keyf(r->pool, &url, "%s://%V/v2/%V/%s/%V",
#if (NGX_HTTP_SSL)
                                   r->connection->ssl ? "https" :
#endif
                                   "http", &host, &ctx->repo,
                                   ev->manifest ? "manifests" : "blobs",
                                   &ev->digest)
            != NGX_OK)
        {
            goto failed;
        }

        if (json_object_set_new(target, "mediaType",
                                json_stringn((char *) ev->media_type.data,
                                             ev->media_type.len))
            != 0
            || json_object_set_new(target, "url",
                                   json_stringn((char *) url.data, url.len))
               != 0)
        {
            goto failed;
        }

        if (ev->size >= 0
            && (json_object_set_new(target, "size", json_integer(ev->size))
                != 0
                || json_object_set_new(target, "length",
                                       json_integer(ev->size))
                   != 0))
        {
            goto failed;
        }
    }

    if (ev->tag.len
        && json_object_set_new(target, "tag",
                               json_stringn((char *) ev->tag.data,
                                            ev->tag.len))
           != 0)
    {
        goto failed;
    }

    if (ev->action == NGX_HTTP_REGISTRY_EVENT_MOUNT
        && ngx_http_registry_arg(r, "from", &from) == NGX_OK
        && json_object_set_new(target, "fromRepository",
                               json_stringn((char *) from.data, from.len))
           != 0)
    {
        goto failed;
    }

    vv = ngx_http_get_variable(r, &request_id_name,
                               ngx_hash_key(request_id_name.data,
                                            request_id_name.len));

    if (vv == NULL || vv->not_found) {
        ngx_str_set(&request_id, "");

    } else {
        request_id.data = vv->data;
        request_id.len = vv->len;
    }

    if (r->headers_in.user_agent) {
        agent = r->headers_in.user_agent->value;

    } else {
        ngx_str_set(&agent, "");
    }

    if (r->headers_in.host == NULL) {
        ngx_str_set(&host, "");

    } else {
        host = r->headers_in.host->value;
    }

    json = json_pack("{s:s%,s:s%,s:s,s:o,s:{s:s%,s:s%,s:s%,s:s%,s:s%},"
                     "s:{},s:{s:s%,s:s%}}",
                     "id", id.data, id.len,
                     "timestamp", ts.data, ts.len,
                     "action", ngx_http_registry_event_actions[ev->action],
                     "target", target,
                     "request",
                         "id", request_id.data, request_id.len,
                         "addr", r->connection->addr_text.data,
                         r->connection->addr_text.len,
                         "host", host.data, host.len,
                         "method", r->main->method_name.data,
                         r->main->method_name.len,
                         "useragent", agent.data, agent.len,
                     "actor",
                     "source",
                         "addr", addr.data, addr.len,
                         "instanceID", instance.data, instance.len);
    if (json == NULL) {
        return NULL;
    }

    if (ctx->user.len) {
        v = json_object_get(json, "actor");

        if (json_object_set_new(v, "name",
                                json_stringn((char *) ctx->user.data,
                                             ctx->user.len))
            != 0)
        {
            json_decref(json);
            return NULL;
        }
    }

    return json;

failed:

    json_decref(target);
    return NULL;
}


/* "source": this host and port, and the worker's random instance ID */

static ngx_int_t
ngx_http_registry_event_source(ngx_http_request_t *r, ngx_str_t *addr,
    ngx_str_t *instance)
{
    ngx_str_t   uuid;
    in_port_t   port;

    if (ngx_http_registry_instance.len == 0) {
        if (ngx_http_registry_uuid(r->pool, &uuid) != NGX_OK) {
            return NGX_ERROR;
        }

        ngx_memcpy(ngx_http_registry_instance_id, uuid.data, uuid.len);
        ngx_http_registry_instance.data = ngx_http_registry_instance_id;
        ngx_http_registry_instance.len = uuid.len;
    }

    *instance = ngx_http_registry_instance;

    if (ngx_connection_local_sockaddr(r->connection, NULL, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    port = ngx_inet_get_port(r->connection->local_sockaddr);

    return ngx_http_registry_keyf(r->pool, addr, "%V:%d",
                                  &ngx_cycle->hostname, (int) port);
}


static void
ngx_http_registry_event_added(redisReply *reply, void *data)
{
    if (reply == NULL) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "registry: event not stored: no answer from redis");
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "registry: event not stored: %s", reply->str);
    }
}


/*
 * A POST of the envelope to the webhook location, as a background
 * subrequest: a header list and a body of its own (the client's are
 * none of the webhook's business), and no output of its own.
 */

static ngx_int_t
ngx_http_registry_webhook_post(ngx_http_registry_webhook_post_t *post)
{
    ngx_buf_t                        *b;
    ngx_chain_t                      *cl;
    ngx_table_elt_t                  *h;
    ngx_http_request_t               *r, *sr;
    ngx_http_request_body_t          *rb;
    ngx_http_post_subrequest_t       *ps;
    ngx_http_registry_webhook_try_t  *t;

    static ngx_str_t  post_method = ngx_string("POST");
    static ngx_str_t  type = ngx_string(NGX_HTTP_REGISTRY_EVENTS_TYPE);

    r = post->request;

    t = ngx_pcalloc(r->pool, sizeof(ngx_http_registry_webhook_try_t));
    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    rb = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    b = ngx_calloc_buf(r->pool);
    cl = ngx_alloc_chain_link(r->pool);

    if (t == NULL || ps == NULL || rb == NULL || b == NULL || cl == NULL) {
        return NGX_ERROR;
    }

    b->pos = post->body.data;
    b->last = post->body.data + post->body.len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    cl->buf = b;
    cl->next = NULL;
    rb->bufs = cl;

    t->post = post;
    ps->handler = ngx_http_registry_webhook_done;
    ps->data = t;

    post->attempt++;

    if (ngx_http_subrequest(r, &post->hook->location, NULL, &sr, ps,
                            NGX_HTTP_SUBREQUEST_BACKGROUND)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    sr->method = NGX_HTTP_POST;
    sr->method_name = post_method;
    sr->header_only = 1;
    sr->request_body = rb;

    ngx_memzero(&sr->headers_in, sizeof(ngx_http_headers_in_t));

    if (ngx_list_init(&sr->headers_in.headers, r->pool, 2,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    sr->headers_in.content_length_n = post->body.len;
    sr->headers_in.keep_alive_n = -1;

    h = ngx_list_push(&sr->headers_in.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(&h->key, "Content-Type");
    h->value = type;
    h->lowcase_key = (u_char *) "content-type";
    h->hash = ngx_hash_key(h->lowcase_key, h->key.len);

    sr->headers_in.content_type = h;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "registry webhook \"%V\" attempt %ui",
                   &post->hook->location, post->attempt);

    return NGX_OK;
}


static ngx_int_t
ngx_http_registry_webhook_done(ngx_http_request_t *sr, void *data,
    ngx_int_t rc)
{
    ngx_http_registry_webhook_try_t *t = data;

    ngx_msec_t                         delay;
    ngx_uint_t                         status, i;
    ngx_http_registry_webhook_post_t  *post;

    post = t->post;

    status = sr->headers_out.status;

    if (rc == NGX_ERROR || rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        status = (rc == NGX_ERROR) ? NGX_HTTP_BAD_GATEWAY : (ngx_uint_t) rc;
    }

    if (!t->answered) {
        t->answered = 1;

        if (status >= NGX_HTTP_OK && status < NGX_HTTP_SPECIAL_RESPONSE) {
            ngx_http_registry_metrics_add(
                NGX_HTTP_REGISTRY_METRIC_WEBHOOK_DELIVERIES, 0, 1);
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                           "registry webhook \"%V\" answered %ui",
                           &post->hook->location, status);

        } else if (post->attempt < post->hook->attempts) {
            delay = NGX_HTTP_REGISTRY_WEBHOOK_DELAY;

            for (i = 1; i < post->attempt; i++) {
                delay = ngx_min(delay * 2,
                                NGX_HTTP_REGISTRY_WEBHOOK_DELAY_MAX);
            }

            ngx_log_error(NGX_LOG_WARN, sr->connection->log, 0,
                          "registry: webhook \"%V\" answered %ui, "
                          "attempt %ui of %ui, next in %M ms",
                          &post->hook->location, status, post->attempt,
                          post->hook->attempts, delay);

            ngx_http_registry_metrics_add(
                NGX_HTTP_REGISTRY_METRIC_WEBHOOK_RETRIES, 0, 1);

            /* the main request is held until the retry is made */

            ngx_http_registry_hold(post->request);
            ngx_add_timer(&post->retry, delay);

        } else {
            ngx_http_registry_metrics_add(
                NGX_HTTP_REGISTRY_METRIC_WEBHOOK_DROPS, 0, 1);
            ngx_log_error(NGX_LOG_ERR, sr->connection->log, 0,
                          "registry: webhook \"%V\" answered %ui, "
                          "event dropped after %ui attempts",
                          &post->hook->location, status, post->attempt);
        }
    }

    if (rc == NGX_ERROR || rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        /* no error page of nginx's for a subrequest nobody reads */
        return NGX_OK;
    }

    return rc;
}


static void
ngx_http_registry_webhook_retry(ngx_event_t *ev)
{
    ngx_http_registry_webhook_post_t *post = ev->data;

    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = post->request;
    c = r->connection;

    if (ngx_http_registry_webhook_post(post) != NGX_OK) {
        ngx_http_registry_metrics_add(NGX_HTTP_REGISTRY_METRIC_WEBHOOK_DROPS,
                                      0, 1);
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "registry: event not posted to \"%V\"",
                      &post->hook->location);
    }

    /* the hold taken for the retry; the new subrequest holds r now */

    ngx_http_registry_release(r);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_registry_webhook_cleanup(void *data)
{
    ngx_http_registry_webhook_post_t *post = data;

    if (post->retry.timer_set) {
        ngx_del_timer(&post->retry);
    }
}


/* registry_event_webhook LOCATION [attempts=N] */

char *
ngx_http_registry_event_webhook(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_registry_main_conf_t *mcf = conf;

    ngx_int_t                     n;
    ngx_str_t                    *value;
    ngx_http_registry_webhook_t  *hook;

    value = cf->args->elts;

    if (value[1].data[0] != '/') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "registry_event_webhook \"%V\" must be a "
                           "location starting with \"/\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (mcf->event_webhooks == NULL) {
        mcf->event_webhooks = ngx_array_create(cf->pool, 2,
                                  sizeof(ngx_http_registry_webhook_t));
        if (mcf->event_webhooks == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    hook = ngx_array_push(mcf->event_webhooks);
    if (hook == NULL) {
        return NGX_CONF_ERROR;
    }

    hook->location = value[1];
    hook->attempts = 3;

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "attempts=", 9) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        n = ngx_atoi(value[2].data + 9, value[2].len - 9);

        if (n < 1 || n > 10) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"attempts\" must be 1 to 10 in \"%V\"",
                               &value[2]);
            return NGX_CONF_ERROR;
        }

        hook->attempts = (ngx_uint_t) n;
    }

    return NGX_CONF_OK;
}
