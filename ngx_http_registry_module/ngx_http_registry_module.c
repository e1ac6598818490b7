
/*
 * ngx_http_registry_module: directives, configuration, the content
 * handlers, and the helpers every handler uses to answer.
 */


#include "ngx_http_registry.h"

#include <jansson.h>


static ngx_int_t ngx_http_registry_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_registry_health_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_registry_eval_reply(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static u_char *ngx_http_registry_script_sha(const char *script);
static ngx_int_t ngx_http_registry_health_redis(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_health_s3(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_health_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);

static void *ngx_http_registry_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_registry_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_registry_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_registry_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_registry(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_registry_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_registry_s3_endpoint(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_registry_s3_location(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_registry_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_registry_init_process(ngx_cycle_t *cycle);
static void ngx_http_registry_exit_process(ngx_cycle_t *cycle);


static ngx_conf_num_bounds_t  ngx_http_registry_depth_bounds = {
    ngx_conf_check_num_bounds, 1, 1000
};

static ngx_conf_num_bounds_t  ngx_http_registry_maxlen_bounds = {
    ngx_conf_check_num_bounds, 0, 100000000
};


static ngx_command_t  ngx_http_registry_commands[] = {

    { ngx_string("registry"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_registry,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) NGX_HTTP_REGISTRY_HANDLER_REGISTRY },

    { ngx_string("registry_health"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_registry,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) NGX_HTTP_REGISTRY_HANDLER_HEALTH },

    { ngx_string("registry_authorizer"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_registry,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) NGX_HTTP_REGISTRY_HANDLER_AUTHORIZER },

    { ngx_string("registry_auth"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_registry_auth_location,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("registry_auth_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_registry_auth_cache,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("registry_auth_realm"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_registry_main_conf_t, auth_realm),
      NULL },

    { ngx_string("registry_auth_service"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_registry_main_conf_t, auth_service),
      NULL },

    { ngx_string("registry_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_registry_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("registry_redis_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_registry_main_conf_t, redis_timeout),
      NULL },

    { ngx_string("registry_redis_password"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_registry_main_conf_t, redis_password),
      NULL },

    { ngx_string("registry_s3_endpoint"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_registry_s3_endpoint,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("registry_s3_stream"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_registry_main_conf_t, s3.stream),
      NULL },

    { ngx_string("registry_s3_region"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_registry_main_conf_t, s3.region),
      NULL },

    { ngx_string("registry_s3_bucket"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_registry_main_conf_t, s3.bucket),
      NULL },

    { ngx_string("registry_s3_access_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_registry_main_conf_t, s3.access_key),
      NULL },

    { ngx_string("registry_s3_secret_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_registry_main_conf_t, s3.secret_key),
      NULL },

    { ngx_string("registry_s3_location"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_registry_s3_location,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("registry_s3_redirect"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_registry_main_conf_t, s3.redirect),
      NULL },

    { ngx_string("registry_s3_presign_expires"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_registry_main_conf_t, s3.presign_expires),
      NULL },

    { ngx_string("registry_upload_expires"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_registry_main_conf_t, upload_expires),
      NULL },

    { ngx_string("registry_history_depth"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_registry_main_conf_t, history_depth),
      &ngx_http_registry_depth_bounds },

    { ngx_string("registry_events_maxlen"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_registry_main_conf_t, events_maxlen),
      &ngx_http_registry_maxlen_bounds },

    { ngx_string("registry_events_pull"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_registry_main_conf_t, events_pull),
      NULL },

    { ngx_string("registry_event_webhook"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_registry_event_webhook,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("registry_watch_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_registry_main_conf_t, watch_timeout),
      NULL },

    { ngx_string("registry_public_host"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_registry_main_conf_t, public_host),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_registry_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_registry_postconfiguration,   /* postconfiguration */

    ngx_http_registry_create_main_conf,    /* create main configuration */
    ngx_http_registry_init_main_conf,      /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_registry_create_loc_conf,     /* create location configuration */
    ngx_http_registry_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_registry_module = {
    NGX_MODULE_V1,
    &ngx_http_registry_module_ctx,         /* module context */
    ngx_http_registry_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_registry_init_process,        /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_registry_exit_process,        /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_http_registry_json_type =
    ngx_string("application/json");


ngx_http_registry_ctx_t *
ngx_http_registry_get_ctx(ngx_http_request_t *r)
{
    ngx_http_registry_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);
    if (ctx != NULL) {
        return ctx;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_registry_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_registry_module);

    return ctx;
}


static ngx_int_t
ngx_http_registry_handler(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_http_registry_ctx_t  *ctx;

    ctx = ngx_http_registry_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_registry_route(r, ctx);

    if (rc == NGX_DONE) {
        /*
         * Held until the pending step (Redis, S3, the client body)
         * finalizes the request: see ngx_http_registry_body_release()
         */
        r->main->count++;
    }

    return rc;
}


/*
 * Runs the step the pending operation was waiting for; called from Redis
 * callbacks and from the parent's write handler after an S3 subrequest.
 */

void
ngx_http_registry_resume(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_http_registry_ctx_t   *ctx;
    ngx_http_registry_step_pt  next;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);
    if (ctx == NULL || ctx->next == NULL) {
        return;
    }

    next = ctx->next;
    ctx->next = NULL;

    rc = next(r, ctx);

    if (rc == NGX_DONE) {
        return;
    }

    ngx_http_finalize_request(r, rc);
}


ngx_int_t
ngx_http_registry_add_header(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value = *value;

    return NGX_OK;
}


/* sends a whole response held in memory; returns what finalize wants */

ngx_int_t
ngx_http_registry_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *content_type, u_char *data, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    static ngx_str_t  api_version = ngx_string("registry/2.0");

    /*
     * An answer given before the body was read (a refused chunk, an
     * unknown upload): the body is still consumed, else on a keep-alive
     * connection its bytes would be parsed as the next request.  A no-op
     * once the body was read or discarded.
     */

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_registry_add_header(r, "Docker-Distribution-API-Version",
                                     &api_version)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    r->headers_out.status = status;

    if (content_type != NULL) {
        r->headers_out.content_type = *content_type;
        r->headers_out.content_type_len = content_type->len;
    }

    if (len == 0 && data == NULL) {
        r->headers_out.content_length_n = 0;
        r->header_only = 1;

    } else {
        r->headers_out.content_length_n = len;
    }

    if (r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = data;
    b->last = data + len;
    b->memory = len ? 1 : 0;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * The OCI error body; the message is ours, never the client's input.
 * A 5xx is logged as an error, except 503: its cause (Redis lost, S3 not
 * answering) is logged where it is found, and an outage must not write
 * a line per refused request.
 */

ngx_int_t
ngx_http_registry_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message)
{
    json_t      *body;
    ngx_uint_t   level;

    level = (status >= NGX_HTTP_INTERNAL_SERVER_ERROR
             && status != NGX_HTTP_SERVICE_UNAVAILABLE)
            ? NGX_LOG_ERR : NGX_LOG_INFO;

    if (r->header_sent) {
        /* a streamed response broke after its header: just end it */
        return NGX_ERROR;
    }

    if (ngx_http_registry_api_uri(r)) {
        /* Kubernetes clients read a Status, whoever refuses */

        ngx_log_error(level, r->connection->log, 0,
                      "registry: %ui %s: %s", status, code, message);

        return ngx_http_registry_api_status(r, status, message);
    }

    body = json_pack("{s:[{s:s,s:s}]}", "errors", "code", code,
                     "message", message);
    if (body == NULL) {
        return NGX_ERROR;
    }

    ngx_log_error(level, r->connection->log, 0,
                  "registry: %ui %s: %s", status, code, message);

    return ngx_http_registry_send_json(r, status, body);
}


ngx_int_t
ngx_http_registry_unavailable(ngx_http_request_t *r, const char *what)
{
    return ngx_http_registry_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "UNAVAILABLE", what);
}


/* a step got no usable Redis reply: 503, with Redis's error logged */

ngx_int_t
ngx_http_registry_redis_failed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    if (ctx->reply == NULL) {
        return ngx_http_registry_unavailable(r, "redis: no answer");
    }

    if (ctx->reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: redis error: %*s",
                      ctx->reply->len, ctx->reply->str);

    } else {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: unexpected redis reply type %d",
                      ctx->reply->type);
    }

    return ngx_http_registry_unavailable(r, "redis: error");
}


ngx_int_t
ngx_http_registry_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *json)
{
    return ngx_http_registry_send_json_as(r, status,
                                          &ngx_http_registry_json_type, json);
}


/* sends a JSON document and releases it */

ngx_int_t
ngx_http_registry_send_json_as(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, json_t *json)
{
    u_char  *p;
    char    *text;
    size_t   len;

    text = json_dumps(json, JSON_COMPACT);
    json_decref(json);

    if (text == NULL) {
        return NGX_ERROR;
    }

    len = ngx_strlen(text);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        free(text);
        return NGX_ERROR;
    }

    ngx_memcpy(p, text, len);
    free(text);

    return ngx_http_registry_send(r, status, type, p, len);
}


ngx_uint_t
ngx_http_registry_redirect(ngx_http_request_t *r)
{
    ngx_http_registry_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    return mcf->s3.redirect;
}


/* an S3 operation failed: 503 when S3 did not answer, 500 otherwise */

ngx_int_t
ngx_http_registry_s3_failed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    if (ctx->s3.status == 0 || ctx->s3.status == NGX_HTTP_BAD_GATEWAY
        || ctx->s3.status == NGX_HTTP_GATEWAY_TIME_OUT
        || ctx->s3.status == NGX_HTTP_SERVICE_UNAVAILABLE)
    {
        return ngx_http_registry_unavailable(r, "s3: no answer");
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "registry: s3 answered %ui \"%V\"",
                  ctx->s3.status, &ctx->s3.error_code);

    return ngx_http_registry_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                   "UNKNOWN", "storage error");
}


/* a Redis key (or any short string) printed into the pool */

ngx_int_t
ngx_http_registry_keyf(ngx_pool_t *pool, ngx_str_t *key, const char *fmt,
    ...)
{
    u_char   *p, buf[1024];
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    key->len = p - buf;
    key->data = ngx_pnalloc(pool, key->len);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(key->data, buf, key->len);

    return NGX_OK;
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


ngx_chain_t *
ngx_http_registry_memory_chain(ngx_pool_t *pool, ngx_str_t *s)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    b = ngx_calloc_buf(pool);
    cl = ngx_alloc_chain_link(pool);
    if (b == NULL || cl == NULL) {
        return NULL;
    }

    b->pos = s->data;
    b->last = s->data + s->len;
    b->memory = s->len ? 1 : 0;

    cl->buf = b;
    cl->next = NULL;

    return cl;
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


/* /healthz: Redis answers PING and S3 answers HEAD on the bucket */

static ngx_int_t
ngx_http_registry_health_handler(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_http_registry_ctx_t  *ctx;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx = ngx_http_registry_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_registry_health_redis(r, ctx);

    if (rc == NGX_DONE) {
        r->main->count++;
    }

    return rc;
}


static ngx_int_t
ngx_http_registry_health_redis(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    static const char  *argv[] = { "PING" };

    ctx->next = ngx_http_registry_health_s3;

    if (ngx_http_registry_redis_command(r, 1, argv, NULL) != NGX_OK) {
        ctx->next = NULL;
        return ngx_http_registry_unavailable(r, "redis: not connected");
    }

    return NGX_DONE;
}


static ngx_int_t
ngx_http_registry_health_s3(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_http_registry_s3_op_t  op;

    if (ctx->reply == NULL || ctx->reply->type == REDIS_REPLY_ERROR) {
        return ngx_http_registry_unavailable(r, "redis: no answer");
    }

    ngx_memzero(&op, sizeof(ngx_http_registry_s3_op_t));
    ngx_str_set(&op.method, "HEAD");

    ctx->next = ngx_http_registry_health_done;

    if (ngx_http_registry_s3_request(r, ctx, &op) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_DONE;
}


static ngx_int_t
ngx_http_registry_health_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    static u_char  ok[] = "{\"redis\":\"ok\",\"s3\":\"ok\"}";

    if (ctx->s3.status != NGX_HTTP_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: s3 health check answered %ui",
                      ctx->s3.status);
        return ngx_http_registry_unavailable(r, "s3: no answer");
    }

    return ngx_http_registry_send(r, NGX_HTTP_OK,
                                  &ngx_http_registry_json_type,
                                  ok, sizeof(ok) - 1);
}


static void *
ngx_http_registry_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_registry_main_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_registry_main_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    mcf->redis_timeout = NGX_CONF_UNSET_MSEC;
    mcf->s3.redirect = NGX_CONF_UNSET;
    mcf->s3.presign_expires = NGX_CONF_UNSET;
    mcf->s3.stream = NGX_CONF_UNSET;
    mcf->upload_expires = NGX_CONF_UNSET;
    mcf->history_depth = NGX_CONF_UNSET_UINT;
    mcf->events_maxlen = NGX_CONF_UNSET_UINT;
    mcf->events_pull = NGX_CONF_UNSET;
    mcf->watch_timeout = NGX_CONF_UNSET_MSEC;
    mcf->auth_valid = NGX_CONF_UNSET;

    return mcf;
}


/* a credential from the configuration, else from the environment */

static char *
ngx_http_registry_conf_env(ngx_conf_t *cf, ngx_str_t *value,
    const char *name, const char *fallback)
{
    char  *env;

    if (value->len) {
        return NGX_CONF_OK;
    }

    env = getenv(name);

    if (env == NULL || env[0] == '\0') {
        env = getenv(fallback);
    }

    if (env == NULL) {
        return NGX_CONF_OK;
    }

    value->len = ngx_strlen(env);
    value->data = ngx_pnalloc(cf->pool, value->len);
    if (value->data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(value->data, env, value->len);

    return NGX_CONF_OK;
}


static char *
ngx_http_registry_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_registry_main_conf_t *mcf = conf;

    ngx_conf_init_msec_value(mcf->redis_timeout, 5000);
    ngx_conf_init_value(mcf->s3.redirect, 0);
    ngx_conf_init_value(mcf->s3.presign_expires, 300);
    ngx_conf_init_value(mcf->s3.stream, 1);
    ngx_conf_init_value(mcf->upload_expires, 86400);
    ngx_conf_init_uint_value(mcf->history_depth, 10);
    ngx_conf_init_uint_value(mcf->events_maxlen, 10000);
    ngx_conf_init_value(mcf->events_pull, 0);
    ngx_conf_init_msec_value(mcf->watch_timeout, 30 * 60 * 1000);

    if (mcf->watch_timeout == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"registry_watch_timeout\" must not be 0");
        return NGX_CONF_ERROR;
    }
    ngx_conf_init_value(mcf->auth_valid, 10);

    if (mcf->s3.region.len == 0) {
        ngx_str_set(&mcf->s3.region, "us-east-1");
    }

    if (ngx_http_registry_conf_env(cf, &mcf->s3.access_key,
                                   "REGISTRY_S3_ACCESS_KEY",
                                   "AWS_ACCESS_KEY_ID")
        != NGX_CONF_OK
        || ngx_http_registry_conf_env(cf, &mcf->s3.secret_key,
                                      "REGISTRY_S3_SECRET_KEY",
                                      "AWS_SECRET_ACCESS_KEY")
           != NGX_CONF_OK
        || ngx_http_registry_conf_env(cf, &mcf->redis_password,
                                      "REGISTRY_REDIS_PASSWORD",
                                      "REGISTRY_REDIS_PASSWORD")
           != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_registry_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_registry_loc_conf_t  *rlcf;

    rlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_registry_loc_conf_t));
    if (rlcf == NULL) {
        return NULL;
    }

    return rlcf;
}


static char *
ngx_http_registry_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    return NGX_CONF_OK;
}


static char *
ngx_http_registry(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_registry_loc_conf_t *rlcf = conf;

    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_registry_main_conf_t  *mcf;

    if (rlcf->handler != NGX_HTTP_REGISTRY_HANDLER_NONE) {
        return "is duplicate";
    }

    rlcf->handler = (ngx_uint_t) cmd->post;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    switch (rlcf->handler) {

    case NGX_HTTP_REGISTRY_HANDLER_HEALTH:
        clcf->handler = ngx_http_registry_health_handler;
        break;

    case NGX_HTTP_REGISTRY_HANDLER_AUTHORIZER:
        clcf->handler = ngx_http_registry_authorizer_handler;
        break;

    default:
        clcf->handler = ngx_http_registry_handler;
    }

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_registry_module);
    mcf->enabled = 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_registry_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_registry_main_conf_t *mcf = conf;

    u_char      *p;
    ngx_int_t    port;
    ngx_str_t   *value, host;
    ngx_addr_t   addr;

    if (mcf->redis.len) {
        return "is duplicate";
    }

    value = cf->args->elts;
    mcf->redis = value[1];

    if (ngx_strncmp(value[1].data, "unix:", 5) == 0) {
        if (value[1].len == 5) {
            return "needs a socket path after \"unix:\"";
        }

        mcf->redis_unix.len = value[1].len - 5;
        mcf->redis_unix.data = value[1].data + 5;
        return NGX_CONF_OK;
    }

    /* an IP address: hiredis would resolve a name with blocking DNS */

    host = value[1];
    port = 6379;

    p = ngx_strlchr(host.data, host.data + host.len, ']');
    p = ngx_strlchr(p ? p : host.data, host.data + host.len, ':');

    if (p != NULL && ngx_strlchr(p + 1, host.data + host.len, ':') == NULL) {
        port = ngx_atoi(p + 1, host.data + host.len - p - 1);
        if (port < 1 || port > 65535) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid port in registry_redis \"%V\"",
                               &value[1]);
            return NGX_CONF_ERROR;
        }

        host.len = p - host.data;
    }

    if (host.len > 2 && host.data[0] == '[') {
        host.data++;
        host.len -= 2;
    }

    if (ngx_parse_addr(cf->pool, &addr, host.data, host.len) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "registry_redis \"%V\" must be an IP address "
                           "with an optional port, or unix:PATH",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    mcf->redis_addr = ngx_palloc(cf->pool, sizeof(ngx_addr_t));
    if (mcf->redis_addr == NULL) {
        return NGX_CONF_ERROR;
    }

    *mcf->redis_addr = addr;

    mcf->redis_host.data = ngx_pnalloc(cf->pool, host.len + 1);
    if (mcf->redis_host.data == NULL) {
        return NGX_CONF_ERROR;
    }

    (void) ngx_cpystrn(mcf->redis_host.data, host.data, host.len + 1);
    mcf->redis_host.len = host.len;
    mcf->redis_port = port;

    return NGX_CONF_OK;
}


