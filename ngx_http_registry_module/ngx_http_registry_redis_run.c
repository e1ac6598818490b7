
/*
 * ngx_http_registry_module: Redis for the request's steps.  The
 * functions of the library "registry" (redis/NAME.lua, which redis.c
 * loads on every connect) and plain commands, each as the operation a
 * step waits for, or in the background; and reading their replies.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_registry.h"


static const char **ngx_http_registry_fcall_argv(ngx_pool_t *pool,
    const char *name, ngx_uint_t nkeys, ngx_str_t *args, ngx_uint_t nargs,
    size_t **lens);


/*
 * A function of the library "registry" (redis/NAME.lua, loaded on every
 * connect): several keys read or changed in one round trip and
 * atomically.  args holds the keys, then the arguments; hiredis copies
 * them into its buffer at once.
 */

static const char **
ngx_http_registry_fcall_argv(ngx_pool_t *pool, const char *name,
    ngx_uint_t nkeys, ngx_str_t *args, ngx_uint_t nargs, size_t **lens)
{
    u_char       *p;
    ngx_uint_t    i;
    const char  **argv;

    argv = ngx_palloc(pool, (nargs + 3) * sizeof(char *));
    *lens = ngx_palloc(pool, (nargs + 3) * sizeof(size_t));
    p = ngx_pnalloc(pool, NGX_INT_T_LEN);

    if (argv == NULL || *lens == NULL || p == NULL) {
        return NULL;
    }

    argv[0] = "FCALL";
    (*lens)[0] = sizeof("FCALL") - 1;
    argv[1] = name;
    (*lens)[1] = ngx_strlen(name);
    argv[2] = (const char *) p;
    (*lens)[2] = ngx_sprintf(p, "%ui", nkeys) - p;

    for (i = 0; i < nargs; i++) {
        argv[i + 3] = (const char *) args[i].data;
        (*lens)[i + 3] = args[i].len;
    }

    return argv;
}


ngx_int_t
ngx_http_registry_fcall(ngx_http_request_t *r, const char *name,
    ngx_uint_t nkeys, ngx_str_t *args, ngx_uint_t nargs)
{
    size_t       *lens;
    const char  **argv;

    argv = ngx_http_registry_fcall_argv(r->pool, name, nkeys, args, nargs,
                                        &lens);
    if (argv == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_registry_redis_command(r, nargs + 3, argv, lens);
}


/* a function as the operation a step waits for: next runs with its reply */

ngx_int_t
ngx_http_registry_run(ngx_http_request_t *r, ngx_http_registry_step_pt next,
    const char *name, ngx_uint_t nkeys, ngx_str_t *args, ngx_uint_t nargs)
{
    ngx_http_registry_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);
    ctx->next = next;

    if (ngx_http_registry_fcall(r, name, nkeys, args, nargs) != NGX_OK) {
        ctx->next = NULL;
        return ngx_http_registry_unavailable(r, "redis: not connected");
    }

    return NGX_DONE;
}


/* the same, not tied to a request: see ngx_http_registry_redis_call() */

ngx_int_t
ngx_http_registry_redis_fcall(ngx_http_registry_redis_cb_pt cb, void *data,
    const char *name, ngx_uint_t nkeys, ngx_str_t *args, ngx_uint_t nargs)
{
    size_t                              *lens;
    ngx_int_t                            rc;
    ngx_pool_t                          *pool;
    const char                         **argv;
    ngx_http_registry_redis_server_t    *srv;

    srv = &ngx_http_registry_redis_server;

    pool = ngx_create_pool(1024, srv->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    argv = ngx_http_registry_fcall_argv(pool, name, nkeys, args, nargs,
                                        &lens);

    rc = argv ? ngx_http_registry_redis_call(cb, data, nargs + 3, argv, lens)
              : NGX_ERROR;

    ngx_destroy_pool(pool);

    return rc;
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
