
/*
 * ngx_http_registry_module: the locations of "registry_health", the
 * Kubernetes way: readiness (/healthz, /readyz: Redis and S3 answer, so
 * a load balancer takes the instance out while either is away) and
 * liveness (/livez: the worker answers; restarting it would not bring
 * Redis back).
 */


#include "ngx_http_registry.h"


static ngx_int_t ngx_http_registry_health_redis(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_health_s3(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_health_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);


static ngx_str_t  ngx_http_registry_health_type =
    ngx_string("application/json");


/* readiness: Redis answers PING and S3 answers HEAD on the bucket */

ngx_int_t
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
        ngx_http_registry_hold(r);
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

    return ngx_http_registry_s3_run(r, ngx_http_registry_health_done, &op);
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
                                  &ngx_http_registry_health_type,
                                  ok, sizeof(ok) - 1);
}


/* liveness: asks nothing, so only a stuck or dead worker fails it */

ngx_int_t
ngx_http_registry_live_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    static u_char  ok[] = "{\"status\":\"ok\"}";

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_registry_send(r, NGX_HTTP_OK,
                                  &ngx_http_registry_health_type,
                                  ok, sizeof(ok) - 1);
}