static char *
ngx_http_registry_s3_endpoint(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_registry_main_conf_t *mcf = conf;

    ngx_str_t  *value, host;

    if (mcf->s3.endpoint.len) {
        return "is duplicate";
    }

    value = cf->args->elts;
    host = value[1];

    if (host.len > 7 && ngx_strncasecmp(host.data, (u_char *) "http://", 7)
                        == 0)
    {
        host.data += 7;
        host.len -= 7;

    } else if (host.len > 8
               && ngx_strncasecmp(host.data, (u_char *) "https://", 8) == 0)
    {
        host.data += 8;
        host.len -= 8;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "registry_s3_endpoint \"%V\" must start with "
                           "http:// or https://", &value[1]);
        return NGX_CONF_ERROR;
    }

    while (host.len && host.data[host.len - 1] == '/') {
        host.len--;
    }

    if (host.len == 0 || ngx_strlchr(host.data, host.data + host.len, '/')) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "registry_s3_endpoint \"%V\" must be a scheme "
                           "and a host[:port] only", &value[1]);
        return NGX_CONF_ERROR;
    }

    mcf->s3.endpoint = value[1];
    mcf->s3.host = host;

    return NGX_CONF_OK;
}


static char *
ngx_http_registry_s3_location(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_registry_main_conf_t *mcf = conf;

    ngx_str_t  *value;

    value = cf->args->elts;

    if (value[1].data[0] != '/' || value[1].data[value[1].len - 1] != '/') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "registry_s3_location \"%V\" must start and end "
                           "with \"/\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    mcf->s3.location = value[1];

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_registry_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_registry_main_conf_t  *mcf;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_registry_module);

    if (mcf->enabled) {
        if (mcf->redis.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"registry_redis\" is required");
            return NGX_ERROR;
        }

        if (mcf->s3.endpoint.len == 0 || mcf->s3.bucket.len == 0
            || mcf->s3.location.len == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"registry_s3_endpoint\", "
                               "\"registry_s3_bucket\" and "
                               "\"registry_s3_location\" are required");
            return NGX_ERROR;
        }

        if (mcf->s3.access_key.len == 0 || mcf->s3.secret_key.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "no S3 credentials: set "
                               "\"registry_s3_access_key\" and "
                               "\"registry_s3_secret_key\", or "
                               "REGISTRY_S3_ACCESS_KEY and "
                               "REGISTRY_S3_SECRET_KEY in the environment");
            return NGX_ERROR;
        }
    }

    /* errors.c's filters first: stream.c's swallow S3's pages before */
    if (ngx_http_registry_body_init(cf) != NGX_OK
        || ngx_http_registry_auth_init(cf) != NGX_OK
        || ngx_http_registry_errors_init(cf) != NGX_OK
        || ngx_http_registry_stream_init(cf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_registry_s3_init(cf);
}


static ngx_int_t
ngx_http_registry_init_process(ngx_cycle_t *cycle)
{
    ngx_http_registry_main_conf_t  *mcf;

    mcf = ngx_http_cycle_get_module_main_conf(cycle,
                                              ngx_http_registry_module);
    if (mcf == NULL || !mcf->enabled) {
        return NGX_OK;
    }

    return ngx_http_registry_redis_init_worker(cycle);
}


static void
ngx_http_registry_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_registry_main_conf_t  *mcf;

    mcf = ngx_http_cycle_get_module_main_conf(cycle,
                                              ngx_http_registry_module);
    if (mcf == NULL || !mcf->enabled) {
        return;
    }

    ngx_http_registry_redis_exit_worker(cycle);
}
