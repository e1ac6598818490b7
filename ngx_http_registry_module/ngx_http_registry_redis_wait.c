
/*
 * ngx_http_registry_module: durability, "registry_redis_wait".  A push
 * is acknowledged once Redis's WAIT says that enough replicas have what
 * the worker's command connection (redis.c) wrote, the push's write
 * with it: a failover (asynchronous replication) cannot undo it then.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_http_registry.h"


static ngx_int_t ngx_http_registry_redis_waited(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);


/* WAIT fell short: no other before this; the shortage is logged */

static ngx_msec_t  ngx_http_registry_redis_unwaited;
static ngx_uint_t  ngx_http_registry_redis_short;


/* registry_redis_wait REPLICAS TIMEOUT (0 replicas: off) */

char *
ngx_http_registry_redis_wait(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_registry_main_conf_t *mcf = conf;

    ngx_int_t    n;
    ngx_str_t   *value;
    ngx_msec_t   t;

    if (mcf->redis_wait_timeout) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);
    if (n == NGX_ERROR || n > 100) {
        return "takes a number of replicas from 0 to 100";
    }

    /* WAIT's 0 is forever */

    t = ngx_parse_time(&value[2], 0);
    if (t == (ngx_msec_t) NGX_ERROR || t == 0) {
        return "takes a timeout over 0";
    }

    mcf->redis_wait = n;
    mcf->redis_wait_timeout = t;

    return NGX_CONF_OK;
}


/*
 * Durability: next runs once WAIT says that "registry_redis_wait"
 * replicas have what this connection wrote, so the request's write too.
 * WAIT must go where the write went: a connection opened since cannot
 * vouch for it.  WAIT holds the worker's connection until it answers;
 * after it fell short, the next pushes get 503 at once for a while
 * rather than each hold it for the whole timeout.
 */

ngx_int_t
ngx_http_registry_redis_durable(ngx_http_request_t *r,
    ngx_http_registry_step_pt next)
{
    ngx_str_t                       args[3];
    ngx_http_registry_ctx_t        *ctx;
    ngx_http_registry_main_conf_t  *mcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);
    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (mcf->redis_wait == 0 || ctx->durable) {
        ctx->durable = 1;
        return next(r, ctx);
    }

    if (ctx->reply_conn != ngx_http_registry_redis_serial()) {
        return ngx_http_registry_unavailable(r, "redis: the connection "
                                             "that wrote went away");
    }

    if ((ngx_msec_int_t) (ngx_http_registry_redis_unwaited - ngx_current_msec)
        > 0)
    {
        return ngx_http_registry_unavailable(r, "redis: too few replicas");
    }

    ngx_str_set(&args[0], "WAIT");

    if (ngx_http_registry_keyf(r->pool, &args[1], "%ui", mcf->redis_wait)
        != NGX_OK
        || ngx_http_registry_keyf(r->pool, &args[2], "%M",
                                  mcf->redis_wait_timeout)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->durable_next = next;

    return ngx_http_registry_call(r, ngx_http_registry_redis_waited, 3,
                                  &args[0], &args[1], &args[2]);
}


static ngx_int_t
ngx_http_registry_redis_waited(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_http_registry_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (ctx->reply == NULL || ctx->reply->type != REDIS_REPLY_INTEGER) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    if (ctx->reply->integer < (long long) mcf->redis_wait) {

        /* logged once until WAIT is answered in full again */

        if (!ngx_http_registry_redis_short) {
            ngx_http_registry_redis_short = 1;
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "registry redis: WAIT: %L of %ui replicas "
                          "within %M ms: pushes get 503",
                          (int64_t) ctx->reply->integer, mcf->redis_wait,
                          mcf->redis_wait_timeout);
        }

        ngx_http_registry_redis_unwaited = ngx_current_msec
                                 + ngx_max(mcf->redis_wait_timeout, 1000);

        return ngx_http_registry_unavailable(r, "redis: too few replicas "
                                             "acknowledged the write");
    }

    if (ngx_http_registry_redis_short) {
        ngx_http_registry_redis_short = 0;
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "registry redis: WAIT: the replicas acknowledge "
                      "again");
    }

    ctx->durable = 1;

    return ctx->durable_next(r, ctx);
}
