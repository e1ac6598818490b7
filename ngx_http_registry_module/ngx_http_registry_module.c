
/*
 * ngx_http_registry_module: the module, its directives and
 * configuration, the request ctx, the content handler and the resume of
 * a request's pending step.
 */


#include "ngx_http_registry.h"


static ngx_int_t ngx_http_registry_handler(ngx_http_request_t *r);

static void *ngx_http_registry_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_registry_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_registry_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_registry_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_registry(ngx_conf_t *cf, ngx_command_t *cmd,
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
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_registry,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) NGX_HTTP_REGISTRY_HANDLER_HEALTH },

    { ngx_string("registry_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_registry,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) NGX_HTTP_REGISTRY_HANDLER_METRICS },

    { ngx_string("registry_authorizer"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_registry,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) NGX_HTTP_REGISTRY_HANDLER_AUTHORIZER },

    { ngx_string("registry_gc"),
      NGX_HTTP_LOC_CONF|NGX_CONF_ANY,
      ngx_http_registry_gc_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

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
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_registry_redis_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("registry_redis_wait"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_registry_redis_wait,
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

    { ngx_string("registry_upload_tails"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_registry_main_conf_t, upload_tails),
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
        ngx_http_registry_hold(r);
    }

    return rc;
}


/*
 * nginx frees a request once every hold on it is given back.  A content
 * handler that returns NGX_DONE takes one for its pending step (Redis,
 * S3, the client body), which finalizing the request gives back; a wait
 * that may outlive the step (an event's lookup, a webhook's retry) takes
 * its own.  The hold nginx's body reader takes goes at once (body.c):
 * nginx keeps it for good when the read fails.
 */

void
ngx_http_registry_hold(ngx_http_request_t *r)
{
    r->main->count++;
}


/* a hold given back: the request ends here if it was the last */

void
ngx_http_registry_release(ngx_http_request_t *r)
{
    ngx_http_finalize_request(r, NGX_DONE);
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


ngx_uint_t
ngx_http_registry_redirect(ngx_http_request_t *r)
{
    ngx_http_registry_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    return mcf->s3.redirect;
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
    mcf->upload_tails = NGX_CONF_UNSET_SIZE;
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

    /* WAIT holds the command connection, whose commands time out */
    if (mcf->redis_wait && mcf->redis_wait_timeout >= mcf->redis_timeout) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"registry_redis_wait\" timeout must be shorter "
                           "than \"registry_redis_timeout\"");
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_value(mcf->s3.redirect, 0);
    ngx_conf_init_value(mcf->s3.presign_expires, 300);
    ngx_conf_init_value(mcf->s3.stream, 1);
    ngx_conf_init_value(mcf->upload_expires, 86400);
    ngx_conf_init_size_value(mcf->upload_tails, 512 * 1024 * 1024);
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

    ngx_str_t                      *value;
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_registry_main_conf_t  *mcf;

    if (rlcf->handler != NGX_HTTP_REGISTRY_HANDLER_NONE) {
        return "is duplicate";
    }

    rlcf->handler = (ngx_uint_t) cmd->post;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_registry_module);
    value = cf->args->elts;

    switch (rlcf->handler) {

    case NGX_HTTP_REGISTRY_HANDLER_HEALTH:
        /* readiness (the default, /healthz) or liveness */

        clcf->handler = ngx_http_registry_health_handler;

        if (cf->args->nelts == 2) {
            if (ngx_strcmp(value[1].data, "live") == 0) {
                clcf->handler = ngx_http_registry_live_handler;

            } else if (ngx_strcmp(value[1].data, "ready") != 0) {
                return "takes \"live\" or \"ready\"";
            }
        }

        break;

    case NGX_HTTP_REGISTRY_HANDLER_METRICS:
        clcf->handler = ngx_http_registry_metrics_handler;
        mcf->metrics = 1;
        break;

    case NGX_HTTP_REGISTRY_HANDLER_AUTHORIZER:
        clcf->handler = ngx_http_registry_authorizer_handler;
        break;

    default:
        clcf->handler = ngx_http_registry_handler;
    }

    mcf->enabled = 1;

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
    if (ngx_http_registry_metrics_init(cf) != NGX_OK
        || ngx_http_registry_body_init(cf) != NGX_OK
        || ngx_http_registry_auth_init(cf) != NGX_OK
        || ngx_http_registry_errors_init(cf) != NGX_OK
        || ngx_http_registry_stream_init(cf) != NGX_OK
        || ngx_http_registry_gc_init(cf) != NGX_OK)
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

    ngx_http_registry_metrics_init_worker(cycle);

    if (ngx_http_registry_redis_init_worker(cycle) != NGX_OK
        || ngx_http_registry_gc_init_worker(cycle) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_registry_redis_sub_init_worker(cycle);
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

    ngx_http_registry_gc_exit_worker(cycle);
    ngx_http_registry_redis_sub_exit_worker(cycle);
    ngx_http_registry_redis_exit_worker(cycle);
}
